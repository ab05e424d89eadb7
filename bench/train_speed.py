"""Benchmark: training throughput side by side, in float32 and in bfloat16, and the share of the machine's peak.

    python bench/train_speed.py [--arch strided] [--images 12800] [--rounds 5] [--bfloat16] [--xla] [--batch-size 256]

Training goes through the same input pipeline and model as a real run
(digits.train: batches, new_model with the plan's precision). Each round trains
every architecture (and, with --bfloat16, each again under Keras's
"mixed_bfloat16" policy: bfloat16 arithmetic, float32 weights) for one pass
over the same images, one after the other, so that all see the same machine
load. --xla adds each architecture without its augmentation layers (Keras
cannot compile them with XLA) twice: as it is, and compiled by XLA
(`jit_compile=True`; Keras refuses XLA once TensorFlow's op determinism is on,
which runs need, so that model is built first and trains without it).
--batch-size adds each architecture at another batch size (the same learning
rate: this measures speed, not accuracy). Prints images per second per round
and the medians, the training FLOPs per image counted from the network
(digits.config's description: the forward
pass's multiply-adds, times three for the forward and the two backward
products), and what share of the processor's peak that makes. The peak is
cores x clock (from /proc/cpuinfo) x FLOPs per cycle and core, given with
--flops-per-cycle (32 for AVX-512 float32 on a core with two 256-bit FMA units,
as on this machine's AMD EPYC; bfloat16's dot products do twice that). Run it
from the project's folder after `make data`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import statistics
import time
from pathlib import Path

import keras

from digits import runs
from digits.config import ARCHITECTURES, IMAGE_SIDE, N_CLASSES, Conv, Dense, MaxPool
from digits.data import to_images
from digits.formats.mnist import load_mnist
from digits.model import build_model
from digits.train import batches, new_model, one_hot


def training_flops_per_image(arch: str) -> int:
    """FLOPs to train on one image: 3 x 2 x the multiply-adds of the forward pass (convolutions and dense layers)."""
    side, channels, features, multiply_adds = IMAGE_SIDE, 1, None, 0
    for layer in ARCHITECTURES[arch]:
        if isinstance(layer, Conv):
            side = -(-side // layer.stride) if layer.padding == "same" else (side - layer.kernel) // layer.stride + 1
            multiply_adds += side * side * layer.kernel * layer.kernel * channels * layer.filters
            channels = layer.filters
        elif isinstance(layer, MaxPool):
            side //= 2
        elif isinstance(layer, Dense):
            inputs = features if features is not None else channels  # after flatten or global pooling
            multiply_adds += inputs * layer.units
            features = layer.units
        elif type(layer).__name__ == "Flatten":
            features = side * side * channels
    if features is None:
        raise ValueError(f"{arch}: no dense layer ends the network")
    return 3 * 2 * multiply_adds


def peak_gflops(flops_per_cycle: int) -> float:
    """Cores x clock x FLOPs per cycle and core, in GFLOP/s."""
    megahertz = float(re.search(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text()).group(1))
    return os.cpu_count() * megahertz / 1000 * flops_per_cycle


def main() -> None:
    """Alternate one training pass per architecture (and precision) for several rounds; print the throughput."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", action="append", choices=ARCHITECTURES, help="architectures (default: all)")
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bfloat16", action="store_true", help="also train each architecture in mixed bfloat16")
    parser.add_argument("--xla", action="store_true", help="also train each architecture without augmentation, plain and by XLA")
    parser.add_argument("--batch-size", type=int, action="append", default=[], help="also train at this batch size")
    parser.add_argument("--flops-per-cycle", type=int, default=32, help="float32 FLOPs per cycle and core")
    arguments = parser.parse_args()
    mnist = load_mnist()
    images = to_images(mnist["train_images"][: arguments.images].reshape(-1, 784))
    targets = one_hot(mnist["train_labels"][: arguments.images] % N_CLASSES)
    precisions = ["float32", "mixed_bfloat16"] if arguments.bfloat16 else ["float32"]
    models = {}
    for arch in (arguments.arch or ARCHITECTURES) if arguments.xla else []:
        plan = dataclasses.replace(runs.resolve({"arch": arch}).plan, augment=False)
        keras.utils.set_random_seed(plan.seed)  # before new_model turns op determinism on, which rules XLA out
        model = build_model(arch, augment=False)
        model.compile(optimizer=keras.optimizers.Adam(plan.learning_rate), loss="categorical_crossentropy",
                      jit_compile=True)
        model.fit(batches(images[:1024], targets[:1024], plan.batch_size), verbose=0)  # warm-up: compiling
        models[f"{arch}/f32/noaug/xla"] = (model, plan)
        model = new_model(plan)
        model.fit(batches(images[:1024], targets[:1024], plan.batch_size), verbose=0)
        models[f"{arch}/f32/noaug"] = (model, plan)
    for arch, batch_size in ((arch, size) for arch in arguments.arch or ARCHITECTURES
                             for size in [0, *arguments.batch_size]):
        for precision in precisions if not batch_size else ["float32"]:
            plan = dataclasses.replace(runs.resolve({"arch": arch}).plan, precision=precision)
            plan = dataclasses.replace(plan, batch_size=batch_size or plan.batch_size)
            model = new_model(plan)
            model.fit(batches(images[:1024], targets[:1024], plan.batch_size), verbose=0)  # warm-up
            name = f"{arch}/{'bf16' if precision != 'float32' else 'f32'}" + (f"/b{batch_size}" if batch_size else "")
            models[name] = (model, plan)
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for round_number in range(1, arguments.rounds + 1):
        for name, (model, plan) in models.items():
            started = time.perf_counter()
            model.fit(batches(images, targets, plan.batch_size), verbose=0)
            speeds[name].append(len(images) / (time.perf_counter() - started))
        print(f"round {round_number}: " + ", ".join(f"{name} {speeds[name][-1]:.0f}" for name in models) + " img/s",
              flush=True)
    peak = peak_gflops(arguments.flops_per_cycle)
    print(f"peak: {os.cpu_count()} cores x clock x {arguments.flops_per_cycle} FLOPs per cycle = {peak:.0f} GFLOP/s "
          f"in float32, {2 * peak:.0f} in bfloat16")
    for name, (_, plan) in models.items():
        median, flops = statistics.median(speeds[name]), training_flops_per_image(plan.arch)
        achieved = median * flops / 1e9
        share = achieved / (peak if plan.precision == "float32" else 2 * peak)
        print(f"{name:14s} median {median:6.0f} img/s (best {max(speeds[name]):.0f}); {flops / 1e6:.1f} MFLOP per "
              f"image: {achieved:.1f} GFLOP/s, {share:.1%} of the peak")


if __name__ == "__main__":
    main()
