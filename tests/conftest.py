"""Shared fixtures: slices of the real embedded MNIST, tiny Kaggle-format data, and copies of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from digits.data import TEST_COLUMNS, TRAIN_COLUMNS, load_mnist, to_images, write_csv

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Build products and local state that a fresh clone does not have.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", "*.csv", ".prepared.json", ".pipeline.lock",
    "_book", ".quarto", "_summary.md", "runs-accuracy.png", "index_files", "out",
)


@pytest.fixture(scope="session")
def mnist() -> dict[str, np.ndarray]:
    """The four embedded MNIST arrays, checked against their checksums."""
    return load_mnist()


@pytest.fixture(scope="session")
def small_train(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 600 MNIST training images as float32 (n, 28, 28, 1) and their labels."""
    return to_images(mnist["train_images"][:600].reshape(-1, 784)), mnist["train_labels"][:600].astype(np.int64)


def write_tiny_data(folder: Path, mnist: dict[str, np.ndarray], n_train: int = 600, n_test: int = 200) -> Path:
    """Kaggle-format train.csv and test.csv (and test_labels.csv) cut from MNIST, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train = np.column_stack([mnist["train_labels"][:n_train], mnist["train_images"][:n_train].reshape(n_train, -1)])
    write_csv(folder / "train.csv", TRAIN_COLUMNS, train)
    write_csv(folder / "test.csv", TEST_COLUMNS, mnist["test_images"][:n_test].reshape(n_test, -1))
    labels = np.column_stack([np.arange(1, n_test + 1), mnist["test_labels"][:n_test]])
    write_csv(folder / "test_labels.csv", ["ImageId", "Label"], labels)
    return folder


def train_tiny_run(root: Path, mnist: dict[str, np.ndarray], n_train: int, name: str) -> tuple[Path, Path]:
    """A finished one-epoch run on the first n_train MNIST images: its folder root/models/name, and its data."""
    from digits import runs
    from digits.config import plan_of, run_parameters
    from digits.data import load_split

    data_dir = write_tiny_data(root / "data", mnist, n_train=n_train, n_test=100)
    parameters = run_parameters({"epochs": 1, "sample_size": n_train, "batch_size": 50})
    train_images, train_labels, validation_images, validation_labels = load_split(data_dir, n_train, 0.1)
    run_dir = root / "models" / name
    runs.start_run(run_dir, runs.resolved_parameters(parameters))
    result = runs.train_run(plan_of(parameters), train_images, train_labels, validation_images, validation_labels,
                            run_dir)
    runs.save_run(result, runs.run_metrics(run_dir, parameters, result, len(train_images), len(validation_images)),
                  run_dir)
    return run_dir, data_dir


def run_make(project: Path, *arguments: str, log: Path | None = None,
             **environment: str) -> subprocess.CompletedProcess:
    """`make ARGUMENTS` in `project` with this test run's environment as the project environment.

    The fallback report is used (QUARTO empty) unless the caller sets QUARTO; with `log`,
    the output goes to that file as `make ... > log 2>&1` sends it.
    """
    command = ["make", "--no-print-directory", *arguments, f"VENV={sys.prefix}"]
    env = {**os.environ, "QUARTO": "", **environment}
    if log is None:
        return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=1200, env=env)
    with open(log, "w") as handle:
        result = subprocess.run(command, cwd=project, stdout=handle, stderr=subprocess.STDOUT, timeout=1200, env=env)
    return subprocess.CompletedProcess(command, result.returncode, log.read_text(), "")


def copy_project(destination: Path) -> Path:
    """A copy of the project as a fresh clone has it, sharing this environment (set up by `make setup`)."""
    stamps = [*Path(sys.prefix).glob(".setup-cpu"), *Path(sys.prefix).glob(".setup-gpu")]
    newest_input = max((PROJECT_ROOT / name).stat().st_mtime for name in ("pyproject.toml", "requirements.lock"))
    if not stamps or stamps[0].stat().st_mtime < newest_input:
        pytest.skip("the pipeline tests use the project environment: run them with `make test`")
    shutil.copytree(PROJECT_ROOT, destination, ignore=NOT_IN_A_CLONE)
    for generated in ("models", "report/notebooks"):
        shutil.rmtree(destination / generated, ignore_errors=True)
    (destination / "models").mkdir()
    shutil.copy(PROJECT_ROOT / "models" / "README.md", destination / "models" / "README.md")
    return destination


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project in a folder whose path has a space and a quote, as a user's clone may."""
    return copy_project(tmp_path_factory.mktemp("clones") / "digit recognizer's clone")


@pytest.fixture(scope="module")
def tiny_data(project, mnist) -> Path:
    """600 training and 200 test images in Kaggle's format, in a folder with a space in its name."""
    return write_tiny_data(project / "tiny data", mnist)
