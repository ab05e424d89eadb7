"""Plots: every figure of the notebooks and the report; each function returns its Figure.

Figures are at most FIGURE_WIDTH inches wide at DPI dots per inch, and no text
in them is smaller than SMALLEST_POINTS points: shown in the book's text column
(about 750 pixels, some 0.58 of their width), it reads at 11 pixels or more; a
narrower screen scrolls a figure rather than shrink it below 10 pixels
(digits.report.pages).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.figure import Figure

from digits import calibration
from digits.config import N_CLASSES

DIGITS = list(range(N_CLASSES))
FIGURE_WIDTH = 9.0  # inches
DPI = 144
TICK_POINTS = 11
SMALLEST_POINTS = 10  # the smallest text of any figure: counts, image titles, legends
plt.rcParams.update({"figure.dpi": DPI, "savefig.dpi": "figure", "font.size": TICK_POINTS,
                     "xtick.labelsize": TICK_POINTS, "ytick.labelsize": TICK_POINTS, "axes.titlesize": 12,
                     "axes.labelsize": TICK_POINTS, "legend.fontsize": SMALLEST_POINTS})


def class_distribution(labels: np.ndarray, title: str = "Images per digit") -> Figure:
    """Bar chart of how many images each digit has."""
    figure, axes = plt.subplots(figsize=(7, 3))
    counts = np.bincount(labels, minlength=N_CLASSES)
    sns.barplot(x=DIGITS, y=counts, color="#4C72B0", ax=axes)
    axes.bar_label(axes.containers[0], fontsize=SMALLEST_POINTS)
    axes.set(xlabel="digit", ylabel="images", title=title)
    return figure


def digit_grid(images: np.ndarray, titles: list[str], columns: int = 10, title: str = "") -> Figure:
    """Images in a grid, each with a short title."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    side = min(0.9, FIGURE_WIDTH / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * side, rows * side * 1.17), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index].squeeze(), cmap="gray_r", vmin=0, vmax=1)
            axis.set_title(titles[index], fontsize=SMALLEST_POINTS)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def samples_per_class(images: np.ndarray, labels: np.ndarray, per_class: int = 10) -> Figure:
    """A row of example images for each digit."""
    chosen = [index for digit in DIGITS for index in np.flatnonzero(labels == digit)[:per_class]]
    return digit_grid(images[chosen], [str(labels[index]) for index in chosen], columns=per_class)


def mean_images(images: np.ndarray, labels: np.ndarray) -> Figure:
    """The average image of each digit: what the classes look like 'on average'."""
    means = np.stack([images[labels == digit].mean(axis=0) for digit in DIGITS])
    return digit_grid(means / means.max(), [f"mean {digit}" for digit in DIGITS], columns=N_CLASSES)


def pixel_histogram(images: np.ndarray) -> Figure:
    """Histogram of grey levels (log scale): mostly background, a peak at full ink."""
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.hist((images.ravel() * 255).round(), bins=64, range=(0, 256), color="#4C72B0", log=True)
    axes.set(xlabel="grey level (0 = background, 255 = ink)", ylabel="pixels (log scale)", title="Pixel intensities")
    return figure


def learning_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Loss and accuracy per epoch, training against validation, the learning rate and seconds per epoch."""
    figure, axes = plt.subplots(2, 2, figsize=(FIGURE_WIDTH, 6.5))
    (loss_axes, accuracy_axes), (rate_axes, seconds_axes) = axes
    several = len(histories) > 1
    for name, history in histories.items():
        suffix = f" ({name})" if several else ""
        for plot, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
            training, = plot.plot(history["epoch"], history[metric], marker="o", label=f"training{suffix}")
            plot.plot(history["epoch"], history[f"val_{metric}"], marker="o", label=f"validation{suffix}",
                      linestyle="--" if several else "-", color=training.get_color() if several else None)
        rate_axes.plot(history["epoch"], history["learning_rate"], marker="o", label=name)
        seconds_axes.plot(history["epoch"], history["seconds"], marker="o", label=name)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="Loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    rate_axes.set(xlabel="epoch", ylabel="learning rate", title="Learning-rate schedule")
    seconds_axes.set(xlabel="epoch", ylabel="seconds", title="Time per epoch", ylim=(0, None))
    for plot in (loss_axes, accuracy_axes):
        plot.legend()
    for plot in axes.flat:
        plot.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return figure


def confusion_heatmap(matrix: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """Heatmap of the confusion matrix; the diagonal is masked so the mistakes stand out."""
    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    off_diagonal = ~np.eye(N_CLASSES, dtype=bool)
    counts = {"fontsize": SMALLEST_POINTS}  # the same size on and off the diagonal
    sns.heatmap(matrix, mask=~off_diagonal, annot=True, fmt="d", cmap="Reds", cbar=False, ax=axes, annot_kws=counts)
    sns.heatmap(matrix, mask=off_diagonal, annot=True, fmt="d", cmap="Greens", cbar=False, ax=axes,
                annot_kws=counts)
    axes.set(xlabel="predicted digit", ylabel="true digit", title=title)
    return figure


def per_class_scores(scores: pd.DataFrame) -> Figure:
    """Precision and recall of each digit, zoomed to where the differences are."""
    figure, axes = plt.subplots(figsize=(8, 3))
    long = scores.reset_index().melt(id_vars="digit", value_vars=["precision", "recall"])
    sns.barplot(data=long, x="digit", y="value", hue="variable", ax=axes)
    axes.set(ylim=(max(0.0, long["value"].min() - 0.02), 1.0), ylabel="score", title="Precision and recall per digit")
    axes.legend(loc="lower right")
    return figure


def misclassified_grid(images: np.ndarray, mistakes: pd.DataFrame, limit: int = 30) -> Figure:
    """The model's most confident mistakes: true label, prediction and confidence."""
    shown = mistakes.head(limit)
    titles = [f"{row.true}→{row.predicted} {row.confidence:.0%}" for row in shown.itertuples()]
    return digit_grid(images[shown["index"].to_numpy()], titles,
                      title="Misclassified digits (true→predicted, confidence)")


