"""Records: the files of a finished run (model.keras, history.csv, metrics.json), checked before any use.

A damaged or foreign file is a ValueError naming it, never a traceback further
on. Nothing here imports TensorFlow: the checks read the files as archives,
CSV and JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digits.config import RECIPES
from digits.util import files
from digits.util.display import shown
from digits.util.files import atomic_path, write_text_atomic

HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
# A run this far (or more) below its recipe's full-data validation accuracy is called a quick run.
WEAK_RUN_MARGIN = 0.01


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_share(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= 1


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


# Each field a run's metrics.json must have, and what its value must be.
METRICS_FIELDS = {
    "run": (lambda value: isinstance(value, str) and value != "", "a name"),
    "arch": (lambda value: value in RECIPES, f"one of {', '.join(RECIPES)}"),
    "epochs": (lambda value: _is_count(value) and value > 0, "a whole number above 0"),
    "seed": (lambda value: _is_count(value) or isinstance(value, str), "a whole number (or a range for an ensemble)"),
    "val_accuracy": (_is_share, "a number from 0 to 1"),
    "train_seconds": (lambda value: _is_number(value) and value >= 0, "a number of seconds"),
    "fingerprint": (lambda value: isinstance(value, str), "text"),
    "finished_at": (_is_time, "a date and time (ISO 8601)"),
}
# Fields that may be missing (or null for a test accuracy not measured), but not of another type.
OPTIONAL_FIELDS = {
    "test_accuracy": (lambda value: value is None or _is_share(value), "a number from 0 to 1, or null"),
    "images_per_second": (lambda value: _is_number(value) and value >= 0, "a number"),
    "n_train": (_is_count, "a whole number"),
    "n_validation": (_is_count, "a whole number"),
    "params": (_is_count, "a whole number"),
    "members": (lambda value: isinstance(value, list) and all(isinstance(name, str) for name in value),
                "a list of run names"),
    "step_seconds": (lambda value: isinstance(value, dict) and all(_is_number(v) for v in value.values()),
                     "seconds by step"),
}


def read_metrics(run_dir: Path) -> dict:
    """The run's metrics.json, every field checked; ValueError naming the file and field when it is not right."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ValueError(f"{shown(path)}: missing")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{shown(path)}: not text (binary bytes)") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{shown(path)}: not valid JSON ({error})") from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{shown(path)}: not a run's metrics (a JSON object is expected)")  # noqa: TRY004 (a bad file)
    for name, (is_valid, expected) in METRICS_FIELDS.items():
        if name not in metrics:
            raise ValueError(f"{shown(path)}: not a run's metrics (no {name!r})")
        if not is_valid(metrics[name]):
            raise ValueError(f"{shown(path)}: {name} must be {expected}, got {metrics[name]!r}")
    for name, (is_valid, expected) in OPTIONAL_FIELDS.items():
        if name in metrics and not is_valid(metrics[name]):
            raise ValueError(f"{shown(path)}: {name} must be {expected}, got {metrics[name]!r}")
    return metrics


def save_metrics(run_dir: Path, metrics: dict) -> None:
    """Write the run's metrics.json atomically."""
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def record_scores(run_dir: Path, **scores: Any) -> dict:
    """Add scores (test accuracy) to the run's metrics.json; return the updated metrics."""
    metrics = {**read_metrics(run_dir), **scores}
    save_metrics(run_dir, metrics)
    return metrics


def check_model_file(path: Path) -> None:
    """Raise ValueError naming `path` unless it is a complete Keras archive (every member's CRC checked).

    An archive that passed and has not changed since (digits.util.files.CACHE) is not read again.
    """
    if not path.is_file():
        raise ValueError(f"{shown(path)}: missing")
    if files.CACHE.passed(path, "keras archive"):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{shown(path)}: not a Keras model file, truncated or corrupt ({error})") from None
    if damaged or not {"config.json", "model.weights.h5"} <= names:
        raise ValueError(f"{shown(path)}: not a Keras model file, truncated or corrupt")
    files.CACHE.remember(path, "keras archive")


def read_history(run_dir: Path, epochs: int) -> pd.DataFrame:
    """The run's history.csv; ValueError naming the file when it is missing, unreadable or incomplete."""
    path = run_dir / "history.csv"
    if not path.is_file():
        raise ValueError(f"{shown(path)}: missing")
    try:
        history = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{shown(path)}: unreadable ({error})") from None
    numeric = all(pd.api.types.is_numeric_dtype(history[column]) for column in history.columns)
    if list(history.columns) != HISTORY_COLUMNS or len(history) != epochs or not numeric or history.isna().any().any():
        raise ValueError(f"{shown(path)}: expected {epochs} rows of numbers: {', '.join(HISTORY_COLUMNS)}")
    return history


