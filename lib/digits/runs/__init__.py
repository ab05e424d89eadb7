"""Runs: one folder per parameter set, worked out once by `resolve`, found again by `find` and `latest`.

    models/<run>/                 for example strided-e15-s42, or strided-e1-s42-n2000 when sampled
        run.json                  its parameters; marks the folder as one this project made
        checkpoint/               model and history after each epoch, while it trains
        model.keras  history.csv  metrics.json      the finished run
        evaluation.csv  submission.csv              written by evaluation and submission
        notebooks/                the run's executed notebooks

Everything that needs a run (the pipeline, the training notebook under papermill
or by hand in JupyterLab, evaluation, submission, prediction, the report) gets
a `Run` from `resolve` (parameters to a run, here) or `catalog.find` (a kept run
by name, or the chosen one: `catalog.chosen`), so no two places can disagree on
its name, folder or recipe. `records` checks a run's files before any use;
`comparison` says what a set of kept runs shows; `removal` removes a run's
files, and only those the project made.

The subpackage imports digits.util and the layer of digits.config, digits.parameters,
digits.formats and digits.data; nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from digits.config import RECIPES, TrainingPlan
from digits.data import csv_rows, data_tag
from digits.formats.csvfiles import TRAIN_COLUMNS
from digits.parameters import RUN_PARAMETERS, parse_parameters, parse_path
from digits.runs import records
from digits.util.display import shown
from digits.util.files import write_text_atomic
from digits.util.paths import project_path

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
    def single_runs(self) -> tuple[Run, ...]:
        """The single runs whose models predict for it: an ensemble's members, or the run itself."""
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
    defaults = resolved_values({p.name: p.default for p in RUN_PARAMETERS} | {"arch": values["arch"]})
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
    return tuple(project_path(parse_path(name, given.get(name) or default)).absolute()
                 for name, default in (("data_dir", "data"), ("models_dir", "models")))


def resolve(given: Mapping[str, Any]) -> Run:
    """The run that the given parameters define, each value parsed here (what a notebook is given).

    `given` may hold any run parameter and data_dir and models_dir; ValueError names a bad value.
    """
    parsed = parse_parameters(**{p.name: given.get(p.name, p.default) for p in RUN_PARAMETERS})
    return resolve_parsed(parsed, *folders(given))


def resolve_parsed(parsed: Mapping[str, Any], data_dir: Path, models_dir: Path) -> Run:
    """The run that parsed run parameters (the unset ones from the recipe) define on DATA_DIR's data, in MODELS_DIR;
    ValueError for a sample larger than the data."""
    values = resolved_values(parsed)
    train_csv = data_dir / "train.csv"
    if values["sample_size"] and values["sample_size"] > (rows := csv_rows(train_csv, TRAIN_COLUMNS)):
        raise ValueError(f"sample_size {values['sample_size']:,} is more than the {rows:,} rows of {shown(train_csv)}")
    return _build(values, data_dir, models_dir, data_tag(data_dir), parsed["ensemble"])


# --- The run's folder: run.json ---------------------------------------------------------------------------


def create_folder(run: Run) -> None:
    """Create the run's folder (and its members') and record it in run.json if it is new."""
    for member in run.members:
        create_folder(member)
    run.folder.mkdir(parents=True, exist_ok=True)
    if (run.folder / RUN_FILE).is_file():
        return
    record = {"run": run.name, "made_by": MADE_BY, "parameters": {**run.parameters, "ensemble": 1},
              "data_tag": run.data_tag,
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if run.members:
        record |= {"kind": "ensemble", "members": [member.name for member in run.members]}
    write_text_atomic(run.folder / RUN_FILE, json.dumps(record, indent=2) + "\n")


def training_lock(folder: Path) -> Path:
    """The lock a command holds while it trains the run in `folder`: two commands never train one run at once."""
    return folder.parent / f".{folder.name}.lock"


def create_explore_folder(folder: Path) -> None:
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


DATA_TAG = re.compile(r"d[0-9a-f]{6}")


def load(folder: Path, data_dir: Path) -> Run:
    """The Run kept in `folder`, from its run.json, for predicting on the data in data_dir; ValueError if damaged.

    Its name must be the one its parameters give (with a data tag, `d` and six hexadecimal digits, or none),
    and an ensemble's members are folders beside it: nothing else is taken for a run of this project.
    """
    record = read_record(folder)
    try:
        values = resolved_values(parse_parameters(**{p.name: record["parameters"].get(p.name, p.default)
                                                     for p in RUN_PARAMETERS}))
        names = record.get("members", [])
        if not isinstance(names, list) or not all(isinstance(name, str) and Path(name).name == name != ".."
                                                  for name in names):
            raise ValueError("its members must be names of folders beside it")
        members = tuple(load(folder.parent / name, data_dir) for name in names)
    except ValueError as error:
        raise ValueError(f"{shown(folder / RUN_FILE)}: {error}") from None
    untagged = run_name(values, "", len(members) or 1)
    tag = folder.name.removeprefix(untagged + "-")
    if folder.name != untagged and not (folder.name.startswith(untagged + "-") and DATA_TAG.fullmatch(tag)):
        raise ValueError(f"{shown(folder / RUN_FILE)}: its parameters name the run {untagged!r}, not {folder.name!r}")
    return Run(name=folder.name, folder=folder, data_dir=data_dir, data_tag="" if folder.name == untagged else tag,
               members=members, **values)


def check_ready(run: Run) -> list[dict]:
    """The metrics of the finished runs that predict for `run`; ValueError naming the first missing or bad file."""
    return [records.check_finished(member.folder) for member in run.single_runs]


def describe(run: Run) -> pd.DataFrame:
    """The run's parameters, name and folder (and members) as a table, for the training notebook."""
    rows = {**run.parameters, "run": run.name, "folder": shown(run.folder)}
    if run.members:
        rows["members"] = ", ".join(member.name for member in run.members)
    return pd.Series(rows, name="value").to_frame()


def as_given(run: Run) -> dict[str, Any]:
    """The run's parameters as the training notebook takes them (resolving them again gives the same run)."""
    return {**run.parameters, "data_dir": shown(run.data_dir), "models_dir": shown(run.models_dir)}
