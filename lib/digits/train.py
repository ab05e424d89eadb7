"""Train: a seeded, resumable training run that writes model, history and metrics.

Each epoch's randomness (shuffle order, augmentation, dropout) is a function of
(seed, epoch) alone, and the model with its optimizer state is checkpointed after
every epoch. So a run that is interrupted and started again with the same
parameters replays exactly the epochs an uninterrupted run would have, and ends
with the same weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from digits.config import N_CLASSES, check_validation_fraction
from digits.files import atomic_path, write_frame_atomic, write_text_atomic
from digits.model import RECIPES, build_model

HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
CHECKPOINT_DIR = "checkpoint"


@dataclass(frozen=True)
class TrainingPlan:
    """Every parameter that decides the trained weights."""

    arch: str
    epochs: int
    batch_size: int
    seed: int
    augment: bool
    learning_rate: float
    cosine_schedule: bool
    label_smoothing: float


def make_plan(arch: str, epochs: int | None = None, batch_size: int | None = None,
              seed: int = 42, augment: bool | None = None) -> TrainingPlan:
    """Fill the unset parameters from the architecture's recipe."""
    recipe = RECIPES[arch]
    return TrainingPlan(
        arch=arch,
        epochs=recipe.epochs if epochs is None else epochs,
        batch_size=recipe.batch_size if batch_size is None else batch_size,
        seed=seed,
        augment=recipe.augment if augment is None else augment,
        learning_rate=recipe.learning_rate,
        cosine_schedule=recipe.cosine_schedule,
        label_smoothing=recipe.label_smoothing,
    )


