"""The run parameters, defined once: names, types, defaults, checks and help; the recipes; project paths.

Everything else derives from `RUN_PARAMETERS`: the Makefile's check and help
(`python -m digits.config check|help`), the notebooks' checks, the run's
folder name, `metrics.json` and the report's table. Adding a parameter means
adding it here and to the training notebook's parameters cell.

This module imports no TensorFlow, so the checks run in a fraction of a second.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
N_CLASSES = 10
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_ENSEMBLE = 20
# Seed of the validation split. It is the same for every run, whatever its training seed, so that runs
# (and the members of an ensemble) are all scored on the same held-out images.
SPLIT_SEED = 42


# --- Architectures and their recipes ----------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How an architecture is trained by default."""

    epochs: int
    batch_size: int
    learning_rate: float
    cosine_schedule: bool  # decay the learning rate to near zero over the run, or keep it constant
    augment: bool  # random rotation, zoom and shift of the training images
    label_smoothing: float  # share of each one-hot target spread over the other digits: less over-confidence
    full_data_val_accuracy: float  # what the recipe reaches on all 60,000 MNIST images (bench/RESULTS.md)


STRIDED_RECIPE = Recipe(epochs=15, batch_size=128, learning_rate=2e-3, cosine_schedule=True, augment=True,
                        label_smoothing=0.1, full_data_val_accuracy=0.995)
RECIPES = {
    "strided": STRIDED_RECIPE,
    "wide": STRIDED_RECIPE,  # the same network with more filters trains well with the same recipe
    "baseline": Recipe(epochs=10, batch_size=128, learning_rate=1e-3, cosine_schedule=False, augment=False,
                       label_smoothing=0.0, full_data_val_accuracy=0.992),
}
ARCHITECTURES = tuple(RECIPES)


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
    recipe = RECIPES[check_arch(arch)]
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


# --- Checks -------------------------------------------------------------------------------


def _whole_number(name: str, value: Any, low: int, high: int) -> int:
    """Return `value` as an int in [low, high] or raise ValueError naming `name`."""
    text = str(value).strip()
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int and not (isinstance(value, str) and text.lstrip("-").isdigit()):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {number}")
    return number


