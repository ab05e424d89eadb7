"""The whole pipeline as a user runs it: `make` with tiny parameters on copies of the project.

The session trains one quick run through `make all` (conftest's `finished_project`);
each test here reads it, or changes a copy of its own (`fresh_project`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from digits.formats.submission import read_submission
from helpers import QUICK, QUICK_RUN, clean_environment, errors, reported, run_folder, run_make, trainings

pytestmark = pytest.mark.slow


def executed_times(folder: Path) -> dict[str, int]:
    """Modification time of each executed notebook under a folder."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in sorted(folder.rglob("*.ipynb"))}


# --- The first run --------------------------------------------------------------------------------


def test_first_run_makes_a_run_folder_with_model_notebooks_and_report(finished_project):
    project, result = finished_project
    run = run_folder(project, QUICK_RUN)
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
    truth = read_submission(project / "tiny data" / "test_labels.csv")
    assert (read_submission(submission) == truth).mean() == metrics["test_accuracy"]
    assert (project / "models" / "explore" / "10-explore.ipynb").is_file()
    assert f"\nreport: report/_book/index.html (run {run.name})\n" in result.stdout
    assert not list(project.rglob("_failed-*")) and not list(project.rglob(".*.partial-*"))


def test_a_redirected_log_keeps_every_notebook_and_the_training_progress(finished_project):
    log = finished_project[1].stdout
    assert "train.csv: 600 labelled images, test.csv: 200 images to predict" in log  # the first notebook's output
    assert "epoch   1/1" in log  # live training progress, streamed by papermill
    for notebook in ("10-explore", "20-train", "30-evaluate", "40-submit"):
        assert f"==> running notebooks/{notebook}.ipynb" in log


NOISE = re.compile(r"oneDNN|absl::|I0000|cpu_feature_guard|IPKernelApp|without encryption|KeyboardInterrupt|"
                   r"Passed unknown parameter|^\s*(if|then|fi)\b")


def test_the_terminal_shows_the_run_and_no_start_up_noise(finished_project):
    project, result = finished_project
    noisy = [line for line in result.stdout.splitlines() if NOISE.search(line)]
    assert noisy == []
    assert len(result.stdout.splitlines()) <= 26, result.stdout  # 24, and the calibration's two lines
    # Nor do the executed notebooks (and so the report): no stderr output at all from a clean run.
    for path in project.rglob("models/**/*.ipynb"):
        outputs = [output for cell in json.loads(path.read_text())["cells"] for output in cell.get("outputs", [])]
        assert not [output for output in outputs if output.get("name") == "stderr"], path.name


