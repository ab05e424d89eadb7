"""The whole pipeline as a user runs it: `make all` with tiny parameters on a copy of the project.

The tests run in file order on one copy: first run, an unchanged rerun, the
report, bad parameters, then a rerun with more epochs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conftest import run_make
from digits.submission import read_submission, score_submission

SMOKE = ("EPOCHS=1", "SAMPLE_SIZE=2000")
EXECUTED = ["10-explore", "20-train", "30-evaluate", "40-submit"]


def executed_times(project: Path) -> dict[str, float]:
    """Modification time of each executed notebook."""
    return {name: (project / "report" / "notebooks" / f"{name}.ipynb").stat().st_mtime_ns for name in EXECUTED}


def run_files(project: Path) -> dict[str, bytes]:
    """The trained run's files and their content."""
    return {path.name: path.read_bytes() for path in (project / "models" / "strided").iterdir() if path.is_file()}


@pytest.fixture(scope="module")
def first_run(project) -> subprocess.CompletedProcess:
    """`make all EPOCHS=1 SAMPLE_SIZE=2000` on the fresh copy."""
    result = run_make(project, "all", *SMOKE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_first_run_writes_data_notebooks_model_and_report(first_run, project):
    for name in ("train.csv", "test.csv", "test_labels.csv"):
        assert (project / "data" / name).is_file()
    assert executed_times(project)
    metrics = json.loads((project / "models" / "strided" / "metrics.json").read_text())
    assert metrics["arch"] == "strided" and metrics["epochs"] == 1
    assert metrics["n_train"] + metrics["n_validation"] == 2000 and 190 <= metrics["n_validation"] <= 210
    assert 0 < metrics["val_accuracy"] <= 1
    assert {"python_version", "tensorflow_version", "keras_version", "images_per_second"} <= set(metrics)
    submission = project / "models" / "strided" / "submission.csv"
    assert len(read_submission(submission, expected_rows=10000)) == 10000
    # The submission notebook's predictions score exactly what training measured on the same model.
    assert score_submission(submission, project / "data" / "test_labels.csv") == metrics["test_accuracy"]
    assert "epoch   1/1" in first_run.stdout  # training progress reached the terminal
    assert first_run.stdout.rstrip().endswith("report: report/_book/index.html")
    assert not list((project / "report" / "notebooks").glob("_failed-*"))


def test_source_notebooks_stay_clean_after_a_run(first_run, project):
    for path in (project / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = [cell for cell in cells if cell["cell_type"] == "code"]
        assert not any(cell.get("outputs") or cell.get("execution_count") for cell in code)


def test_same_command_again_does_nothing(first_run, project):
    before = executed_times(project), (project / "report" / "_book" / "index.html").stat().st_mtime_ns
    result = run_make(project, "all", *SMOKE)
    assert result.returncode == 0, result.stderr
    assert "==> running" not in result.stdout and "digits.data" not in result.stdout
    assert (executed_times(project), (project / "report" / "_book" / "index.html").stat().st_mtime_ns) == before


# --- The fallback report (no Quarto here) ---------------------------------------------------

RESOURCE_FROM_NETWORK = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//"
    r"|url\(\s*[\"']?(?:https?:)?//|@import\s+[\"']?(?:url\()?\s*[\"']?https?:",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def report_html(first_run, project) -> str:
    """The rendered report's HTML."""
    return (project / "report" / "_book" / "index.html").read_text()


def test_report_headline_matches_the_metrics(report_html, project):
    metrics = json.loads((project / "models" / "strided" / "metrics.json").read_text())
    assert f"{metrics['test_accuracy']:.2%} test accuracy" in report_html
    assert f"{metrics['val_accuracy']:.2%}" in report_html
    assert "98.98%" in report_html  # the original write-up's Kaggle score, as a baseline row


def test_report_has_every_chapter_and_key_figures_inline(report_html):
    for title in ("Summary", "Explore the data", "Train the network", "Evaluate the model", "Predict the test set"):
        assert title in report_html
    for label in ("fig-learning-curves", "fig-confusion-matrix", "fig-sample-digits"):
        inline_png = rf'<figure id="{label}"><img [^>]*src="data:image/png;base64,[A-Za-z0-9+/]{{1000}}'
        assert re.search(inline_png, report_html)
    assert report_html.count("data:image/png;base64,") >= 12  # the summary's figures and the notebooks' plots


def test_report_loads_nothing_from_the_network(report_html):
    assert RESOURCE_FROM_NETWORK.search(report_html) is None
    assert "mathjax" not in report_html.lower() and "require.js" not in report_html.lower()


def test_report_hides_the_parameters_cells(report_html):
    assert "Injected parameters" not in report_html and "injected-parameters" not in report_html
    assert "models_dir: str =" not in report_html  # the parameters cell's code is not shown


def test_the_detector_finds_network_loads():
    """The check above must be able to fail."""
    for page in ('<script src="https://cdn.example/x.js">', "<link href='//fonts.example/css' rel=stylesheet>",
                 "<style>@import url(https://x/y.css)</style>", '<img src="http://x/y.png">'):
        assert RESOURCE_FROM_NETWORK.search(page)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_opens_in_headless_chromium_with_content(first_run, project, tmp_path):
    screenshot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,2000", f"--screenshot={screenshot}",
             (project / "report" / "_book" / "index.html").as_uri()],
            capture_output=True, timeout=120, check=True,
        )
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.1  # text, tables and plots, not a blank page
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200  # coloured figures


@pytest.mark.skipif(shutil.which("quarto") is None,
                    reason="Quarto is not installed (conda-forge `quarto`, or `pip install quarto-cli` online)")
def test_quarto_renders_the_book(first_run, project):
    subprocess.run(["quarto", "render", "report"], cwd=project, check=True, timeout=600)
    index = (project / "report" / "_book" / "index.html").read_text()
    metrics = json.loads((project / "models" / "strided" / "metrics.json").read_text())
    assert f"{metrics['test_accuracy']:.2%} test accuracy" in index
    assert (project / "report" / "_book" / "notebooks" / "20-train.html").is_file()


# --- Bad parameters --------------------------------------------------------------------------


@pytest.mark.parametrize("parameter, message", [
    ("EPOCHS=abc", "epochs must be a whole number from 1 to 1000, got 'abc'"),
    ("EPOCHS=0", "epochs must be a whole number from 1 to 1000, got 0"),
    ("BATCH_SIZE=-1", "batch_size must be a whole number from 1 to 65536, got -1"),
    ("ARCH=nope", "arch must be one of strided, seed, got 'nope'"),
    ("SAMPLE_SIZE=-5", "sample_size must be a whole number from 20 to"),
    ("DATA_DIR=/no/such/folder", "data_dir must be an existing folder, got '/no/such/folder'"),
])
def test_bad_parameter_stops_before_any_work(parameter, message, first_run, project):
    before = run_files(project), executed_times(project)
    result = run_make(project, "all", parameter)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "==> running" not in result.stdout
    assert (run_files(project), executed_times(project)) == before


# --- Changed parameters ----------------------------------------------------------------------


def test_more_epochs_rerun_training_and_what_follows_only(first_run, project):
    before = executed_times(project)
    result = run_make(project, "all", "EPOCHS=2", "SAMPLE_SIZE=2000")
    assert result.returncode == 0, result.stderr[-3000:]
    after = executed_times(project)
    assert after["10-explore"] == before["10-explore"]
    assert all(after[name] > before[name] for name in ("20-train", "30-evaluate", "40-submit"))
    metrics = json.loads((project / "models" / "strided" / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert "epoch   2/2" in result.stdout
