"""Training: behaviour of the architectures, seeding and resuming, on a few hundred real images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digits.config import ARCHITECTURES
from digits.model import BUILDERS, RECIPES, build_model, load_model
from digits.train import make_plan, run_metrics, save_run, split_train_validation, train_model


def tiny_plan(arch: str = "strided", epochs: int = 2, seed: int = 1):
    """A fast plan: small batches, the architecture's own recipe otherwise."""
    return make_plan(arch, epochs=epochs, batch_size=50, seed=seed)


def fit(small_train, tmp_path, plan, callbacks=()):
    """Train on 500 images, validate on 100."""
    images, labels = small_train
    return train_model(plan, images[:500], labels[:500], images[500:], labels[500:], tmp_path, callbacks)


def test_every_architecture_has_a_builder_and_recipe():
    assert set(ARCHITECTURES) == set(BUILDERS) == set(RECIPES)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_output_is_a_probability_row_per_image(arch, small_train):
    images, _ = small_train
    model = build_model(arch)
    probabilities = model.predict(images[:7], verbose=0)
    assert probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.layers[-1].get_config()["activation"] == "softmax"


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="arch must be one of strided, seed, got 'nope'"):
        build_model("nope")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_loss_falls_over_two_epochs(arch, small_train, tmp_path):
    history = fit(small_train, tmp_path, tiny_plan(arch)).history
    assert history["loss"].iloc[1] < history["loss"].iloc[0]
    assert list(history["epoch"]) == [1, 2]


def test_same_seed_same_history_other_seed_differs(small_train, tmp_path):
    columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
    first = fit(small_train, tmp_path / "a", tiny_plan(seed=7)).history
    again = fit(small_train, tmp_path / "b", tiny_plan(seed=7)).history
    other = fit(small_train, tmp_path / "c", tiny_plan(seed=8)).history
    assert first[columns].equals(again[columns])
    assert not first[columns].equals(other[columns])


class InterruptAtEpoch(keras.callbacks.Callback):
    """Stop training the way Ctrl-C does, when the given 0-based epoch starts."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_interrupted_run_resumes_to_the_same_weights(arch, small_train, tmp_path):
    plan = tiny_plan(arch)
    straight = fit(small_train, tmp_path / "straight", plan)
    with pytest.raises(KeyboardInterrupt):
        fit(small_train, tmp_path / "resumed", plan, [InterruptAtEpoch(1)])
    assert (tmp_path / "resumed" / "checkpoint" / "model.keras").is_file()
    resumed = fit(small_train, tmp_path / "resumed", plan)
    assert resumed.resumed_after_epoch == 1 and not straight.resumed_after_epoch
    for expected, actual in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(expected, actual)
    assert straight.history["val_loss"].equals(resumed.history["val_loss"])
    assert resumed.fingerprint == straight.fingerprint


def test_checkpoint_of_other_parameters_is_not_resumed(small_train, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fit(small_train, tmp_path, tiny_plan(seed=1), [InterruptAtEpoch(1)])
    other = fit(small_train, tmp_path, tiny_plan(seed=2, epochs=1))
    assert other.resumed_after_epoch == 0 and len(other.history) == 1


def test_finished_run_is_reused_only_with_the_same_parameters(small_train, tmp_path):
    plan = tiny_plan(epochs=1)
    first = fit(small_train, tmp_path, plan)
    save_run(first, run_metrics(plan, first, 500, 100, None), tmp_path)
    assert not (tmp_path / "checkpoint").exists()
    again = fit(small_train, tmp_path, plan)
    assert again.reused and again.history["val_loss"].equals(first.history["val_loss"])
    assert not fit(small_train, tmp_path, tiny_plan(epochs=1, seed=5)).reused


def test_stratified_split_keeps_class_proportions(small_train):
    _, labels = small_train
    train_index, validation_index = split_train_validation(labels, 0.2, seed=3)
    assert len(np.intersect1d(train_index, validation_index)) == 0
    assert len(train_index) + len(validation_index) == len(labels)
    expected = np.round(0.2 * np.bincount(labels))
    np.testing.assert_array_equal(np.bincount(labels[validation_index], minlength=10), expected)
    again, _ = split_train_validation(labels, 0.2, seed=3)
    assert np.array_equal(train_index, again)


@pytest.mark.parametrize("fraction", [0, -0.1, 0.9, "abc"])
def test_split_rejects_bad_fractions(small_train, fraction):
    with pytest.raises(ValueError, match="validation_fraction"):
        split_train_validation(small_train[1], fraction, seed=0)


def test_saved_model_loads_and_bad_files_are_clear_errors(small_train, tmp_path):
    model = build_model("seed")
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    images = small_train[0][:3]
    np.testing.assert_array_equal(model.predict(images, verbose=0), loaded.predict(images, verbose=0))
    with pytest.raises(ValueError, match="missing.keras: model file not found"):
        load_model(tmp_path / "missing.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes((tmp_path / "model.keras").read_bytes()[:2000])
    with pytest.raises(ValueError, match="corrupt.keras: not a Keras model file"):
        load_model(corrupt)
