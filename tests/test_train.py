"""Training: behaviour of the architectures, seeding and resuming, on a few hundred real images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digits.config import ARCHITECTURES, RECIPES, make_plan
from digits.data import split_train_validation, to_images
from digits.model import BUILDERS, build_model, load_model
from digits.runs import run_metrics, save_run, train_run
from digits.train import recalibrate_batch_norm


def tiny_plan(arch: str = "strided", epochs: int = 2, seed: int = 1):
    """A fast plan: small batches, the architecture's own recipe otherwise."""
    return make_plan(arch, epochs=epochs, batch_size=50, seed=seed)


def parameters_of(plan) -> dict:
    """The run parameters of a tiny plan, as the notebooks check them."""
    return {"arch": plan.arch, "epochs": plan.epochs, "seed": plan.seed, "batch_size": plan.batch_size,
            "sample_size": 600, "validation_fraction": 0.1, "augment": None}


def fit(small_train, tmp_path, plan, callbacks=()):
    """Train on 500 images, validate on 100."""
    images, labels = small_train
    return train_run(plan, images[:500], labels[:500], images[500:], labels[500:], tmp_path, tuple(callbacks))


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
    with pytest.raises(ValueError, match="arch must be one of strided, wide, baseline, got 'nope'"):
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
    save_run(first, run_metrics(tmp_path, parameters_of(plan), first, 500, 100), tmp_path)
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
    model = build_model("baseline")
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


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_small_run_scores_far_above_chance_on_held_out_images(arch, mnist, tmp_path):
    """Two epochs on 2,000 images, judged on 1,000 MNIST test images the network never saw, in inference mode."""
    images = to_images(mnist["train_images"][:2000].reshape(-1, 784))
    labels = mnist["train_labels"][:2000].astype(np.int64)
    test_images = to_images(mnist["test_images"][:1000].reshape(-1, 784))
    plan = make_plan(arch, epochs=2, seed=3)
    result = train_run(plan, images[:1800], labels[:1800], images[1800:], labels[1800:], tmp_path)
    predicted = result.model.predict(test_images, verbose=0).argmax(axis=1)
    test_accuracy = float(np.mean(predicted == mnist["test_labels"][:1000]))
    assert test_accuracy > 0.7, f"{arch}: {test_accuracy:.3f} on held-out images (chance is 0.1)"
    # The validation accuracy in the history is measured the same way, in inference mode.
    assert result.history["val_accuracy"].iloc[-1] > 0.7


def test_recalibration_sets_the_statistics_that_training_saw(small_train):
    """After recalibration, each batch-norm layer's inference statistics are its inputs' mean and variance."""
    images = small_train[0][:256]
    model = build_model("strided", augment=False)
    recalibrate_batch_norm(model, images)
    activations = images
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            np.testing.assert_allclose(layer.moving_mean.numpy(), activations.mean(axis=(0, 1, 2)), atol=1e-4)
            np.testing.assert_allclose(layer.moving_variance.numpy(), activations.var(axis=(0, 1, 2)), rtol=1e-3)
        activations = np.asarray(layer(activations, training=False))
