"""Benchmark: one full training run on the embedded MNIST, scored on its 10,000 test images.

    python bench/train_run.py --arch strided              # the default recipe
    python bench/train_run.py --arch strided --epochs 30
    python bench/train_run.py --arch baseline             # the original write-up's recipe
    python bench/train_run.py --epochs 2 --sample-size 10000   # a quick run

Run it from the project's folder after `make data`. It trains the run exactly as
`make all` would (digits.runs.resolve, digits.train.train_run) but into --out
(copy a run folder into models/ and the pipeline reuses it), then prints its
metrics with the test accuracy and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time

from digits import evaluate, runs, train
from digits.data import load_test, load_test_labels
from digits.runs import records


def main() -> None:
    """Parse arguments, train, evaluate on the test set, save and print the metrics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="strided")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sample-size", type=int, default=0)
    parser.add_argument("--out", default="bench/out")
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"],
                        help="the arithmetic of training (default: the machine's native one, digits.train)")
    arguments = parser.parse_args()
    started = time.perf_counter()
    run = runs.resolve({"arch": arguments.arch, "epochs": arguments.epochs, "seed": arguments.seed,
                        "sample_size": arguments.sample_size, "models_dir": arguments.out})
    train.train_run(run, precision=arguments.precision)
    test_images = load_test(run.data_dir / "test.csv")
    predicted = evaluate.predict_run(run, test_images).argmax(axis=1)
    labels = load_test_labels(run.data_dir, len(test_images))
    metrics = records.record_scores(run.folder, test_accuracy=evaluate.accuracy(labels, predicted),
                                    wall_seconds=round(time.perf_counter() - started, 1))
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
