"""Runs: one folder per parameter set, the pipeline's only state.

    models/<run>/                 for example strided-e15-s42, or strided-e1-s42-n2000 when sampled
        run.json                  its parameters; marks the folder as one this project made
        checkpoint/               model and history after each epoch, while it trains
        model.keras  history.csv  metrics.json      the finished run
        evaluation.csv  submission.csv              written by evaluation and submission
        notebooks/                the run's executed notebooks

A finished run is reused whenever the same parameters, architecture and data
ask for it again; a damaged one is found before use and trained again. The
checks of a folder need no TensorFlow (the Make steps run them); the functions
that load or save models import Keras when called.

    python -m digits.runs table --models-dir models    # print and write models/runs.csv
    python -m digits.runs clean --models-dir models    # remove the project's run folders
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from digits.config import RECIPES, RUN_PARAMETERS, TrainingPlan, plan_of, shown
from digits.data import data_tag
from digits.files import atomic_path, write_frame_atomic, write_text_atomic

if TYPE_CHECKING:
    import keras
    import numpy as np

RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoint"
NOTEBOOKS_DIR = "notebooks"
EXPLORE_DIR = "explore"
RUNS_TABLE = "runs.csv"
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
METRICS_KEYS = {"run", "arch", "epochs", "seed", "val_accuracy", "train_seconds", "fingerprint", "finished_at"}


# --- Names and parameters -----------------------------------------------------------------------


def resolved_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Checked run parameters with the recipe's values filled in for the unset ones."""
    plan = plan_of(parameters)
    values = {p.name: parameters[p.name] for p in RUN_PARAMETERS if p.name in parameters and p.name != "ensemble"}
    return {**values, "epochs": plan.epochs, "batch_size": plan.batch_size, "augment": plan.augment}


def _name_part(value: Any) -> str:
    """A parameter value as it appears in a run's name."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_name(parameters: Mapping[str, Any], data_tag: str = "", ensemble: int = 1) -> str:
    """A readable folder name from the parameters that define the run: strided-e15-s42, strided-e1-s42-n2000.

    An ensemble of N runs with seeds SEED..SEED+N-1 is named after its first member with `-ensN`.
    """
    values = resolved_parameters(parameters)
    defaults = resolved_parameters({p.name: p.default for p in RUN_PARAMETERS} | {"arch": values["arch"]})
    parts = [values["arch"]]
    for parameter in RUN_PARAMETERS:
        if parameter.name == "arch" or not (parameter.label or parameter.always_named):
            continue
        if parameter.always_named or values[parameter.name] != defaults[parameter.name]:
            parts.append(parameter.label + _name_part(values[parameter.name]))
    parts += [f"ens{ensemble}"] if ensemble > 1 else []
    return "-".join(parts + ([data_tag] if data_tag else []))


def run_dir_for(parameters: Mapping[str, Any], data_dir: Path, models_dir: Path, ensemble: int = 1) -> Path:
    """The folder of the run (or ensemble) these parameters define on the data in data_dir."""
    return Path(models_dir) / run_name(parameters, data_tag(Path(data_dir)), ensemble)


def member_parameters(parameters: Mapping[str, Any], ensemble: int) -> list[dict[str, Any]]:
    """The parameters of an ensemble's members: the same but for consecutive seeds."""
    return [{**parameters, "seed": parameters["seed"] + index} for index in range(ensemble)]


def members_of(run_dir: Path) -> list[Path]:
    """The runs whose models predict for run_dir: its members for an ensemble, else the run itself."""
    try:
        record = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return [run_dir]
    if record.get("kind") != "ensemble":
        return [run_dir]
    return [run_dir.parent / name for name in record["members"]]


def is_ensemble(run_dir: Path) -> bool:
    """True for an ensemble's folder."""
    return members_of(run_dir) != [run_dir]


def check_ready(run_dir: Path) -> list[Path]:
    """The finished runs that predict for run_dir (one, or an ensemble's members); ValueError naming a bad file."""
    members = members_of(run_dir)
    for member in members:
        check_finished(member)
    return members


