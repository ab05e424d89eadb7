"""Benchmark: validated loading of the 60,000-row train.csv (target: at most 2 seconds).

    make data && python bench/load_csv.py [data/train.csv] [repeats]

Prints the time of each load and the median; record results in bench/RESULTS.md.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time

import numpy as np

from digits.data import load_train


def main() -> None:
    """Load train.csv several times and print the timings."""
    path = sys.argv[1] if len(sys.argv) > 1 else "data/train.csv"
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        images, labels = load_train(path)
        seconds.append(time.perf_counter() - started)
    print(f"{path}: {len(images):,} rows, images {images.shape} {images.dtype}, labels {np.bincount(labels).tolist()}")
    print(f"machine: {platform.machine()}, {platform.python_version()}; seconds: "
          + ", ".join(f"{value:.2f}" for value in seconds) + f"; median {statistics.median(seconds):.2f}")


if __name__ == "__main__":
    main()
