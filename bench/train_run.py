"""Benchmark: one full training run on the embedded MNIST, scored on its 10,000 test images.

    python bench/train_run.py --arch strided              # the default recipe
    python bench/train_run.py --arch strided --epochs 30
    python bench/train_run.py --arch baseline             # the original write-up's recipe
    python bench/train_run.py --epochs 2 --sample-size 10000   # a quick run

Trains on the 60,000 MNIST training images, or the first --sample-size of them
(10% held out for validation, as the pipeline does), writes the run to
--out/<run name>/ in the pipeline's layout (copy it into models/ and the
pipeline reuses it), and prints its metrics with the test accuracy and the wall
time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from digits import runs
from digits.config import check_parameters, plan_of
from digits.data import load_mnist, split_train_validation, to_images


def main() -> None:
    """Parse arguments, train, evaluate on the test set, save and print the metrics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="strided")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sample-size", type=int, default=0)
    parser.add_argument("--out", default="bench/out")
    arguments = parser.parse_args()
    started = time.perf_counter()
    checked = check_parameters(arch=arguments.arch, epochs=arguments.epochs, seed=arguments.seed, batch_size=None,
                               sample_size=arguments.sample_size, validation_fraction=0.1, augment=None)
    parameters, plan = runs.resolved_parameters(checked), plan_of(checked)
    mnist = load_mnist()
    rows = arguments.sample_size or len(mnist["train_labels"])
    images = to_images(mnist["train_images"][:rows].reshape(-1, 784))
    labels = mnist["train_labels"][:rows].astype(np.int64)
    test_images, test_labels = to_images(mnist["test_images"].reshape(-1, 784)), mnist["test_labels"]
    train_index, validation_index = split_train_validation(labels, 0.1)
    run_dir = Path(arguments.out) / runs.run_name(parameters)
    runs.start_run(run_dir, parameters)
    result = runs.train_run(plan, images[train_index], labels[train_index],
                            images[validation_index], labels[validation_index], run_dir)
    runs.save_run(result, runs.run_metrics(run_dir, parameters, result, len(train_index), len(validation_index)),
                  run_dir)
    predictions = result.model.predict(test_images, batch_size=1000, verbose=0).argmax(axis=1)
    metrics = runs.record_scores(run_dir, test_accuracy=float(np.mean(predictions == test_labels)),
                                 wall_seconds=round(time.perf_counter() - started, 1))
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
