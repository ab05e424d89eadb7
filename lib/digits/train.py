"""Train: a run's seeded training loop, with reuse of a finished run, checkpoints and the run's records.

Each epoch's randomness (shuffle order, augmentation, dropout) is a function of
(seed, epoch) alone, so a run that resumes from its checkpoint replays exactly
the epochs an uninterrupted run would have, and ends with the same weights.

`train_run(run)` is what the training notebook calls: it trains the run (or
each member of an ensemble), or reuses it when it is finished with the same
plan, architecture and data, and writes model.keras, history.csv and
metrics.json into the run's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from digits import runs
from digits.config import CALIBRATION_IMAGES, N_CLASSES, TrainingPlan
from digits.data import Split, load_split
from digits.model import build_model, load_model
from digits.runs import Run, records
from digits.util.display import shown
from digits.util.files import atomic_path, write_frame_atomic, write_text_atomic

# --- The training loop ------------------------------------------------------------------------------


def new_model(plan: TrainingPlan) -> keras.Model:
    """The plan's network in the plan's precision, seeded and compiled (Adam, categorical cross-entropy)."""
    keras.utils.set_random_seed(plan.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(plan.arch, plan.augment, plan.precision)
    model.compile(optimizer=keras.optimizers.Adam(plan.learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=plan.label_smoothing),
                  metrics=["accuracy"])
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
            # Measured in float32 whatever precision computed the activations.
            mean, variance = keras.ops.moments(keras.ops.cast(activations, "float32"), axes=axes)
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        activations = layer(activations, training=False)


def print_progress(plan: TrainingPlan, rows: list[dict]) -> None:
    """One line for the last epoch, readable in a terminal, JupyterLab and papermill logs alike."""
    row = rows[-1]
    left = (plan.epochs - row["epoch"]) * np.mean([r["seconds"] for r in rows])
    print(f"epoch {row['epoch']:>3}/{plan.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
          f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
          f"lr {row['learning_rate']:.2e}  {row['seconds']:.1f} s  (about {left / 60:.1f} min left)", flush=True)


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


def train_model(plan: TrainingPlan, model: keras.Model, split: Split, rows: Sequence[dict] = (),
                after_epoch: Callable[[keras.Model, list[dict]], None] | None = None,
                extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> pd.DataFrame:
    """Train `model` per `plan` from the epoch after `rows` (the history so far); return the whole history.

    After each epoch the batch-normalisation statistics are measured on the
    training images, the validation images are scored in inference mode, and
    `after_epoch(model, rows)` runs (a checkpoint is saved there).
    """
    rows = list(rows)
    images, labels = split.train_images, split.train_labels
    print(f"training {plan.arch}: {len(images):,} images, {len(split.validation_images):,} for validation, "
          f"{plan.epochs} epoch{'s' if plan.epochs != 1 else ''}, batch {plan.batch_size}, augment {plan.augment}, "
          f"seed {plan.seed}, {plan.precision}", flush=True)
    targets = one_hot(labels)
    validation_batches = batches(split.validation_images, one_hot(split.validation_labels), 1000)
    for epoch in range(len(rows), plan.epochs):
        order = np.random.default_rng([plan.seed, epoch]).permutation(len(images))
        reseed_random_layers(model, plan.seed, epoch)
        model.optimizer.learning_rate.assign(plan.learning_rate_at(epoch))
        started = time.perf_counter()
        fitted = model.fit(batches(images[order], targets[order], plan.batch_size), shuffle=False, verbose=0,
                           initial_epoch=epoch, epochs=epoch + 1, callbacks=list(extra_callbacks))
        recalibrate_batch_norm(model, images[order[:CALIBRATION_IMAGES]])
        validation = model.evaluate(validation_batches, verbose=0, return_dict=True)
        rows.append({"epoch": epoch + 1, "loss": float(fitted.history["loss"][-1]),
                     "accuracy": float(fitted.history["accuracy"][-1]),
                     "val_loss": float(validation["loss"]), "val_accuracy": float(validation["accuracy"]),
                     "learning_rate": plan.learning_rate_at(epoch), "seconds": time.perf_counter() - started})
        if after_epoch:
            after_epoch(model, rows)
        print_progress(plan, rows)  # after the checkpoint: an epoch shown as done is kept
    return pd.DataFrame(rows, columns=records.HISTORY_COLUMNS)


# --- Reuse and checkpoints --------------------------------------------------------------------------


def fingerprint(plan: TrainingPlan, split: Split) -> str:
    """A key of plan, architecture and data: a checkpoint or finished run is reused only for the same key.

    The precision is how a run was computed, as the device is, not which run it is: a finished run is reused
    whichever precision trained it (metrics.json says which), so the key leaves it out.
    """
    checksum = 0
    for array in split:
        checksum = zlib.crc32(np.ascontiguousarray(array).data, checksum)
    shapes = [list(array.shape) for array in split]
    # The compiled network as float32 describes it; layer names are numbered per process ("conv2d_7") and do not
    # count.
    float32 = new_model(dataclasses.replace(plan, precision="float32"))
    architecture = re.sub(r'"name": "[^"]*"', "", float32.to_json())
    described = {key: value for key, value in asdict(plan).items() if key != "precision"}
    record = {"plan": described, "model": architecture, "data": [checksum, shapes]}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainingResult:
    """A trained model, its per-epoch history, and the key of the run that made it."""

    model: keras.Model
    history: pd.DataFrame
    fingerprint: str
    plan: TrainingPlan
    reused: bool = False  # True when a finished run with the same key was loaded instead of retrained
    resumed_after_epoch: int = 0  # epochs restored from a checkpoint of an interrupted run


def _finished_run(run: Run, plan: TrainingPlan, key: str) -> TrainingResult | None:
    """The finished run in its folder if it was made with the same key and is undamaged; else None, saying why."""
    if not (run.folder / "metrics.json").exists():
        return None
    try:
        metrics = records.check_finished(run.folder)
        if metrics["fingerprint"] != key:
            print(f"{shown(run.folder)} was trained with other data or code: training it again", flush=True)
            return None
        model = load_model(run.folder / "model.keras")
    except ValueError as error:
        print(f"damaged run: {error}; training it again", flush=True)
        return None
    return TrainingResult(model, records.read_history(run.folder, metrics["epochs"]), key, plan, reused=True)


def _restore_checkpoint(checkpoint: Path, key: str, precision: str) -> tuple[keras.Model, list[dict]] | None:
    """The checkpointed model and history if the checkpoint belongs to this run (and precision) and loads; else
    discard it."""
    try:
        state = json.loads((checkpoint / "state.json").read_text())
        if state.get("fingerprint") != key:
            raise ValueError("a checkpoint of a run with other parameters or data")
        if state.get("precision") != precision:
            raise ValueError(f"a checkpoint computed in {state.get('precision')}, not {precision}")
        return load_model(checkpoint / "model.keras"), state["history"]
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, AttributeError) as error:
        print(f"discarding the checkpoint in {shown(checkpoint)}: {error}", flush=True)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def _save_checkpoint(checkpoint: Path, key: str, precision: str, model: keras.Model, rows: list[dict]) -> None:
    """Save model, optimizer state and history after an epoch, each file atomically."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    with atomic_path(checkpoint / "model.keras") as temporary:
        model.save(temporary)
    write_text_atomic(checkpoint / "state.json",
                      json.dumps({"fingerprint": key, "precision": precision, "history": rows}))


