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
from matplotlib.figure import Figure

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


def disagreements(images: np.ndarray, labels: np.ndarray, predicted: tuple[np.ndarray, np.ndarray],
                  indices: np.ndarray, names: tuple[str, str], limit: int = 40) -> Figure:
    """The images on which two runs answer differently: the true digit, then each run's answer."""
    shown = indices[:limit]
    titles = [f"{labels[i]}: {predicted[0][i]}|{predicted[1][i]}" for i in shown]
    more = f" (the first {limit} of {len(indices)})" if len(indices) > limit else ""
    return digit_grid(images[shown], titles, title=f"Where the two runs disagree{more}: true digit: "
                                                   f"{names[0]}'s answer | {names[1]}'s answer")
