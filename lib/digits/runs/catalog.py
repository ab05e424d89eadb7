"""Catalog: the runs kept in a models folder: found by name or as the latest, listed, compared, cleaned.

"The latest run" has one meaning everywhere (the pipeline, the notebooks, `make
predict`): the newest finished run or trained ensemble made on the data that
DATA_DIR holds now.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from digits.data import data_tag
from digits.parameters import RUN_PARAMETERS
from digits.runs import (
    EXPLORE_DIR,
    MADE_BY,
    RUN_FILE,
    Run,
    check_ready,
    folders,
    load,
    read_record,
    records,
    training_lock,
)
from digits.util.display import shown
from digits.util.files import held_by_another


def find(name: str, data_dir: str | Path, models_dir: str | Path) -> Run:
    """The kept run (or ensemble) called `name`, ready to predict; "" for the latest on DATA_DIR's data."""
    data_dir, models_dir = folders({"data_dir": data_dir, "models_dir": models_dir})
    if not name:
        return latest(data_dir, models_dir)
    folder = models_dir / name
    if not (folder / RUN_FILE).is_file():
        raise ValueError(f"no run {name!r} in {shown(models_dir)} (`make runs` lists the finished ones)")
    run = load(folder, data_dir)
    check_ready(run)
    return run


def run_folders(models_dir: Path) -> Iterator[Path]:
    """Every folder in models_dir with a run.json (not links): the candidates for runs."""
    if models_dir.is_dir():
        for folder in sorted(models_dir.iterdir()):
            if folder.is_dir() and not folder.is_symlink() and (folder / RUN_FILE).is_file():
                yield folder


def made_by_this_project(folder: Path) -> bool:
    """True for a folder this project made: its run.json names the folder and carries the project's mark."""
    try:
        record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and record.get("run") == folder.name and record.get("made_by") == MADE_BY


def project_folders(models_dir: Path) -> list[Path]:
    """The folders in models_dir that this project made: what `make clean-models` removes."""
    return [folder for folder in run_folders(models_dir) if made_by_this_project(folder)]


def in_training(folder: Path) -> bool:
    """True while a command (a sweep's worker, perhaps on another machine) trains the run in `folder`."""
    return held_by_another(training_lock(folder))


def clean(models_dir: Path, folders: list[Path]) -> list[str]:
    """Remove the given folders (this project's runs) and runs.csv from models_dir; return their names."""
    import shutil

    removed = []
    for folder in folders:
        if folder.parent == models_dir and made_by_this_project(folder) and not in_training(folder):
            shutil.rmtree(folder)
            training_lock(folder).unlink(missing_ok=True)
            removed.append(folder.name)
    (models_dir / "runs.csv").unlink(missing_ok=True)
    return removed


def kept_runs(models_dir: Path, data_dir: Path) -> list[tuple[Run, str]]:
    """Every finished run and trained ensemble with when it finished, newest first (undamaged ones only)."""
    return _survey(models_dir, data_dir)[0]


def damaged_runs(models_dir: Path, data_dir: Path) -> list[str]:
    """Why each damaged run is left out of the catalog: one line naming the file (unfinished runs are not damaged)."""
    return _survey(models_dir, data_dir)[1]


def _survey(models_dir: Path, data_dir: Path) -> tuple[list[tuple[Run, str]], list[str]]:
    """The kept runs (with when each finished, newest first) and the problems of the damaged ones."""
    found, problems = [], []
    for folder in run_folders(models_dir):
        if folder.name == EXPLORE_DIR:
            continue
        try:
            run = load(folder, data_dir)
            check_ready(run)
            finished_at = records.finished_at(folder) or read_record(folder).get("created_at", "")
        except ValueError as error:
            if not str(error).endswith("metrics.json: missing"):  # a run still training, or never finished
                problems.append(str(error))
            continue
        found.append((run, finished_at))
    # An ensemble made when its last member finished counts as newer than that member.
    return sorted(found, key=lambda pair: (pair[1], pair[0].ensemble), reverse=True), problems