def check_finished(run_dir: Path) -> dict:
    """The metrics of a complete, undamaged finished run; ValueError naming the first bad file."""
    metrics = read_metrics(run_dir)
    if metrics["run"] != run_dir.name:
        raise ValueError(f"{shown(run_dir / 'metrics.json')}: the metrics of run {metrics['run']!r}, not of "
                         f"{run_dir.name!r}")
    check_model_file(run_dir / "model.keras")
    read_history(run_dir, metrics["epochs"])
    return metrics


def is_finished(run_dir: Path) -> bool:
    """True for a complete, undamaged finished run."""
    try:
        check_finished(run_dir)
    except ValueError:
        return False
    return True


def finished_at(run_dir: Path) -> str:
    """When the run (or evaluated ensemble) finished, from its metrics.json; "" when it has none that reads."""
    try:
        return read_metrics(run_dir)["finished_at"]
    except ValueError:
        return ""


def weak_run_note(metrics: dict) -> str:
    """One plain sentence when the run's validation accuracy is far below its recipe's full-data result, else ""."""
    expected = RECIPES[metrics["arch"]].full_data_val_accuracy
    if metrics["val_accuracy"] >= expected - WEAK_RUN_MARGIN:
        return ""
    epochs = metrics["epochs"]
    return (f"This is a quick run, not a result: its validation accuracy of {metrics['val_accuracy']:.2%} is far "
            f"below the {expected:.1%} that the {metrics['arch']} recipe reaches on all the training images "
            f"(this run: {metrics.get('n_train', 0):,} images, {epochs} epoch{'s' if epochs != 1 else ''}).")


def is_quick(metrics: dict) -> bool:
    """True for a quick run (far below its recipe's result): marked as such in tables and the report."""
    return bool(weak_run_note(metrics))


EVALUATION_COLUMNS = ["model", "validation accuracy", "test accuracy", "epochs"]


def read_evaluation(path: Path) -> pd.DataFrame:
    """A run's evaluation.csv (the run against the baselines); ValueError naming the file when it is not one."""
    try:
        table = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{shown(path)}: not text (binary bytes)") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{shown(path)}: unreadable ({error})") from None
    if list(table.columns) != EVALUATION_COLUMNS or table.empty:
        raise ValueError(f"{shown(path)}: expected the columns {', '.join(EVALUATION_COLUMNS)} and a row per model")
    for column in EVALUATION_COLUMNS[1:]:
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().sum() > table[column].isna().sum() or (column != "epochs" and not values.dropna().between(0, 1).all()):
            raise ValueError(f"{shown(path)}: column {column!r} must hold numbers"
                             f"{' from 0 to 1' if column != 'epochs' else ''}")
    return table.astype(object).where(table.notna(), None)


def reused_line(run_dir: Path) -> str:
    """`reused strided-e15-s42 (trained 2026-12-06, 5.7 min): nothing to train`, for a finished run."""
    metrics = read_metrics(run_dir)
    return (f"reused {metrics['run']} (trained {metrics['finished_at'][:10]}, {metrics['train_seconds'] / 60:.1f} "
            "min): nothing to train")


# --- The test probabilities evaluation keeps -----------------------------------------------------------------

PROBABILITIES_FILE = "test_probabilities.npz"
# What evaluation keeps with a run besides its probabilities (digits.calibration, digits.explain).
CALIBRATION_FILE = "calibration.json"
EMBEDDING_FILE = "embedding.npz"


def probabilities_source(single_runs: Sequence[Any], data_dir: Path) -> str:
    """What a run's test probabilities are made from: its models and test.csv, by content."""
    return files.digest_of(*(run.folder / "model.keras" for run in single_runs), Path(data_dir) / "test.csv")


def _probabilities_digest(probabilities: np.ndarray) -> str:
    """SHA-256 of stored probabilities' values, their shape and type."""
    values = np.ascontiguousarray(probabilities)
    return hashlib.sha256(f"{values.dtype.str}{values.shape}".encode() + values.tobytes()).hexdigest()


def save_probabilities(run_dir: Path, probabilities: np.ndarray, source: str) -> None:
    """Keep a run's test probabilities in its folder with what they were made from and their digest."""
    stored = probabilities.astype(np.float32)
    with atomic_path(run_dir / PROBABILITIES_FILE) as temporary:
        np.savez(temporary, probabilities=stored, source=source, digest=_probabilities_digest(stored))


def stored_probabilities(run_dir: Path, source: str, n_images: int) -> np.ndarray | None:
    """The test probabilities kept in a run's folder, if undamaged (checked against their digest), made from
    `source` and one row per image; else None. A damaged file is named in one line."""
    path = run_dir / PROBABILITIES_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            probabilities, stored_source, digest = stored["probabilities"], str(stored["source"]), str(stored["digest"])
    except Exception:  # noqa: BLE001 (a damaged archive raises whatever its damaged part makes zipfile or NumPy raise)
        digest = None
    if digest is None or digest != _probabilities_digest(probabilities):
        print(f"{shown(path)}: damaged: predicting the test images again", flush=True)
        return None
    return probabilities if stored_source == source and probabilities.shape == (n_images, 10) else None
