"""The whole pipeline as a user runs it: `make` with tiny parameters on a copy of the project.

The copy lives in a folder whose path has a space and a quote, and most runs use
600 Kaggle-format rows in a folder with a space in its name. The tests of this
file run in order on one copy: a first run, an unchanged rerun, bad
parameters, then the runs: kept, reused, compared, damaged, cleaned.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_make
from digits.submission import read_submission, score_submission

QUICK = ("EPOCHS=1", "BATCH_SIZE=64")


def run_dir(project: Path, prefix: str, models: str = "models") -> Path:
    """The one run folder in `models` whose name starts with `prefix`."""
    found = [path for path in (project / models).glob(f"{prefix}*") if path.is_dir()]
    assert len(found) == 1, f"{prefix}*: {[path.name for path in found]}"
    return found[0]


def executed_times(folder: Path) -> dict[str, int]:
    """Modification time of each executed notebook under a folder."""
    return {path.name: path.stat().st_mtime_ns for path in sorted(folder.rglob("*.ipynb"))}


def trainings(output: str) -> int:
    """How many trainings an output reports."""
    return len(re.findall(r"^training strided: ", output, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def first_run(project, tiny_data, tmp_path_factory) -> subprocess.CompletedProcess:
    """`make all EPOCHS=1 BATCH_SIZE=64 DATA_DIR='tiny data' > log 2>&1` on the fresh copy."""
    log = tmp_path_factory.mktemp("logs") / "run.log"
    result = run_make(project, "all", *QUICK, "DATA_DIR=tiny data", log=log)
    assert result.returncode == 0, result.stdout[-5000:]
    return result


def test_first_run_makes_a_run_folder_with_model_notebooks_and_report(first_run, project):
    run = run_dir(project, "strided-e1-s42-b64-d")
    assert {path.name for path in run.iterdir()} >= {
        "run.json", "model.keras", "history.csv", "metrics.json", "evaluation.csv", "submission.csv", "notebooks"}
    assert sorted(path.name for path in (run / "notebooks").iterdir()) == [
        "20-train.ipynb", "30-evaluate.ipynb", "40-submit.ipynb"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"] == run.name and metrics["epochs"] == 1 and metrics["batch_size"] == 64
    assert metrics["n_train"] + metrics["n_validation"] == 600
    submission = run / "submission.csv"
    assert len(read_submission(submission, expected_rows=200)) == 200
    # The submission's predictions score exactly what evaluation measured on the same model.
    assert score_submission(submission, project / "tiny data" / "test_labels.csv") == metrics["test_accuracy"]
    assert (project / "models" / "explore" / "10-explore.ipynb").is_file()
    assert first_run.stdout.rstrip().endswith(f"report: report/_book/index.html (run {run.name})")
    assert not list(project.rglob("_failed-*")) and not list(project.rglob(".*.partial-*"))


def test_a_redirected_log_keeps_every_notebook_and_the_training_progress(first_run):
    log = first_run.stdout
    assert "train.csv: 600 labelled images, test.csv: 200 images to predict" in log  # the first notebook's output
    assert "epoch   1/1" in log  # live training progress, streamed by papermill
    for notebook in ("10-explore", "20-train", "30-evaluate", "40-submit"):
        assert f"==> running notebooks/{notebook}.ipynb" in log


def test_source_notebooks_stay_clean_after_a_run(first_run, project):
    for path in (project / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = [cell for cell in cells if cell["cell_type"] == "code"]
        assert not any(cell.get("outputs") or cell.get("execution_count") for cell in code)


def test_same_command_again_does_nothing(first_run, project):
    before = executed_times(project / "models"), (project / "report" / "_book" / "index.html").stat().st_mtime_ns
    result = run_make(project, "all", *QUICK, "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert "==> running" not in result.stdout and trainings(result.stdout) == 0
    after = executed_times(project / "models"), (project / "report" / "_book" / "index.html").stat().st_mtime_ns
    assert after == before


# --- Bad parameters stop before any work ------------------------------------------------------


@pytest.mark.parametrize("parameter, message", [
    ("EPOCHS=abc", "epochs must be a whole number from 1 to 1000 (or 0 for the recipe's), got 'abc'"),
    ("BATCH_SIZE=-1", "batch_size must be a whole number from 1 to 65536 (or 0 for the recipe's), got -1"),
    ("ARCH=seed", "arch must be one of strided, wide, baseline, got 'seed'"),
    ("SAMPLE_SIZE=-5", "sample_size must be a whole number from 20 to"),
    ("DATA_DIR=/no/such/folder", "data_dir must be an existing folder, got '/no/such/folder'"),
])
def test_bad_parameter_stops_before_any_work(parameter, message, first_run, project, tmp_path):
    empty = tmp_path / "empty data"
    empty.mkdir()
    before = executed_times(project / "models")
    # -j2 runs independent steps at once: the check still comes before any data is written.
    result = run_make(project, "-j2", "all", f"DATA_DIR={empty}", parameter)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "==> running" not in result.stdout
    assert executed_times(project / "models") == before and list(empty.iterdir()) == []


def test_no_parameter_value_is_run_by_the_shell(first_run, project):
    value = "x'; touch pwned; echo '"
    for parameter in (f"MODELS_DIR={value}", f"DATA_DIR={value}", f"EPOCHS={value}"):
        run_make(project, "train", parameter)
    assert not list(project.rglob("pwned")) and not (Path.cwd() / "pwned").exists()


# --- Runs: kept, reused, compared ------------------------------------------------------------


def test_epochs_1_then_2_then_1_trains_twice_and_keeps_both_runs(first_run, project):
    outputs = [run_make(project, "train", f"EPOCHS={epochs}", "BATCH_SIZE=64", "DATA_DIR=tiny data")
               for epochs in (1, 2, 1)]
    assert all(result.returncode == 0 for result in outputs), outputs[-1].stderr
    assert [trainings(result.stdout) for result in outputs] == [0, 1, 0]  # e1 exists from the first run
    assert run_dir(project, "strided-e1-s42-b64-d").is_dir() and run_dir(project, "strided-e2-s42-b64-d").is_dir()


def test_bare_make_report_renders_the_latest_run_and_trains_nothing(first_run, project):
    latest = run_dir(project, "strided-e2-s42-b64-d")  # finished last, by the test above
    result = run_make(project, "report", "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert trainings(result.stdout) == 0 and "20-train.ipynb" not in result.stdout
    assert result.stdout.rstrip().endswith(f"(run {latest.name})")
    page = (project / "report" / "_book" / "index.html").read_text()
    assert f"<strong>{latest.name}</strong>" in page  # the current run is highlighted in the Runs table


def test_make_runs_lists_every_run_and_writes_runs_csv(first_run, project):
    result = run_make(project, "runs")
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in (project / "models").glob("strided-*"))
    assert len(names) == 2 and all(name in result.stdout for name in names)
    table = (project / "models" / "runs.csv").read_text().splitlines()
    assert table[0].startswith("run,epochs,val_accuracy,test_accuracy,train_minutes,images_per_second,finished_at")
    assert sorted(line.split(",")[0] for line in table[1:]) == names


def test_an_ensemble_trains_only_its_missing_members_and_averages_them(first_run, project):
    result = run_make(project, "all", *QUICK, "ENSEMBLE=2", "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert trainings(result.stdout) == 1  # seed 42 is the first run's, reused; seed 43 is new
    member = run_dir(project, "strided-e1-s43-b64-d")
    ensemble = run_dir(project, "strided-e1-s42-b64-ens2-d")
    metrics = json.loads((ensemble / "metrics.json").read_text())
    assert metrics["members"] == [run_dir(project, "strided-e1-s42-b64-d").name, member.name]
    assert 0 < metrics["test_accuracy"] <= 1 and json.loads((member / "metrics.json").read_text())["test_accuracy"]
    evaluation = (ensemble / "evaluation.csv").read_text()
    assert f"{member.name} (member)" in evaluation and f"{ensemble.name} (this run)" in evaluation
    assert len(read_submission(ensemble / "submission.csv", expected_rows=200)) == 200
    assert result.stdout.rstrip().endswith(f"(run {ensemble.name})")
    assert "the average of 2 `strided` runs" in (project / "report" / "_summary.md").read_text()
    # The ensemble is now the latest: a bare `make report` shows it, training nothing.
    result = run_make(project, "report", "DATA_DIR=tiny data")
    assert result.returncode == 0 and trainings(result.stdout) == 0
    assert result.stdout.rstrip().endswith(f"(run {ensemble.name})")


def test_editing_the_library_reruns_the_notebooks_but_not_the_training(first_run, project):
    plots = project / "lib" / "digits" / "plots.py"
    plots.write_text(plots.read_text() + '\nprint("this clone\'s own library")\n')
    result = run_make(project, "all", *QUICK, "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert all(f"==> running notebooks/{name}.ipynb" in result.stdout
               for name in ("10-explore", "20-train", "30-evaluate", "40-submit"))
    assert trainings(result.stdout) == 0 and "reusing the finished run" in result.stdout
    assert "this clone's own library" in result.stdout  # the kernel imported the copy's lib/, not the installed one


# --- Damage, cleaning, other folders ----------------------------------------------------------


def truncate_model(run: Path) -> None:
    content = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(content[: len(content) // 3])


def garble_metrics(run: Path) -> None:
    (run / "metrics.json").write_text("not json at all")


def delete_history(run: Path) -> None:
    (run / "history.csv").unlink()


@pytest.mark.parametrize("damage, named", [
    (truncate_model, "model.keras"), (garble_metrics, "metrics.json"), (delete_history, "history.csv")])
def test_a_damaged_run_is_found_and_trained_again(damage, named, first_run, project):
    run = run_dir(project, "strided-e1-s42-b64-d")
    damage(run)
    (run / ".history.partial-99999999.csv").write_text("left by a killed write")
    result = run_make(project, "train", *QUICK, "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert f"damaged run: models/{run.name}/{named}" in result.stdout and trainings(result.stdout) == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"] == run.name and (run / "history.csv").is_file()
    assert not list(run.glob(".*.partial-*"))


def test_clean_models_then_make_trains_from_scratch(first_run, project):
    (project / "models" / "my notes").mkdir()
    result = run_make(project, "clean-models")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (project / "models").iterdir()) == ["README.md", "my notes"]
    result = run_make(project, "all", *QUICK, "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert trainings(result.stdout) == 1 and run_dir(project, "strided-e1-s42-b64-d").is_dir()


def test_spaces_and_quotes_in_models_dir_and_data_dir(first_run, project, tiny_data):
    models = "my models 'quoted' \"double\""
    data = project / "data 'copy' here"
    data.mkdir()
    for name in ("train.csv", "test.csv", "test_labels.csv"):
        (data / name).write_bytes((tiny_data / name).read_bytes())
    result = run_make(project, "all", *QUICK, f"MODELS_DIR={models}", f"DATA_DIR={data}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert trainings(result.stdout) == 1  # another models folder: its own runs
    run = run_dir(project, "strided-e1-s42-b64-d", models)
    assert (run / "submission.csv").is_file()
    # The same data in another folder is the same data: same run name as in models/.
    assert run.name == run_dir(project, "strided-e1-s42-b64-d").name
    result = run_make(project, "clean-models", f"MODELS_DIR={models}")
    assert result.returncode == 0 and not any((project / models).glob("strided-*"))
    assert run_dir(project, "strided-e1-s42-b64-d").is_dir()  # the project's own runs are untouched


def test_kaggle_files_in_a_folder_are_only_read(first_run, project, tiny_data):
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in tiny_data.iterdir()}
    result = run_make(project, "all", *QUICK, "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in tiny_data.iterdir()} == before


def test_a_path_that_cannot_be_written_is_one_line_naming_it(first_run, project):
    (project / "a file").write_text("not a folder")
    result = run_make(project, "train", *QUICK, "DATA_DIR=tiny data", "MODELS_DIR=a file/models")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "a file/models" in errors[0], result.stderr


def test_two_runs_at_once_wait_for_each_other(first_run, project):
    command = ["make", "--no-print-directory", "train", "EPOCHS=1", "BATCH_SIZE=64", "SEED=5", "DATA_DIR=tiny data",
               f"VENV={sys.prefix}"]
    processes = [subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    combined = "".join(outputs)
    assert trainings(combined) == 1 and "waiting: another pipeline run (pid" in combined
    run = run_dir(project, "strided-e1-s5-b64-d")
    assert json.loads((run / "metrics.json").read_text())["seed"] == 5
    assert not list(project.rglob("_failed-*")) and not list(project.rglob(".*.partial-*"))


def test_a_full_disk_is_one_line_naming_the_path(first_run, project, tmp_path):
    full = tmp_path / "full disk"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)],
                      capture_output=True).returncode != 0:
        pytest.skip("a small disk cannot be mounted here (mounting a tmpfs needs root)")
    try:
        result = run_make(project, "train", *QUICK, "DATA_DIR=tiny data", f"MODELS_DIR={full}")
    finally:
        subprocess.run(["umount", str(full)], check=True)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(full) in errors[0], result.stderr