def split_train_validation(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split: indices of training and validation rows, each class in proportion."""
    fraction = check_validation_fraction(fraction)
    rng = np.random.default_rng(seed)
    validation = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        validation.append(rng.permutation(members)[: max(1, round(fraction * len(members)))])
    validation_index = np.sort(np.concatenate(validation))
    train_index = np.setdiff1d(np.arange(len(labels)), validation_index)
    if len(train_index) == 0:
        raise ValueError(f"validation_fraction {fraction} leaves no training rows out of {len(labels)}")
    return train_index, validation_index


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


def reseed_random_layers(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every random layer's generator (dropout, augmentation) to a state derived from (seed, epoch)."""
    generators = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for index, state in enumerate(generators):
        # The second word counts draws; 2**24 apart leaves room for any epoch's batches.
        state.assign(np.array([seed * 1000 + index, epoch * 2**24], dtype=state.dtype))


def fingerprint(plan: TrainingPlan, model: keras.Model, *arrays: np.ndarray) -> str:
    """A key of plan, architecture and data: a checkpoint or finished run is reused only for the same key."""
    checksum = 0
    for array in arrays:
        checksum = zlib.crc32(np.ascontiguousarray(array).data, checksum)
    shapes = [list(array.shape) for array in arrays]
    # Layer names are numbered per process ("conv2d_7"); they do not change what is trained.
    architecture = re.sub(r'"name": "[^"]*"', "", model.to_json())
    record = {"plan": asdict(plan), "model": architecture, "data": [checksum, shapes]}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainingResult:
    """A trained model, its per-epoch history, and the key of the run that made it."""

    model: keras.Model
    history: pd.DataFrame
    fingerprint: str
    reused: bool = False  # True when a finished run with the same key was loaded instead of retrained
    resumed_after_epoch: int = 0  # epochs restored from a checkpoint of an interrupted run


def _finished_run(out_dir: Path, key: str) -> TrainingResult | None:
    """Load the finished run in out_dir if it was made with the same key."""
    metrics_path, model_path = out_dir / "metrics.json", out_dir / "model.keras"
    if not (metrics_path.is_file() and model_path.is_file()):
        return None
    if json.loads(metrics_path.read_text()).get("fingerprint") != key:
        return None
    model = keras.saving.load_model(model_path, safe_mode=True)
    return TrainingResult(model, pd.read_csv(out_dir / "history.csv"), key, reused=True)


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch, readable in a terminal, JupyterLab and papermill logs alike."""

    def __init__(self, plan: TrainingPlan, rows: list[dict]):
        super().__init__()
        self.plan, self.rows = plan, rows

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {"epoch": epoch + 1, **{key: float(logs.get(key, math.nan)) for key in HISTORY_COLUMNS[1:5]}}
        row["learning_rate"] = learning_rate_at(self.plan, epoch)
        row["seconds"] = time.perf_counter() - self.started
        self.rows.append(row)
        left = (self.plan.epochs - epoch - 1) * np.mean([r["seconds"] for r in self.rows])
        print(
            f"epoch {epoch + 1:>3}/{self.plan.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
            f"lr {row['learning_rate']:.2e}  {row['seconds']:.1f} s  (about {left / 60:.1f} min left)",
            flush=True,
        )


def _restore_checkpoint(checkpoint: Path, key: str) -> tuple[keras.Model, list[dict]] | None:
    """Return the checkpointed model and history if the checkpoint belongs to this run; else discard it."""
    state_path = checkpoint / "state.json"
    if not state_path.is_file():
        shutil.rmtree(checkpoint, ignore_errors=True)
        return None
    state = json.loads(state_path.read_text())
    if state.get("fingerprint") != key:
        print(f"discarding a checkpoint of a run with other parameters or data: {checkpoint}", flush=True)
        shutil.rmtree(checkpoint, ignore_errors=True)
        return None
    model = keras.saving.load_model(checkpoint / "model.keras", safe_mode=True)
    return model, state["history"]


def _save_checkpoint(checkpoint: Path, key: str, model: keras.Model, rows: list[dict]) -> None:
    """Save model, optimizer state and history after an epoch, each file atomically."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    with atomic_path(checkpoint / "model.keras") as temporary:
        model.save(temporary)
    write_text_atomic(checkpoint / "state.json", json.dumps({"fingerprint": key, "history": rows}))


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


def versions() -> dict[str, str]:
    """Versions of Python, TensorFlow and Keras, for the metrics file."""
    return {
        "python_version": platform.python_version(),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
    }


def train_model(
    plan: TrainingPlan,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    validation_images: np.ndarray,
    validation_labels: np.ndarray,
    out_dir: str | Path,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Train per `plan`; reuse a finished identical run in out_dir, or resume its checkpoint."""
    out_dir = Path(out_dir)
    checkpoint = out_dir / CHECKPOINT_DIR
    keras.utils.set_random_seed(plan.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(plan.arch, plan.augment)
    key = fingerprint(plan, model, train_images, train_labels, validation_images, validation_labels)
    finished = _finished_run(out_dir, key)
    if finished:
        print(f"reusing the finished {plan.arch} run in {out_dir}: same parameters, architecture and data "
              f"(delete that folder to train again)", flush=True)
        return finished
    restored = _restore_checkpoint(checkpoint, key)
    if restored:
        model, rows = restored
        print(f"resuming {plan.arch} after epoch {len(rows)} of {plan.epochs} from {checkpoint}", flush=True)
    else:
        rows = []
        compile_model(model, plan)
    print(f"training {plan.arch}: {len(train_images):,} images, {len(validation_images):,} for validation, "
          f"{plan.epochs} epochs, batch {plan.batch_size}, augment {plan.augment}, seed {plan.seed}", flush=True)
    targets = one_hot(train_labels)
    validation_batches = batches(validation_images, one_hot(validation_labels), 1000)
    progress = EpochProgress(plan, rows)
    resumed_after_epoch = len(rows)
    for epoch in range(resumed_after_epoch, plan.epochs):
        order = np.random.default_rng([plan.seed, epoch]).permutation(len(train_images))
        reseed_random_layers(model, plan.seed, epoch)
        model.optimizer.learning_rate.assign(learning_rate_at(plan, epoch))
        model.fit(
            batches(train_images[order], targets[order], plan.batch_size),
            validation_data=validation_batches, shuffle=False, verbose=0,
            initial_epoch=epoch, epochs=epoch + 1,
            callbacks=[progress, *extra_callbacks],
        )
        _save_checkpoint(checkpoint, key, model, rows)
    return TrainingResult(model, pd.DataFrame(rows, columns=HISTORY_COLUMNS), key,
                          resumed_after_epoch=resumed_after_epoch)


def save_run(result: TrainingResult, metrics: dict, out_dir: str | Path) -> None:
    """Write model.keras, history.csv and metrics.json atomically, then drop the checkpoint."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.keras") as temporary:
        result.model.save(temporary)
    write_frame_atomic(result.history, out_dir / "history.csv")
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)


def run_metrics(plan: TrainingPlan, result: TrainingResult, n_train: int, n_validation: int,
                test_accuracy: float | None, **extra: object) -> dict:
    """The metrics.json record of a finished run."""
    seconds = float(result.history["seconds"].sum())
    last = result.history.iloc[-1]
    return {
        "arch": plan.arch,
        "params": int(result.model.count_params()),
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "seed": plan.seed,
        "augment": plan.augment,
        "learning_rate": plan.learning_rate,
        "n_train": n_train,
        "n_validation": n_validation,
        "train_seconds": round(seconds, 2),
        "images_per_second": round(n_train * plan.epochs / seconds, 1),
        "val_accuracy": float(last["val_accuracy"]),
        "val_loss": float(last["val_loss"]),
        "test_accuracy": test_accuracy,
        **extra,
        "fingerprint": result.fingerprint,
        **versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
