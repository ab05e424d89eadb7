"""The Kaggle round trip, with a stand-in for the `kaggle` command that records its arguments.

The real command needs the internet and an account; the stand-in behaves like it
on the command line: `competitions download -c NAME -p DIR` writes NAME.zip with
train.csv, test.csv and sample_submission.csv into DIR, `competitions submit`
prints what Kaggle prints. Everything else (the Makefile, the pipeline, the
checks of the files) is the project's real code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digits.data import prepare_data
from digits.formats.csvfiles import TEST_COLUMNS
from digits.pipeline.kaggle import missing_credentials, submission_message
from helpers import copy_project, fake_finished_run, run_make, run_pipeline, write_tiny_data

FAKE_KAGGLE = '''#!{python}
"""A stand-in for the kaggle command: records its arguments, answers like Kaggle."""
import json, os, sys, zipfile
with open(os.environ["FAKE_KAGGLE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_KAGGLE_OFFLINE"):
    sys.exit("requests.exceptions.ConnectionError: Failed to resolve 'www.kaggle.com'")
if sys.argv[1:3] == ["competitions", "download"]:
    folder, name = sys.argv[sys.argv.index("-p") + 1], sys.argv[sys.argv.index("-c") + 1]
    files = os.environ["FAKE_KAGGLE_FILES"]
    with zipfile.ZipFile(os.path.join(folder, name + ".zip"), "w") as archive:
        for member in os.environ.get("FAKE_KAGGLE_MEMBERS", "train.csv test.csv sample_submission.csv").split():
            archive.write(os.path.join(files, member), member)
    print("Downloading " + name + ".zip to " + folder)
elif sys.argv[1:3] == ["competitions", "submit"]:
    print("Successfully submitted to Digit Recognizer")
'''


@pytest.fixture
def fake_kaggle(tmp_path, mnist) -> dict[str, str]:
    """Environment variables that point the pipeline at the stand-in, with Kaggle-like files to serve."""
    files = write_tiny_data(tmp_path / "kaggle files", mnist, n_train=300, n_test=50)
    (files / "sample_submission.csv").write_text("ImageId,Label\n1,0\n")
    command = tmp_path / "bin" / "kaggle"
    command.parent.mkdir()
    command.write_text(FAKE_KAGGLE.format(python=sys.executable))
    command.chmod(0o755)
    return {"KAGGLE": str(command), "FAKE_KAGGLE_LOG": str(tmp_path / "calls.jsonl"),
            "FAKE_KAGGLE_FILES": str(files), "KAGGLE_API_TOKEN": "a-token", "HOME": str(tmp_path / "home")}


def make_kaggle_data(project: Path, fake_kaggle: dict[str, str], data: Path, *arguments: str, **environment: str):
    """`make kaggle-data DATA_DIR=data KAGGLE=<the stand-in> ARGUMENTS` with the stand-in's environment."""
    settings = {key: value for key, value in {**fake_kaggle, **environment}.items() if key != "KAGGLE"}
    return run_make(project, "kaggle-data", f"DATA_DIR={data}", f"KAGGLE={fake_kaggle['KAGGLE']}", *arguments,
                    **settings)


