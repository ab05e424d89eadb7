"""Evaluate: predictions, accuracy, per-class scores, confusion matrix and the mistakes."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from digits.config import N_CLASSES, RECIPES
from digits.runs import finished_runs


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities, shape (n, 10)."""
    return model.predict(images, batch_size=batch_size, verbose=0)


def accuracy(true_labels: np.ndarray, predicted_labels: np.ndarray) -> float:
    """Fraction of labels predicted right."""
    if len(true_labels) != len(predicted_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions")
    return float(np.mean(np.asarray(true_labels) == np.asarray(predicted_labels)))


def confusion_matrix(true_labels: np.ndarray, predicted_labels: np.ndarray) -> np.ndarray:
    """Counts (10, 10): row = true digit, column = predicted digit."""
    pairs = np.asarray(true_labels) * N_CLASSES + np.asarray(predicted_labels)
    return np.bincount(pairs, minlength=N_CLASSES**2).reshape(N_CLASSES, N_CLASSES)


def per_class_scores(true_labels: np.ndarray, predicted_labels: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support of each digit."""
    matrix = confusion_matrix(true_labels, predicted_labels)
    hits = np.diag(matrix).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(hits / matrix.sum(axis=0))
        recall = np.nan_to_num(hits / matrix.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": matrix.sum(axis=1)},
        index=pd.RangeIndex(N_CLASSES, name="digit"),
    )


def misclassified(true_labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """Every wrong prediction: row index, true label, predicted label, confidence; most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(true_labels))
    table = pd.DataFrame({
        "index": wrong,
        "true": np.asarray(true_labels)[wrong],
        "predicted": predicted[wrong],
        "confidence": probabilities[wrong, predicted[wrong]],
    })
    return table.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)


def majority_class_accuracy(train_labels: np.ndarray, eval_labels: np.ndarray) -> float:
    """Accuracy of always guessing the most frequent training digit: the floor any model must beat."""
    majority = np.bincount(train_labels, minlength=N_CLASSES).argmax()
    return float(np.mean(np.asarray(eval_labels) == majority))


# The original write-up's scores: 10 epochs of the `baseline` network.
ORIGINAL_VALIDATION_ACCURACY = 0.989
ORIGINAL_KAGGLE_SCORE = 0.98978
# A run this far (or more) below its recipe's full-data validation accuracy is called a quick run.
WEAK_RUN_MARGIN = 0.01


def weak_run_note(metrics: dict) -> str:
    """One plain sentence when the run's validation accuracy is far below its recipe's full-data result, else ""."""
    expected = RECIPES[metrics["arch"]].full_data_val_accuracy
    if metrics["val_accuracy"] >= expected - WEAK_RUN_MARGIN:
        return ""
    return (f"This is a quick run, not a result: its validation accuracy of {metrics['val_accuracy']:.2%} is far "
            f"below the {expected:.1%} that the {metrics['arch']} recipe reaches on all the training images "
            f"(this run: {metrics['n_train']:,} images, {metrics['epochs']} epoch"
            f"{'s' if metrics['epochs'] != 1 else ''}).")


def results_table(metrics: dict, models_dir: Path, train_labels: np.ndarray, validation_labels: np.ndarray,
                  test_labels: np.ndarray | None) -> pd.DataFrame:
    """This run against baselines: the latest `baseline` run (if any), the original write-up, the majority class."""
    rows = [{"model": f"{metrics['run']} (this run)", "validation accuracy": metrics["val_accuracy"],
             "test accuracy": metrics.get("test_accuracy"), "epochs": metrics["epochs"]}]
    baseline = next((run for run in finished_runs(Path(models_dir)) if run["arch"] == "baseline"), None)
    if metrics["arch"] != "baseline" and baseline:
        rows.append({"model": f"{baseline['run']} (baseline network)", "validation accuracy": baseline["val_accuracy"],
                     "test accuracy": baseline.get("test_accuracy"), "epochs": baseline["epochs"]})
    rows.append({"model": "original write-up (Kaggle score as test)",
                 "validation accuracy": ORIGINAL_VALIDATION_ACCURACY, "test accuracy": ORIGINAL_KAGGLE_SCORE,
                 "epochs": 10})
    majority_test = None if test_labels is None else majority_class_accuracy(train_labels, test_labels)
    rows.append({"model": "majority class",
                 "validation accuracy": majority_class_accuracy(train_labels, validation_labels),
                 "test accuracy": majority_test, "epochs": 0})
    return pd.DataFrame(rows)
