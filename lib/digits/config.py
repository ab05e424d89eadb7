"""Project paths, default parameters and the checks that guard every run.

Run `python -m digits.config --epochs 3 --arch seed ...` to check parameters
the way the Makefile does before any notebook starts.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_ROOT / "data"
RAW_MNIST_DIR = DATA_DIR / "raw" / "mnist"
MODELS_DIR = PROJECT_ROOT / "models"
REPORT_DIR = PROJECT_ROOT / "report"

IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
N_CLASSES = 10

# Names of the architectures in digits.model; kept here so checks need no TensorFlow.
ARCHITECTURES = ("strided", "seed")
DEFAULT_ARCH = "strided"
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536


def resolve(path: str | Path) -> Path:
    """A path as given if absolute, else relative to the project root (notebooks run from notebooks/)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


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


def _optional(value: Any) -> bool:
    """True when a parameter was left unset (None, or an empty string from make)."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def check_epochs(value: Any) -> int | None:
    """Epochs: unset (the architecture's recipe) or 1..MAX_EPOCHS."""
    return None if _optional(value) else _whole_number("epochs", value, 1, MAX_EPOCHS)


def check_batch_size(value: Any) -> int | None:
    """Batch size: unset (the architecture's recipe) or 1..MAX_BATCH_SIZE."""
    return None if _optional(value) else _whole_number("batch_size", value, 1, MAX_BATCH_SIZE)


def check_seed(value: Any) -> int:
    """Random seed: 0..2**31-1."""
    return _whole_number("seed", value, 0, 2**31 - 1)


def check_sample_size(value: Any) -> int | None:
    """Sample size: unset or 0 (all rows), or at least 20 rows (two per class)."""
    if _optional(value) or str(value).strip() == "0":
        return None
    return _whole_number("sample_size", value, 20, 10**9)


def check_arch(value: Any) -> str:
    """Architecture name: one of ARCHITECTURES."""
    if value not in ARCHITECTURES:
        known = ", ".join(ARCHITECTURES)
        raise ValueError(f"arch must be one of {known}, got {value!r}")
    return value


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
    """Augmentation switch: unset (the architecture's recipe), true or false."""
    if _optional(value):
        return None
    if isinstance(value, bool):
        return value
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if str(value).strip().lower() not in words:
        raise ValueError(f"augment must be true or false, got {value!r}")
    return words[str(value).strip().lower()]


def check_data_dir(value: Any) -> Path:
    """Data folder: an existing directory."""
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        raise ValueError(f"data_dir must be an existing folder, got {str(value)!r} (no such folder)")
    return path


def check_parameters(**parameters: Any) -> dict[str, Any]:
    """Check every given run parameter; return them converted, or raise ValueError on the first bad one."""
    checks = {
        "epochs": check_epochs,
        "batch_size": check_batch_size,
        "arch": check_arch,
        "seed": check_seed,
        "sample_size": check_sample_size,
        "validation_fraction": check_validation_fraction,
        "augment": check_augment,
        "data_dir": check_data_dir,
    }
    unknown = sorted(set(parameters) - set(checks))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(checks)}")
    return {name: checks[name](value) for name, value in parameters.items()}


def main(argv: list[str] | None = None) -> int:
    """Check parameters given as --name value; print one line and return 2 on the first bad one."""
    parser = argparse.ArgumentParser(description="Check run parameters before a pipeline run.")
    for name in ("epochs", "batch_size", "arch", "seed", "sample_size", "validation_fraction", "augment", "data_dir"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name)
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    try:
        check_parameters(**given)
    except ValueError as error:
        print(f"error: bad parameter: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