def prediction_distribution(predicted_labels: np.ndarray) -> Figure:
    """How many test images were assigned to each digit."""
    return class_distribution(predicted_labels, title="Predicted digits in the test set")


def validation_curves(histories: dict[str, pd.DataFrame], current: list[str] = ()) -> Figure:
    """Validation accuracy per epoch of several runs in one plot; the current runs drawn thicker."""
    figure, axes = plt.subplots(figsize=(8, 3.8))
    for name, history in histories.items():
        is_current = name in current
        axes.plot(history["epoch"], history["val_accuracy"], marker="o", markersize=3 if not is_current else 5,
                  linewidth=3 if is_current else 1.2, label=f"{name} (this report)" if is_current else name,
                  zorder=3 if is_current else 2)
    axes.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy of every kept run")
    accuracies = pd.concat([history["val_accuracy"] for history in histories.values()]) if histories else pd.Series()
    if len(accuracies):
        # Zoom to where the runs differ, but keep weak runs in view.
        axes.set_ylim(max(0.0, min(accuracies.min(), accuracies.quantile(0.25)) - 0.01), 1.0)
    axes.xaxis.get_major_locator().set_params(integer=True)
    # Below the plot, in two columns: never over a curve's markers, and the plot keeps the figure's width.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2, frameon=False)
    figure.tight_layout()
    return figure


def comparisons(found: list) -> Figure:
    """A small panel per comparison (digits.runs.comparison): mean accuracy over seeds, ± one standard deviation,
    against the values of the parameter that varies, the lowest and highest run marked."""
    columns = min(3, len(found))
    rows = -(-len(found) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(FIGURE_WIDTH, 3.2 * rows), squeeze=False)
    for panel, comparison in zip(axes.flat, found):
        table = comparison.table
        positions = np.arange(len(table))
        panel.errorbar(positions, table["mean"], yerr=table["sd"].fillna(0), marker="o", capsize=4)
        panel.scatter(np.r_[positions, positions], np.r_[table["lowest"], table["highest"]], marker="_", s=120,
                      color="#888888", label="lowest, highest")
        panel.set_xticks(positions, [str(value) for value in table[comparison.parameter]])
        score = "test accuracy" if comparison.score == "test_accuracy" else "validation accuracy"
        panel.set(xlabel=comparison.parameter, ylabel=score, title=comparison.title)
    for panel in axes.flat[len(found):]:
        panel.axis("off")
    figure.tight_layout()
    return figure


def reliability_diagram(raw: np.ndarray, calibrated: np.ndarray, labels: np.ndarray) -> Figure:
    """Accuracy against the top digit's probability before and after calibration (scikit-learn's curve), with
    their expected calibration errors; below, how many images fall in each bin of confidence."""
    figure, (curve, histogram) = plt.subplots(2, 1, figsize=(6.5, 6.5), height_ratios=(3, 1), sharex=True)
    curve.plot([0, 1], [0, 1], color="#888888", linestyle=":", label="perfectly calibrated")
    for probabilities, name, marker in ((raw, "before", "o"), (calibrated, "after", "s")):
        confidence, accuracy = calibration.reliability(probabilities, labels)
        error = calibration.expected_calibration_error(probabilities, labels)
        curve.plot(confidence, accuracy, marker=marker, label=f"{name} the temperature (ECE {error:.2%})")
    curve.set(ylabel="accuracy", title="Reliability of the top digit's probability", xlim=(0, 1), ylim=(0, 1.02))
    curve.legend(loc="upper left")
    edges = np.linspace(0, 1, calibration.CURVE_BINS + 1)
    for probabilities, name in ((raw, "before"), (calibrated, "after")):
        histogram.hist(probabilities.max(axis=1), bins=edges, log=True, histtype="step", linewidth=1.5, label=name)
    histogram.set(xlabel="confidence (probability of the most probable digit)", ylabel="images")
    figure.tight_layout()
    return figure


