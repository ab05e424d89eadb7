"""Runs: one folder per parameter set, worked out once by `resolve`, found again by `find` and `latest`.

    models/<run>/                 for example strided-e15-s42, or strided-e1-s42-n2000 when sampled
        run.json                  its parameters; marks the folder as one this project made
        checkpoint/               model and history after each epoch, while it trains
        model.keras  history.csv  metrics.json      the finished run
        evaluation.csv  submission.csv              written by evaluation and submission
        notebooks/                the run's executed notebooks

Everything that needs a run (the pipeline, the training notebook under papermill
or by hand in JupyterLab, evaluation, submission, prediction, the report) gets
a `Run` from `resolve` (parameters to a run) or `find` (a kept run by name, or
the latest for the data in DATA_DIR), so no two places can disagree on its name,
folder or recipe. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from digits import records
from digits.config import RECIPES, TrainingPlan
from digits.data import count_rows, data_tag
from digits.display import shown
from digits.files import write_text_atomic
from digits.parameters import RUN_PARAMETERS, check_parameters, check_path
from digits.paths import project_path

RUN_FILE = "run.json"
# In every run.json this project writes, beside the run's own name: what `make clean-models` looks for.
MADE_BY = "digit-recognizer"
CHECKPOINT_DIR = "checkpoint"
NOTEBOOKS_DIR = "notebooks"
EXPLORE_DIR = "explore"


@dataclass(frozen=True)
class Run:
    """A run (or an ensemble of runs), its parameters resolved from the recipe, its name and folder."""

    name: str
    folder: Path
    arch: str
    epochs: int
    seed: int
    batch_size: int
    sample_size: int
    validation_fraction: float
    augment: bool
    data_dir: Path  # the folder of the data it trains (or was trained) on
    data_tag: str  # "" for the embedded MNIST, else "d" and the start of train.csv's SHA-256
    members: tuple[Run, ...] = ()  # an ensemble's runs, seeds SEED..SEED+N-1; () for a single run

    @property
    def ensemble(self) -> int:
        """How many runs it averages: 1 for a single run."""
        return len(self.members) or 1

    @property
    def trained(self) -> tuple[Run, ...]:
        """The runs whose models predict for it: its members, or the run itself."""
        return self.members or (self,)

    @property
    def models_dir(self) -> Path:
        """The folder of the runs."""
        return self.folder.parent

    @property
    def parameters(self) -> dict[str, Any]:
        """Its run parameters, resolved, in the order of the parameter list."""
        return {parameter.name: self.ensemble if parameter.name == "ensemble" else getattr(self, parameter.name)
                for parameter in RUN_PARAMETERS}

    @property
    def plan(self) -> TrainingPlan:
        """Every parameter that decides the trained weights."""
        recipe = RECIPES[self.arch]
        return TrainingPlan(arch=self.arch, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                            augment=self.augment, learning_rate=recipe.learning_rate,
                            cosine_schedule=recipe.cosine_schedule, label_smoothing=recipe.label_smoothing)


# --- Working a run out ------------------------------------------------------------------------------------


def resolved_values(checked: Mapping[str, Any]) -> dict[str, Any]:
    """Checked run parameters (but ensemble) with the recipe's values filled in for the unset ones."""
    recipe = RECIPES[checked["arch"]]
    values = {p.name: checked[p.name] for p in RUN_PARAMETERS if p.name != "ensemble"}
    for name in ("epochs", "batch_size", "augment"):
        if values[name] is None:
            values[name] = getattr(recipe, name)
    return values


