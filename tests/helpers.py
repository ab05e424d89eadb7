"""Helpers the tests share: tiny data cut from the real MNIST, runs, copies of the project as a clone has it,
`make` and the pipeline run as a user runs them, and a headless browser with no network.

Imported by the tests (`from helpers import ...`); the fixtures built on them are in conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digits.formats.csvfiles import TEST_COLUMNS, TRAIN_COLUMNS, write_csv
from digits.parameters import PARAMETERS_LIST
from digits.pipeline.environment import up_to_date

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A quick run on the 600 rows of `tiny data`: what the pipeline tests train.
QUICK = ("EPOCHS=1", "BATCH_SIZE=64", "DATA_DIR=tiny data")
QUICK_RUN = "strided-e1-s42-b64-d"  # its name starts so (the data tag follows)
# CI sets this: there every tool the tests use must be installed, and a test never skips for want of one.
EVERY_TOOL = "DIGITS_TESTS_NEED_EVERY_TOOL"
T = TypeVar("T")
SIDE = 280  # the Try it pad's side, in pixels
PEN = SIDE // 14  # and its pen's width


def need(tool: str, path: str | None = None, how: str = "") -> str:
    """The path of a command the test needs; skip the test without it, or fail where CI says every tool is there."""
    found = path if path and Path(path).is_file() else shutil.which(tool)
    if found is None:
        reason = f"{tool} is not installed{f' ({how})' if how else ''}"
        if os.environ.get(EVERY_TOOL):
            pytest.fail(f"{reason}, and {EVERY_TOOL} says every tool must be")
        pytest.skip(reason)
    return found


def wait_until(condition: Callable[[], T], timeout: float = 60, what: str = "the condition") -> T:
    """Poll `condition` until it returns something true, and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def write_tiny_data(folder: Path, mnist: dict[str, np.ndarray], n_train: int = 600, n_test: int = 200) -> Path:
    """Kaggle-format train.csv and test.csv (and test_labels.csv) cut from MNIST, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train = np.column_stack([mnist["train_labels"][:n_train], mnist["train_images"][:n_train].reshape(n_train, -1)])
    write_csv(folder / "train.csv", TRAIN_COLUMNS, train)
    write_csv(folder / "test.csv", TEST_COLUMNS, mnist["test_images"][:n_test].reshape(n_test, -1))
    labels = np.column_stack([np.arange(1, n_test + 1), mnist["test_labels"][:n_test]])
    write_csv(folder / "test_labels.csv", ["ImageId", "Label"], labels)
    return folder


def train_tiny_run(root: Path, mnist: dict[str, np.ndarray], n_train: int, **parameters):
    """A finished one-epoch run (batch 50) on the first n_train MNIST images, data in root/data, run in root/models."""
    from digits import runs, train

    data_dir = write_tiny_data(root / "data", mnist, n_train=n_train, n_test=100)
    run = runs.resolve({"epochs": 1, "batch_size": 50, **parameters, "data_dir": data_dir,
                        "models_dir": root / "models"})
    train.train_run(run)
    return run


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without make's own variables or exported parameters, plus `extra`."""
    dropped = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", *(p.variable for p in PARAMETERS_LIST)}
    return {**{key: value for key, value in os.environ.items() if key not in dropped}, **extra}


def run_make(project: Path, *arguments: str, log: Path | None = None, timeout: int = 1200,
             **environment: str) -> subprocess.CompletedProcess:
    """`make ARGUMENTS` in `project` with this test run's environment as the project environment.

    The self-contained report is rendered (QUARTO=no) unless the arguments give QUARTO; with `log`, the
    output goes to that file as `make ... > log 2>&1` sends it.
    """
    quarto = [] if any(argument.startswith("QUARTO=") for argument in arguments) else ["QUARTO=no"]
    command = ["make", "--no-print-directory", *arguments, *quarto, f"VENV={sys.prefix}"]
    env = clean_environment(**environment)
    if log is None:
        return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    with open(log, "w") as handle:
        result = subprocess.run(command, cwd=project, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout,
                                env=env, check=False)
    return subprocess.CompletedProcess(command, result.returncode, log.read_text(), "")


