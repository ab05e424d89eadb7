"""The tests' fixtures: the real embedded MNIST, and the one quick run the session trains through `make all`.

Every test stands alone: a test that changes a project works on a copy of its own
(`fresh_project`); the session's project (`finished_project`) is only read. The
helpers these fixtures use are in helpers.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from digits.data import to_images
from digits.formats.mnist import load_mnist
from helpers import QUICK, commit_all, copy_project, run_make, write_tiny_data


@pytest.fixture(scope="session")
def mnist() -> dict[str, np.ndarray]:
    """The four embedded MNIST arrays, checked against their checksums."""
    return load_mnist()


@pytest.fixture(scope="session")
def small_train(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 600 MNIST training images as float32 (n, 28, 28, 1) and their labels."""
    return to_images(mnist["train_images"][:600].reshape(-1, 784)), mnist["train_labels"][:600].astype(np.int64)


@pytest.fixture(scope="session")
def finished_project(tmp_path_factory, mnist) -> tuple[Path, subprocess.CompletedProcess]:
    """A clone of the project (its path has a space and a quote) after `make all` of the quick run, and its log.

    Its report is rendered as users render it: by Quarto where it is installed. Tests only read it; a test
    that changes anything works on `fresh_project`.
    """
    project = copy_project(tmp_path_factory.mktemp("clones") / "digit recognizer's clone")
    commit_all(project)
    write_tiny_data(project / "tiny data", mnist)
    log = tmp_path_factory.mktemp("logs") / "run.log"
    result = run_make(project, "all", *QUICK, "QUARTO=quarto", log=log)
    assert result.returncode == 0, result.stdout[-5000:]
    return project, result


@pytest.fixture
def fresh_project(finished_project, tmp_path) -> Path:
    """A copy of the finished project, everything included, for a test to change as it likes."""
    copy = tmp_path / "digit recognizer's copy"
    shutil.copytree(finished_project[0], copy, symlinks=True)
    return copy