def _name_part(value: Any) -> str:
    """A parameter value as it appears in a run's name."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_name(values: Mapping[str, Any], tag: str = "", ensemble: int = 1) -> str:
    """A readable folder name from resolved parameters: strided-e15-s42, strided-e1-s42-n2000, ...-ens5, ...-d1a2b3c.

    Only what differs from the defaults is named, besides the architecture, epochs and seed.
    """
    defaults = resolved_values(check_parameters(**({p.name: p.default for p in RUN_PARAMETERS} | {"arch": values["arch"]})))
    parts = [values["arch"]]
    for parameter in RUN_PARAMETERS:
        if parameter.label and (parameter.always_named or values[parameter.name] != defaults[parameter.name]):
            parts.append(parameter.label + _name_part(values[parameter.name]))
    parts += [f"ens{ensemble}"] if ensemble > 1 else []
    return "-".join(parts + ([tag] if tag else []))


def _build(values: Mapping[str, Any], data_dir: Path, models_dir: Path, tag: str, ensemble: int) -> Run:
    """The Run of resolved values, with its members for an ensemble."""
    members = tuple(_build({**values, "seed": values["seed"] + index}, data_dir, models_dir, tag, 1)
                    for index in range(ensemble)) if ensemble > 1 else ()
    name = run_name(values, tag, ensemble)
    return Run(name=name, folder=models_dir / name, data_dir=data_dir, data_tag=tag, members=members,
               **{key: values[key] for key in ("arch", "epochs", "seed", "batch_size", "sample_size",
                                               "validation_fraction", "augment")})


def folders(given: Mapping[str, Any]) -> tuple[Path, Path]:
    """DATA_DIR and MODELS_DIR as absolute paths (relative ones are relative to the project)."""
    return tuple(project_path(check_path(name, given.get(name) or default)).absolute()
                 for name, default in (("data_dir", "data"), ("models_dir", "models")))


def resolve(given: Mapping[str, Any]) -> Run:
    """The run that the given parameters (the unset ones from the defaults and the recipe) define on DATA_DIR's data.

    `given` may hold any run parameter and data_dir and models_dir; ValueError names a bad value, or a
    sample larger than the data.
    """
    checked = check_parameters(**{p.name: given.get(p.name, p.default) for p in RUN_PARAMETERS})
    data_dir, models_dir = folders(given)
    values = resolved_values(checked)
    train_csv = data_dir / "train.csv"
    if values["sample_size"] and values["sample_size"] > count_rows(train_csv):
        raise ValueError(f"sample_size {values['sample_size']:,} is more than the {count_rows(train_csv):,} rows "
                         f"of {shown(train_csv)}")
    return _build(values, data_dir, models_dir, data_tag(data_dir), checked["ensemble"])


# --- The run's folder: run.json ---------------------------------------------------------------------------


def start(run: Run) -> None:
    """Create the run's folder (and its members') and record it in run.json if it is new."""
    for member in run.members:
        start(member)
    run.folder.mkdir(parents=True, exist_ok=True)
    if (run.folder / RUN_FILE).is_file():
        return
    record = {"run": run.name, "made_by": MADE_BY, "parameters": {**run.parameters, "ensemble": 1},
              "data_tag": run.data_tag,
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if run.members:
        record |= {"kind": "ensemble", "members": [member.name for member in run.members]}
    write_text_atomic(run.folder / RUN_FILE, json.dumps(record, indent=2) + "\n")


def start_explore(folder: Path) -> None:
    """Create the exploration's folder and mark it as this project's."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / RUN_FILE).is_file():
        write_text_atomic(folder / RUN_FILE, json.dumps({"run": folder.name, "made_by": MADE_BY}) + "\n")


def read_record(folder: Path) -> dict:
    """A run folder's run.json; ValueError naming it when it is missing or not one of this project's."""
    path = folder / RUN_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{shown(path)}: not a run's record ({getattr(error, 'strerror', None) or error})") from None
    if not isinstance(record, dict) or record.get("run") != folder.name or not isinstance(record.get("parameters"),
                                                                                          dict):
        raise ValueError(f"{shown(path)}: not a run's record of this project (it must name its folder)")
    return record