def test_source_notebooks_stay_clean_after_a_run(finished_project):
    for path in (finished_project[0] / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = [cell for cell in cells if cell["cell_type"] == "code"]
        assert not any(cell.get("outputs") or cell.get("execution_count") for cell in code)


def test_same_command_again_does_nothing(fresh_project):
    before = executed_times(fresh_project / "models"), (fresh_project / "report/_book/index.html").stat().st_mtime_ns
    result = run_make(fresh_project, "all", *QUICK, "QUARTO=quarto")  # as the project was made
    assert result.returncode == 0, result.stderr
    assert "==> running" not in result.stdout and trainings(result.stdout) == 0
    after = executed_times(fresh_project / "models"), (fresh_project / "report/_book/index.html").stat().st_mtime_ns
    assert after == before


# --- Bad parameters stop before any work ------------------------------------------------------------


@pytest.mark.parametrize("parameter, message", [
    ("EPOCHS=abc", "epochs must be a whole number from 1 to 1000, got 'abc'"),
    ("EPOCHS=0", "epochs must be a whole number from 1 to 1000, got 0"),
    ("EPOCHS=²", "epochs must be a whole number from 1 to 1000, got '²'"),
    ("SEED=²", "seed must be a whole number from 0 to 2147483647, got '²'"),
    ("BATCH_SIZE=0", "batch_size must be a whole number from 1 to 65536, got 0"),
    ("BATCH_SIZE=-1", "batch_size must be a whole number from 1 to 65536, got -1"),
    ("ARCH=seed", "arch must be one of strided, wide, baseline, got 'seed'"),
    ("SAMPLE_SIZE=-5", "sample_size must be a whole number from 20 to"),
    ("EPOCH=3", "unknown parameter EPOCH='3'"),
    ("DATA_DIR=/no/such/folder", "data_dir must be an existing folder, got '/no/such/folder'"),
])
def test_bad_parameter_stops_before_any_work(parameter, message, fresh_project, tmp_path):
    empty = tmp_path / "empty data"
    empty.mkdir()
    before = executed_times(fresh_project / "models")
    # -j2 runs independent prerequisites at once: the check still comes before any work.
    result = run_make(fresh_project, "-j2", "all", f"DATA_DIR={empty}", parameter)
    assert result.returncode != 0
    assert len(errors(result)) == 1 and message in errors(result)[0], result.stderr
    assert "==> running" not in result.stdout
    assert executed_times(fresh_project / "models") == before and list(empty.iterdir()) == []


def test_a_sample_larger_than_the_data_is_refused_by_name(fresh_project):
    result = run_make(fresh_project, "all", *QUICK, "SAMPLE_SIZE=5000")
    assert result.returncode != 0 and trainings(result.stdout) == 0
    assert errors(result) == ["error: sample_size 5,000 is more than the 600 rows of tiny data/train.csv"]


def test_no_parameter_value_is_run_by_the_shell_or_expanded_by_make(fresh_project):
    injected = "x'; touch pwned; echo '"
    result = run_make(fresh_project, "evaluate", f"MODELS_DIR={injected}", "DATA_DIR=tiny data")
    assert result.returncode != 0 and errors(result) == [
        (f"error: no finished run in {injected} for the data in tiny data: `make all` trains one, "
         "or name one with RUN=... (`make runs` lists them)")]
    result = run_make(fresh_project, "train", f"DATA_DIR={injected}")
    assert result.returncode != 0 and errors(result) == [
        f"error: bad parameter: data_dir must be an existing folder, got {injected!r}"]
    # Make's own syntax reaches the pipeline as the same characters: nothing runs, nothing is expanded.
    for value in ("$(shell touch PWNED)", "a$(x)b", "$$HOME", "${HOME}"):
        result = run_make(fresh_project, "runs", f"MODELS_DIR=m {value}")
        assert result.returncode == 0 and result.stdout == f"no finished runs in m {value}\n", result.stderr
    assert not list(fresh_project.rglob("pwned")) and not list(fresh_project.rglob("PWNED"))
    assert not (Path.cwd() / "pwned").exists() and not (Path.cwd() / "PWNED").exists()


def test_exported_shell_variables_are_not_parameters(fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    result = run_make(fresh_project, "report", "DATA_DIR=tiny data", SEED="7", ARCH="x86_64")
    assert result.returncode == 0, result.stderr
    assert trainings(result.stdout) == 0 and reported(result, run)
    assert "note: SEED=7 in the environment is ignored" in result.stderr
    assert "note: ARCH=x86_64 in the environment is ignored" in result.stderr


# --- Runs: kept, reused, compared ----------------------------------------------------------------


def test_epochs_2_trains_a_second_run_and_a_bare_report_shows_it(fresh_project):
    result = run_make(fresh_project, "all", "EPOCHS=2", "BATCH_SIZE=64", "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stdout[-3000:]
    assert trainings(result.stdout) == 1
    second = run_folder(fresh_project, "strided-e2-s42-b64-d")
    assert run_folder(fresh_project, QUICK_RUN).is_dir()
    # A bare `make report` shows the run the last `make all` named (the e2 run), training nothing.
    result = run_make(fresh_project, "report", "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    assert trainings(result.stdout) == 0 and "20-train.ipynb" not in result.stdout
    assert reported(result, second) and "the run the last `make all` or `make train` named" in result.stdout.splitlines()[0]
    page = (fresh_project / "report" / "_book" / "index.html").read_text()
    assert f"<strong>{second.name}</strong>" in page  # the current run is highlighted in the Runs table
    first = run_folder(fresh_project, QUICK_RUN)
    again = run_make(fresh_project, "all", *QUICK)  # the first run is kept and reused, and named again
    assert again.returncode == 0 and trainings(again.stdout) == 0
    assert f"reused {first.name} (trained " in again.stdout
    assert reported(run_make(fresh_project, "report", "DATA_DIR=tiny data"), first)


def test_make_runs_lists_every_run_and_writes_runs_csv(finished_project, tmp_path):
    project = finished_project[0]
    result = run_make(project, "runs", "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr
    run = run_folder(project, QUICK_RUN)
    assert run.name in result.stdout and "quick run" in result.stdout
    table = (project / "models" / "runs.csv").read_text().splitlines()
    assert table[0] == "run,val_accuracy,test_accuracy,train_minutes,images_per_second,finished_at,quick"
    name, validation = table[1].split(",")[:2]
    assert name == run.name and len(validation.split(".")[1]) <= 4  # rounded for people


def test_an_ensemble_trains_only_its_missing_members_and_averages_them(fresh_project):
    result = run_make(fresh_project, "all", *QUICK, "ENSEMBLE=2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert trainings(result.stdout) == 1  # seed 42 is the first run's, reused; seed 43 is new
    member = run_folder(fresh_project, "strided-e1-s43-b64-d")
    ensemble = run_folder(fresh_project, "strided-e1-s42-b64-ens2-d")
    metrics = json.loads((ensemble / "metrics.json").read_text())
    assert metrics["members"] == [run_folder(fresh_project, QUICK_RUN).name, member.name]
    assert 0 < metrics["test_accuracy"] <= 1 and json.loads((member / "metrics.json").read_text())["test_accuracy"]
    evaluation = (ensemble / "evaluation.csv").read_text()
    assert f"{member.name} (member)" in evaluation and f"{ensemble.name} (this run)" in evaluation
    assert len(read_submission(ensemble / "submission.csv", expected_rows=200)) == 200
    assert reported(result, ensemble)
    assert "the average of 2 `strided` runs" in (fresh_project / "report" / "_summary.md").read_text()
    # `make all` named the ensemble, so it is the chosen run: a bare `make report` shows it, training nothing.
    result = run_make(fresh_project, "report", "DATA_DIR=tiny data")
    assert result.returncode == 0 and trainings(result.stdout) == 0
    assert reported(result, ensemble)


def test_editing_the_library_reruns_the_notebooks_but_not_the_training(fresh_project):
    plots = fresh_project / "lib" / "digits" / "plots.py"
    plots.write_text(plots.read_text() + '\nprint("this clone\'s own library")\n')
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr
    assert all(f"==> running notebooks/{name}.ipynb" in result.stdout
               for name in ("10-explore", "20-train", "30-evaluate", "40-submit"))
    assert trainings(result.stdout) == 0 and "nothing to train" in result.stdout
    assert "this clone's own library" in result.stdout  # the kernel imported the copy's lib/, not the installed one


# --- Damage, cleaning, other folders -----------------------------------------------------------------


def truncate_model(run: Path) -> None:
    content = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(content[: len(content) // 3])


def garble_metrics(run: Path) -> None:
    (run / "metrics.json").write_text("not json at all")


def delete_history(run: Path) -> None:
    (run / "history.csv").unlink()


@pytest.mark.parametrize("damage, named", [
    (truncate_model, "model.keras"), (garble_metrics, "metrics.json"), (delete_history, "history.csv")])
def test_a_damaged_run_is_found_and_trained_again(damage, named, fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    damage(run)
    (run / ".history.partial-99999999.csv").write_text("left by a killed write")
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr
    assert f"damaged run: models/{run.name}/{named}" in result.stdout and trainings(result.stdout) == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"] == run.name and (run / "history.csv").is_file()
    assert not list(run.glob(".*.partial-*"))


def test_clean_models_removes_only_the_projects_folders_then_make_trains_from_scratch(fresh_project):
    (fresh_project / "models" / "my notes").mkdir()
    foreign = fresh_project / "models" / "exp1"  # another tool's experiment, with a run.json of its own
    foreign.mkdir()
    (foreign / "run.json").write_text("{}")
    (foreign / "results.txt").write_text("keep")
    run = run_folder(fresh_project, QUICK_RUN)
    result = run_make(fresh_project, "clean-models")
    assert result.returncode == 0, result.stderr
    assert f"  {run.name}\n" in result.stdout and "  explore\n" in result.stdout and "exp1" not in result.stdout
    assert sorted(path.name for path in (fresh_project / "models").iterdir()) == ["README.md", "exp1", "my notes"]
    assert (foreign / "results.txt").read_text() == "keep"
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr
    assert trainings(result.stdout) == 1 and run_folder(fresh_project, QUICK_RUN).is_dir()


def test_spaces_and_quotes_in_models_dir_and_data_dir(fresh_project):
    models = "my models 'quoted' \"double\""
    data = fresh_project / "data 'copy' here"
    data.mkdir()
    for name in ("train.csv", "test.csv", "test_labels.csv"):
        (data / name).write_bytes((fresh_project / "tiny data" / name).read_bytes())
    result = run_make(fresh_project, "all", "EPOCHS=1", "BATCH_SIZE=64", f"MODELS_DIR={models}", f"DATA_DIR={data}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert trainings(result.stdout) == 1  # another models folder: its own runs
    run = run_folder(fresh_project, QUICK_RUN, models)
    assert (run / "submission.csv").is_file()
    # The same data in another folder is the same data: same run name as in models/.
    assert run.name == run_folder(fresh_project, QUICK_RUN).name
    result = run_make(fresh_project, "clean-models", f"MODELS_DIR={models}")
    assert result.returncode == 0 and not any((fresh_project / models).glob("strided-*"))
    assert run_folder(fresh_project, QUICK_RUN).is_dir()  # the project's own runs are untouched


def test_kaggle_files_in_a_folder_are_only_read(fresh_project):
    data = fresh_project / "tiny data"
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in data.iterdir()}
    result = run_make(fresh_project, "all", *QUICK, "EPOCHS=2")
    assert result.returncode == 0, result.stderr
    assert {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in data.iterdir()} == before


def test_a_path_that_cannot_be_written_is_one_line_naming_it(fresh_project):
    (fresh_project / "a file").write_text("not a folder")
    result = run_make(fresh_project, "all", *QUICK, "MODELS_DIR=a file/models")
    assert result.returncode != 0
    assert len(errors(result)) == 1 and "a file/models" in errors(result)[0], result.stderr


def test_two_runs_at_once_wait_for_each_other(fresh_project):
    command = ["make", "--no-print-directory", "all", "EPOCHS=1", "BATCH_SIZE=64", "SEED=5", "DATA_DIR=tiny data",
               "QUARTO=no", f"VENV={sys.prefix}"]
    processes = [subprocess.Popen(command, cwd=fresh_project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=clean_environment()) for _ in range(2)]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    combined = "".join(outputs)
    assert trainings(combined) == 1 and "waiting: another pipeline run (pid" in combined
    run = run_folder(fresh_project, "strided-e1-s5-b64-d")
    assert json.loads((run / "metrics.json").read_text())["seed"] == 5
    assert not list(fresh_project.rglob("_failed-*")) and not list(fresh_project.rglob(".*.partial-*"))


def make_on_a_small_disk(project: Path, folder: Path, size: str, *arguments: str) -> subprocess.CompletedProcess:
    """Run make with `folder` mounted as a disk of `size` (a tmpfs) for the time of the command; skip without root."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("a small disk cannot be mounted here (mounting a tmpfs needs root)")
    try:
        return run_make(project, *arguments)
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_line_naming_the_path(fresh_project, tmp_path):
    full = tmp_path / "full disk"
    result = make_on_a_small_disk(fresh_project, full, "256k", "all", *QUICK, f"MODELS_DIR={full}")
    assert result.returncode != 0
    assert len(errors(result)) == 1 and "No space left on device" in errors(result)[0], result.stderr
    assert str(full) in errors(result)[0]


# --- The fast path: nothing to do costs almost nothing, and still sees every change ---------------------------


def ran(output: str) -> list[str]:
    """The notebooks a command ran."""
    return re.findall(r"^==> running notebooks/(\S+)\.ipynb", output, flags=re.MULTILINE)


def edit_in_place(path: Path, old: bytes, new: bytes) -> None:
    """Replace bytes in a file without changing its size: only its times and contents tell the change."""
    content = path.read_bytes()
    assert len(old) == len(new) and old in content
    path.write_bytes(content.replace(old, new, 1))


def test_nothing_to_do_runs_nothing_and_changes_nothing(fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    before = {path: path.read_bytes() for path in (run / "metrics.json", run / "evaluation.csv")}
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0 and ran(result.stdout) == [] and trainings(result.stdout) == 0
    assert {path: path.read_bytes() for path in before} == before
    assert "seconds per step:" in result.stdout and "  report " in result.stdout


def test_a_same_size_edit_of_the_data_is_seen_and_checked_again(fresh_project):
    test_csv = fresh_project / "tiny data" / "test.csv"
    edit_in_place(test_csv, b"\n0,0,0,0,", b"\n0,0,0,1,")  # one pixel of the first test image
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr
    assert ran(result.stdout) == ["10-explore", "20-train", "30-evaluate", "40-submit"]
    assert trainings(result.stdout) == 0  # the training data did not change: the run is reused
    edit_in_place(test_csv, b"\n0,0,0,1,", b"\n0,0,0,x,")  # now a bad cell, still the same size
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode != 0 and errors(result) == [
        "error: tiny data/test.csv, line 2, column pixel3: 'x' is not a whole number"]


def test_a_notebook_edit_reruns_that_notebook_only(fresh_project):
    source = fresh_project / "notebooks" / "30-evaluate.ipynb"
    source.write_text(source.read_text().replace("# Evaluate the model", "# Evaluate the model again"))
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0 and ran(result.stdout) == ["30-evaluate"], result.stdout
    # A notebook saved with outputs and a new default, as JupyterLab saves one, is not an edit of its cells.
    notebook = json.loads((fresh_project / "notebooks" / "20-train.ipynb").read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["printed\n"]}]
        if "parameters" in cell["metadata"].get("tags", []):
            cell["source"] = ["".join(cell["source"]).replace("seed: int = 42", "seed: int = 7")]
    (fresh_project / "notebooks" / "20-train.ipynb").write_text(json.dumps(notebook))
    assert ran(run_make(fresh_project, "all", *QUICK).stdout) == []


def test_a_same_size_damage_of_a_model_is_seen(fresh_project):
    model = run_folder(fresh_project, QUICK_RUN) / "model.keras"
    content = bytearray(model.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte inside the weights: the archive's checksums fail
    model.write_bytes(bytes(content))
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0 and trainings(result.stdout) == 1
    assert "damaged run:" in result.stdout and "model.keras" in result.stdout


# --- Interruptions, and steps that wait for each other --------------------------------------------------------


def run_until(project: Path, line_start: str, *arguments: str) -> tuple[subprocess.Popen, str]:
    """Start `make ARGUMENTS` as a terminal would (its own process group); return once it printed `line_start`."""
    command = ["make", "--no-print-directory", *arguments, "QUARTO=no", f"VENV={sys.prefix}"]
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=clean_environment())
    printed = ""
    while not printed.endswith("\n") or not printed.splitlines()[-1].startswith(line_start):
        line = process.stdout.readline()
        assert line, printed[-3000:] + process.stderr.read()
        printed += line
    return process, printed


def test_ctrl_c_is_one_line_and_the_run_resumes(fresh_project):
    process, _ = run_until(fresh_project, "epoch   1/", "all", "EPOCHS=3", "BATCH_SIZE=64", "SEED=9",
                                 "DATA_DIR=tiny data")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate(timeout=300)
    assert [line for line in stderr.splitlines() if not line.startswith("make: ***")] == [
        "interrupted: run the same command again to go on (training resumes after its last epoch)"]
    result = run_make(fresh_project, "all", "EPOCHS=3", "BATCH_SIZE=64", "SEED=9", "DATA_DIR=tiny data")
    assert result.returncode == 0 and "resuming after epoch" in result.stdout, result.stdout[-2000:]


def test_clean_models_waits_for_a_run_in_training(fresh_project):
    training, _ = run_until(fresh_project, "training strided:", "all", "EPOCHS=2", "BATCH_SIZE=64", "SEED=11",
                            "DATA_DIR=tiny data")
    cleaning = run_make(fresh_project, "clean-models")
    trained, _ = training.communicate(timeout=600)
    assert training.returncode == 0, trained[-2000:]
    assert cleaning.returncode == 0 and "waiting: another pipeline run (pid" in cleaning.stdout
    # The run finished whole before clean-models removed it: nothing half made is left behind.
    assert "strided-e2-s11-b64-d" in cleaning.stdout
    assert [path.name for path in (fresh_project / "models").iterdir()] == ["README.md"]


@pytest.mark.parametrize("damage, said", [
    (lambda run: (run / "submission.csv").write_text("\n".join((run / "submission.csv").read_text().splitlines()[:101])),
     "100 predictions, expected 200 (one per test image): predicting the submission again"),
    (lambda run: (run / "evaluation.csv").write_text("model,score\nx,1\n"),
     "evaluation.csv: expected the columns model, validation accuracy, test accuracy, epochs"),
    (lambda run: (run / "evaluation.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff binary"),
     "evaluation.csv: not text (binary bytes): evaluating again"),
])
def test_a_damaged_output_is_named_and_made_again(damage, said, fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    damage(run)
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr
    assert said in result.stdout and trainings(result.stdout) == 0
    assert len(read_submission(run / "submission.csv", expected_rows=200)) == 200
    assert "test accuracy" in (run / "evaluation.csv").read_text()


def test_a_full_data_disk_is_one_line_naming_the_folder(fresh_project, tmp_path):
    full = tmp_path / "full disk"
    result = make_on_a_small_disk(fresh_project, full, "64k", "data", f"DATA_DIR={full}")  # MNIST does not fit
    assert result.returncode != 0
    assert errors(result) == [f"error: {full}: No space left on device"], result.stderr
