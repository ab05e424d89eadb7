"""Benchmark: a run's accuracy on MNIST test digits redrawn as dark ink on paper, against the digits as MNIST has them.

    python bench/predict_redrawn.py --run strided-e15-s42 [--models-dir models] [--images 2000] [--seed 0]

Each of the first N MNIST test digits is redrawn on a canvas of random size
(40..160 pixels a side), scaled to 0.5..1.0 of the canvas, at a random place,
in a random pen on random paper; some blurred, some with paper noise, some on a
transparent background. They are written as PNG files and read back through
digits.predict (load_image, to_mnist), as `make predict` reads a user's images.
Prints the accuracy on the digits as MNIST has them, on the same digits passed
through to_mnist, on the redrawn ones, and on the redrawn ones merely squashed
to 28x28 (as they are, and inverted) to show what the preprocessing is worth.
Target: redrawn within one point of MNIST's form.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from digits.evaluate import accuracy, predict_run
from digits.formats.mnist import load_mnist
from digits.predict import greyscale, load_image, to_mnist
from digits.runs import catalog


def redraw(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 28x28 MNIST digit as dark ink on paper, at a random size and place on a canvas of random size."""
    rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    region = Image.fromarray(digit[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1])
    width, height = (int(side) for side in rng.integers(40, 161, size=2))
    scale = rng.uniform(0.5, 1.0) * min(width, height) / max(region.size)
    size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    canvas = Image.new("L", (width, height))
    canvas.paste(region.resize(size, Image.Resampling.BICUBIC),
                 (int(rng.integers(0, width - size[0] + 1)), int(rng.integers(0, height - size[1] + 1))))
    if rng.random() < 0.3:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    ink = np.asarray(canvas, dtype=np.float64) / 255
    pen, paper = rng.uniform(0, 60), rng.uniform(190, 255)
    if rng.random() < 0.1:  # pen strokes on a transparent background
        alpha = (ink * 255).round().astype(np.uint8)
        return Image.fromarray(np.dstack([np.full_like(alpha, round(pen))] * 3 + [alpha]))
    grey = paper - ink * (paper - pen)
    if rng.random() < 0.5:
        grey = grey + rng.normal(0, rng.uniform(1, 6), grey.shape)
    return Image.fromarray(np.clip(grey, 0, 255).round().astype(np.uint8))


def squashed(image: Image.Image) -> np.ndarray:
    """The image in grey, resized to 28x28 with no other preparation (0 black)."""
    return np.asarray(Image.fromarray(greyscale(image)).resize((28, 28), Image.Resampling.LANCZOS))


def main() -> None:
    """Redraw, write, read back and predict N test digits; print the accuracies side by side."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished run (or ensemble) in the models folder")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    try:
        run = catalog.find(arguments.run, "data", arguments.models_dir)  # finished and undamaged
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    mnist = load_mnist()
    digits, labels = mnist["test_images"][: arguments.images], mnist["test_labels"][: arguments.images]
    rng = np.random.default_rng(arguments.seed)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{index:05d}.png" for index in range(len(digits))]
        for digit, path in zip(digits, paths):
            redraw(digit, rng).save(path)
        kilobytes = sum(path.stat().st_size for path in paths) / 1024
        drawn = time.perf_counter()
        originals = [load_image(path) for path in paths]
        redrawn = np.stack([to_mnist(image) for image in originals])
    prepared = time.perf_counter()
    mnist_form = digits.astype(np.float32) / 255
    via_to_mnist = np.stack([to_mnist(Image.fromarray(digit)) for digit in digits])
    squashed_images = np.stack([squashed(image) for image in originals])
    sets = {"MNIST form, as given": mnist_form, "MNIST form, via to_mnist": via_to_mnist,
            "redrawn, via PNG files": redrawn, "redrawn, only squashed": squashed_images,
            "redrawn, inverted+squashed": 1 - squashed_images}
    predicted = predict_run(run, np.concatenate(list(sets.values()))[..., np.newaxis]).argmax(axis=1)
    results = {name: accuracy(labels, part) for name, part in zip(sets, np.split(predicted, len(sets)))}
    finished = time.perf_counter()
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"run: {run.name}; {len(digits)} MNIST test digits (seed {arguments.seed}); "
          f"redrawn PNGs {kilobytes / len(digits):.1f} KB on average")
    for name, score in results.items():
        print(f"  {name:26s} {score:7.2%}  ({round((1 - score) * len(digits))} mistakes)")
    gap = (results["redrawn, via PNG files"] - results["MNIST form, as given"]) * 100
    print(f"redrawn minus MNIST form: {gap:+.2f} points (target: within 1 point)")
    print(f"seconds: load, redraw and write {drawn - started:.1f}, read and prepare {prepared - drawn:.1f}, "
          f"predict {finished - prepared:.1f}, total {finished - started:.1f}")


if __name__ == "__main__":
    main()
