"""Parameter checks: every bad value names the parameter and what is allowed; one definition serves all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from digits.config import PARAMETERS, RUN_PARAMETERS, check_parameters, project_root, resolve

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("parameters, message", [
    ({"epochs": "abc"}, "epochs must be a whole number from 1 to 1000 (or 0 for the recipe's), got 'abc'"),
    ({"epochs": -2}, "epochs must be a whole number from 1 to 1000 (or 0 for the recipe's), got -2"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"epochs": True}, "epochs must be a whole number"),
    ({"batch_size": -1}, "batch_size must be a whole number from 1 to 65536 (or 0 for the recipe's), got -1"),
    ({"arch": "nope"}, "arch must be one of strided, wide, baseline, got 'nope'"),
    ({"arch": "seed"}, "arch must be one of strided, wide, baseline, got 'seed'"),
    ({"seed": -3}, "seed must be a whole number"),
    ({"sample_size": -5}, "sample_size must be a whole number from 20"),
    ({"sample_size": 5}, "sample_size must be a whole number from 20"),
    ({"validation_fraction": 0}, "validation_fraction must be a number above 0 and at most 0.5, got 0"),
    ({"validation_fraction": "x"}, "validation_fraction must be a number above 0"),
    ({"augment": "maybe"}, "augment must be on, off or recipe, got 'maybe'"),
    ({"ensemble": 0}, "ensemble must be a whole number from 1 to 20, got 0"),
    ({"data_dir": "/no/such/folder"}, "data_dir must be an existing folder, got '/no/such/folder'"),
    ({"colour": "red"}, "unknown parameter(s) colour"),
])
def test_bad_parameter_names_itself(parameters, message):
    with pytest.raises(ValueError) as raised:
        check_parameters(**parameters)
    assert message in str(raised.value)


def test_good_parameters_are_converted(tmp_path):
    checked = check_parameters(epochs="3", batch_size="0", arch="baseline", seed="0", sample_size="0",
                               validation_fraction="0.2", augment="off", data_dir=str(tmp_path), ensemble="")
    assert checked == {"epochs": 3, "batch_size": None, "arch": "baseline", "seed": 0, "sample_size": 0,
                       "validation_fraction": 0.2, "augment": False, "data_dir": tmp_path, "ensemble": 1}


def test_relative_paths_are_relative_to_the_project_of_the_working_folder(tmp_path, monkeypatch):
    assert resolve("/tmp") == Path("/tmp")
    # A second clone that shares this environment: paths resolve inside it, not where the package lives.
    clone = tmp_path / "other clone"
    (clone / "lib" / "digits").mkdir(parents=True)
    (clone / "notebooks").mkdir()
    monkeypatch.chdir(clone / "notebooks")
    assert project_root() == clone.resolve()
    assert resolve("data") == clone.resolve() / "data"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is not inside a digit-recognizer project"):
        project_root()


def run_check(**variables: str) -> subprocess.CompletedProcess:
    """`python -m digits.config check` with the given parameters as environment variables, as Make passes them."""
    environment = {key: value for key, value in os.environ.items() if key not in {p.variable for p in RUN_PARAMETERS}}
    return subprocess.run([sys.executable, "-m", "digits.config", "check"], capture_output=True, text=True,
                          env={**environment, **variables}, cwd=PROJECT_ROOT)


def test_command_line_check_prints_one_line_and_fails():
    result = run_check(EPOCHS="abc")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: bad parameter: epochs must be a whole number from 1 to 1000 "
                                      "(or 0 for the recipe's), got 'abc'")
    assert run_check(EPOCHS="3", SEED="7").returncode == 0


def test_help_lists_every_parameter_from_the_one_definition():
    result = subprocess.run([sys.executable, "-m", "digits.config", "help"], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, check=True)
    assert [line.split("=")[0].strip() for line in result.stdout.splitlines()] == [
        p.variable for p in PARAMETERS.values()]


def test_the_training_notebook_has_a_parameter_for_each_run_parameter():
    cells = json.loads((PROJECT_ROOT / "notebooks" / "20-train.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
    names = [line.split(":")[0] for line in source.splitlines()]
    assert names == [p.name for p in RUN_PARAMETERS if p.name != "ensemble"] + ["data_dir", "models_dir"]
