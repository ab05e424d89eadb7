"""Prepare: an image's digit brought into MNIST's form, and the checks that say it is no digit at all.

MNIST's digits are light ink on black, fitted into a 20x20 box (keeping their
aspect ratio) and placed in a 28x28 field so that their centre of mass lies at
its centre. A photo or a drawing is brought into that form (`to_mnist`) before
the model sees it. Before the model, too, an image that cannot hold one digit
is refused as "not a digit", with the reason; the bounds are measured on
MNIST's 60,000 training images, brought into this form the same way
(docs/how-it-works.md).

The preparation, step by step. `to_mnist` here and `prepare` in
report/web/digits-pad.js (Try it and the notebook's widget) follow these steps,
with the constants of PREPARATION, and the tests hold them to the same images:

1. Grey levels in [0, 1] (0 black); a transparent background counts as white paper.
2. The paper is light when the median grey of the border pixels is above the middle of the darkest
   and lightest grey, else dark. Its shade at each pixel evens out uneven light (a shadow, a gradient):
   on light paper the grey's closing (the largest grey within a square window of radius PAPER_RADIUS
   times the shorter side, clipped at the image's edges, then the smallest of those within the same
   window), on dark paper its opening (smallest, then largest), so that strokes thinner than the
   window vanish and what is left is paper; but no further than MAX_SHADOW from the border's median
   (a larger dark area is ink, not shadow). Ink is paper minus grey on light paper, grey minus paper
   on dark paper (negative values are 0).
3. Ink weaker than MIN_CONTRAST everywhere: not a digit (blank). Otherwise divide by the strongest ink,
   then drop paper noise: (ink - NOISE_LEVEL) / (1 - NOISE_LEVEL), clipped to [0, 1].
4. Ink on all four edges of the image: not a digit (a filled pad, a frame, the table around the paper).
5. Crop to the rows and columns that hold any ink.
6. Resize so that the longer side is BOX_SIDE pixels, keeping the aspect ratio (each side at
   least one pixel, rounded half to even), with Pillow's Lanczos filter on float32 values;
   clip to [0, 1] and divide by the maximum.
7. Place it in a 28x28 field at the whole-pixel offset that puts its centre of mass nearest
   to (CENTRE, CENTRE): floor(CENTRE - centre + 0.5) on each axis, kept inside the field.
8. More than MAX_INK of the field's pixels at least MARK_LEVEL: not a digit (too much ink: a scribble,
   a filled area; counting pixels, not summing them, since step 2 takes part of a large dark area for shadow).
9. Marks are the 8-connected groups of field pixels of at least MARK_LEVEL holding at least MARK_SHARE
   of those pixels. Joined nearest first (from the largest), a gap of more than FAR_APART pixels
   (between the nearest pixel centres of two marks) left to bridge: not a digit (marks far apart).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from digits.config import IMAGE_SIDE

BOX_SIDE = 20  # MNIST fits each digit into a 20x20 box ...
CENTRE = IMAGE_SIDE // 2  # ... and puts its centre of mass at row 14, column 14 (its digits average 14.0, 14.0)
MIN_CONTRAST = 0.15  # ink must differ from the paper by this share of the grey scale, else the image is blank
NOISE_LEVEL = 0.15  # ink fainter than this share of the darkest ink is paper noise
# The paper's window: wider than any pen stroke (the pad's are 1/14 of its side), narrow enough that a
# gradient's error at the image's edges (the slope times the radius) stays below the noise level.
PAPER_RADIUS = 0.15
MAX_SHADOW = 0.35  # the darkest shadow taken for paper, as a share of the grey scale
# The bounds of a digit, measured on MNIST's 60,000 training images in this form (docs/how-it-works.md).
MARK_LEVEL = 0.2  # inked pixels hold at least a fifth of the strongest ink
MAX_INK = 0.42  # the largest share of the field inked: MNIST's training images reach 0.403, 99.99% of them 0.357
MARK_SHARE = 0.1  # a mark holds at least a tenth of the inked pixels (smaller specks are noise)
FAR_APART = 11.0  # pixels between marks: MNIST's training images reach 10.8, 99.99% of them 7.1
# The constants of the preparation, as the browser's copy of it (web/digits-pad.js) receives them, and the
# reasons it shows.
REASONS = {
    "blank": "not a digit: blank (no ink found)",
    "edges": "not a digit: ink on every edge (leave some paper around one digit)",
    "ink": "not a digit: too much ink (a scribble or a filled area)",
    "marks": "not a digit: marks far apart (one digit, please)",
}
PREPARATION = {"box_side": BOX_SIDE, "centre": CENTRE, "min_contrast": MIN_CONTRAST, "noise_level": NOISE_LEVEL,
               "paper_radius": PAPER_RADIUS, "max_shadow": MAX_SHADOW, "max_ink": MAX_INK,
               "mark_level": MARK_LEVEL, "mark_share": MARK_SHARE, "far_apart": FAR_APART, "reasons": REASONS}


class ImageProblem(ValueError):
    """A file that cannot be predicted; the message is the reason."""


class NotADigit(ImageProblem):
    """An image that holds no digit to read; `digit` is its MNIST form where it got that far, else None."""

    def __init__(self, reason: str, digit: np.ndarray | None = None) -> None:
        super().__init__(REASONS[reason])
        self.reason, self.digit = reason, digit


def greyscale(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1] (0 black), a transparent background counted as white paper."""
    if image.mode.startswith("I"):  # 16-bit greyscale (I;16) or 32-bit integer
        return np.clip(np.asarray(image, dtype=np.float32) / 65535, 0, 1)
    if image.has_transparency_data:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def paper_shade(grey: np.ndarray, light: bool, border: np.float32) -> np.ndarray:
    """The paper's grey at each pixel: the closing (light paper) or opening (dark) of the grey, within MAX_SHADOW
    of the border's median."""
    side = 2 * max(1, round(PAPER_RADIUS * min(grey.shape))) + 1
    # mode "nearest" repeats the edge pixels, which for a largest or smallest value is a window clipped at the edge.
    if light:
        return np.maximum(ndimage.grey_closing(grey, size=(side, side), mode="nearest"), border - MAX_SHADOW)
    return np.minimum(ndimage.grey_opening(grey, size=(side, side), mode="nearest"), border + MAX_SHADOW)


