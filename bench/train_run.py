"""Benchmark: one full training run on the embedded MNIST, scored on its 10,000 test images.

    python bench/train_run.py --arch strided              # the default recipe
    python bench/train_run.py --arch strided --epochs 30
    python bench/train_run.py --arch seed                 # the original write-up's recipe

Trains on the 60,000 MNIST training images (10% held out for validation, as the
pipeline does), writes model, history and metrics to --out, and prints the metrics.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from digits.data import load_mnist, to_images
from digits.train import make_plan, run_metrics, save_run, split_train_validation, train_model


def main() -> None:
    """Parse arguments, train, evaluate on the test set, save and print the metrics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="strided")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="bench/out")
    arguments = parser.parse_args()
    started = time.perf_counter()
    mnist = load_mnist()
    images, labels = to_images(mnist["train_images"].reshape(-1, 784)), mnist["train_labels"].astype(np.int64)
    test_images, test_labels = to_images(mnist["test_images"].reshape(-1, 784)), mnist["test_labels"]
    train_index, validation_index = split_train_validation(labels, 0.1, arguments.seed)
    plan = make_plan(arguments.arch, epochs=arguments.epochs, seed=arguments.seed)
    out_dir = f"{arguments.out}/{arguments.arch}-{plan.epochs}"
    result = train_model(plan, images[train_index], labels[train_index],
                         images[validation_index], labels[validation_index], out_dir)
    predictions = result.model.predict(test_images, batch_size=1000, verbose=0).argmax(axis=1)
    test_accuracy = float(np.mean(predictions == test_labels))
    metrics = run_metrics(plan, result, len(train_index), len(validation_index), test_accuracy,
                          wall_seconds=round(time.perf_counter() - started, 1))
    save_run(result, metrics, out_dir)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