def native_precision() -> str:
    """"mixed_bfloat16" where the machine computes in bfloat16 natively, else "float32".

    Natively: an x86 processor with AVX512-BF16 or AMX-BF16 (Linux says so in /proc/cpuinfo), or an NVIDIA GPU
    of compute capability 8.0 or more. Five default runs in bfloat16 scored as five in float32 (bench/RESULTS.md).
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "float32"
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "float32"
    return "mixed_bfloat16" if re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) else "float32"


def fit_run(run: Run, split: Split, extra_callbacks: Sequence[keras.callbacks.Callback] = (),
            precision: str | None = None) -> TrainingResult:
    """Train a single run on `split`: reuse the finished identical run, resume its checkpoint, or start afresh.

    `precision` None is the machine's native one (native_precision).
    """
    checkpoint = run.folder / runs.CHECKPOINT_DIR
    plan = dataclasses.replace(run.plan, precision=precision or native_precision())
    key = fingerprint(plan, split)
    finished = _finished_run(run, plan, key)
    if finished:
        print(records.reused_line(run.folder), flush=True)
        return finished
    rows: list[dict] = []
    model = new_model(plan)
    restored = _restore_checkpoint(checkpoint, key, plan.precision)
    if restored:
        model, rows = restored
        print(f"resuming after epoch {len(rows)} of {plan.epochs} from {shown(checkpoint)}", flush=True)
    history = train_model(plan, model, split, rows, extra_callbacks=extra_callbacks,
                          after_epoch=lambda model, rows: _save_checkpoint(checkpoint, key, plan.precision, model,
                                                                           rows))
    return TrainingResult(model, history, key, plan, resumed_after_epoch=len(rows))


# --- The run's records ------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of Python, TensorFlow and Keras, and the device that trained, for the metrics file."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:  # TensorFlow trains on the first visible GPU by itself
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        device = f"GPU: {name}"
    else:
        device = f"CPU: {platform.machine()}, {os.cpu_count()} cores"
    return {"python_version": platform.python_version(), "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__, "device": device}


def run_metrics(run: Run, result: TrainingResult, split: Split) -> dict:
    """The metrics.json record of a finished run: its parameters, scores, speed and versions."""
    seconds = float(result.history["seconds"].sum())
    last = result.history.iloc[-1]
    n_train = len(split.train_images)
    parameters = {name: value for name, value in run.parameters.items() if name != "ensemble"}
    return {
        "run": run.name,
        **parameters,
        "learning_rate": run.plan.learning_rate,
        "params": int(result.model.count_params()),
        "n_train": n_train,
        "n_validation": len(split.validation_images),
        "train_seconds": round(seconds, 2),
        "images_per_second": round(n_train * run.epochs / seconds, 1),
        "val_accuracy": float(last["val_accuracy"]),
        "val_loss": float(last["val_loss"]),
        "fingerprint": result.fingerprint,
        "precision": result.plan.precision,
        # Where it trained: this machine, or a sweep's worker (digits.pipeline.workers says which, host and address).
        "trained_on": os.environ.get("DIGITS_TRAINED_ON") or socket.gethostname(),
        "threads": int(os.environ.get("TF_NUM_INTRAOP_THREADS") or os.cpu_count() or 1),
        **versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def as_float32(model: keras.Model, plan: TrainingPlan) -> keras.Model:
    """The model with its weights, computing in float32: what a run keeps, whatever precision trained it."""
    if plan.precision == "float32":
        return model
    kept = build_model(plan.arch, plan.augment)
    kept.set_weights(model.get_weights())
    return kept


def save_run(run: Run, result: TrainingResult, split: Split) -> None:
    """Write model.keras, history.csv and metrics.json atomically (metrics last), then drop the checkpoint."""
    if result.reused:
        return  # the finished run on disk is this one: keep its record (finish time, test accuracy)
    with atomic_path(run.folder / "model.keras") as temporary:
        as_float32(result.model, result.plan).save(temporary)
    write_frame_atomic(result.history, run.folder / "history.csv")
    records.save_metrics(run.folder, run_metrics(run, result, split))
    shutil.rmtree(run.folder / runs.CHECKPOINT_DIR, ignore_errors=True)


def train_run(run: Run, split: Split | None = None, precision: str | None = None) -> dict[str, pd.DataFrame]:
    """Train the run, or each member of an ensemble (or reuse them); return each trained run's history by name."""
    split = split or load_split(run.data_dir, run.sample_size, run.validation_fraction)
    runs.create_folder(run)
    histories = {}
    for member in run.single_runs:
        if run.members:
            print(f"--- member {member.name} ({len(histories) + 1} of {run.ensemble})", flush=True)
        result = fit_run(member, split, precision=precision)
        save_run(member, result, split)
        histories[member.name] = result.history
        metrics = records.read_metrics(member.folder)
        print(records.weak_run_note(metrics) or f"{member.name}: validation accuracy {metrics['val_accuracy']:.2%}, "
              f"as expected for the {member.arch} recipe on this data", flush=True)
    return histories
