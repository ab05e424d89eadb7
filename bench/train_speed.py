"""Benchmark: training throughput of the architectures, side by side in one run.

    python bench/train_speed.py [--images 12800] [--rounds 5]

Training goes through the same input pipeline as a real run (digits.train.batches).
Each round trains every architecture (with its own recipe: augmentation for
`strided`, none for `baseline`) for one pass over the same images, one after the
other, so that both see the same machine load. Prints images per second per
round, the median and the ratio to `baseline`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from digits.config import ARCHITECTURES, make_plan
from digits.data import load_mnist, to_images
from digits.train import batches, compile_model, one_hot
from digits.model import build_model


def main() -> None:
    """Alternate one training pass per architecture for several rounds; print the throughput."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    mnist = load_mnist()
    images = to_images(mnist["train_images"][: arguments.images].reshape(-1, 784))
    targets = one_hot(mnist["train_labels"][: arguments.images])
    models = {}
    for arch in ARCHITECTURES:
        plan = make_plan(arch)
        models[arch] = (build_model(arch, plan.augment), plan)
        compile_model(*models[arch])
        models[arch][0].fit(batches(images[:1024], targets[:1024], plan.batch_size), verbose=0)  # warm-up
    speeds: dict[str, list[float]] = {arch: [] for arch in ARCHITECTURES}
    for round_number in range(1, arguments.rounds + 1):
        for arch, (model, plan) in models.items():
            started = time.perf_counter()
            model.fit(batches(images, targets, plan.batch_size), verbose=0)
            speeds[arch].append(len(images) / (time.perf_counter() - started))
        print(f"round {round_number}: " + ", ".join(f"{arch} {speeds[arch][-1]:.0f} img/s" for arch in ARCHITECTURES),
              flush=True)
    baseline_median = statistics.median(speeds["baseline"])
    for arch in ARCHITECTURES:
        median = statistics.median(speeds[arch])
        print(f"{arch:8s} median {median:6.0f} img/s  (best {max(speeds[arch]):.0f})  "
              f"{median / baseline_median:.2f}x baseline")
    ratios = np.round(np.array(speeds["strided"]) / np.array(speeds["baseline"]), 2)
    print(f"per-round ratio strided/baseline: {ratios.tolist()}")


if __name__ == "__main__":
    main()