def ink_of(grey: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] (1 the darkest ink, paper noise 0), whatever the paper's shade and light."""
    border = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    light = bool(border > (grey.min() + grey.max()) / 2)
    paper = paper_shade(grey, light, border)
    ink = np.clip(paper - grey if light else grey - paper, 0, None)
    if ink.max() < MIN_CONTRAST:
        raise NotADigit("blank")
    return np.clip((ink / ink.max() - NOISE_LEVEL) / (1 - NOISE_LEVEL), 0, 1)


def on_every_edge(ink: np.ndarray) -> bool:
    """True when ink reaches all four edges of the image."""
    return bool(ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any())


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


def placed(digit: np.ndarray) -> np.ndarray:
    """The fitted digit in a 28x28 field, its centre of mass at (CENTRE, CENTRE) by a whole-pixel shift (as MNIST's),
    kept inside the field."""
    row, column = centre_of_mass(digit)
    top = min(max(math.floor(CENTRE - row + 0.5), 0), IMAGE_SIDE - digit.shape[0])
    left = min(max(math.floor(CENTRE - column + 0.5), 0), IMAGE_SIDE - digit.shape[1])
    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return field


def marks_gap(field: np.ndarray) -> float:
    """The widest gap, in pixels, left when the field's marks are joined nearest first (0 for one mark)."""
    labels, count = ndimage.label(field >= MARK_LEVEL, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    marks = [np.argwhere(labels == index + 1) for index in np.flatnonzero(sizes >= MARK_SHARE * sizes.sum())]
    marks.sort(key=len, reverse=True)  # the largest first; ties keep their order in the field, row by row
    joined, rest, widest = marks[:1], marks[1:], 0
    while rest:  # Prim's minimum spanning tree; squared distances are whole numbers, the same in the browser
        gaps = [min(int(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2).min()) for a in joined) for b in rest]
        nearest = int(np.argmin(gaps))
        widest = max(widest, gaps[nearest])
        joined.append(rest.pop(nearest))
    return math.sqrt(widest)


def check_field(field: np.ndarray) -> str | None:
    """The reason a prepared 28x28 field holds no digit ("ink" or "marks"), or None."""
    if (field >= MARK_LEVEL).mean() > MAX_INK:
        return "ink"
    return "marks" if marks_gap(field) > FAR_APART else None


def to_mnist(image: Image.Image) -> np.ndarray:
    """MNIST's form of an image's digit: (28, 28) float32 in [0, 1], light ink on black, centred by mass; NotADigit
    (an ImageProblem) with the reason when it holds none."""
    ink = ink_of(greyscale(image))
    if on_every_edge(ink):
        raise NotADigit("edges")
    field = placed(fit_box(ink))
    reason = check_field(field)
    if reason:
        raise NotADigit(reason, field)
    return field
