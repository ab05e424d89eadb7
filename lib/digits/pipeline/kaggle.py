"""Competition: the round trip with Kaggle's "Digit Recognizer" through the official `kaggle` command line.

`make kaggle-data` downloads the competition's files into DATA_DIR, unzips them
and checks them like any train.csv and test.csv; `make kaggle-submit` sends a
run's submission.csv with a message naming the run and its validation accuracy.
The command is run with its arguments as a list, never through a shell; the
Make variable KAGGLE names it (default: the environment's own `kaggle`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from digits.data import csv_rows
from digits.formats.csvfiles import TEST_COLUMNS, TRAIN_COLUMNS, read_pixels_csv
from digits.formats.submission import read_submission
from digits.util.display import shown

COMPETITION = "digit-recognizer"
KAGGLE_FILES = ("train.csv", "test.csv")
# Where the Kaggle command looks for saved credentials, besides its environment variables.
CREDENTIAL_FILES = ("access_token", "kaggle.json", "credentials.json")
HOW_TO_SET_UP = (
    "create an API token on kaggle.com (Settings, API) and save it as ~/.kaggle/access_token or set "
    "KAGGLE_API_TOKEN; a legacy kaggle.json goes in ~/.kaggle/ (or set KAGGLE_USERNAME and KAGGLE_KEY)"
)


def config_folders(environment: Mapping[str, str]) -> list[Path]:
    """The folders where the Kaggle command reads its saved credentials."""
    if environment.get("KAGGLE_CONFIG_DIR"):
        return [Path(environment["KAGGLE_CONFIG_DIR"]).expanduser()]
    home = Path(environment.get("HOME") or Path.home())
    config_home = Path(environment.get("XDG_CONFIG_HOME") or home / ".config")
    return [home / ".kaggle", config_home / "kaggle"]


def missing_credentials(environment: Mapping[str, str] = os.environ) -> str | None:
    """None when the Kaggle command has credentials; else one line saying what is missing and how to set it up."""
    if environment.get("KAGGLE_API_TOKEN") or (environment.get("KAGGLE_USERNAME") and environment.get("KAGGLE_KEY")):
        return None
    folders = config_folders(environment)
    if any((folder / name).is_file() for folder in folders for name in CREDENTIAL_FILES):
        return None
    return f"no Kaggle credentials (looked in {', '.join(map(str, folders))} and the environment): {HOW_TO_SET_UP}"


def run_kaggle(kaggle: str, *arguments: str) -> str:
    """Run the Kaggle command with arguments; return its output, or raise ValueError with its last words."""
    if shutil.which(kaggle) is None:
        raise ValueError(f"the Kaggle command {kaggle!r} is not installed: `make setup` installs it")
    result = subprocess.run([kaggle, *arguments], capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip() or f"exit status {result.returncode}").splitlines()
        raise ValueError(f"`kaggle {' '.join(arguments[:2])}` failed: {said[-1]} "
                         f"(no network, or the competition's rules not accepted on kaggle.com?)")
    return result.stdout


def download_data(data_dir: Path, kaggle: str = "kaggle", replace: bool = False) -> dict[str, int]:
    """Download and unzip the competition's train.csv and test.csv into data_dir, checked before they land there;
    ValueError when they would replace files there, unless `replace`."""
    present = [name for name in KAGGLE_FILES if (data_dir / name).exists()]
    if present and not replace:
        raise ValueError(f"{shown(data_dir)} already holds {' and '.join(present)}: FORCE=1 replaces "
                         f"{'them' if len(present) > 1 else 'it'} with Kaggle's (or give another DATA_DIR)")
    problem = missing_credentials()
    if problem:
        raise ValueError(problem)
    with tempfile.TemporaryDirectory(prefix=".kaggle-", dir=data_dir) as folder:
        run_kaggle(kaggle, "competitions", "download", "-c", COMPETITION, "-p", folder)
        archives = sorted(Path(folder).glob("*.zip"))
        if not archives:
            raise ValueError(f"`kaggle competitions download` wrote no zip file for {COMPETITION}")
        try:
            with zipfile.ZipFile(archives[0]) as archive:
                missing = [name for name in KAGGLE_FILES if name not in archive.namelist()]
                if missing:
                    raise ValueError(f"{archives[0].name}: no {', '.join(missing)} in the competition's archive")
                for name in KAGGLE_FILES:
                    archive.extract(name, folder)
        except zipfile.BadZipFile:
            raise ValueError(f"{archives[0].name}: the download is not a readable zip file") from None
        try:
            rows = {"train": len(read_pixels_csv(Path(folder) / "train.csv", TRAIN_COLUMNS)),
                    "test": len(read_pixels_csv(Path(folder) / "test.csv", TEST_COLUMNS))}
        except ValueError as error:  # name the file as downloaded, not by the temporary folder it sits in
            raise ValueError(str(error).replace(f"{folder}{os.sep}", "downloaded ")) from None
        if (data_dir / "test_labels.csv").exists():
            (data_dir / "test_labels.csv").unlink()
            print(f"removed {shown(data_dir / 'test_labels.csv')}: it labels the embedded MNIST test images, and "
                  "would score Kaggle's test.csv wrongly", flush=True)
        for name in KAGGLE_FILES:
            os.replace(Path(folder) / name, data_dir / name)
    return rows


def submission_message(metrics: Mapping) -> str:
    """The message Kaggle shows beside a submission: the run and its validation accuracy."""
    return f"digit-recognizer run {metrics['run']}: validation accuracy {metrics['val_accuracy']:.2%}"


def check_submission(path: Path, test_csv: Path) -> None:
    """ValueError naming the file unless Kaggle accepts it: header, ids 1..n, digits, one row per test image."""
    read_submission(path, expected_rows=csv_rows(test_csv, TEST_COLUMNS))


def submit(run_dir: Path, test_csv: Path, metrics: Mapping, kaggle: str = "kaggle") -> str:
    """Check the run's submission.csv against test.csv, then submit it; return the Kaggle command's answer."""
    path = run_dir / "submission.csv"
    check_submission(path, test_csv)
    problem = missing_credentials()
    if problem:
        raise ValueError(problem)
    output = run_kaggle(kaggle, "competitions", "submit", "-c", COMPETITION, "-f", str(path),
                        "-m", submission_message(metrics))
    return output.strip() or f"submitted {shown(path)}"
