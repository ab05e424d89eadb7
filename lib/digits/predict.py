"""Predict: the digits in your own images, prepared the way MNIST prepared its digits (digits.prepare).

`make predict IMAGES=folder` predicts a folder (or one file) with a run and
writes predictions.csv and predictions.png into a new folder of the run's. A
file that cannot be predicted (not an image, truncated, too small, ...) and an
image that holds no digit ("not a digit: blank", "... too much ink", ...) are
reported in the table, not predicted. The confidence is calibrated with the
run's temperature (digits.calibration); below the run's threshold the table says
"unsure" and names the two most likely digits.
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

from digits.plots import FIGURE_WIDTH
from digits.prepare import ImageProblem, NotADigit, greyscale, to_mnist
from digits.runs import Run, records
from digits.util.display import shown
from digits.util.files import atomic_path, write_frame_atomic

MIN_SIDE = 8  # smaller images hold no readable digit
COLUMNS = ["file", "label", "confidence", "unsure", "problem"]  # predictions.csv adds the run that predicted
PREVIEW_SIDE = 160  # the figure shows originals at most this many pixels on a side
# The most memory a decoded image may take (its width x height x bytes per pixel): larger ones are refused
# before they are decoded. A JPEG is decoded at a reduced size first, so phone photos of any size fit.
MEMORY_BUDGET = 128 * 2**20
WORKING_SIDE = 2048  # larger images are scaled down to this many pixels on their longer side before preparation
FIGURE_COLUMNS = 10


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
    """The original, its MNIST form and "" for a good file; what could be made and the problem for a bad one (for
    "not a digit", its MNIST form when it got that far)."""
    original = None
    try:
        original = load_image(path)
        return original, to_mnist(original), ""
    except NotADigit as problem:
        return original, problem.digit, str(problem)
    except ImageProblem as problem:
        return original, None, str(problem)


def predict_images(paths: Iterable[str | Path], run: Run) -> tuple[pd.DataFrame, list]:
    """Predict each file with the run: a file,label,confidence,unsure,problem row each (the confidence calibrated;
    unsure "4 or 9" below the run's threshold), and (original, MNIST form) pairs."""
    paths = [Path(path) for path in paths]
    prepared = [_prepare(path) for path in paths]
    good = [index for index, (_, digit, problem) in enumerate(prepared) if not problem]
    labels = pd.Series(pd.NA, index=range(len(paths)), dtype="Int64")
    confidences = pd.Series(np.nan, index=range(len(paths)))
    unsure = pd.Series("", index=range(len(paths)), dtype=object)
    if good:
        from digits.calibration import scale, verdict  # TensorFlow, loaded only when there is something to predict
        from digits.evaluate import predict_run, run_calibration

        images = np.stack([prepared[index][1] for index in good])[..., np.newaxis]
        calibration = run_calibration(run)
        probabilities = scale(predict_run(run, images), calibration.temperature)
        labels[good] = probabilities.argmax(axis=1)
        confidences[good] = probabilities.max(axis=1).astype(float).round(4)
        unsure[good] = [verdict(row, calibration.threshold).removeprefix("unsure: ") for row in probabilities]
    table = pd.DataFrame({"file": [path.name for path in paths], "label": labels, "confidence": confidences,
                          "unsure": unsure, "problem": [problem for _, _, problem in prepared]})
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
    left = {column: f"{{:<{shown_table[column].str.len().max()}}}".format for column in ("file", "unsure", "problem")}
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


def _short(problem: str) -> str:
    """A problem in two short lines: "not a digit" and its reason's first words, or the kind of bad file."""
    kind, _, reason = problem.partition(": ")
    if kind == "not a digit":
        return f"not a digit:\n{reason.split(' (')[0]}"
    return kind.replace(" ", "\n", 1)


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
        if digit is not None:  # a prediction, or what a "not a digit" looked like in MNIST's form
            bottom.imshow(digit, cmap="gray", vmin=0, vmax=1)
        if not row.problem:
            bottom.set_title(f"unsure: {row.unsure}" if row.unsure else f"{row.label} ({row.confidence:.0%})",
                             fontsize=8 if row.unsure else 9, color="#C77C02" if row.unsure else "black")
        elif digit is not None:
            bottom.set_title(_short(row.problem), fontsize=7, color="#C44E52")
        else:
            bottom.text(0.5, 0.5, _short(row.problem), ha="center", va="center", fontsize=7, color="#C44E52",
                        transform=bottom.transAxes)
    quick = records.is_quick(records.read_metrics(run.folder))
    title = (f"Run {run.name}{' (a quick run: its answers are rough)' if quick else ''}. "
             "The images as given (top) and as the model sees them (bottom: 28x28, light ink on black).")
    width_in_characters = int(figure.get_figwidth() * 72 / 9 * 1.6)  # about what a 9-point line holds
    figure.suptitle("\n".join(textwrap.wrap(title, width_in_characters)), fontsize=9,
                    color="#C44E52" if quick else "black")
    figure.tight_layout()
    return figure
