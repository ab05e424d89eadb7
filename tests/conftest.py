"""Shared fixtures: slices of the real embedded MNIST, and a copy of the project for pipeline runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digits.data import load_mnist, to_images


@pytest.fixture(scope="session")
def mnist() -> dict[str, np.ndarray]:
    """The four embedded MNIST arrays, checked against their checksums."""
    return load_mnist()


@pytest.fixture(scope="session")
def small_train(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 600 MNIST training images as float32 (n, 28, 28, 1) and their labels."""
    return to_images(mnist["train_images"][:600].reshape(-1, 784)), mnist["train_labels"][:600].astype(np.int64)


PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Build products and local state that a fresh clone does not have.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", "*.csv", ".prepared.json",
    "_book", ".quarto", "_summary.md", "out",
)


def run_make(project: Path, *arguments: str) -> subprocess.CompletedProcess:
    """`make ARGUMENTS` in `project`, using this test run's environment as the project environment."""
    return subprocess.run(["make", "--no-print-directory", *arguments, f"VENV={sys.prefix}"],
                          cwd=project, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A copy of the project as a fresh clone has it, sharing this environment (set up by `make setup`)."""
    stamp = Path(sys.prefix) / ".setup-done"
    if not stamp.is_file() or stamp.stat().st_mtime < (PROJECT_ROOT / "pyproject.toml").stat().st_mtime:
        pytest.skip("the pipeline tests use the project environment: run them with `make test`")
    copy = tmp_path_factory.mktemp("clone") / "digit-recognizer"
    shutil.copytree(PROJECT_ROOT, copy, ignore=NOT_IN_A_CLONE)
    for generated in ("models", "report/notebooks"):
        shutil.rmtree(copy / generated, ignore_errors=True)
    (copy / "models").mkdir()
    return copy
