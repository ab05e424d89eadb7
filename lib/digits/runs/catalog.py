"""Catalog: the runs kept in a models folder: found by name, chosen, listed.

"The chosen run" has one meaning everywhere (the pipeline, the notebooks, `make
predict`, `make kaggle-submit`): the run that the last `make all` or `make train`
named, or that `make use RUN=name` chose (MODELS_DIR/chosen.json); where none
was chosen, or the chosen one is gone or made on other data, the newest finished
run or ensemble made on the data that DATA_DIR holds now. A sweep never changes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
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
)
from digits.util.display import shown
from digits.util.files import write_text_atomic

CHOSEN_FILE = "chosen.json"


@dataclass(frozen=True)
class Choice:
    """The run a command uses when none is named, and why that one."""

    run: Run
    why: str


def find(name: str, data_dir: str | Path, models_dir: str | Path) -> Run:
    """The kept run (or ensemble) called `name`, ready to predict; "" for the chosen run on DATA_DIR's data."""
    data_dir, models_dir = folders({"data_dir": data_dir, "models_dir": models_dir})
    if not name:
        return chosen(data_dir, models_dir).run
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


def choose(run: Run, why: str) -> None:
    """Make `run` the one that commands and notebooks use when none is named; `why` says who chose it."""
    record = {"run": run.name, "made_by": MADE_BY, "why": why,
              "chosen_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_text_atomic(run.models_dir / CHOSEN_FILE, json.dumps(record, indent=2) + "\n")


def _chosen_record(models_dir: Path) -> dict | None:
    """MODELS_DIR/chosen.json when it is one of this project's, else None."""
    try:
        record = json.loads((models_dir / CHOSEN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    fields_ok = isinstance(record, dict) and all(isinstance(record.get(key), str) for key in ("run", "why", "chosen_at"))
    return record if fields_ok and record.get("made_by") == MADE_BY and Path(record["run"]).name == record["run"] else None


def chosen(data_dir: Path, models_dir: Path) -> Choice:
    """The run commands use when none is named: the one last named by `make all`/`make train` or chosen with
    `make use`; else the newest finished run on this data. ValueError when there is none at all."""
    record = _chosen_record(models_dir)
    aside = ""
    if record:
        try:
            run = find(record["run"], data_dir, models_dir)
        except ValueError:
            aside = f"; the chosen run {record['run']} is gone or unfinished"
        else:
            if run.data_tag == data_tag(data_dir):
                return Choice(run, f"{record['why']} ({record['chosen_at'][:10]})")
            aside = f"; the chosen run {record['run']} was trained on other data than {shown(data_dir)} holds"
    return Choice(latest(data_dir, models_dir), f"the newest finished run{aside or ': none was chosen'} "
                                               "(`make use RUN=name` chooses one)")


# The columns `make runs SORT=...` sorts by, best first for those where more is better.
SORTABLE = {"val_accuracy": True, "test_accuracy": True, "images_per_second": True, "finished_at": True,
            "train_minutes": False, "run": False}
NOTES_FILE = "NOTES.md"


def note_of(folder: Path) -> str:
    """The first line of a run folder's NOTES.md (a note kept with the run by its user), or ""."""
    try:
        with open(folder / NOTES_FILE, encoding="utf-8", errors="replace") as handle:
            return handle.readline().strip().lstrip("#").strip()[:120]
    except OSError:
        return ""


def _selected(metrics: dict, where: Mapping[str, list]) -> bool:
    """True when a run's values are among those `where` lists for each parameter it names (None: any)."""
    values = {**metrics, "ensemble": len(metrics.get("members", [])) or 1}
    return all(values.get(name) in listed for name, listed in where.items() if None not in listed)


def runs_table(models_dir: Path, data_dir: Path, where: Mapping[str, list] | None = None,
               sort: str = "") -> pd.DataFrame:
    """One row per finished run and evaluated ensemble (those `where` selects), newest first or by `sort`: name, the
    parameters that differ, scores, and the first line of a NOTES.md kept with it.

    Numbers are rounded for people (metrics.json keeps them whole); quick runs are marked.
    """
    kept = [(run, records.read_metrics(run.folder)) for run, _ in kept_runs(models_dir, data_dir)
            if (run.folder / "metrics.json").is_file()]
    kept = [(run, metrics) for run, metrics in kept if _selected(metrics, where or {})]
    names = [p.name for p in RUN_PARAMETERS if p.name != "ensemble"]
    differing = [name for name in names if len({json.dumps(metrics.get(name)) for _, metrics in kept}) > 1]
    notes = {run.name: note_of(run.folder) for run, _ in kept}
    rows = [{
        "run": metrics["run"],
        **{name: metrics.get(name) for name in differing},
        "val_accuracy": round(metrics["val_accuracy"], 4),
        "test_accuracy": None if metrics.get("test_accuracy") is None else round(metrics["test_accuracy"], 4),
        "train_minutes": round(metrics["train_seconds"] / 60, 2),
        "images_per_second": round(metrics.get("images_per_second") or 0),
        "finished_at": metrics["finished_at"][:16].replace("T", " "),
        "quick": "quick run" if records.is_quick(metrics) else "",
        **({"note": notes[run.name]} if any(notes.values()) else {}),
    } for run, metrics in kept]
    columns = ["run", *differing, "val_accuracy", "test_accuracy", "train_minutes", "images_per_second",
               "finished_at", "quick", *(["note"] if any(notes.values()) else [])]
    table = pd.DataFrame(rows, columns=columns)
    if sort and sort in table:
        table = table.sort_values(sort, ascending=not SORTABLE.get(sort, False), kind="stable", na_position="last")
    return table.reset_index(drop=True)


def histories(models_dir: Path, data_dir: Path) -> dict[str, pd.DataFrame]:
    """The per-epoch history of every finished single run, newest first."""
    return {run.name: records.read_history(run.folder, run.epochs)
            for run, _ in kept_runs(models_dir, data_dir) if not run.members}


def single_run_metrics(models_dir: Path, data_dir: Path) -> list[dict]:
    """The metrics of every finished single run (no ensembles) made on the data that data_dir holds now."""
    tag = data_tag(data_dir)
    return [records.read_metrics(run.folder) for run, _ in kept_runs(models_dir, data_dir)
            if not run.members and run.data_tag == tag]


SWEEP_FILE = "sweep.json"


def record_sweep(models_dir: Path, described: str, swept: list[str], names: list[str]) -> None:
    """Remember the last sweep (its grid and runs), so that the report made after it shows its answer first."""
    record = {"made_by": MADE_BY, "grid": described, "swept": swept, "runs": names,
              "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_text_atomic(models_dir / SWEEP_FILE, json.dumps(record, indent=2) + "\n")


def last_sweep(models_dir: Path) -> dict | None:
    """The record of the last sweep in models_dir, or None (none, or not one of this project's)."""
    try:
        record = json.loads((models_dir / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    valid = (isinstance(record, dict) and record.get("made_by") == MADE_BY and isinstance(record.get("grid"), str)
             and all(isinstance(record.get(key), list) for key in ("swept", "runs")))
    return record if valid else None