def ensemble_metrics(ensemble_dir: Path, val_accuracy: float, test_accuracy: float | None) -> dict:
    """The metrics.json record of an ensemble: what its members share, their total time, its own scores."""
    folders = members_of(ensemble_dir)
    members = [read_metrics(member) for member in folders]
    seconds = sum(member["train_seconds"] for member in members)
    return {
        # Only what every member has alike (parameters, data sizes, versions): not one member's scores or extras.
        **{key: value for key, value in members[0].items() if all(m.get(key) == value for m in members[1:])},
        "run": ensemble_dir.name,
        "kind": "ensemble",
        "members": [folder.name for folder in folders],
        "seed": f"{members[0]['seed']}-{members[-1]['seed']}",
        "train_seconds": round(seconds, 2),
        "images_per_second": round(sum(m["n_train"] * m["epochs"] for m in members) / seconds, 1),
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "fingerprint": hashlib.sha256(" ".join(m["fingerprint"] for m in members).encode()).hexdigest()[:16],
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def find_run(models_dir: Path, name: str = "") -> Path:
    """The named run's (or ensemble's) folder, or the latest finished run for ""; ValueError when not ready."""
    if not name:
        return latest_run(Path(models_dir))
    run_dir = Path(models_dir) / name
    check_ready(run_dir)
    return run_dir


def start_run(run_dir: Path, parameters: Mapping[str, Any], members: Sequence[Path] = ()) -> None:
    """Create the folder of a run (or, given its members, an ensemble) and record it in run.json if it is new."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"run": run_dir.name, "parameters": resolved_parameters(parameters)}
    if members:
        record |= {"kind": "ensemble", "members": [member.name for member in members]}
    if not (run_dir / RUN_FILE).is_file():
        write_text_atomic(run_dir / RUN_FILE, json.dumps(record, indent=2) + "\n")


# --- Checking a run folder (no TensorFlow) ------------------------------------------------------


def read_metrics(run_dir: Path) -> dict:
    """The run's metrics.json; ValueError naming the file when it is missing or unreadable."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ValueError(f"{shown(path)}: missing")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{shown(path)}: not valid JSON ({error})") from None
    if not isinstance(metrics, dict) or not METRICS_KEYS <= set(metrics):
        raise ValueError(f"{shown(path)}: not a run's metrics (expected the keys {', '.join(sorted(METRICS_KEYS))})")
    return metrics


def check_model_file(path: Path) -> None:
    """Raise ValueError naming `path` unless it is a complete Keras archive (every member's CRC checked)."""
    if not path.is_file():
        raise ValueError(f"{shown(path)}: missing")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{shown(path)}: not a Keras model file, truncated or corrupt ({error})") from None
    if damaged or not {"config.json", "model.weights.h5"} <= names:
        raise ValueError(f"{shown(path)}: not a Keras model file, truncated or corrupt")


def read_history(run_dir: Path, epochs: int) -> pd.DataFrame:
    """The run's history.csv; ValueError naming the file when it is missing, unreadable or incomplete."""
    path = run_dir / "history.csv"
    if not path.is_file():
        raise ValueError(f"{shown(path)}: missing")
    try:
        history = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{shown(path)}: unreadable ({error})") from None
    if list(history.columns) != HISTORY_COLUMNS or len(history) != epochs or history.isna().any().any():
        raise ValueError(f"{shown(path)}: expected {epochs} rows of {', '.join(HISTORY_COLUMNS)}")
    return history


def check_finished(run_dir: Path) -> dict:
    """Return the metrics of a complete, undamaged finished run; ValueError naming the first bad file."""
    metrics = read_metrics(run_dir)
    check_model_file(run_dir / "model.keras")
    read_history(run_dir, int(metrics["epochs"]))
    return metrics


def is_finished(run_dir: Path) -> bool:
    """True for a complete, undamaged finished run."""
    try:
        check_finished(run_dir)
    except ValueError:
        return False
    return True


# --- Training bookkeeping: reuse, checkpoints, saving -------------------------------------------


def fingerprint(plan: TrainingPlan, model: keras.Model, *arrays: np.ndarray) -> str:
    """A key of plan, architecture and data: a checkpoint or finished run is reused only for the same key."""
    import numpy as np

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


def _finished_run(run_dir: Path, key: str) -> TrainingResult | None:
    """The finished run in run_dir if it was made with the same key and is undamaged; else None, saying why."""
    from digits.model import load_model

    if not (run_dir / "metrics.json").exists():
        return None
    try:
        metrics = check_finished(run_dir)
        if metrics["fingerprint"] != key:
            print(f"{shown(run_dir)} was trained with other data or code: training it again", flush=True)
            return None
        model = load_model(run_dir / "model.keras")
    except ValueError as error:
        print(f"damaged run: {error}; training it again", flush=True)
        return None
    return TrainingResult(model, read_history(run_dir, int(metrics["epochs"])), key, reused=True)


def _restore_checkpoint(checkpoint: Path, key: str) -> tuple[keras.Model, list[dict]] | None:
    """The checkpointed model and history if the checkpoint belongs to this run and loads; else discard it."""
    from digits.model import load_model

    state_path = checkpoint / "state.json"
    try:
        state = json.loads(state_path.read_text())
        if state.get("fingerprint") != key:
            raise ValueError("a checkpoint of a run with other parameters or data")
        return load_model(checkpoint / "model.keras"), state["history"]
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, AttributeError) as error:
        print(f"discarding the checkpoint in {shown(checkpoint)}: {error}", flush=True)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def _save_checkpoint(checkpoint: Path, key: str, model: keras.Model, rows: list[dict]) -> None:
    """Save model, optimizer state and history after an epoch, each file atomically."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    with atomic_path(checkpoint / "model.keras") as temporary:
        model.save(temporary)
    write_text_atomic(checkpoint / "state.json", json.dumps({"fingerprint": key, "history": rows}))


def train_run(plan: TrainingPlan, train_images: np.ndarray, train_labels: np.ndarray,
              validation_images: np.ndarray, validation_labels: np.ndarray, run_dir: str | Path,
              extra_callbacks: tuple = ()) -> TrainingResult:
    """Train per `plan` in run_dir: reuse the finished identical run, resume its checkpoint, or start afresh."""
    from digits import train

    run_dir = Path(run_dir)
    checkpoint = run_dir / CHECKPOINT_DIR
    model = train.new_model(plan)
    key = fingerprint(plan, model, train_images, train_labels, validation_images, validation_labels)
    finished = _finished_run(run_dir, key)
    if finished:
        print(f"reusing the finished run {shown(run_dir)}: same parameters, architecture and data", flush=True)
        return finished
    rows: list[dict] = []
    restored = _restore_checkpoint(checkpoint, key)
    if restored:
        model, rows = restored
        print(f"resuming after epoch {len(rows)} of {plan.epochs} from {shown(checkpoint)}", flush=True)
    history = train.train_model(
        plan, model, train_images, train_labels, validation_images, validation_labels, rows,
        after_epoch=lambda model, rows: _save_checkpoint(checkpoint, key, model, rows),
        extra_callbacks=extra_callbacks,
    )
    return TrainingResult(model, history, key, resumed_after_epoch=len(rows))


def versions() -> dict[str, str]:
    """Versions of Python, TensorFlow and Keras, and the device that trained, for the metrics file."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:  # TensorFlow trains on the first visible GPU by itself
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        device = f"GPU: {name}"
    else:
        device = f"CPU: {platform.machine()}, {os.cpu_count()} cores"
    return {"python_version": platform.python_version(), "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__, "device": device}


def run_metrics(run_dir: Path, parameters: Mapping[str, Any], result: TrainingResult, n_train: int,
                n_validation: int) -> dict:
    """The metrics.json record of a finished run: its parameters, scores, speed and versions."""
    seconds = float(result.history["seconds"].sum())
    last = result.history.iloc[-1]
    values = resolved_parameters(parameters)
    return {
        "run": run_dir.name,
        **values,
        "learning_rate": plan_of(values).learning_rate,
        "params": int(result.model.count_params()),
        "n_train": n_train,
        "n_validation": n_validation,
        "train_seconds": round(seconds, 2),
        "images_per_second": round(n_train * values["epochs"] / seconds, 1),
        "val_accuracy": float(last["val_accuracy"]),
        "val_loss": float(last["val_loss"]),
        "fingerprint": result.fingerprint,
        **versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save_run(result: TrainingResult, metrics: dict, run_dir: str | Path) -> None:
    """Write model.keras, history.csv and metrics.json atomically (metrics last), then drop the checkpoint."""
    run_dir = Path(run_dir)
    if result.reused and read_metrics(run_dir)["fingerprint"] == result.fingerprint:
        return  # the finished run on disk is this one: keep its record (finish time, test accuracy)
    with atomic_path(run_dir / "model.keras") as temporary:
        result.model.save(temporary)
    write_frame_atomic(result.history, run_dir / "history.csv")
    save_metrics(run_dir, metrics)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)


def save_metrics(run_dir: Path, metrics: dict) -> None:
    """Write the run's metrics.json atomically."""
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def record_scores(run_dir: Path, **scores: float | None) -> dict:
    """Add scores (test accuracy) to the run's metrics.json; return the updated metrics."""
    metrics = {**read_metrics(run_dir), **scores}
    save_metrics(run_dir, metrics)
    return metrics


# A run this far (or more) below its recipe's full-data validation accuracy is called a quick run.
WEAK_RUN_MARGIN = 0.01


def weak_run_note(metrics: dict) -> str:
    """One plain sentence when the run's validation accuracy is far below its recipe's full-data result, else ""."""
    expected = RECIPES[metrics["arch"]].full_data_val_accuracy
    if metrics["val_accuracy"] >= expected - WEAK_RUN_MARGIN:
        return ""
    return (f"This is a quick run, not a result: its validation accuracy of {metrics['val_accuracy']:.2%} is far "
            f"below the {expected:.1%} that the {metrics['arch']} recipe reaches on all the training images "
            f"(this run: {metrics['n_train']:,} images, {metrics['epochs']} epoch"
            f"{'s' if metrics['epochs'] != 1 else ''}).")


# --- All runs: listing, comparing, cleaning -----------------------------------------------------


def run_folders(models_dir: Path) -> Iterator[Path]:
    """Every folder in models_dir that this project made (a run, or the exploration)."""
    if models_dir.is_dir():
        for folder in sorted(models_dir.iterdir()):
            if folder.is_dir() and not folder.is_symlink() and (folder / RUN_FILE).is_file():
                yield folder


def finished_runs(models_dir: Path) -> list[dict]:
    """The metrics of every finished, undamaged run, newest first."""
    found = []
    for folder in run_folders(models_dir):
        try:
            found.append(check_finished(folder))
        except ValueError:
            continue
    return sorted(found, key=lambda metrics: metrics["finished_at"], reverse=True)


def latest_run(models_dir: Path) -> Path:
    """The most recently finished run or evaluated ensemble; ValueError when there is none."""
    runs = finished_runs_and_ensembles(models_dir)
    if not runs:
        raise ValueError(f"no finished run in {shown(models_dir)}: `make all` trains one, "
                         f"or give parameters (for example `make report EPOCHS=15`)")
    return models_dir / runs[0]["run"]


def finished_ensembles(models_dir: Path) -> list[dict]:
    """The metrics of every evaluated ensemble whose members are all finished, newest first."""
    found = []
    for folder in run_folders(models_dir):
        try:
            if is_ensemble(folder):
                check_ready(folder)
                found.append(read_metrics(folder))
        except ValueError:
            continue
    return sorted(found, key=lambda metrics: metrics["finished_at"], reverse=True)


def finished_runs_and_ensembles(models_dir: Path) -> list[dict]:
    """The metrics of every finished run and evaluated ensemble, newest first."""
    return sorted(finished_runs(models_dir) + finished_ensembles(models_dir),
                  key=lambda metrics: metrics["finished_at"], reverse=True)


def runs_table(models_dir: Path) -> pd.DataFrame:
    """One row per finished run and ensemble, newest first: name, the parameters that differ, scores, speed."""
    runs = finished_runs_and_ensembles(models_dir)
    names = list(resolved_parameters(runs[0])) if runs else []
    differing = [name for name in names if len({json.dumps(run.get(name)) for run in runs}) > 1]
    rows = [{
        "run": run["run"],
        **{name: run.get(name) for name in differing},
        "val_accuracy": run["val_accuracy"],
        "test_accuracy": run.get("test_accuracy"),
        "train_minutes": round(run["train_seconds"] / 60, 2),
        "images_per_second": run.get("images_per_second"),
        "finished_at": run["finished_at"][:16].replace("T", " "),
    } for run in runs]
    columns = ["run", *differing, "val_accuracy", "test_accuracy", "train_minutes", "images_per_second",
               "finished_at"]
    return pd.DataFrame(rows, columns=columns)


def histories(models_dir: Path) -> dict[str, pd.DataFrame]:
    """The per-epoch history of every finished run, newest first."""
    return {run["run"]: read_history(models_dir / run["run"], int(run["epochs"]))
            for run in finished_runs(models_dir)}


def clean(models_dir: Path) -> list[str]:
    """Remove every run folder this project made in models_dir (and runs.csv); return their names."""
    removed = []
    for folder in run_folders(models_dir):
        shutil.rmtree(folder)
        removed.append(folder.name)
    (models_dir / RUNS_TABLE).unlink(missing_ok=True)
    return removed


def _format_table(table: pd.DataFrame) -> str:
    """The runs table as aligned text, accuracies as percentages."""
    shown_table = table.copy()
    for column in ("val_accuracy", "test_accuracy"):
        shown_table[column] = shown_table[column].map(
            lambda value: "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2%}")
    return shown_table.to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    """Command line: `table` prints and writes runs.csv; `clean` removes the run folders."""
    parser = argparse.ArgumentParser(description="List or remove the runs in a models folder.")
    parser.add_argument("command", choices=["table", "clean"])
    parser.add_argument("--models-dir", default=os.environ.get("MODELS_DIR") or "models")
    arguments = parser.parse_args(argv)
    models_dir = Path(arguments.models_dir)
    try:
        if arguments.command == "clean":
            removed = clean(models_dir)
            print(f"removed {len(removed)} folder(s) from {models_dir}: {', '.join(removed) or 'none'}")
            return 0
        table = runs_table(models_dir)
        if models_dir.is_dir():
            write_frame_atomic(table, models_dir / RUNS_TABLE)
        print(_format_table(table) if len(table) else f"no finished runs in {models_dir}")
        if len(table):
            print(f"(newest first; written to {shown(models_dir / RUNS_TABLE)})")
    except OSError as error:
        print(f"error: {error.filename or models_dir}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
