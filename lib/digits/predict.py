"""Predict: the digits in your own images, prepared the way MNIST prepared its digits.

MNIST's digits are light ink on black, fitted into a 20x20 box (keeping their
aspect ratio) and placed in a 28x28 field so that their centre of mass lies at
its centre. A photo or drawing is brought into that form (`to_mnist`) before the
model sees it; a file that cannot be (not an image, truncated, blank, ...) is
reported in the table, not predicted.

The preparation, step by step. `to_mnist` here and `prepare` in
web/digits-pad.js (the report's "Try it" page) follow these steps, with the
constants of PREPARATION, and the tests hold them to the same images:

1. Grey levels in [0, 1] (0 black); a transparent background counts as white paper.
2. The background is the median grey of the border pixels; on a light background the ink
   is background minus grey, on a dark one grey minus background (negative values are 0).
3. Ink weaker than MIN_CONTRAST everywhere: the image is blank. Otherwise divide by the
   strongest ink, then drop paper noise: (ink - NOISE_LEVEL) / (1 - NOISE_LEVEL), clipped to [0, 1].
4. Crop to the rows and columns that hold any ink.
5. Resize so that the longer side is BOX_SIDE pixels, keeping the aspect ratio (each side at
   least one pixel, rounded half to even), with Pillow's Lanczos filter on float32 values;
   clip to [0, 1] and divide by the maximum.
6. Place it in a 28x28 field at the whole-pixel offset that puts its centre of mass nearest
   to (CENTRE, CENTRE): floor(CENTRE - centre + 0.5) on each axis, kept inside the field.

`make predict IMAGES=folder` predicts a folder (or one file) with a run and
writes predictions.csv and predictions.png into a new folder of the run's.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageOps, UnidentifiedImageError

from digits.config import IMAGE_SIDE
from digits.plots import FIGURE_WIDTH
from digits.runs import Run, records
from digits.util.display import shown
from digits.util.files import atomic_path, write_frame_atomic

BOX_SIDE = 20  # MNIST fits each digit into a 20x20 box ...
CENTRE = IMAGE_SIDE // 2  # ... and puts its centre of mass at row 14, column 14 (its digits average 14.0, 14.0)
MIN_SIDE = 8  # smaller images hold no readable digit
MIN_CONTRAST = 0.15  # ink must differ from the background by this share of the grey scale, else the image is blank
NOISE_LEVEL = 0.15  # ink fainter than this share of the darkest ink is paper noise
# The constants of the preparation, as the browser's copy of it (web/digits-pad.js) receives them.
PREPARATION = {"box_side": BOX_SIDE, "centre": CENTRE, "min_contrast": MIN_CONTRAST, "noise_level": NOISE_LEVEL}
COLUMNS = ["file", "label", "confidence", "problem"]  # predictions.csv adds the run that predicted
PREVIEW_SIDE = 160  # the figure shows originals at most this many pixels on a side
# The most memory a decoded image may take (its width x height x bytes per pixel): larger ones are refused
# before they are decoded. A JPEG is decoded at a reduced size first, so phone photos of any size fit.
MEMORY_BUDGET = 128 * 2**20
WORKING_SIDE = 2048  # larger images are scaled down to this many pixels on their longer side before preparation
FIGURE_COLUMNS = 10


class ImageProblem(ValueError):
    """A file that cannot be predicted; the message is the reason."""


# --- Reading an image ---------------------------------------------------------------------------


def _decoded_bytes(image: Image.Image) -> int:
    """The memory the decoded image takes, from its header."""
    bits = {"1": 1, "L": 8, "P": 8, "LA": 16, "I;16": 16, "RGB": 24, "YCbCr": 24, "LAB": 24, "HSV": 24}
    return image.width * image.height * bits.get(image.mode, 32) // 8


def load_image(path: str | Path) -> Image.Image:
    """The decoded image, turned upright as its EXIF orientation says (phone photos) and at most WORKING_SIDE
    pixels on a side; ImageProblem when it is no image, damaged, too small, too large or animated."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                image.draft(image.mode, (WORKING_SIDE, WORKING_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 size
                if _decoded_bytes(image) > MEMORY_BUDGET:
                    raise ImageProblem(
                        f"too large: {image.width}x{image.height} pixels ({image.mode}) take "
                        f"{_decoded_bytes(image) / 2**20:,.0f} MB decoded, over the {MEMORY_BUDGET // 2**20} MB "
                        f"budget; scale it down first")
                image.load()
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.LANCZOS)
    except ImageProblem:
        raise
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
    if min(upright.size) < MIN_SIDE:
        raise ImageProblem(f"too small: {upright.width}x{upright.height} pixels (need {MIN_SIDE} or more on a side)")
    if frames > 1:
        raise ImageProblem(f"several frames: {frames} (an animation or a multi-page file; give one image)")
    return upright


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
    if path.is_symlink() and not path.exists():
        raise ValueError(f"{shown(path)}: a symbolic link to nothing (or to itself)")
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
    write_frame_atomic(table[[*COLUMNS, *(["run"] if "run" in table else [])]], path)
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
    write_predictions(table.assign(run=run.name), folder)
    figure = predictions_figure(pairs, table, run)
    with atomic_path(folder / "predictions.png") as temporary:
        figure.savefig(temporary, dpi=120)
    plt.close(figure)
    return folder


def _preview(image: Image.Image) -> np.ndarray:
    """The image in grey, at most PREVIEW_SIDE pixels on a side."""
    grey = Image.fromarray(greyscale(image))
    grey.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return np.asarray(grey)


def predictions_figure(pairs: list, table: pd.DataFrame, run: Run) -> Figure:
    """Each file's original above what the model saw (light ink on black), titled with its prediction or problem;
    the title names the run, and says so when it is a quick run."""
    columns = max(1, min(FIGURE_COLUMNS, len(pairs)))
    rows = max(1, math.ceil(len(pairs) / columns))
    side = min(1.25, FIGURE_WIDTH / columns)
    figure, axes = plt.subplots(2 * rows, columns, figsize=(max(columns * side, 4.5), rows * 2.7), squeeze=False)
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
    quick = records.is_quick(records.read_metrics(run.folder))
    title = (f"Run {run.name}{' (a quick run: its answers are rough)' if quick else ''}. "
             "The images as given (top) and as the model sees them (bottom: 28x28, light ink on black).")
    width_in_characters = int(figure.get_figwidth() * 72 / 9 * 1.6)  # about what a 9-point line holds
    figure.suptitle("\n".join(textwrap.wrap(title, width_in_characters)), fontsize=9,
                    color="#C44E52" if quick else "black")
    figure.tight_layout()
    return figure
