"""Benchmark: where one training epoch's time goes, part by part, in the machine's training precision.

    python bench/train_profile.py [--arch strided] [--images 12800] [--rounds 3] [--precision float32]

Each part is timed as one pass over the same images, the parts alternating
within each round so that all see the same machine load; the table gives each
part's median, in seconds per epoch of the full training set (54,001 images):

- feed: the input pipeline alone (digits.train.batches), nothing computed;
- augmentation: the model's augmentation layers alone, in training mode;
- forward: the network without augmentation in training mode (batch statistics, dropout), no gradients;
- training step without augmentation: forward, backward and the Adam update;
- the same without batch normalisation (each convolution with a bias instead): the difference is what batch
  normalisation costs, forward and backward;
- the whole training step, as a run trains (augmentation in the model);
- after the epoch: measuring the batch-normalisation statistics and scoring the validation images.

Run it from the project's folder after `make data`.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from digits import runs
from digits.config import ARCHITECTURES, CALIBRATION_IMAGES, N_CLASSES, Conv
from digits.data import to_images
from digits.formats.mnist import load_mnist
from digits.model import augmentation_layers, build_model
from digits.train import batches, native_precision, new_model, one_hot, recalibrate_batch_norm

EPOCH_IMAGES = 54_001


def without_batch_norm(arch: str) -> None:
    """Register '<arch>-nobn': the same network with a bias in each convolution instead of batch normalisation."""
    ARCHITECTURES[f"{arch}-nobn"] = tuple(dataclasses.replace(layer, batch_norm=False) if isinstance(layer, Conv)
                                          else layer for layer in ARCHITECTURES[arch])


def timed(work: Callable[[], object]) -> float:
    """Seconds that `work()` takes."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    """Build each part, warm it up, then time the parts in turn for several rounds; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="strided", choices=ARCHITECTURES)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"], help="default: the machine's native one")
    arguments = parser.parse_args()
    mnist = load_mnist()
    images = to_images(mnist["train_images"][: arguments.images].reshape(-1, 784))
    targets = one_hot(mnist["train_labels"][: arguments.images] % N_CLASSES)
    # Timing only: the last 6,000 training images stand in for the validation split.
    validation = batches(to_images(mnist["train_images"][-6000:].reshape(-1, 784)),
                         one_hot(mnist["train_labels"][-6000:]), 1000)
    precision = arguments.precision or native_precision()
    plan = dataclasses.replace(runs.resolve({"arch": arguments.arch}).plan, precision=precision)
    without_batch_norm(arguments.arch)
    full = new_model(plan)
    plain = new_model(dataclasses.replace(plan, augment=False))
    no_norm = new_model(dataclasses.replace(plan, augment=False, arch=f"{arguments.arch}-nobn"))
    augment = keras.Sequential([keras.Input(images.shape[1:]), *augmentation_layers()])
    forward_model = build_model(arguments.arch, augment=False, precision=precision)
    augment_step = tf.function(lambda batch: augment(batch, training=True))
    forward_step = tf.function(lambda batch: forward_model(batch, training=True))
    feed = batches(images, targets, plan.batch_size)

    def each_batch(step: Callable) -> Callable[[], None]:
        return lambda: [step(batch) for batch, _ in feed]

    def after_epoch() -> None:
        recalibrate_batch_norm(full, images[:CALIBRATION_IMAGES])
        full.evaluate(validation, verbose=0)

    parts: dict[str, Callable[[], object]] = {
        "feed": each_batch(lambda batch: None),
        "augmentation": each_batch(augment_step),
        "forward": each_batch(forward_step),
        "training step without augmentation": lambda: plain.fit(feed, verbose=0),
        "the same without batch normalisation": lambda: no_norm.fit(feed, verbose=0),
        "training step (as a run trains)": lambda: full.fit(feed, verbose=0),
    }
    for work in parts.values():
        work()  # warm-up: tracing and compiling
    after_epoch()
    seconds: dict[str, list[float]] = {name: [] for name in [*parts, "after the epoch"]}
    scale = EPOCH_IMAGES / len(images)
    for round_number in range(1, arguments.rounds + 1):
        for name, work in parts.items():
            seconds[name].append(timed(work) * scale)
        seconds["after the epoch"].append(timed(after_epoch))
        print(f"round {round_number}: " + ", ".join(f"{name} {values[-1]:.1f} s" for name, values in seconds.items()),
              flush=True)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    whole = median["training step (as a run trains)"] + median["after the epoch"]
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "all"
    print(f"\n{arguments.arch}, {precision}, batch {plan.batch_size}, {threads} threads; seconds per epoch of "
          f"{EPOCH_IMAGES:,} images (median of {arguments.rounds} rounds)\n")
    print("| part | seconds per epoch | share of the epoch |\n|---|---|---|")
    derived = {
        "feed": median["feed"],
        "augmentation (alone)": median["augmentation"],
        "forward, training mode": median["forward"],
        "backward and update": median["training step without augmentation"] - median["forward"],
        "batch normalisation (part of forward and backward)":
            median["training step without augmentation"] - median["the same without batch normalisation"],
        "augmentation inside the step": median["training step (as a run trains)"]
            - median["training step without augmentation"],
        "training step (as a run trains)": median["training step (as a run trains)"],
        "after the epoch (statistics, validation)": median["after the epoch"],
        "epoch": whole,
    }
    for name, value in derived.items():
        print(f"| {name} | {value:.1f} | {value / whole:.0%} |")
    print(f"\nthroughput of the training step: {EPOCH_IMAGES / median['training step (as a run trains)']:.0f} img/s")


if __name__ == "__main__":
    main()
