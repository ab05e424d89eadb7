"""Paths: the project a command works in, and paths relative to it."""

from __future__ import annotations

from pathlib import Path


def project_root(start: str | Path | None = None) -> Path:
    """The project that `start` (default: the working directory) lies in: the nearest folder with lib/digits/."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "lib" / "digits").is_dir() and (folder / "notebooks").is_dir():
            return folder
    raise ValueError(f"{here} is not inside a digit-recognizer project (no lib/digits/ and notebooks/ above it)")


def project_path(path: str | Path) -> Path:
    """A path as given if absolute, else relative to the project root (notebooks run from notebooks/)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def raw_mnist_dir() -> Path:
    """The embedded MNIST files of this project."""
    return project_root() / "data" / "raw" / "mnist"

