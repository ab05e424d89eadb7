"""Evaluation helpers, checked against hand-computed cases."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from digits import runs
from digits.evaluate import (
    accuracy,
    average_probabilities,
    confusion_matrix,
    evaluate_run,
    majority_class_accuracy,
    misclassified,
    per_class_scores,
    predict_probabilities,
    results_table,
)
from digits.model import build_model
from digits.report.summary import summary_markdown
from digits.runs import catalog
from digits.runs.records import weak_run_note
from helpers import fake_finished_run, train_tiny_run

TRUE = np.array([0, 0, 1, 1, 2, 2])
PREDICTED = np.array([0, 1, 1, 1, 2, 0])


def test_accuracy_and_length_check():
    assert accuracy(TRUE, PREDICTED) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="6 true labels but 5 predictions"):
        accuracy(TRUE, PREDICTED[:5])


def test_confusion_matrix_rows_are_true_digits():
    matrix = confusion_matrix(TRUE, PREDICTED)
    assert matrix.shape == (10, 10) and matrix.sum() == 6
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[2, 0] == 1 and matrix[1, 1] == 2


def test_per_class_precision_and_recall():
    scores = per_class_scores(TRUE, PREDICTED)
    assert scores.loc[0, "precision"] == pytest.approx(1 / 2) and scores.loc[0, "recall"] == pytest.approx(1 / 2)
    assert scores.loc[1, "precision"] == pytest.approx(2 / 3) and scores.loc[1, "recall"] == 1.0
    assert scores.loc[2, "precision"] == 1.0 and scores.loc[2, "recall"] == pytest.approx(1 / 2)
    assert scores.loc[5, "support"] == 0 and scores.loc[5, "f1"] == 0


def test_misclassified_lists_mistakes_most_confident_first():
    probabilities = np.full((6, 10), 0.01)
    probabilities[np.arange(6), PREDICTED] = [0.9, 0.6, 0.9, 0.9, 0.9, 0.95]
    table = misclassified(TRUE, probabilities)
    assert table["index"].tolist() == [5, 1]
    assert table[["true", "predicted"]].values.tolist() == [[2, 0], [0, 1]]
    assert table["confidence"].tolist() == pytest.approx([0.95, 0.6])


def test_majority_class_baseline():
    assert majority_class_accuracy(np.array([3, 3, 1]), np.array([3, 1, 1, 3])) == 0.5


def test_results_table_adds_the_latest_baseline_run_when_there_is_one(tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-02T00:00:00+00:00", 0.99, test_accuracy=0.995, epochs=12)
    metrics = json.loads((run.folder / "metrics.json").read_text())
    table = results_table(metrics, run, np.array([1, 1, 2]), np.array([1, 2]), None)
    assert table["model"].tolist() == [
        f"{run.name} (this run)", "original write-up (Kaggle score as test)", "majority class"]
    baseline = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.991, test_accuracy=0.992, arch="baseline")
    table = results_table(metrics, run, np.array([1, 1, 2]), np.array([1, 2]), np.array([1, 1, 1, 2]))
    assert table.loc[1, "model"] == f"{baseline.name} (baseline network)" and table.loc[1, "test accuracy"] == 0.992
    assert table.loc[3, "validation accuracy"] == 0.5 and table.loc[3, "test accuracy"] == 0.75


@pytest.mark.parametrize("arch, n_train, val_accuracy, weak", [
    ("strided", 1801, 0.87, True),
    ("strided", 9000, 0.981, True),
    ("strided", 54001, 0.9947, False),
    ("baseline", 54001, 0.9922, False),
    ("baseline", 54001, 0.95, True),
])
def test_the_weak_run_sentence_appears_only_for_a_weak_run(arch, n_train, val_accuracy, weak):
    note = weak_run_note({"arch": arch, "val_accuracy": val_accuracy, "n_train": n_train, "epochs": 2})
    assert bool(note) == weak
    if weak:  # the sentence says what made the run quick: its images and epochs
        assert note.startswith("This is a quick run, not a result") and f"{val_accuracy:.2%}" in note
        assert note.endswith(f"(this run: {n_train:,} images, 2 epochs).")


def test_an_ensemble_averages_probabilities_not_votes():
    members = [np.array([[0.9, 0.1]]), np.array([[0.4, 0.6]]), np.array([[0.4, 0.6]])]
    average = average_probabilities(members)
    np.testing.assert_allclose(average, [[0.5667, 0.4333]], atol=1e-4)
    assert average.argmax(axis=1).tolist() == [0]  # two of three members vote 1; their mean probability says 0
    with pytest.raises(ValueError, match="at least one member"):
        average_probabilities([])


def test_predicting_with_many_models_matches_keras_and_warns_of_nothing(small_train, caplog):
    """An ensemble of many members predicts quietly: no TensorFlow retracing warnings, Keras' own numbers."""
    images = small_train[0][:250]
    models = [build_model("baseline") for _ in range(7)]
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for model in models:
            for count in (250, 99):  # a whole and a partial batch, like validation and test sets
                probabilities = predict_probabilities(model, images[:count], batch_size=100)
                assert probabilities.shape == (count, 10)
    assert "retracing" not in caplog.text
    np.testing.assert_allclose(probabilities, models[-1].predict(images[:99], verbose=0), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, mnist):
    """A trained two-run ensemble (one epoch each on 300 MNIST images), with tiny Kaggle-format data beside it."""
    return train_tiny_run(tmp_path_factory.mktemp("ensemble"), mnist, 300, ensemble=2)