def coverage_curve(curve: pd.DataFrame, threshold: float, title: str) -> Figure:
    """Accuracy of the answers against the share answered, most confident first; the unsure threshold marked."""
    figure, axes = plt.subplots(figsize=(7, 3.8))
    axes.plot(curve["coverage"], curve["accuracy"], color="#4C72B0")
    sure = curve[curve["threshold"] >= threshold]
    if len(sure):
        point = sure.iloc[-1]
        axes.scatter([point["coverage"]], [point["accuracy"]], color="#DD8452", zorder=3,
                     label=f"threshold {threshold:.1%}: answers {point['coverage']:.1%}, {point['accuracy']:.2%} right")
        axes.legend(loc="lower left")
    axes.set(xlabel="share of images answered (the rest flagged unsure)", ylabel="accuracy of the answers",
             title=title, ylim=(max(0.0, curve["accuracy"].min() - 0.002), 1.0005))
    figure.tight_layout()
    return figure


def _tinted(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """An image in grey, each pixel tinted red (towards) or blue (away) as far as its share of the largest map value,
    as Try it's overlay shows it."""
    share = np.abs(saliency) / max(np.abs(saliency).max(), 1e-12)
    tint = np.where(saliency[..., None] > 0, [0.9, 0.16, 0.16], [0.16, 0.43, 1.0])
    return np.clip(image[..., None] * (1 - share[..., None]) + tint * share[..., None], 0, 1)


def saliency_grid(images: np.ndarray, mistakes: pd.DataFrame, towards_predicted: np.ndarray,
                  towards_true: np.ndarray) -> Figure:
    """For each mistake, the image, what pushed towards the digit predicted, and towards the true digit."""
    figure, axes = plt.subplots(len(mistakes), 3, figsize=(4.2, 1.45 * len(mistakes)), squeeze=False)
    for row, mistake in enumerate(mistakes.itertuples()):
        image = images[mistake.index].squeeze()
        panels = [(image, f"true {mistake.true}", "gray"),
                  (_tinted(image, towards_predicted[row]), f"→ {mistake.predicted} ({mistake.confidence:.0%})", None),
                  (_tinted(image, towards_true[row]), f"→ {mistake.true}", None)]
        for axis, (picture, title, colours) in zip(axes[row], panels):
            axis.imshow(picture, cmap=colours, vmin=0, vmax=1)
            axis.set_title(title, fontsize=9)
            axis.axis("off")
    figure.suptitle("Mistakes: red pushed towards the digit, blue away", fontsize=10)
    figure.tight_layout()
    return figure


def embedding_map(points: np.ndarray, labels: np.ndarray, wrong: np.ndarray) -> Figure:
    """The t-SNE map of images coloured by their true digit, each digit named at its middle, mistakes ringed."""
    figure, axes = plt.subplots(figsize=(8, 7))
    colours = plt.get_cmap("tab10")
    for digit in DIGITS:
        here = labels == digit
        axes.scatter(points[here, 0], points[here, 1], s=4, color=colours(digit), alpha=0.6, linewidths=0)
        if here.any():
            middle = np.median(points[here], axis=0)
            axes.text(*middle, str(digit), fontsize=18, fontweight="bold", ha="center", va="center",
                      color=colours(digit), path_effects=[patheffects.withStroke(linewidth=3, foreground="white")])
    axes.scatter(points[wrong, 0], points[wrong, 1], s=50, c=[colours(digit) for digit in labels[wrong]],
                 edgecolors="black", linewidths=1, label=f"misclassified ({int(wrong.sum())}), in their true digit's colour")
    axes.set(xticks=[], yticks=[], title="The test images as the network sees them (t-SNE of its penultimate layer)")
    axes.legend(loc="lower right", fontsize=9)
    figure.tight_layout()
    return figure


def disagreements(images: np.ndarray, labels: np.ndarray, predicted: tuple[np.ndarray, np.ndarray],
                  indices: np.ndarray, names: tuple[str, str], limit: int = 40) -> Figure:
    """The images on which two runs answer differently: the true digit, then each run's answer."""
    shown = indices[:limit]
    titles = [f"{labels[i]}: A {predicted[0][i]} B {predicted[1][i]}" for i in shown]
    more = f" (the first {limit} of {len(indices)})" if len(indices) > limit else ""
    return digit_grid(images[shown], titles, title=f"Where the two runs disagree{more}\n"
                                                   f"true digit: A's answer, B's answer (A {names[0]}, B {names[1]})")
