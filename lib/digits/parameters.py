"""Parameters: every value a user can give, defined once: name, default, parser and help.

`make all EPOCHS=30` gives EPOCHS; digits.pipeline.commandline reads it from make's
command line. Unset (empty on the make command line, None in Python and in the notebooks)
means the default: for EPOCHS, BATCH_SIZE and AUGMENT, the architecture's
recipe (digits.config.RECIPES).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digits.config import ARCHITECTURES, RECIPES

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_ENSEMBLE = 20
WHOLE_NUMBER = re.compile(r"-?[0-9]+")  # ASCII digits only: "²" is a digit to str.isdigit, not to int()
# Linux's limits (PATH_MAX, NAME_MAX): a longer path fails later as "File name too long", naming nothing.
MAX_PATH_CHARACTERS = 4096
MAX_NAME_BYTES = 255
SHOWN_CHARACTERS = 60  # a value in a message: longer ones are cut, with their length
# A Dask scheduler: tcp:// or tls://, a host name or address ([...] for IPv6), an optional port.
SCHEDULER_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?/?")


def quoted(value: Any) -> str:
    """A value as messages show it: quoted, on one line (newlines escaped), cut in the middle to SHOWN_CHARACTERS
    with its length, so that both ends of a long path show."""
    text = repr(value)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    length = len(value) if isinstance(value, str) else len(text)
    kept = (SHOWN_CHARACTERS - 1) // 2
    return f"{text[:kept]}…{text[-kept:]} ({length:,} characters)"


def as_typed(text: str) -> str:
    """Text as typed when it is short and printable, else quoted and cut (`quoted`)."""
    return text if repr(text) == quoted(text) and text.isprintable() else quoted(text)


def unset(value: Any) -> bool:
    """True when a parameter was left unset (None, or an empty string from make)."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def whole_number(name: str, value: Any, low: int, high: int) -> int:
    """`value` as an int in [low, high]; ValueError naming `name` and what is allowed."""
    text = value.strip() if isinstance(value, str) else value
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int and not (isinstance(text, str) and WHOLE_NUMBER.fullmatch(text)):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {quoted(value)}")
    if not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {int(text)}")
    return int(text)


# --- Parsers: each returns the value checked and converted, or raises ValueError naming the parameter ----------------


def parse_arch(value: Any) -> str:
    """Architecture name: one of ARCHITECTURES."""
    if value not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {quoted(value)}")
    return value


def parse_epochs(value: Any) -> int | None:
    """Epochs: unset (the recipe's) or 1..MAX_EPOCHS."""
    return None if unset(value) else whole_number("epochs", value, 1, MAX_EPOCHS)


def parse_batch_size(value: Any) -> int | None:
    """Batch size: unset (the recipe's) or 1..MAX_BATCH_SIZE."""
    return None if unset(value) else whole_number("batch_size", value, 1, MAX_BATCH_SIZE)


def parse_seed(value: Any) -> int:
    """Random seed: 0..2**31-1."""
    return whole_number("seed", value, 0, 2**31 - 1)


def parse_sample_size(value: Any) -> int:
    """Sample size: 0 (all rows), or at least 20 rows (two per class)."""
    if unset(value) or (isinstance(value, (int, str)) and str(value).strip() == "0"):
        return 0
    return whole_number("sample_size", value, 20, 10**9)


def parse_validation_fraction(value: Any) -> float:
    """Validation fraction: a number above 0 and at most 0.5."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = math.nan
    if isinstance(value, bool) or not 0 < fraction <= 0.5:
        raise ValueError(f"validation_fraction must be a number above 0 and at most 0.5, got {quoted(value)}")
    return fraction


SWITCH_WORDS = {"on": True, "true": True, "1": True, "yes": True, "off": False, "false": False, "0": False, "no": False}


def parse_ensemble(value: Any) -> int:
    """Ensemble size: 1 (a single run) to MAX_ENSEMBLE runs with consecutive seeds."""
    return 1 if unset(value) else whole_number("ensemble", value, 1, MAX_ENSEMBLE)


def parse_path(name: str, value: Any) -> Path:
    """A path given as text; ValueError naming the parameter when it is empty, holds a NUL, is longer than the
    system allows or is a link loop."""
    text = str(value)
    if unset(value) or "\0" in text:
        raise ValueError(f"{name} must be a path, got {quoted(text)}")
    if len(text) > MAX_PATH_CHARACTERS or any(len(part.encode(errors="surrogateescape")) > MAX_NAME_BYTES
                                              for part in text.split("/")):
        raise ValueError(f"{name}: path too long: at most {MAX_PATH_CHARACTERS:,} characters, each name at most "
                         f"{MAX_NAME_BYTES} bytes, got {quoted(text)}")
    path = Path(text).expanduser()
    try:
        path.resolve()
    except RuntimeError:  # pathlib's word for a chain of symbolic links that comes back to itself
        raise ValueError(f"{name}: {quoted(text)} is a symbolic link that loops") from None
    return path


def parse_venv(value: Any) -> Path:
    """The environment's folder: a path on one line (it goes into its scripts' first lines), kept as typed, since
    make's recipes use the same text."""
    if "\n" in str(value) or "\r" in str(value):
        raise ValueError(f"venv must be a path on one line, got {quoted(str(value))}")
    parse_path("venv", value)
    return Path(str(value))


