"""Write data/samples/: ten MNIST test digits redrawn as dark ink on white, as a person's scanned digits look.

    python bench/make_samples.py

The first test digit of each class, cropped to its ink, enlarged smoothly to a
box of the given size and placed off-centre on a canvas of the given size; two
are pen strokes on a transparent background. The files are committed; this
script shows how they were made.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digits.formats.mnist import load_mnist
from digits.util.paths import project_root

# digit: (canvas width, canvas height, longer side of the digit, left, top, transparent background)
LAYOUTS = {
    0: (60, 60, 44, 8, 8, False),
    1: (120, 90, 60, 12, 10, False),
    2: (200, 140, 100, 80, 30, False),
    3: (80, 100, 50, 6, 40, False),
    4: (140, 140, 70, 60, 12, True),
    5: (90, 60, 40, 45, 12, False),
    6: (160, 120, 90, 20, 20, False),
    7: (100, 100, 80, 12, 6, False),
    8: (64, 96, 48, 8, 34, True),
    9: (180, 100, 70, 100, 20, False),
}
PEN = 30  # grey level of the ink on white paper


def sample(digit: np.ndarray, width: int, height: int, side: int, left: int, top: int,
           transparent: bool) -> Image.Image:
    """The MNIST digit enlarged to `side` pixels (longer side) at (left, top) on a white or transparent canvas."""
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    region = Image.fromarray(digit[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1])
    scale = side / max(region.size)
    ink = Image.new("L", (width, height))
    ink.paste(region.resize((round(region.width * scale), round(region.height * scale)), Image.Resampling.BICUBIC),
              (left, top))
    if transparent:
        return Image.merge("LA", (Image.new("L", ink.size, PEN), ink))
    return Image.fromarray((255 - np.asarray(ink, dtype=np.float64) / 255 * (255 - PEN)).round().astype(np.uint8))


def main() -> None:
    """Write one sample per digit into data/samples/."""
    mnist = load_mnist()
    folder = project_root() / "data" / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    for label, layout in LAYOUTS.items():
        index = int(np.flatnonzero(mnist["test_labels"] == label)[0])
        sample(mnist["test_images"][index], *layout).save(folder / f"digit-{label}.png", optimize=True)
        print(f"digit-{label}.png: MNIST test image {index}, {layout[0]}x{layout[1]} pixels")


if __name__ == "__main__":
    main()