def run_pipeline(project: Path, command: str, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    """`python -m digits.pipeline COMMAND NAME=value ...` in `project`, with the project's own lib/."""
    env = clean_environment(PYTHONPATH=str(project / "lib"), **environment)
    return subprocess.run([sys.executable, "-m", "digits.pipeline", command, *arguments], cwd=project,
                          capture_output=True, text=True, timeout=1200, env=env, check=False)


def errors(result: subprocess.CompletedProcess) -> list[str]:
    """The `error:` lines a command printed."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def reported(result: subprocess.CompletedProcess, run) -> bool:
    """True when a command rendered the report of `run` (a Run or a run folder)."""
    return f"\nreport: report/_book/index.html (run {run.name})\n" in result.stdout


def trainings(output: str) -> int:
    """How many trainings an output reports."""
    return len(re.findall(r"^training \w+: ", output, flags=re.MULTILINE))


def run_folder(project: Path, prefix: str, models: str = "models") -> Path:
    """The one run folder in `models` named `prefix` and a data tag's six hexadecimal digits."""
    found = [path for path in (project / models).glob(f"{prefix}*")
             if path.is_dir() and re.fullmatch(re.escape(prefix) + r"[0-9a-f]{6}", path.name)]
    assert len(found) == 1, f"{prefix}*: {sorted(path.name for path in (project / models).iterdir())}"
    return found[0]


def copy_project(destination: Path) -> Path:
    """A copy of the project as a fresh clone has it (the files git tracks, and new ones it does not ignore),
    sharing this environment (set up by `make setup`)."""
    if not any(up_to_date(Path(sys.prefix), gpu, PROJECT_ROOT) for gpu in (False, True)):
        pytest.skip("the pipeline tests use the project environment: run them with `make test`")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():  # not one deleted in the working tree
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def commit_all(project: Path) -> None:
    """Make the copy a git repository with everything committed, as a clone is."""
    for command in (["init", "-q"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"]):
        subprocess.run(["git", *command], cwd=project, check=True, capture_output=True)


def fake_finished_run(root: Path, finished_at: str, val_accuracy: float, test_accuracy: float | None = None,
                      data_dir: Path | None = None, **parameters):
    """A run that looks finished (a small but complete Keras archive, its history and metrics), trained on nothing.

    Its data is data_dir (default root/data: one blank image to train on and one to predict, written if
    missing); it lives in root/models.
    """
    import zipfile

    import pandas as pd

    from digits import runs

    data_dir = data_dir or root / "data"
    if not (data_dir / "train.csv").is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        write_csv(data_dir / "train.csv", TRAIN_COLUMNS, np.zeros((1, 785), dtype=np.uint8))
        write_csv(data_dir / "test.csv", TEST_COLUMNS, np.zeros((1, 784), dtype=np.uint8))
    run = runs.resolve({**parameters, "data_dir": data_dir, "models_dir": root / "models"})
    runs.create_folder(run)
    with zipfile.ZipFile(run.folder / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * 4096)
    history = pd.DataFrame([{"epoch": e + 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0,
                             "val_accuracy": val_accuracy, "learning_rate": 0.001, "seconds": 2.0}
                            for e in range(run.epochs)])
    history.to_csv(run.folder / "history.csv", index=False)
    metrics = {"run": run.name, **{k: v for k, v in run.parameters.items() if k != "ensemble"},
               "val_accuracy": val_accuracy, "test_accuracy": test_accuracy, "train_seconds": 2.0 * run.epochs,
               "images_per_second": 100.0, "n_train": 54000, "fingerprint": "abc", "finished_at": finished_at}
    (run.folder / "metrics.json").write_text(json.dumps(metrics))
    return run


@contextmanager
def chromium(width: int = 1280, height: int = 1000):
    """Headless Chromium (Debian's, through its chromedriver) with a fresh profile and no network: every
    request goes to a proxy that refuses. Its console is logged (console_problems)."""
    need("chromium", how="apt-get install chromium")
    need("chromedriver", "/usr/bin/chromedriver", how="apt-get install chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = webdriver.ChromeOptions()
        for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9", f"--window-size={width},{height}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            yield driver
        finally:
            driver.quit()


def console_problems(driver) -> list[str]:
    """Console warnings and errors since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("WARNING", "SEVERE")]


def requests_made(driver) -> list[str]:
    """Addresses requested since the last call, but the page's own files (file:), data: and blob: ones, and the
    browser's own pages (its new-tab page at start-up)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = message["params"].get("request", message["params"]).get("url")
            if not url.startswith(("file:", "data:", "blob:", "chrome:", "chrome-untrusted:", "about:")):
                urls.append(url)
    return urls


# --- Images a user gives ----------------------------------------------------------------------------------------


def pad(*strokes: list[tuple[float, float]], width: int = PEN) -> Image.Image:
    """A white pad with dark strokes (points in a 0..1 square), round-jointed like the pad's."""
    image = Image.new("L", (SIDE, SIDE), 255)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line([(x * SIDE, y * SIDE) for x, y in stroke], fill=17, width=width, joint="curve")
    return image


def scribble(margin: float) -> list[tuple[float, float]]:
    """A zigzag of twelve lines that covers the pad but for `margin` on each side."""
    rows = np.linspace(margin, 1 - margin, 12)
    return [(margin if index % 2 == 0 else 1 - margin, row) for index, row in enumerate(rows)]


def shadowed(digit: np.ndarray, darkest: float = 0.4) -> tuple[Image.Image, Image.Image]:
    """A photo of an MNIST digit on paper with a shadow falling from left to right (the light down to `darkest` of
    itself), and the same photo evenly lit."""
    enlarged = np.asarray(Image.fromarray(digit).resize((168, 168), Image.Resampling.BICUBIC)) / 255
    ink = np.zeros((240, 240))
    ink[36:204, 36:204] = enlarged
    grey = 235 - ink * 195
    light = np.linspace(1.0, darkest, 240)[None, :]
    return (Image.fromarray((grey * light).round().astype(np.uint8)),
            Image.fromarray(grey.round().astype(np.uint8)))
