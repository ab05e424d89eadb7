"""Train: the seeded training loop, one epoch at a time.

Each epoch's randomness (shuffle order, augmentation, dropout) is a function of
(seed, epoch) alone, so a run that resumes from a checkpoint (digits.runs keeps
them) replays exactly the epochs an uninterrupted run would have, and ends with
the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from digits.config import N_CLASSES, TrainingPlan
from digits.model import build_model
from digits.runs import HISTORY_COLUMNS

# Images used to re-estimate the batch-normalisation statistics after each epoch.
CALIBRATION_IMAGES = 2048


def learning_rate_at(plan: TrainingPlan, epoch: int) -> float:
    """Learning rate for a 0-based epoch: constant, or cosine decay from the recipe's rate towards zero."""
    if not plan.cosine_schedule:
        return plan.learning_rate
    return plan.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / plan.epochs))


def compile_model(model: keras.Model, plan: TrainingPlan) -> None:
    """Adam and categorical cross-entropy on one-hot labels, as in the original write-up."""
    model.compile(
        optimizer=keras.optimizers.Adam(plan.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=plan.label_smoothing),
        metrics=["accuracy"],
    )


def new_model(plan: TrainingPlan) -> keras.Model:
    """The plan's network, seeded and compiled, ready to train."""
    keras.utils.set_random_seed(plan.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(plan.arch, plan.augment)
    compile_model(model, plan)
    return model


def reseed_random_layers(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every random layer's generator (dropout, augmentation) to a state derived from (seed, epoch)."""
    generators = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for index, state in enumerate(generators):
        # The second word counts draws; 2**24 apart leaves room for any epoch's batches.
        state.assign(np.array([seed * 1000 + index, epoch * 2**24], dtype=state.dtype))


def recalibrate_batch_norm(model: keras.Sequential, images: np.ndarray) -> None:
    """Set each batch-normalisation layer's inference statistics to its inputs' mean and variance on `images`.

    Keras keeps these statistics as a moving average (momentum 0.99) that starts
    at mean 0, variance 1: after a few hundred steps or fewer it still mostly
    holds those start values, and the network in inference mode is not the one
    that trained. Measuring them directly makes inference match training at any
    run length. The layers run in inference mode (no augmentation, no dropout).
    """
    activations = keras.ops.convert_to_tensor(images)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            axes = [axis for axis in range(len(activations.shape)) if axis != layer.axis % len(activations.shape)]
            mean, variance = keras.ops.moments(activations, axes=axes)
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        activations = layer(activations, training=False)


def print_progress(plan: TrainingPlan, rows: list[dict]) -> None:
    """One line for the last epoch, readable in a terminal, JupyterLab and papermill logs alike."""
    row = rows[-1]
    left = (plan.epochs - row["epoch"]) * np.mean([r["seconds"] for r in rows])
    print(
        f"epoch {row['epoch']:>3}/{plan.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
        f"lr {row['learning_rate']:.2e}  {row['seconds']:.1f} s  (about {left / 60:.1f} min left)",
        flush=True,
    )


def batches(images: np.ndarray, targets: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Batches in the order given, through a plain tf.data pipeline.

    tf.data's autotuning stalls each step for about 100 ms on a 2-core machine
    (training at half speed); a fixed, single-threaded pipeline does not.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    options.experimental_optimization.apply_default_optimizations = False
    return tf.data.Dataset.from_tensor_slices((images, targets)).batch(batch_size).with_options(options)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Labels 0..9 as float32 one-hot rows."""
    return keras.utils.to_categorical(labels, N_CLASSES).astype(np.float32)


def train_model(
    plan: TrainingPlan,
    model: keras.Model,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    validation_images: np.ndarray,
    validation_labels: np.ndarray,
    rows: Sequence[dict] = (),
    after_epoch: Callable[[keras.Model, list[dict]], None] | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> pd.DataFrame:
    """Train `model` per `plan` from the epoch after `rows` (the history so far); return the whole history.

    After each epoch the batch-normalisation statistics are measured on the
    training images, the validation images are scored in inference mode, and
    `after_epoch(model, rows)` runs (digits.runs saves a checkpoint there).
    """
    rows = list(rows)
    print(f"training {plan.arch}: {len(train_images):,} images, {len(validation_images):,} for validation, "
          f"{plan.epochs} epochs, batch {plan.batch_size}, augment {plan.augment}, seed {plan.seed}", flush=True)
    targets = one_hot(train_labels)
    validation_batches = batches(validation_images, one_hot(validation_labels), 1000)
    for epoch in range(len(rows), plan.epochs):
        order = np.random.default_rng([plan.seed, epoch]).permutation(len(train_images))
        reseed_random_layers(model, plan.seed, epoch)
        model.optimizer.learning_rate.assign(learning_rate_at(plan, epoch))
        started = time.perf_counter()
        fitted = model.fit(
            batches(train_images[order], targets[order], plan.batch_size), shuffle=False, verbose=0,
            initial_epoch=epoch, epochs=epoch + 1, callbacks=list(extra_callbacks),
        )
        recalibrate_batch_norm(model, train_images[order[:CALIBRATION_IMAGES]])
        validation = model.evaluate(validation_batches, verbose=0, return_dict=True)
        row = {"epoch": epoch + 1, "loss": float(fitted.history["loss"][-1]),
               "accuracy": float(fitted.history["accuracy"][-1]),
               "val_loss": float(validation["loss"]), "val_accuracy": float(validation["accuracy"]),
               "learning_rate": learning_rate_at(plan, epoch), "seconds": time.perf_counter() - started}
        rows.append(row)
        print_progress(plan, rows)
        if after_epoch:
            after_epoch(model, rows)
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)
