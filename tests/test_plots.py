"""Plots: every figure's text is at least SMALLEST_POINTS points, and legends sit beside the curves, not on them."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from digits import plots

matplotlib.use("Agg")


def history(epochs: int, offset: float) -> pd.DataFrame:
    """A history.csv's columns over `epochs` epochs."""
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.9 + offset, "val_loss": 1 / epoch,
                         "val_accuracy": 0.95 + offset * epoch / 10, "learning_rate": 1e-3, "seconds": 2.0})


IMAGES = np.random.default_rng(0).random((40, 28, 28, 1)).astype("float32")
LABELS = np.arange(40) % 10
HISTORIES = {f"strided-e6-s{seed}-n2000": history(6, seed / 100) for seed in range(6)}
FIGURES = {
    "class_distribution": lambda: plots.class_distribution(LABELS),
    "samples_per_class": lambda: plots.samples_per_class(IMAGES, LABELS, per_class=4),
    "mean_images": lambda: plots.mean_images(IMAGES, LABELS),
    "pixel_histogram": lambda: plots.pixel_histogram(IMAGES),
    "learning_curves": lambda: plots.learning_curves(dict(list(HISTORIES.items())[:2])),
    "confusion_heatmap": lambda: plots.confusion_heatmap(np.arange(100).reshape(10, 10) * 11),
    "per_class_scores": lambda: plots.per_class_scores(
        pd.DataFrame({"precision": np.linspace(0.9, 1, 10), "recall": np.linspace(1, 0.9, 10)},
                     index=pd.Index(range(10), name="digit"))),
    "misclassified_grid": lambda: plots.misclassified_grid(IMAGES, pd.DataFrame(
        {"index": range(12), "true": LABELS[:12], "predicted": (LABELS[:12] + 1) % 10, "confidence": 0.97})),
    "validation_curves": lambda: plots.validation_curves(HISTORIES, current=["strided-e6-s0-n2000"]),
    "disagreements": lambda: plots.disagreements(IMAGES, LABELS, (LABELS, (LABELS + 1) % 10), np.arange(12),
                                                 ("a", "b")),
}


@pytest.mark.parametrize("name", FIGURES)
def test_no_text_in_a_figure_is_smaller_than_the_smallest_size(name):
    figure = FIGURES[name]()
    try:
        texts = [text for text in figure.findobj(Text) if text.get_visible() and text.get_text().strip()]
        assert texts
        small = {text.get_text(): text.get_fontsize() for text in texts if text.get_fontsize() < plots.SMALLEST_POINTS}
        assert small == {}
    finally:
        plt.close(figure)


def test_the_confusion_matrix_counts_are_one_size_on_and_off_the_diagonal():
    figure = plots.confusion_heatmap(np.arange(100).reshape(10, 10) * 11)
    try:
        counts = {text.get_fontsize() for text in figure.axes[0].texts}
        assert counts == {plots.SMALLEST_POINTS}
    finally:
        plt.close(figure)


def test_the_validation_legend_covers_no_marker():
    figure = plots.validation_curves(HISTORIES, current=["strided-e6-s0-n2000"])
    try:
        figure.canvas.draw()
        axes = figure.axes[0]
        legend = axes.get_legend().get_window_extent()
        points = np.concatenate([axes.transData.transform(line.get_xydata()) for line in axes.get_lines()])
        inside = (points[:, 0] >= legend.x0) & (points[:, 0] <= legend.x1) & \
                 (points[:, 1] >= legend.y0) & (points[:, 1] <= legend.y1)
        assert not inside.any()
        assert len(axes.get_legend().get_texts()) == len(HISTORIES)
    finally:
        plt.close(figure)
