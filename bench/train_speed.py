"""Benchmark: training throughput of the architectures, side by side in one run.

    python bench/train_speed.py [--images 12800] [--rounds 5] [--bfloat16]

Training goes through the same input pipeline as a real run (digits.train.batches).
Each round trains every architecture (with its own recipe: augmentation for
`strided` and `wide`, none for `baseline`) for one pass over the same images, one
after the other, so that all see the same machine load. With --bfloat16 each
architecture also trains under Keras's "mixed_bfloat16" policy (bfloat16
arithmetic, float32 weights), to see what a CPU with native bfloat16 support
gains. Prints images per second per round, the median and the ratio to
`baseline`. Run it from the project's folder after `make data`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras

from digits import runs
from digits.config import ARCHITECTURES
from digits.data import to_images
from digits.mnist import load_mnist
from digits.train import batches, new_model, one_hot


def main() -> None:
    """Alternate one training pass per architecture (and precision) for several rounds; print the throughput."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bfloat16", action="store_true", help="also train each architecture in mixed bfloat16")
    arguments = parser.parse_args()
    mnist = load_mnist()
    images = to_images(mnist["train_images"][: arguments.images].reshape(-1, 784))
    targets = one_hot(mnist["train_labels"][: arguments.images])
    policies = ["float32", "mixed_bfloat16"] if arguments.bfloat16 else ["float32"]
    models = {}
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        for arch in ARCHITECTURES:
            plan = runs.resolve({"arch": arch}).plan
            model = new_model(plan)
            model.fit(batches(images[:1024], targets[:1024], plan.batch_size), verbose=0)  # warm-up
            models[arch if policy == "float32" else f"{arch}/bf16"] = (model, plan)
    keras.mixed_precision.set_global_policy("float32")
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for round_number in range(1, arguments.rounds + 1):
        for name, (model, plan) in models.items():
            started = time.perf_counter()
            model.fit(batches(images, targets, plan.batch_size), verbose=0)
            speeds[name].append(len(images) / (time.perf_counter() - started))
        print(f"round {round_number}: " + ", ".join(f"{name} {speeds[name][-1]:.0f}" for name in models) + " img/s",
              flush=True)
    baseline_median = statistics.median(speeds["baseline"])
    for name in models:
        median = statistics.median(speeds[name])
        print(f"{name:14s} median {median:6.0f} img/s  (best {max(speeds[name]):.0f})  "
              f"{median / baseline_median:.2f}x baseline")


if __name__ == "__main__":
    main()