def latest(data_dir: Path, models_dir: Path) -> Run:
    """The newest finished run or ensemble made on the data that data_dir holds now; ValueError when none is."""
    tag = data_tag(data_dir)
    for run, _ in kept_runs(models_dir, data_dir):
        if run.data_tag == tag:
            return run
    raise ValueError(f"no finished run in {shown(models_dir)} for the data in {shown(data_dir)}: `make all` trains "
                     f"one, or name one with RUN=... (`make runs` lists them)")


def runs_table(models_dir: Path, data_dir: Path) -> pd.DataFrame:
    """One row per finished run and evaluated ensemble, newest first: name, the parameters that differ, scores.

    Numbers are rounded for people (metrics.json keeps them whole); quick runs are marked.
    """
    kept = [records.read_metrics(run.folder) for run, _ in kept_runs(models_dir, data_dir)
            if (run.folder / "metrics.json").is_file()]
    names = [p.name for p in RUN_PARAMETERS if p.name != "ensemble"]
    differing = [name for name in names if len({json.dumps(metrics.get(name)) for metrics in kept}) > 1]
    rows = [{
        "run": metrics["run"],
        **{name: metrics.get(name) for name in differing},
        "val_accuracy": round(metrics["val_accuracy"], 4),
        "test_accuracy": None if metrics.get("test_accuracy") is None else round(metrics["test_accuracy"], 4),
        "train_minutes": round(metrics["train_seconds"] / 60, 2),
        "images_per_second": round(metrics.get("images_per_second") or 0),
        "finished_at": metrics["finished_at"][:16].replace("T", " "),
        "quick": "quick run" if records.is_quick(metrics) else "",
    } for metrics in kept]
    columns = ["run", *differing, "val_accuracy", "test_accuracy", "train_minutes", "images_per_second",
               "finished_at", "quick"]
    return pd.DataFrame(rows, columns=columns)


def histories(models_dir: Path, data_dir: Path) -> dict[str, pd.DataFrame]:
    """The per-epoch history of every finished single run, newest first."""
    return {run.name: records.read_history(run.folder, run.epochs)
            for run, _ in kept_runs(models_dir, data_dir) if not run.members}


def sweep_summary(models_dir: Path, data_dir: Path, data_tag: str) -> tuple[str, pd.DataFrame] | None:
    """What the kept single runs on this data show, when they differ in one parameter at most (seeds aside).

    Returns the parameter ("seed" when only seeds differ) and a table, one row per value: the runs, the mean
    and spread (standard deviation, lowest, highest) of their test accuracy (validation accuracy where the test
    labels are not known), and their mean training minutes. None when there is nothing to compare.
    """
    rows = [records.read_metrics(run.folder) for run, _ in kept_runs(models_dir, data_dir)
            if not run.members and run.data_tag == data_tag]
    if len(rows) < 2:
        return None
    frame = pd.DataFrame(rows)
    score = "test_accuracy" if frame.get("test_accuracy", pd.Series(dtype=float)).notna().all() else "val_accuracy"
    names = [p.name for p in RUN_PARAMETERS if p.name not in ("seed", "ensemble") and p.name in frame]
    varying = [name for name in names if frame[name].astype(str).nunique() > 1]
    if len(varying) > 1 or (not varying and frame["seed"].nunique() < 2):
        return None
    parameter = varying[0] if varying else "seed"
    groups = frame.groupby(parameter if varying else lambda _: "all", sort=True)
    summary = pd.DataFrame({
        "runs": groups.size(),
        "mean": groups[score].mean(),
        "sd": groups[score].std(ddof=1),
        "lowest": groups[score].min(),
        "highest": groups[score].max(),
        "minutes": groups["train_seconds"].mean() / 60,
    }).reset_index(names=parameter)
    summary.attrs["score"] = score
    return parameter, summary