def _unset(value: Any) -> bool:
    """True when a parameter was left unset (None, or an empty string from make)."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def check_arch(value: Any) -> str:
    """Architecture name: one of ARCHITECTURES."""
    if value not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {value!r}")
    return value


def _recipe_or_whole_number(name: str, value: Any, high: int) -> int | None:
    """None for unset or 0 (the architecture's recipe), else a whole number 1..high."""
    if _unset(value) or (not isinstance(value, bool) and str(value).strip() == "0"):
        return None
    try:
        return _whole_number(name, value, 1, high)
    except ValueError as error:
        got = str(error).rsplit(", got ", 1)[1]
        raise ValueError(f"{name} must be a whole number from 1 to {high} (or 0 for the recipe's), got {got}") from None


def check_epochs(value: Any) -> int | None:
    """Epochs: unset or 0 (the architecture's recipe), or 1..MAX_EPOCHS."""
    return _recipe_or_whole_number("epochs", value, MAX_EPOCHS)


def check_batch_size(value: Any) -> int | None:
    """Batch size: unset or 0 (the architecture's recipe), or 1..MAX_BATCH_SIZE."""
    return _recipe_or_whole_number("batch_size", value, MAX_BATCH_SIZE)


def check_seed(value: Any) -> int:
    """Random seed: 0..2**31-1."""
    return _whole_number("seed", value, 0, 2**31 - 1)


def check_sample_size(value: Any) -> int:
    """Sample size: 0 (all rows), or at least 20 rows (two per class)."""
    if _unset(value) or str(value).strip() == "0":
        return 0
    return _whole_number("sample_size", value, 20, 10**9)


def check_validation_fraction(value: Any) -> float:
    """Validation fraction: a number above 0 and at most 0.5."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = math.nan
    if isinstance(value, bool) or not 0 < fraction <= 0.5:
        raise ValueError(f"validation_fraction must be a number above 0 and at most 0.5, got {value!r}")
    return fraction


def check_augment(value: Any) -> bool | None:
    """Augmentation switch: unset or "recipe" (the architecture's recipe), on or off."""
    if _unset(value) or str(value).strip().lower() == "recipe":
        return None
    if isinstance(value, bool):
        return value
    words = {"on": True, "true": True, "1": True, "yes": True, "off": False, "false": False, "0": False, "no": False}
    if str(value).strip().lower() not in words:
        raise ValueError(f"augment must be on, off or recipe, got {value!r}")
    return words[str(value).strip().lower()]


def check_ensemble(value: Any) -> int:
    """Ensemble size: 1 (a single run) to MAX_ENSEMBLE runs with consecutive seeds."""
    return 1 if _unset(value) else _whole_number("ensemble", value, 1, MAX_ENSEMBLE)


def check_data_dir(value: Any) -> Path:
    """Data folder: an existing folder."""
    path = Path(str(value)).expanduser()
    if _unset(value) or not path.is_dir():
        raise ValueError(f"data_dir must be an existing folder, got {str(value)!r} (no such folder)")
    return path


def check_models_dir(value: Any) -> Path:
    """Models folder: a folder, or a path where one can be made."""
    path = Path(str(value)).expanduser()
    if _unset(value) or (path.exists() and not path.is_dir()):
        raise ValueError(f"models_dir must be a folder, got {str(value)!r} (not a folder)")
    return path


# --- The parameters -------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One run parameter: the notebooks' name (the Make variable is the same in capitals)."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    help: str
    label: str = ""  # prefix of its part in the run folder's name ("" = never part of the name)
    always_named: bool = False  # in the name even at its default

    @property
    def variable(self) -> str:
        """The Make variable (and environment variable) that sets it."""
        return self.name.upper()


RUN_PARAMETERS = (
    Parameter("arch", "strided", check_arch, f"network: {', '.join(ARCHITECTURES[:-1])} or {ARCHITECTURES[-1]}",
              always_named=True),
    Parameter("epochs", None, check_epochs,
              "passes over the training data (empty: the recipe's, 15, or 10 for baseline)", label="e",
              always_named=True),
    Parameter("seed", 42, check_seed, "random seed: the same seed gives the same numbers", label="s",
              always_named=True),
    Parameter("batch_size", None, check_batch_size, "images per training step (empty: the recipe's, 128)",
              label="b"),
    Parameter("sample_size", 0, check_sample_size, "train on the first N rows of train.csv (0: all)", label="n"),
    Parameter("validation_fraction", 0.1, check_validation_fraction, "share of rows held out for validation",
              label="v"),
    Parameter("augment", None, check_augment, "random rotation, zoom and shift: on, off (empty: the recipe's)",
              label="aug"),
    Parameter("ensemble", 1, check_ensemble, "train N runs with seeds SEED..SEED+N-1 and average them"),
)
PATH_PARAMETERS = (
    Parameter("data_dir", "data", check_data_dir, "folder holding train.csv and test.csv"),
    Parameter("models_dir", "models", check_models_dir, "folder of the runs (made if missing)"),
)
PARAMETERS = {parameter.name: parameter for parameter in (*RUN_PARAMETERS, *PATH_PARAMETERS)}


def check_parameters(**given: Any) -> dict[str, Any]:
    """Check every given parameter; return them converted, or raise ValueError on the first bad one."""
    unknown = sorted(set(given) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    return {name: PARAMETERS[name].check(value) for name, value in given.items()}


def parameters_from_environment(environment: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The parameters set as environment variables (Make passes its command-line variables so)."""
    return {p.name: environment[p.variable] for p in PARAMETERS.values() if p.variable in environment}


def run_parameters(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every run parameter, checked: the given ones, the defaults for the rest."""
    values = {p.name: given.get(p.name, p.default) for p in RUN_PARAMETERS}
    return check_parameters(**values)


def plan_of(parameters: Mapping[str, Any]) -> TrainingPlan:
    """The training plan of checked run parameters."""
    return make_plan(parameters["arch"], parameters["epochs"], parameters["batch_size"], parameters["seed"],
                     parameters["augment"])


# --- Project paths ------------------------------------------------------------------------


def project_root(start: str | Path | None = None) -> Path:
    """The project that `start` (default: the working directory) lies in: the nearest folder with lib/digits/."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "lib" / "digits").is_dir() and (folder / "notebooks").is_dir():
            return folder
    raise ValueError(f"{here} is not inside a digit-recognizer project (no lib/digits/ and notebooks/ above it)")


def resolve(path: str | Path) -> Path:
    """A path as given if absolute, else relative to the project root (notebooks run from notebooks/)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def shown(path: str | Path) -> str:
    """A path for people: relative to the project when inside it, so no page shows the machine's folders."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def raw_mnist_dir() -> Path:
    """The embedded MNIST files of this project."""
    return project_root() / "data" / "raw" / "mnist"


# --- Command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`check`: check the parameters set in the environment (one line and status 2 on a bad one); `help`: list them."""
    parser = argparse.ArgumentParser(description="Check or list the run parameters (read from the environment).")
    parser.add_argument("command", choices=["check", "help"])
    arguments = parser.parse_args(argv)
    if arguments.command == "help":
        for parameter in PARAMETERS.values():
            default = "" if parameter.default is None else parameter.default
            print(f"  {parameter.variable + '=' + str(default):<24} {parameter.help}")
        return 0
    try:
        check_parameters(**parameters_from_environment())
    except ValueError as error:
        print(f"error: bad parameter: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