def parse_text(name: str) -> Callable[[Any], str]:
    """A check for free text (a run name, a command): anything but a NUL character."""
    def parse(value: Any) -> str:
        text = "" if value is None else str(value)
        if "\0" in text:
            raise ValueError(f"{name} must not hold a NUL character, got {quoted(text)}")
        return text
    return parse


def parse_switch(name: str, empty: str = "the default") -> Callable[[Any], bool | None]:
    """A parser for a yes/no switch (on/off, true/false, 1/0 too); unset is None, which means `empty`."""
    def parse(value: Any) -> bool | None:
        if unset(value) or isinstance(value, bool):
            return None if unset(value) else value
        if str(value).strip().lower() not in SWITCH_WORDS:
            raise ValueError(f"{name} must be on or off (yes or no; empty: {empty}), got {quoted(value)}")
        return SWITCH_WORDS[str(value).strip().lower()]
    return parse


SORT_COLUMNS = ("val_accuracy", "test_accuracy", "train_minutes", "images_per_second", "finished_at", "run")


def parse_sort(value: Any) -> str:
    """A column of the runs table to sort by, or unset (newest first)."""
    text = "" if unset(value) else str(value).strip()
    names = [*SORT_COLUMNS, *(p.name for p in RUN_PARAMETERS if p.name != "ensemble")]
    if text and text not in names:
        raise ValueError(f"sort must be one of {', '.join(names)} (empty: newest first), got {value!r}")
    return text


def parse_port(value: Any) -> int | None:
    """A TCP port for JupyterLab: unset (the first free one from 8888) or 1024..65535."""
    return None if unset(value) else whole_number("port", value, 1024, 65535)


def parse_workers(value: Any) -> int | None:
    """Runs trained at once on this machine: unset (one per two cores) or 1..64."""
    return None if unset(value) else whole_number("workers", value, 1, 64)


def parse_address(value: Any) -> str:
    """A Dask scheduler's address (tcp:// or tls://, a host, an optional port 1..65535), or unset for a cluster on
    this machine."""
    text = "" if unset(value) else str(value).strip()
    match = SCHEDULER_ADDRESS.fullmatch(text)
    if text and not (match and (match.group(3) is None or 1 <= int(match.group(3)) <= 65535)):
        raise ValueError("dask_scheduler_address must be tcp://host:port or tls://host:port (a port from 1 to 65535), "
                         f"got {quoted(value)}")
    return text


def parse_gpu(value: Any) -> bool:
    """GPU=1 (TensorFlow with CUDA) or unset."""
    if unset(value) or str(value).strip() == "1":
        return not unset(value)
    raise ValueError(f"gpu must be 1 or empty, got {quoted(value)}")


# --- The parameters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One parameter: the notebooks' name (the Make variable is the same in capitals)."""

    name: str
    default: Any  # None: unset
    parse: Callable[[Any], Any]  # the value checked and converted, or ValueError naming the parameter
    help: str
    group: str  # run | folders | choice | tools | lab | setup
    label: str = ""  # prefix of its part in the run folder's name ("" = never part of the name)
    always_named: bool = False  # in the run's name even at its default
    # Read from the environment too when not on make's command line: it describes the machine, not the run.
    from_environment: bool = False

    @property
    def variable(self) -> str:
        """The Make variable that sets it."""
        return self.name.upper()

    @property
    def default_text(self) -> str:
        """The default as `make help` shows it ("" when unset)."""
        return "" if self.default is None else str(self.default)

    @property
    def description(self) -> str:
        """The help, and for a recipe's value what an unset one means, from the recipes themselves."""
        if self.name not in ("epochs", "batch_size", "augment"):
            return self.help
        values: dict[str, list[str]] = {}
        for arch in ARCHITECTURES:
            value = getattr(RECIPES[arch], self.name)
            values.setdefault("on" if value is True else "off" if value is False else str(value), []).append(arch)
        if len(values) == 1:
            return f"{self.help}; empty: the recipe's ({next(iter(values))})"
        recipes = ", ".join(f"{value} for {' and '.join(archs)}" for value, archs in values.items())
        return f"{self.help}; empty: the recipe's ({recipes})"


