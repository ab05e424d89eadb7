"""Parameter checks: every bad value names the parameter and what is allowed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from digits.config import PROJECT_ROOT, check_parameters, resolve


@pytest.mark.parametrize("parameters, message", [
    ({"epochs": "abc"}, "epochs must be a whole number from 1 to 1000, got 'abc'"),
    ({"epochs": 0}, "epochs must be a whole number from 1 to 1000, got 0"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"epochs": True}, "epochs must be a whole number"),
    ({"batch_size": -1}, "batch_size must be a whole number from 1 to 65536, got -1"),
    ({"arch": "nope"}, "arch must be one of strided, seed, got 'nope'"),
    ({"seed": -3}, "seed must be a whole number"),
    ({"sample_size": -5}, "sample_size must be a whole number from 20"),
    ({"sample_size": 5}, "sample_size must be a whole number from 20"),
    ({"validation_fraction": 0}, "validation_fraction must be a number above 0 and at most 0.5, got 0"),
    ({"validation_fraction": "x"}, "validation_fraction must be a number above 0"),
    ({"augment": "maybe"}, "augment must be true or false, got 'maybe'"),
    ({"data_dir": "/no/such/folder"}, "data_dir must be an existing folder, got '/no/such/folder'"),
    ({"colour": "red"}, "unknown parameter(s) colour"),
])
def test_bad_parameter_names_itself(parameters, message):
    with pytest.raises(ValueError) as raised:
        check_parameters(**parameters)
    assert message in str(raised.value)


def test_good_parameters_are_converted(tmp_path):
    checked = check_parameters(epochs="3", batch_size=None, arch="seed", seed="0", sample_size="0",
                               validation_fraction="0.2", augment="false", data_dir=str(tmp_path))
    assert checked == {"epochs": 3, "batch_size": None, "arch": "seed", "seed": 0, "sample_size": None,
                       "validation_fraction": 0.2, "augment": False, "data_dir": tmp_path}


def test_relative_paths_are_relative_to_the_project():
    assert resolve("data") == PROJECT_ROOT / "data"
    assert resolve("/tmp") == resolve("/tmp").resolve()


def test_command_line_check_prints_one_line_and_fails():
    result = subprocess.run([sys.executable, "-m", "digits.config", "--epochs", "abc"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: bad parameter: epochs must be a whole number from 1 to 1000, got 'abc'"
    assert subprocess.run([sys.executable, "-m", "digits.config", "--epochs", "3"]).returncode == 0
