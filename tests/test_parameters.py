"""Parameters: every bad value names the parameter and what is allowed; values arrive from make exactly as typed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from digits.parameters import PARAMETERS, PARAMETERS_LIST, RUN_PARAMETERS, parse_parameters
from digits.pipeline.commandline import command_line_variables
from digits.util.paths import project_path, project_root
from helpers import PROJECT_ROOT, clean_environment


@pytest.mark.parametrize("parameters, message", [
    ({"epochs": "abc"}, "epochs must be a whole number from 1 to 1000, got 'abc'"),
    ({"epochs": 0}, "epochs must be a whole number from 1 to 1000, got 0"),
    ({"epochs": "0"}, "epochs must be a whole number from 1 to 1000, got 0"),
    ({"epochs": -2}, "epochs must be a whole number from 1 to 1000, got -2"),
    ({"epochs": "²"}, "epochs must be a whole number from 1 to 1000, got '²'"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"epochs": True}, "epochs must be a whole number"),
    ({"batch_size": 0}, "batch_size must be a whole number from 1 to 65536, got 0"),
    ({"batch_size": -1}, "batch_size must be a whole number from 1 to 65536, got -1"),
    ({"arch": "nope"}, "arch must be one of strided, wide, baseline, got 'nope'"),
    ({"seed": -3}, "seed must be a whole number"),
    ({"seed": "²"}, "seed must be a whole number from 0 to 2147483647, got '²'"),
    ({"sample_size": -5}, "sample_size must be a whole number from 20"),
    ({"sample_size": 5}, "sample_size must be a whole number from 20"),
    ({"validation_fraction": 0}, "validation_fraction must be a number above 0 and at most 0.5, got 0"),
    ({"validation_fraction": "x"}, "validation_fraction must be a number above 0"),
    ({"augment": "maybe"}, "augment must be on or off (yes or no; empty: the recipe's), got 'maybe'"),
    ({"ensemble": 0}, "ensemble must be a whole number from 1 to 20, got 0"),
    ({"port": 80}, "port must be a whole number from 1024 to 65535, got 80"),
    ({"browser": "perhaps"}, "browser must be on or off (yes or no; empty: the default), got 'perhaps'"),
    ({"colour": "red"}, "unknown parameter(s) colour"),
])
def test_bad_parameter_names_itself(parameters, message):
    with pytest.raises(ValueError) as raised:
        parse_parameters(**parameters)
    assert message in str(raised.value)


def test_unset_is_the_one_spelling_of_the_recipes_value():
    checked = parse_parameters(epochs="", batch_size=None, augment="", ensemble="", arch="baseline", seed="0",
                               sample_size="0", validation_fraction="0.2")
    assert checked == {"epochs": None, "batch_size": None, "augment": None, "ensemble": 1, "arch": "baseline",
                       "seed": 0, "sample_size": 0, "validation_fraction": 0.2}
    assert parse_parameters(epochs="3", augment="off") == {"epochs": 3, "augment": False}


@pytest.mark.parametrize("typed", [
    "plain", "with spaces  and  more", "quote's \"double\"", "$(shell touch PWNED)", "a$(x)b", "$$HOME", "back\\slash",
    "trailing\\", "tab\there", "new\nline", "é ü ²", "a=b=c", "",
])
def test_make_hands_its_command_line_over_exactly_as_typed(typed, tmp_path):
    (tmp_path / "Makefile").write_text(
        "unexport $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $v)),$v))\n"
        "show:\n\t@python3 -c 'import os; print(os.environ[\"MAKEFLAGS\"], end=\"\")' > flags\n")
    subprocess.run(["make", "-s", "show", f"MODELS_DIR={typed}", "SEED=7"], cwd=tmp_path, check=True,
                   env=clean_environment())
    assert command_line_variables((tmp_path / "flags").read_text()) == {"MODELS_DIR": typed, "SEED": "7"}
    assert not (tmp_path / "PWNED").exists()


def make_check(*arguments: str) -> subprocess.CompletedProcess:
    """`make check ARGUMENTS` in the project: the check that runs before any work."""
    return subprocess.run(["make", "--no-print-directory", "check", *arguments], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, env=clean_environment(), check=False)


def test_make_check_prints_one_line_and_fails():
    result = make_check("EPOCHS=abc")
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == ("error: bad parameter: epochs must be a whole number from 1 to 1000, "
                                             "got 'abc'")
    assert make_check("EPOCHS=3", "SEED=7").returncode == 0
    assert make_check("EPOCHS=", "AUGMENT=").returncode == 0  # empty: the recipe's


def test_help_lists_every_parameter_with_its_default_from_the_one_definition():
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True, env=clean_environment())
    listed = re.findall(r"^  ([A-Z_]+)=(\S*)", result.stdout, flags=re.MULTILINE)
    assert listed == [(p.variable, p.default_text) for p in PARAMETERS_LIST]
    assert "EPOCHS=                    passes over the training data; empty: the recipe's (15 for strided and " \
           "wide, 10 for baseline)" in result.stdout


def test_the_makefile_default_environment_is_the_parameters():
    assert f"VENV ?= {PARAMETERS['venv'].default}\n" in (PROJECT_ROOT / "Makefile").read_text()


def test_the_training_notebook_has_each_run_parameter_with_its_default():
    cells = json.loads((PROJECT_ROOT / "notebooks" / "20-train.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
    defaults = {}
    for line in source.splitlines():
        name, value = re.match(r"(\w+): [^=]+ = (.*?)  #", line).groups()
        defaults[name] = eval(value)
    assert list(defaults) == [p.name for p in RUN_PARAMETERS] + ["data_dir", "models_dir", "choose"]
    assert defaults == {p.name: p.default for p in (*RUN_PARAMETERS, PARAMETERS["data_dir"], PARAMETERS["models_dir"])
                        } | {"choose": True}


def test_relative_paths_are_relative_to_the_project_of_the_working_folder(tmp_path, monkeypatch):
    assert project_path("/tmp") == Path("/tmp")
    # A second clone that shares this environment: paths resolve inside it, not where the package lives.
    clone = tmp_path / "other clone"
    (clone / "lib" / "digits").mkdir(parents=True)
    (clone / "notebooks").mkdir()
    monkeypatch.chdir(clone / "notebooks")
    assert project_root() == clone.resolve()
    assert project_path("data") == clone.resolve() / "data"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is not inside a digit-recognizer project"):
        project_root()