PARAMETERS_LIST = (
    Parameter("arch", "strided", parse_arch,
              "the network: strided, wide (1.5 times the filters, half the speed) or baseline (the original "
              "write-up's CNN)", "run", always_named=True),
    Parameter("epochs", None, parse_epochs, "passes over the training data", "run", label="e", always_named=True),
    Parameter("seed", 42, parse_seed, "random seed: the same seed gives the same numbers", "run", label="s",
              always_named=True),
    Parameter("batch_size", None, parse_batch_size, "images per training step", "run", label="b"),
    Parameter("sample_size", 0, parse_sample_size, "train on the first N rows of train.csv (0: all)", "run",
              label="n"),
    Parameter("validation_fraction", 0.1, parse_validation_fraction,
              "share of rows held out for validation (the same rows for every seed)", "run", label="v"),
    Parameter("augment", None, parse_switch("augment", "the recipe's"), "random rotation, zoom and shift: on or off",
              "run", label="aug"),
    Parameter("ensemble", 1, parse_ensemble, "train N runs with seeds SEED..SEED+N-1 and average them", "run"),
    Parameter("data_dir", "data", lambda value: parse_path("data_dir", value),
              "folder holding train.csv and test.csv", "folders"),
    Parameter("models_dir", "models", lambda value: parse_path("models_dir", value),
              "folder of the runs (made if missing)", "folders"),
    Parameter("run", "", parse_text("run"),
              "a kept run by name, for report, notebooks, predict, use, compare (RUN=a,b), clean-models and "
              "kaggle-submit (empty: the chosen run)", "choice"),
    Parameter("sort", "", parse_sort, "make runs: sort the table by this column (val_accuracy, test_accuracy, "
              "train_minutes, ...; empty: newest first)", "choice"),
    Parameter("images", "", lambda value: "" if unset(value) else str(parse_path("images", value)),
              "make predict: an image file or a folder of them", "choice"),
    Parameter("quarto", "quarto", parse_text("quarto"),
              "the Quarto command for the report; no: the self-contained page without Quarto", "tools"),
    Parameter("kaggle", "", parse_text("kaggle"), "the Kaggle command (empty: the environment's own)", "tools"),
    Parameter("port", None, parse_port,
              "make lab: the port (empty: the first free one from 8888); make serve-report: the port (empty: 8000)",
              "lab"),
    Parameter("browser", None, parse_switch("browser"), "make lab: open a browser, yes or no", "lab"),
    Parameter("workers", None, parse_workers,
              "make sweep and ENSEMBLE: runs trained at once on this machine (empty: one per two cores)", "sweep"),
    Parameter("dask_scheduler_address", "", parse_address,
              "make sweep and ENSEMBLE: a Dask cluster's scheduler, tcp://host:8786 (empty: this machine); also read "
              "from the environment", "sweep", from_environment=True),
    Parameter("force", None, parse_switch("force"),
              "make sweep: FORCE=1 sweeps more than 100 runs; make kaggle-data: FORCE=1 replaces train.csv and "
              "test.csv; make kaggle-submit: FORCE=1 submits a quick run",
              "sweep"),
    Parameter("venv", ".venv", parse_venv,
              "the environment's folder (a conda one: VENV=$CONDA_PREFIX); also read from the environment", "setup",
              from_environment=True),
    Parameter("gpu", None, parse_gpu,
              "GPU=1: TensorFlow with CUDA (Linux), from requirements-gpu.lock; also read from the environment",
              "setup", from_environment=True),
)
PARAMETERS = {parameter.name: parameter for parameter in PARAMETERS_LIST}
RUN_PARAMETERS = tuple(parameter for parameter in PARAMETERS_LIST if parameter.group == "run")
GROUP_TITLES = {"run": "The run", "folders": "Folders", "choice": "Choosing a run and images", "tools": "Tools",
                "lab": "JupyterLab and the served book", "sweep": "Sweeps and ensembles",
                "setup": "The environment (make's setup; from its command line, else the environment)"}


def parse_parameters(**given: Any) -> dict[str, Any]:
    """Every given parameter checked and converted; ValueError naming the first bad one."""
    unknown = sorted(set(given) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    return {name: PARAMETERS[name].parse(value) for name, value in given.items()}


def parse_list(parameter: Parameter, text: Any) -> list[Any]:
    """The parsed values of a comma list of a run parameter (as `make sweep` takes them), each once and in order;
    ValueError naming a bad or empty item and the list it is in."""
    items = [item.strip() for item in str(text).split(",")]
    values: list[Any] = []
    for item in items:
        try:
            if len(items) > 1 and not item:
                raise ValueError(f"{parameter.name} has an empty item")
            value = parameter.parse(item)
        except ValueError as error:
            listed = as_typed(str(text))
            raise ValueError(f"{error} (in {parameter.variable}={listed})" if len(items) > 1 else str(error)) from None
        if value not in values:
            values.append(value)
    return values
