"""Evaluate: predictions, accuracy, per-class scores, confusion matrix and the mistakes; the run's calibration
(digits.calibration) fitted on its validation probabilities and kept with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import keras
import numpy as np
import pandas as pd

from digits import calibration
from digits.calibration import Calibration
from digits.config import N_CLASSES
from digits.data import load_split, load_test, load_test_labels
from digits.model import load_model
from digits.runs import Run, check_ready, records
from digits.runs.catalog import kept_runs
from digits.util.files import write_frame_atomic


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities in inference mode, shape (n, 10).

    The model is called batch by batch rather than through `model.predict`, which traces a new TensorFlow
    function for each model and batch shape and warns about it when an ensemble has several members.
    """
    batches = (model(images[start:start + batch_size], training=False) for start in range(0, len(images), batch_size))
    return np.concatenate([keras.ops.convert_to_numpy(batch) for batch in batches])


def average_probabilities(member_probabilities: list[np.ndarray]) -> np.ndarray:
    """The ensemble's class probabilities: the mean of its members' probabilities (not of their votes)."""
    if not member_probabilities:
        raise ValueError("an ensemble needs at least one member")
    return np.mean(np.stack(member_probabilities), axis=0)


@dataclass
class RunEvaluation:
    """A run (or ensemble) scored on held-out images in inference mode."""

    metrics: dict  # the run's metrics.json, with the scores recorded
    eval_name: str  # "test" when the test labels are known, else "validation"
    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray  # calibrated (the ensemble's average, calibrated, for an ensemble)
    raw_probabilities: np.ndarray  # as the network gives them, before the temperature
    calibration: Calibration  # fitted on the validation images
    members: pd.DataFrame  # validation and test accuracy of each member, then of the ensemble (one row for a run)
    train_labels: np.ndarray
    validation_labels: np.ndarray
    test_labels: np.ndarray | None

    @property
    def predicted(self) -> np.ndarray:
        """The predicted digit of each evaluated image."""
        return self.probabilities.argmax(axis=1)


def predict_run(run: Run, images: np.ndarray) -> np.ndarray:
    """Class probabilities of a run's model, or the average of an ensemble's members."""
    check_ready(run)
    return average_probabilities([predict_probabilities(load_model(member.folder / "model.keras"), images)
                                  for member in run.single_runs])


def save_test_probabilities(run: Run, probabilities: np.ndarray) -> None:
    """Keep the run's test probabilities beside it, with what they were made from, for the submission."""
    records.save_probabilities(run.folder, probabilities, records.probabilities_source(run.single_runs, run.data_dir))


def test_probabilities(run: Run, test_images: np.ndarray) -> np.ndarray:
    """The run's probabilities for the test images: those evaluation stored, if undamaged, made from the same
    models and test.csv and of the right shape; else predicted now, and stored in their place."""
    stored = records.stored_probabilities(run.folder, records.probabilities_source(run.single_runs, run.data_dir),
                                          len(test_images))
    if stored is not None:
        return stored
    probabilities = predict_run(run, test_images)
    save_test_probabilities(run, probabilities)
    return probabilities


def _score(labels: np.ndarray | None, probabilities: np.ndarray) -> float | None:
    """Accuracy of the most probable digit, or None without labels."""
    return None if labels is None else accuracy(labels, probabilities.argmax(axis=1))


