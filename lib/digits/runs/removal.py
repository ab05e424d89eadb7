"""Removal: removing runs this project made, file by file, and never anything else.

A run folder is the project's when its run.json carries the project's mark with
the folder's own name. In it, only the files the project writes are removed (by
name: the run's records, its executed notebooks, checkpoints, predictions and
leftovers of killed writes); whatever else is there (a NOTES.md, a figure of your
own) is kept, and so is the folder that holds it.
"""

from __future__ import annotations

import json
from pathlib import Path

from digits.runs import MADE_BY, RUN_FILE, records, training_lock
from digits.runs.catalog import run_folders
from digits.util.files import PARTIAL, held_by_another
from digits.util.paths import project_root

# What the project writes into a run folder (or the exploration's), beside its executed notebooks.
RUN_FILES = ("run.json", "model.keras", "history.csv", "metrics.json", "evaluation.csv", "submission.csv",
             records.PROBABILITIES_FILE, records.CALIBRATION_FILE, records.EMBEDDING_FILE)
CHECKPOINT_FILES = ("checkpoint/model.keras", "checkpoint/state.json")
PREDICTION_FILES = ("predictions.csv", "predictions.png")
# What the project writes into MODELS_DIR itself, beside the run folders.
FOLDER_FILES = ("runs.csv", "chosen.json", "sweep.json")
COMPARISON_FIGURES = "compare-*.png"  # make compare RUN=a,b writes compare-a-b.png


def made_by_this_project(folder: Path) -> bool:
    """True for a folder this project made: its run.json names the folder and carries the project's mark."""
    try:
        record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and record.get("run") == folder.name and record.get("made_by") == MADE_BY


def project_folders(models_dir: Path) -> list[Path]:
    """The run folders in models_dir that this project made: what `make clean-models` removes."""
    return [folder for folder in run_folders(models_dir) if made_by_this_project(folder)]


def in_training(folder: Path) -> bool:
    """True while a command (a sweep's worker, perhaps on another machine) trains the run in `folder`."""
    return held_by_another(training_lock(folder))


def _executed_notebooks(folder: Path) -> list[Path]:
    """The executed copies of the project's notebooks (and of those that failed) in a run's notebooks/ folder."""
    names = [path.name for path in (project_root() / "notebooks").glob("*.ipynb")]
    # A run's notebooks are in its notebooks/ folder; the exploration's, in its own folder.
    return [place / (prefix + name) for place in (folder / "notebooks", folder) for name in names
            for prefix in ("", "_failed-")]


def made_files(folder: Path) -> list[Path]:
    """The files of a run folder that the project wrote (and that exist)."""
    candidates = [folder / name for name in (*RUN_FILES, *CHECKPOINT_FILES)] + _executed_notebooks(folder)
    candidates += [prediction / name for prediction in sorted(folder.glob("predictions/*/"))
                   for name in PREDICTION_FILES]
    candidates += [path for path in folder.rglob(".*") if PARTIAL.match(path.name)]
    return [path for path in candidates if path.is_file() and not path.is_symlink()]


def remove_run(folder: Path) -> list[Path]:
    """Remove the files the project made in a run folder, then the folders left empty; return the files kept."""
    for path in made_files(folder):
        path.unlink()
    for inner in sorted((path for path in folder.rglob("*") if path.is_dir() and not path.is_symlink()),
                        key=lambda path: len(path.parts), reverse=True):
        if not any(inner.iterdir()):
            inner.rmdir()
    kept = sorted(path for path in folder.rglob("*") if not path.is_dir() or path.is_symlink())
    if not kept and not any(folder.iterdir()):
        folder.rmdir()
        training_lock(folder).unlink(missing_ok=True)
    return kept


def remove_folder_files(models_dir: Path) -> None:
    """Remove what the project writes into MODELS_DIR beside the runs (the runs table, the choice, the last sweep)."""
    for name in FOLDER_FILES:
        (models_dir / name).unlink(missing_ok=True)
    for figure in models_dir.glob(COMPARISON_FIGURES):
        if figure.is_file() and not figure.is_symlink():
            figure.unlink()
