"""Training: behaviour of the architectures, seeding and resuming, on a few hundred real images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digits import runs
from digits.config import ARCHITECTURES, Conv
from digits.data import Split, split_train_validation, to_images
from digits.model import build_model, load_model
from digits.runs import records
from digits.train import fit_run, recalibrate_batch_norm, save_run
from helpers import write_tiny_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, mnist):
    """600 MNIST rows in Kaggle's format: what the tiny runs below are named after."""
    return write_tiny_data(tmp_path_factory.mktemp("train") / "data", mnist)


def tiny_run(data_dir, models_dir, arch: str = "strided", epochs: int = 2, seed: int = 1) -> runs.Run:
    """A fast run: small batches, the architecture's own recipe otherwise."""
    return runs.resolve({"arch": arch, "epochs": epochs, "batch_size": 50, "seed": seed, "data_dir": data_dir,
                         "models_dir": models_dir})


def fit(small_train, run, callbacks=()):
    """Train on 500 images, validate on 100."""
    images, labels = small_train
    return fit_run(run, Split(images[:500], labels[:500], images[500:], labels[500:]), tuple(callbacks))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_is_built_as_its_description_says(arch):
    model = build_model(arch, augment=False)
    convolutions = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    described = [layer for layer in ARCHITECTURES[arch] if isinstance(layer, Conv)]
    assert [(c.filters, c.kernel_size[0], c.strides[0]) for c in convolutions] == [
        (layer.filters, layer.kernel, layer.stride) for layer in described]


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


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_loss_falls_over_two_epochs(arch, small_train, data_dir, tmp_path):
    history = fit(small_train, tiny_run(data_dir, tmp_path, arch)).history
    assert history["loss"].iloc[1] < history["loss"].iloc[0]
    assert list(history["epoch"]) == [1, 2]


@pytest.mark.slow
def test_same_seed_same_history_other_seed_differs(small_train, data_dir, tmp_path):
    columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
    first = fit(small_train, tiny_run(data_dir, tmp_path / "a", seed=7)).history
    again = fit(small_train, tiny_run(data_dir, tmp_path / "b", seed=7)).history
    other = fit(small_train, tiny_run(data_dir, tmp_path / "c", seed=8)).history
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


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_interrupted_run_resumes_to_the_same_weights(arch, small_train, data_dir, tmp_path):
    straight = fit(small_train, tiny_run(data_dir, tmp_path / "straight", arch))
    interrupted = tiny_run(data_dir, tmp_path / "resumed", arch)
    with pytest.raises(KeyboardInterrupt):
        fit(small_train, interrupted, [InterruptAtEpoch(1)])
    assert (interrupted.folder / "checkpoint" / "model.keras").is_file()
    resumed = fit(small_train, interrupted)
    assert resumed.resumed_after_epoch == 1 and not straight.resumed_after_epoch
    for expected, actual in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(expected, actual)
    assert straight.history["val_loss"].equals(resumed.history["val_loss"])
    assert resumed.fingerprint == straight.fingerprint


@pytest.mark.slow
def test_checkpoint_of_other_data_is_not_resumed(small_train, data_dir, tmp_path, capsys):
    run = tiny_run(data_dir, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        fit(small_train, run, [InterruptAtEpoch(1)])
    images, labels = small_train
    other = fit_run(run, Split(images[100:600], labels[100:600], images[:100], labels[:100]))
    assert other.resumed_after_epoch == 0 and len(other.history) == 2
    assert "discarding the checkpoint" in capsys.readouterr().out


@pytest.mark.slow
def test_finished_run_is_reused_only_with_the_same_data(small_train, data_dir, tmp_path):
    run = tiny_run(data_dir, tmp_path, epochs=1)
    first = fit(small_train, run)
    images, labels = small_train
    save_run(run, first, Split(images[:500], labels[:500], images[500:], labels[500:]))
    assert not (run.folder / "checkpoint").exists() and records.is_finished(run.folder)
    again = fit(small_train, run)
    assert again.reused and again.history["val_loss"].equals(first.history["val_loss"])
    other_data = fit_run(run, Split(images[100:600], labels[100:600], images[:100], labels[:100]))
    assert not other_data.reused


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


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_small_run_scores_far_above_chance_on_held_out_images(arch, mnist, data_dir, tmp_path):
    """Two epochs on 2,000 images, judged on 1,000 MNIST test images the network never saw, in inference mode."""
    images = to_images(mnist["train_images"][:2000].reshape(-1, 784))
    labels = mnist["train_labels"][:2000].astype(np.int64)
    test_images = to_images(mnist["test_images"][:1000].reshape(-1, 784))
    run = runs.resolve({"arch": arch, "epochs": 2, "seed": 3, "data_dir": data_dir, "models_dir": tmp_path})
    result = fit_run(run, Split(images[:1800], labels[:1800], images[1800:], labels[1800:]))
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