def calls(environment: dict[str, str]) -> list[list[str]]:
    """The argument lists the stand-in was called with."""
    log = Path(environment["FAKE_KAGGLE_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project, its data/ written from the embedded MNIST (so runs there carry no data tag)."""
    copy = copy_project(tmp_path_factory.mktemp("kaggle") / "digit-recognizer")
    prepare_data(copy / "data")
    return copy


def test_make_kaggle_data_downloads_unzips_and_checks(project, fake_kaggle, tmp_path):
    data = tmp_path / "kaggle data"
    data.mkdir()
    result = make_kaggle_data(project, fake_kaggle, data)
    assert result.returncode == 0, result.stderr
    (call,) = calls(fake_kaggle)
    assert call[:5] == ["competitions", "download", "-c", "digit-recognizer", "-p"]
    assert sorted(path.name for path in data.iterdir()) == ["test.csv", "train.csv"]  # no zip or temporary left
    assert "train.csv (300 rows) and test.csv (50 rows)" in result.stdout


def test_a_bad_download_changes_nothing(project, fake_kaggle, tmp_path, mnist):
    data = write_tiny_data(tmp_path / "data", mnist, n_train=20, n_test=5)
    before = {path.name: path.read_bytes() for path in data.iterdir()}
    broken = Path(fake_kaggle["FAKE_KAGGLE_FILES"]) / "train.csv"
    broken.write_text(broken.read_text().replace("\n0,", "\n11,", 1))  # a label out of range
    result = make_kaggle_data(project, fake_kaggle, data, "FORCE=1")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "downloaded train.csv, line 3, column label: value 11 is outside 0..9" in errors[0]
    assert {path.name: path.read_bytes() for path in data.iterdir()} == before


@pytest.mark.parametrize("missing_members, message", [
    ("train.csv sample_submission.csv", "no test.csv in the competition's archive"),
])
def test_an_archive_without_the_files_is_one_line(missing_members, message, project, fake_kaggle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = make_kaggle_data(project, fake_kaggle, data, FAKE_KAGGLE_MEMBERS=missing_members)
    assert result.returncode != 0 and message in result.stderr and list(data.iterdir()) == []


def test_without_credentials_one_line_says_how_to_set_them_up(project, fake_kaggle, tmp_path):
    environment = {**fake_kaggle, "KAGGLE_API_TOKEN": ""}
    data = tmp_path / "data"
    data.mkdir()
    result = make_kaggle_data(project, environment, data)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1
    assert "no Kaggle credentials" in errors[0] and "access_token" in errors[0] and "kaggle.json" in errors[0]
    assert calls(environment) == [] and list(data.iterdir()) == []


def test_without_network_one_line_and_nothing_changes(project, fake_kaggle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = make_kaggle_data(project, fake_kaggle, data, FAKE_KAGGLE_OFFLINE="1")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and "ConnectionError" in errors[0]
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("found", ["access_token", "kaggle.json", "credentials.json", "env token", "env key"])
def test_credentials_are_found_where_the_kaggle_command_reads_them(found, tmp_path):
    environment = {"HOME": str(tmp_path)}
    assert "no Kaggle credentials" in missing_credentials(environment)
    if found == "env token":
        environment["KAGGLE_API_TOKEN"] = "t"
    elif found == "env key":
        environment.update(KAGGLE_USERNAME="me", KAGGLE_KEY="k")
    else:
        (tmp_path / ".kaggle").mkdir()
        (tmp_path / ".kaggle" / found).write_text("{}")
    assert missing_credentials(environment) is None


def submit_run(project: Path, fake_kaggle: dict[str, str], root: Path,
               submission: str, test_rows: int = 2) -> tuple[Path, subprocess.CompletedProcess]:
    """A finished default run holding `submission`, submitted with the pipeline's kaggle-submit step."""
    run = fake_finished_run(root, "2026-01-01T00:00:00+00:00", 0.9947)
    (run.folder / "submission.csv").write_text(submission)
    (run.data_dir / "test.csv").write_text(",".join(TEST_COLUMNS) + "\n" + ("0," * 783 + "0\n") * test_rows)
    environment = {key: value for key, value in fake_kaggle.items() if key != "KAGGLE"}
    result = run_pipeline(project, "kaggle-submit", f"MODELS_DIR={run.models_dir}", f"DATA_DIR={run.data_dir}",
                          f"KAGGLE={fake_kaggle['KAGGLE']}", **environment)
    return run.folder, result


def test_kaggle_submit_sends_the_run_with_its_validation_accuracy(project, fake_kaggle, tmp_path):
    run, result = submit_run(project, fake_kaggle, tmp_path, "ImageId,Label\n1,3\n2,7\n")
    assert result.returncode == 0, result.stderr
    message = submission_message(json.loads((run / "metrics.json").read_text()))
    assert message == f"digit-recognizer run {run.name}: validation accuracy 99.47%"
    assert calls(fake_kaggle) == [["competitions", "submit", "-c", "digit-recognizer", "-f",
                                   str(run / "submission.csv"), "-m", message]]
    assert "Successfully submitted" in result.stdout


@pytest.mark.parametrize("submission, test_rows, message", [
    ("ImageId,Label\n1,3\n3,7\n", 2, "line 3: ImageId '3', expected 2"),
    ("ImageId,Label\n1,3\n2,7\n", 100, "2 predictions, expected 100 (one per test image)"),  # cut short
])
def test_a_broken_submission_is_not_sent(submission, test_rows, message, project, fake_kaggle, tmp_path):
    _, result = submit_run(project, fake_kaggle, tmp_path, submission, test_rows)
    assert result.returncode != 0 and message in result.stderr and len(result.stderr.splitlines()) == 1
    assert calls(fake_kaggle) == []
