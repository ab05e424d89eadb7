"""Predict: the digits in your own images, prepared the way MNIST prepared its digits.

MNIST's digits are light ink on black, fitted into a 20x20 box (keeping their
aspect ratio) and placed in a 28x28 field so that their centre of mass lies at
its centre. A photo or drawing is brought into that form (`to_mnist`) before the
model sees it; a file that cannot be (not an image, truncated, blank, ...) is
reported in the table, not predicted.

`make predict IMAGES=folder` predicts a folder (or one file) with a run and
writes predictions.csv and predictions.png into the run's folder.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from digits.config import IMAGE_SIDE
from digits.display import shown
from digits.files import atomic_path, write_frame_atomic
from digits.runs import Run

BOX_SIDE = 20  # MNIST fits each digit into a 20x20 box ...
CENTRE = IMAGE_SIDE // 2  # ... and puts its centre of mass at row 14, column 14 (its digits average 14.0, 14.0)
MIN_SIDE = 8  # smaller images hold no readable digit
MIN_CONTRAST = 0.15  # ink must differ from the background by this share of the grey scale, else the image is blank
NOISE_LEVEL = 0.15  # ink fainter than this share of the darkest ink is paper noise
COLUMNS = ["file", "label", "confidence", "problem"]
PREVIEW_SIDE = 160  # the figure shows originals at most this many pixels on a side
FIGURE_COLUMNS = 10


class ImageProblem(ValueError):
    """A file that cannot be predicted; the message is the reason."""


# --- Reading an image ---------------------------------------------------------------------------


def load_image(path: str | Path) -> Image.Image:
    """The fully decoded image; ImageProblem when it is no image, damaged, too small, too large or animated."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem(
            f"too large: over {Image.MAX_IMAGE_PIXELS:,} pixels, a possible decompression bomb") from None
    except UnidentifiedImageError:
        raise ImageProblem("not an image: Pillow cannot read this file") from None
    except OSError as error:
        if error.errno is not None:
            raise ImageProblem(f"unreadable: {error.strerror}") from None
        raise ImageProblem("truncated or corrupt: the image data ends early or is damaged") from None
    except (SyntaxError, EOFError, ValueError):
        raise ImageProblem("truncated or corrupt: the image data ends early or is damaged") from None
    if min(image.size) < MIN_SIDE:
        raise ImageProblem(f"too small: {image.width}x{image.height} pixels (need {MIN_SIDE} or more on a side)")
    if frames > 1:
        raise ImageProblem(f"several frames: {frames} (an animation or a multi-page file; give one image)")
    return image


def greyscale(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1] (0 black), a transparent background counted as white paper."""
    if image.mode.startswith("I"):  # 16-bit greyscale (I;16) or 32-bit integer
        return np.clip(np.asarray(image, dtype=np.float32) / 65535, 0, 1)
    if image.has_transparency_data:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


# --- MNIST's preprocessing ----------------------------------------------------------------------


def ink_of(grey: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] (1 the darkest ink, paper noise 0), whatever the background's shade."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    light_background = background > (grey.min() + grey.max()) / 2
    ink = np.clip(background - grey if light_background else grey - background, 0, None)
    if ink.max() < MIN_CONTRAST:
        raise ImageProblem("blank: no ink found")
    return np.clip((ink / ink.max() - NOISE_LEVEL) / (1 - NOISE_LEVEL), 0, 1)


def fit_box(ink: np.ndarray) -> np.ndarray:
    """The inked region, resized so that its longer side is 20 pixels (antialiased, aspect ratio kept)."""
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    region = ink[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    scale = BOX_SIDE / max(region.shape)
    size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    digit = np.clip(np.asarray(Image.fromarray(region).resize(size, Image.Resampling.LANCZOS)), 0, 1)
    return digit / digit.max()


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Row and column of the ink's centre of mass."""
    rows, columns = np.indices(image.shape)
    return float((rows * image).sum() / image.sum()), float((columns * image).sum() / image.sum())


def to_mnist(image: Image.Image) -> np.ndarray:
    """MNIST's form of an image's digit: (28, 28) float32 in [0, 1], light ink on black, centred by mass."""
    digit = fit_box(ink_of(greyscale(image)))
    row, column = centre_of_mass(digit)
    # Whole-pixel shift, as MNIST's, kept inside the field.
    top = min(max(math.floor(CENTRE - row + 0.5), 0), IMAGE_SIDE - digit.shape[0])
    left = min(max(math.floor(CENTRE - column + 0.5), 0), IMAGE_SIDE - digit.shape[1])
    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return field


# --- Predicting files ---------------------------------------------------------------------------