def copy_of(run: runs.Run, tmp_path: Path) -> runs.Run:
    """The run, its members and data copied into tmp_path, to change as a test likes."""
    shutil.copytree(run.models_dir, tmp_path / "models")
    shutil.copytree(run.data_dir, tmp_path / "data")
    return catalog.find(run.name, tmp_path / "data", tmp_path / "models")


@pytest.mark.slow
def test_an_ensemble_of_identical_members_equals_a_member(pair, tmp_path):
    ensemble = copy_of(pair, tmp_path)
    first, second = ensemble.members
    for name in ("model.keras", "history.csv"):  # the second member becomes a twin of the first
        shutil.copyfile(first.folder / name, second.folder / name)
    single, both = evaluate_run(first), evaluate_run(ensemble)
    np.testing.assert_allclose(both.probabilities, single.probabilities, atol=1e-6)
    assert both.metrics["test_accuracy"] == single.metrics["test_accuracy"] > 0.3
    assert both.metrics["kind"] == "ensemble" and both.metrics["members"] == [first.name, second.name]
    assert both.members["model"].tolist() == [first.name, second.name, f"{ensemble.name} (average of the 2)"]
    # The report counts the weights of both members, not one.
    assert f"| 2 × {single.metrics['params']:,} |" in summary_markdown(both.metrics, None)


@pytest.mark.slow
def test_an_ensemble_keeps_only_what_its_members_share(pair, tmp_path):
    ensemble = copy_of(pair, tmp_path)
    first = ensemble.members[0]
    metrics = json.loads((first.folder / "metrics.json").read_text())
    metrics.update(val_loss=9.0, wall_seconds=12.5)  # this member's own loss, and a key only it has
    (first.folder / "metrics.json").write_text(json.dumps(metrics))
    result = evaluate_run(ensemble).metrics
    assert "val_loss" not in result and "wall_seconds" not in result
    assert result["arch"] == metrics["arch"] and result["n_train"] == metrics["n_train"]
    assert result["members"] == [member.name for member in ensemble.members]


@pytest.mark.slow
def test_a_damaged_member_is_reported_by_name(pair, tmp_path):
    ensemble = copy_of(pair, tmp_path)
    broken = ensemble.members[1].folder / "model.keras"
    broken.write_bytes(broken.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{ensemble.members[1].name}/model.keras: not a Keras model file"):
        evaluate_run(ensemble)
