"""Calibrated probabilities and "unsure" (digits.calibration), and what evaluation keeps with a run
(calibration.json, embedding.npz)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digits import calibration
from helpers import write_tiny_data


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def overconfident() -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a model three times too sure of itself: softmax(3 z) where softmax(z) is calibrated."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 4000)
    logits = rng.normal(0, 1, (4000, 10))
    logits[np.arange(4000), labels] += 2.0
    true_probabilities = softmax_rows(logits)
    drawn = np.array([rng.choice(10, p=row) for row in true_probabilities])  # labels as calibrated odds say
    return softmax_rows(3 * logits).astype(np.float32), drawn


def test_the_temperature_undoes_overconfidence_and_keeps_every_answer(overconfident):
    probabilities, labels = overconfident
    temperature = calibration.fit_temperature(probabilities, labels)
    scaled = calibration.scale(probabilities, temperature)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    np.testing.assert_allclose(scaled.sum(axis=1), 1, atol=1e-5)
    assert calibration.expected_calibration_error(scaled, labels) < calibration.expected_calibration_error(
        probabilities, labels) / 3


def test_the_expected_calibration_error_agrees_with_scikit_learns_curve(overconfident):
    probabilities, labels = overconfident
    from sklearn.calibration import calibration_curve

    confidence, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    accuracy, mean_confidence = calibration_curve(right, confidence, n_bins=10, strategy="uniform")
    counts = np.histogram(confidence, bins=np.linspace(0, 1, 11))[0]
    expected = (np.abs(accuracy - mean_confidence) * counts[counts > 0]).sum() / len(labels)
    assert calibration.expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected, abs=1e-6)


def test_the_threshold_is_the_lowest_confidence_whose_answers_are_right_often_enough():
    probabilities = np.zeros((6, 10))
    probabilities[:, 0] = [0.99, 0.98, 0.9, 0.8, 0.7, 0.6]
    probabilities[:, 1] = 1 - probabilities[:, 0]
    labels = np.array([0, 0, 0, 1, 0, 1])  # right, right, right, wrong, right, wrong
    assert calibration.choose_threshold(probabilities, labels, target=1.0) == pytest.approx(0.9)
    assert calibration.choose_threshold(probabilities, labels, target=0.8) == pytest.approx(0.7)
    assert calibration.answered(probabilities, labels, 0.9) == (pytest.approx(0.5), pytest.approx(1.0))
    assert calibration.verdict(probabilities[3], 0.9) == "unsure: 0 or 1"
    assert calibration.verdict(probabilities[0], 0.9) == ""


@pytest.mark.parametrize("temperature", [0.0, -1.0, 50.0])
def test_a_temperature_out_of_range_is_refused(temperature):
    with pytest.raises(ValueError, match="outside"):
        calibration.scale(np.full((1, 10), 0.1), temperature)


# --- A run: fitted on validation only, kept, and what it does on test -------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, mnist):
    """A one-epoch run on 2,000 MNIST images (1,000 test images), evaluated as 30-evaluate evaluates it."""
    from digits import evaluate, runs, train

    root = tmp_path_factory.mktemp("calibration")
    data_dir = write_tiny_data(root / "data", mnist, n_train=2000, n_test=1000)
    run = runs.resolve({"epochs": 1, "batch_size": 50, "data_dir": data_dir, "models_dir": root / "models"})
    train.train_run(run)
    return run, evaluate.evaluate_run(run)


@pytest.mark.slow
def test_the_temperature_and_threshold_are_fitted_on_the_validation_images_only(evaluated, mnist, capsys):
    from digits.data import load_split
    from digits.evaluate import predict_run, run_calibration

    run, result = evaluated
    split = load_split(run.data_dir, run.sample_size, run.validation_fraction)
    validation = predict_run(run, split.validation_images)
    assert result.eval_name == "test" and len(result.labels) == 1000
    assert result.calibration.temperature == pytest.approx(
        calibration.fit_temperature(validation, split.validation_labels), abs=1e-9)
    scaled = calibration.scale(validation, result.calibration.temperature)
    assert result.calibration.threshold == calibration.choose_threshold(scaled, split.validation_labels)
    assert result.calibration.validation["images"] == len(split.validation_labels)
    # The test labels changed do not change it: read back from calibration.json, not fitted again.
    write_labels = run.data_dir / "test_labels.csv"
    write_labels.write_text(write_labels.read_text().replace(",7\n", ",1\n"))
    capsys.readouterr()
    assert run_calibration(run) == result.calibration and capsys.readouterr().out == ""
    kept = json.loads((run.folder / calibration.FILE).read_text())
    assert kept["temperature"] == result.calibration.temperature


@pytest.mark.slow
def test_calibration_lowers_the_expected_calibration_error_on_the_test_images(evaluated):
    _, result = evaluated
    before = calibration.expected_calibration_error(result.raw_probabilities, result.labels)
    after = calibration.expected_calibration_error(result.probabilities, result.labels)
    assert after < before
    assert (result.probabilities.argmax(axis=1) == result.raw_probabilities.argmax(axis=1)).all()


@pytest.mark.slow
def test_a_damaged_calibration_is_named_and_fitted_again(evaluated, capsys):
    from digits.evaluate import run_calibration

    run, result = evaluated
    path = run.folder / calibration.FILE
    kept = path.read_text()
    try:
        path.write_text(kept.replace('"temperature"', '"temperatur"'))
        capsys.readouterr()
        assert run_calibration(run) == result.calibration
        assert "calibration.json: damaged" in capsys.readouterr().out
        assert json.loads(path.read_text()) == json.loads(kept)
    finally:
        path.write_text(kept)


@pytest.mark.slow
def test_the_embedding_map_is_kept_with_the_run_and_drawn_once(evaluated, capsys):
    from digits import explain

    run, result = evaluated
    wrong = np.flatnonzero(result.predicted != result.labels)
    kept = run.folder / explain.EMBEDDING_FILE
    kept.unlink(missing_ok=True)
    capsys.readouterr()
    indices, points = explain.embedding(run, result.images, include=wrong)
    assert capsys.readouterr().out == "" and kept.is_file()  # the first map is drawn without a word
    assert set(wrong) <= set(indices) and points.shape == (len(indices), 2)
    again = explain.embedding(run, result.images, include=wrong)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(again[1], points)
    kept.write_bytes(b"not an archive")
    explain.embedding(run, result.images, include=wrong)
    assert f"{kept.name}: damaged: drawing the map of the images again (t-SNE)" in capsys.readouterr().out


@pytest.mark.slow
def test_saliency_is_gradient_times_input_of_the_digits_logit(evaluated):
    """Against finite differences of the logit (the network is piecewise linear near an image)."""
    import tensorflow as tf

    from digits import explain

    run, result = evaluated
    models = explain.members(run)
    image = result.images[:1].astype(np.float64)
    digit = int(result.predicted[0])
    (map_,) = explain.saliency(models, image, np.array([digit]))
    inked = np.argwhere(image[0, ..., 0] > 0.5)[:5]
    for row, column in inked:
        step = np.zeros_like(image)
        step[0, row, column, 0] = 1e-2
        up, down = (float(explain.logits(models[0], tf.constant(image + sign * step, tf.float32))[0, digit])
                    for sign in (1, -1))
        assert map_[row, column] == pytest.approx((up - down) / 2e-2 * image[0, row, column, 0], abs=2e-2)