def image_files(path: str | Path) -> list[Path]:
    """One image file, or the files in a folder whose names are images' (sorted; no hidden files, no sub-folders)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{shown(path)}: no such file or folder")
    image_suffixes = set(Image.registered_extensions())
    files = sorted(entry for entry in path.iterdir()
                   if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in image_suffixes)
    if not files:
        raise ValueError(f"{shown(path)}: no image files in this folder (.png, .jpg, .gif, .bmp, .tif, ...)")
    return files


def _prepare(path: Path) -> tuple[Image.Image | None, np.ndarray | None, str]:
    """The original, its MNIST form and "" for a good file; what could be made and the problem for a bad one."""
    original = None
    try:
        original = load_image(path)
        return original, to_mnist(original), ""
    except ImageProblem as problem:
        return original, None, str(problem)


def predict_images(paths: Iterable[str | Path], run: Run) -> tuple[pd.DataFrame, list]:
    """Predict each file with the run: a file,label,confidence,problem row each, and (original, MNIST form) pairs."""
    paths = [Path(path) for path in paths]
    prepared = [_prepare(path) for path in paths]
    good = [index for index, (_, digit, _) in enumerate(prepared) if digit is not None]
    labels = pd.Series(pd.NA, index=range(len(paths)), dtype="Int64")
    confidences = pd.Series(np.nan, index=range(len(paths)))
    if good:
        from digits.evaluate import predict_run  # TensorFlow, loaded only when there is something to predict

        images = np.stack([prepared[index][1] for index in good])[..., np.newaxis]
        probabilities = predict_run(run, images)
        labels[good] = probabilities.argmax(axis=1)
        confidences[good] = probabilities.max(axis=1).astype(float).round(4)
    table = pd.DataFrame({"file": [path.name for path in paths], "label": labels, "confidence": confidences,
                          "problem": [problem for _, _, problem in prepared]})
    return table, [(original, digit) for original, digit, _ in prepared]


def write_predictions(table: pd.DataFrame, folder: Path) -> Path:
    """Write the table as predictions.csv in `folder`, atomically."""
    path = Path(folder) / "predictions.csv"
    write_frame_atomic(table[COLUMNS], path)
    return path


def format_table(table: pd.DataFrame) -> str:
    """The predictions as aligned text (names and problems left-aligned), confidence as a percentage."""
    shown_table = table[COLUMNS].astype(object).where(table[COLUMNS].notna(), "")
    shown_table["confidence"] = table["confidence"].map(lambda value: "" if pd.isna(value) else f"{value:.1%}")
    left = {column: f"{{:<{shown_table[column].str.len().max()}}}".format for column in ("file", "problem")}
    text = shown_table.to_string(index=False, justify="left", formatters=left)
    return "\n".join(line.rstrip() for line in text.splitlines())


def save_predictions(table: pd.DataFrame, pairs: list, run: Run) -> Path:
    """Write predictions.csv and predictions.png into a new folder of the run's; return the folder.

    Each call gets its own folder (<run>/predictions/<date and time>/), so earlier predictions are kept.
    """
    import matplotlib.pyplot as plt

    folder = run.folder / "predictions" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    while folder.exists():  # two calls within a second
        folder = folder.with_name(folder.name + "-again")
    folder.mkdir(parents=True)
    write_predictions(table, folder)
    figure = predictions_figure(pairs, table)
    with atomic_path(folder / "predictions.png") as temporary:
        figure.savefig(temporary, dpi=120)
    plt.close(figure)
    return folder


def _preview(image: Image.Image) -> np.ndarray:
    """The image in grey, at most PREVIEW_SIDE pixels on a side."""
    grey = Image.fromarray(greyscale(image))
    grey.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return np.asarray(grey)


def predictions_figure(pairs: list, table: pd.DataFrame) -> Figure:
    """Each file's original above what the model saw (light ink on black), titled with its prediction or problem."""
    columns = max(1, min(FIGURE_COLUMNS, len(pairs)))
    rows = max(1, math.ceil(len(pairs) / columns))
    figure, axes = plt.subplots(2 * rows, columns, figsize=(columns * 1.25, rows * 2.7), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for index, ((original, digit), row) in enumerate(zip(pairs, table.itertuples())):
        top, bottom = axes[2 * (index // columns), index % columns], axes[2 * (index // columns) + 1, index % columns]
        name = row.file if len(row.file) <= 16 else "…" + row.file[-15:]  # the end tells similar names apart
        top.set_title(name, fontsize=7)
        if original is not None:
            top.imshow(_preview(original), cmap="gray", vmin=0, vmax=1)
            top.axis("on")  # a frame shows the canvas and where the digit sits on it
            top.set(xticks=[], yticks=[])
            plt.setp(top.spines.values(), color="#BBBBBB")
        if digit is not None:
            bottom.imshow(digit, cmap="gray", vmin=0, vmax=1)
            bottom.set_title(f"{row.label} ({row.confidence:.0%})", fontsize=9)
        else:
            bottom.text(0.5, 0.5, row.problem.split(":")[0].replace(" ", "\n", 1), ha="center", va="center",
                        fontsize=7, color="#C44E52", transform=bottom.transAxes)
    figure.suptitle("The images as given (top) and as the model sees them (bottom: 28x28, light ink on black)",
                    fontsize=9)
    figure.tight_layout()
    return figure