def ensemble_metrics(run: Run, val_accuracy: float | None, test_accuracy: float | None) -> dict:
    """The metrics.json record of an ensemble: what its members share, their total time, its own scores."""
    members = [records.read_metrics(member.folder) for member in run.members]
    seconds = sum(member["train_seconds"] for member in members)
    return {
        # Only what every member has alike (parameters, data sizes, versions): not one member's scores or extras.
        **{key: value for key, value in members[0].items() if all(m.get(key) == value for m in members[1:])},
        "run": run.name,
        "kind": "ensemble",
        "members": [member.name for member in run.members],
        "seed": f"{members[0]['seed']}-{members[-1]['seed']}",
        "train_seconds": round(seconds, 2),
        "images_per_second": round(sum(m.get("n_train", 0) * m["epochs"] for m in members) / max(seconds, 1e-9), 1),
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "fingerprint": hashlib.sha256(" ".join(m["fingerprint"] for m in members).encode()).hexdigest()[:16],
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def evaluate_run(run: Run) -> RunEvaluation:
    """Score a run, or an ensemble and each member, on the validation and (when labelled) the test images.

    Records test_accuracy in each scored run's metrics.json; an ensemble gets a metrics.json of its own.
    """
    check_ready(run)
    split = load_split(run.data_dir, run.sample_size, run.validation_fraction)
    test_images = load_test(run.data_dir / "test.csv")
    test_labels = load_test_labels(run.data_dir, len(test_images))
    rows, validation_probabilities, test_probabilities = [], [], []
    for member in run.single_runs:
        trained = load_model(member.folder / "model.keras")
        validation_probabilities.append(predict_probabilities(trained, split.validation_images))
        test_probabilities.append(predict_probabilities(trained, test_images))
        metrics = records.record_scores(member.folder, test_accuracy=_score(test_labels, test_probabilities[-1]))
        rows.append({"model": member.name,
                     "validation accuracy": _score(split.validation_labels, validation_probabilities[-1]),
                     "test accuracy": metrics["test_accuracy"]})
    validation_average = average_probabilities(validation_probabilities)
    test_average = average_probabilities(test_probabilities)
    save_test_probabilities(run, test_average)
    fitted = calibration.fit(validation_average, split.validation_labels)
    calibration.save(run, fitted)
    if run.members:
        metrics = ensemble_metrics(run, _score(split.validation_labels, validation_average),
                                   _score(test_labels, test_average))
        records.save_metrics(run.folder, metrics)
        rows.append({"model": f"{run.name} (average of the {run.ensemble})",
                     "validation accuracy": metrics["val_accuracy"], "test accuracy": metrics["test_accuracy"]})
    metrics, members = records.read_metrics(run.folder), pd.DataFrame(rows)
    scored, key = ("test", "test_accuracy") if test_labels is not None else ("validation", "val_accuracy")
    # The training said in full when a run is a quick one; once is enough.
    quick = " (a quick run, not a result)" if records.is_quick(metrics) else ""
    print(f"{run.name}: {scored} accuracy {metrics[key]:.2%}{quick}", flush=True)
    scored_images, scored_labels, scored_probabilities = (
        (test_images, test_labels, test_average) if test_labels is not None
        else (split.validation_images, split.validation_labels, validation_average))
    return RunEvaluation(metrics, scored, scored_images, scored_labels,
                         calibration.scale(scored_probabilities, fitted.temperature), scored_probabilities, fitted,
                         members, split.train_labels, split.validation_labels, test_labels)


def run_calibration(run: Run) -> Calibration:
    """The run's calibration as evaluation kept it; when that file is missing, damaged or stale, say so in one line
    and fit it again on the validation images."""
    try:
        return calibration.read(run)
    except ValueError as problem:
        print(f"{problem}: fitting the calibration again on the validation images", flush=True)
    split = load_split(run.data_dir, run.sample_size, run.validation_fraction)
    fitted = calibration.fit(predict_run(run, split.validation_images), split.validation_labels)
    calibration.save(run, fitted)
    return fitted


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


def compare_with_baselines(result: RunEvaluation, run: Run) -> pd.DataFrame:
    """The run against the baselines (results_table), written to the run's evaluation.csv."""
    table = results_table(result.metrics, run, result.train_labels, result.validation_labels, result.test_labels,
                          result.members)
    write_frame_atomic(table, run.folder / "evaluation.csv")
    return table


def results_table(metrics: dict, run: Run, train_labels: np.ndarray, validation_labels: np.ndarray,
                  test_labels: np.ndarray | None, members: pd.DataFrame | None = None) -> pd.DataFrame:
    """This run against baselines: the latest `baseline` run (if any), the original write-up, the majority class."""
    rows = [{"model": f"{metrics['run']} (this run)", "validation accuracy": metrics["val_accuracy"],
             "test accuracy": metrics.get("test_accuracy"), "epochs": metrics["epochs"]}]
    if metrics.get("kind") == "ensemble" and members is not None:
        rows += [{**row, "model": f"{row['model']} (member)", "epochs": metrics["epochs"]}
                 for row in members.to_dict("records")[:-1]]
    baseline = next((records.read_metrics(kept.folder) for kept, _ in kept_runs(run.models_dir, run.data_dir)
                     if kept.arch == "baseline" and not kept.members), None)
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