def load(folder: Path, data_dir: Path) -> Run:
    """The Run kept in `folder`, from its run.json, for predicting on the data in data_dir; ValueError if damaged."""
    record = read_record(folder)
    try:
        values = resolved_values(check_parameters(**{p.name: record["parameters"].get(p.name, p.default)
                                                     for p in RUN_PARAMETERS}))
        members = tuple(load(folder.parent / name, data_dir) for name in record.get("members", []))
    except ValueError as error:
        raise ValueError(f"{shown(folder / RUN_FILE)}: {error}") from None
    untagged = run_name(values, "", len(members) or 1)
    tag = folder.name.removeprefix(untagged + "-") if folder.name.startswith(untagged + "-") else ""
    if run_name(values, tag, len(members) or 1) != folder.name:
        raise ValueError(f"{shown(folder / RUN_FILE)}: its parameters name the run {untagged!r}, not {folder.name!r}")
    return Run(name=folder.name, folder=folder, data_dir=data_dir, data_tag=tag, members=members, **values)


def check_ready(run: Run) -> list[dict]:
    """The metrics of the finished runs that predict for `run`; ValueError naming the first missing or bad file."""
    return [records.check_finished(member.folder) for member in run.trained]


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


# --- All runs --------------------------------------------------------------------------------------------------


def run_folders(models_dir: Path) -> Iterator[Path]:
    """Every folder in models_dir with a run.json (not links): the candidates for runs."""
    if models_dir.is_dir():
        for folder in sorted(models_dir.iterdir()):
            if folder.is_dir() and not folder.is_symlink() and (folder / RUN_FILE).is_file():
                yield folder


def made_by_this_project(folder: Path) -> bool:
    """True for a folder this project made: its run.json names the folder and carries the project's mark.

    Runs of earlier versions have no mark; theirs is recognised by its exact shape: the folder's name, and
    parameters that give that very name.
    """
    try:
        record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(record, dict) or record.get("run") != folder.name:
        return False
    if record.get("made_by") == MADE_BY:
        return True
    if folder.name == EXPLORE_DIR:
        return record == {"run": EXPLORE_DIR, "parameters": {}}
    try:
        load(folder, folder)
    except ValueError:
        return False
    return True


def project_folders(models_dir: Path) -> list[Path]:
    """The folders in models_dir that this project made: what `make clean-models` removes."""
    return [folder for folder in run_folders(models_dir) if made_by_this_project(folder)]


def clean(models_dir: Path, folders: list[Path]) -> list[str]:
    """Remove the given folders (this project's runs) and runs.csv from models_dir; return their names."""
    import shutil

    removed = []
    for folder in folders:
        if folder.parent == models_dir and made_by_this_project(folder):
            shutil.rmtree(folder)
            removed.append(folder.name)
    (models_dir / "runs.csv").unlink(missing_ok=True)
    return removed


def kept_runs(models_dir: Path, data_dir: Path) -> list[tuple[Run, str]]:
    """Every finished run and trained ensemble with when it finished, newest first (undamaged ones only)."""
    found = []
    for folder in run_folders(models_dir):
        try:
            run = load(folder, data_dir)
            check_ready(run)
            finished_at = records.finished_at(folder) or read_record(folder).get("created_at", "")
        except ValueError:
            continue
        found.append((run, finished_at))
    # An ensemble made when its last member finished counts as newer than that member.
    return sorted(found, key=lambda pair: (pair[1], pair[0].ensemble), reverse=True)


def latest(data_dir: Path, models_dir: Path) -> Run:
    """The newest finished run or ensemble made on the data that data_dir holds now; ValueError when none is."""
    tag = data_tag(data_dir)
    for run, _ in kept_runs(models_dir, data_dir):
        if run.data_tag == tag:
            return run
    raise ValueError(f"no finished run in {shown(models_dir)} for the data in {shown(data_dir)}: `make all` trains "
                     f"one, or name one with RUN=... (`make runs` lists them)")


def describe(run: Run) -> pd.DataFrame:
    """The run's parameters, name and folder (and members) as a table, for the training notebook."""
    rows = {**run.parameters, "run": run.name, "folder": shown(run.folder)}
    if run.members:
        rows["members"] = ", ".join(member.name for member in run.members)
    return pd.Series(rows, name="value").to_frame()


def as_given(run: Run) -> dict[str, Any]:
    """The run's parameters as the training notebook takes them (resolving them again gives the same run)."""
    return {**run.parameters, "data_dir": shown(run.data_dir), "models_dir": shown(run.models_dir)}



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
