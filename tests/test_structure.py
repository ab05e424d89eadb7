"""The package's shape: layers without import circles, short modules, and each decision made in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "lib" / "digits"
MODULES = {path.stem: path for path in sorted(PACKAGE.glob("*.py")) if path.stem != "__init__"}


def imports_of(path: Path) -> set[str]:
    """The package's modules that a module imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "digits":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("digits."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("digits."))
    return found & set(MODULES)


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_the_detector_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from digits import runs\n    import digits.train\n")
    assert imports_of(module) == {"runs", "train"}


def test_no_module_imports_itself_back_through_others():
    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in GRAPH[start])

    circles = [name for name in MODULES if reaches(name, name, {name})]
    assert circles == [], {name: sorted(GRAPH[name]) for name in circles}


@pytest.mark.parametrize("name", MODULES)
def test_every_module_is_short(name):
    assert MODULES[name].read_text().count("\n") <= 350


def definitions(pattern: str) -> list[str]:
    """The modules whose source matches `pattern`."""
    return [name for name, path in MODULES.items() if re.search(pattern, path.read_text(), flags=re.MULTILINE)]


def test_a_run_is_worked_out_in_one_place():
    assert definitions(r"^def resolve\(") == ["runs"]
    assert definitions(r"\bRun\(name=") == ["runs"]  # nothing else builds a Run
    assert definitions(r"^def latest\(") == ["catalog"] and definitions(r"^def \w*latest\w*\(") == ["catalog"]


def test_the_step_order_is_defined_once():
    assert definitions(r"^STEPS = ") == ["steps"]
    assert "chapters:" not in (PROJECT_ROOT / "report" / "_quarto.yml").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    # Make's pipeline targets depend on nothing but the environment: the order is the pipeline's.
    assert re.findall(r"^(?:all|notebooks|report|evaluate|submit): (.*?) ##", makefile, flags=re.MULTILINE) == [
        "setup"] * 5


def test_one_formatter_for_percentages_and_one_for_figures():
    assert definitions(r"^def percent\(") == ["display"]
    assert definitions(r"^def figure_html\(") == ["fallback"]
    assert definitions(r'src="data:image/png;base64') == ["fallback"]  # the one place that builds one


# The layers of the package, from the ground up, as the README draws them: a module imports only from its own
# layer or those below it, so no import runs back up.
LAYERS = [
    ["config"],
    ["paths", "display", "files", "parameters", "commandline", "kernel", "plots"],
    ["csvfiles", "mnist", "submission", "data", "records"],
    ["runs"],
    ["catalog"],
    ["model", "train", "evaluate", "predict", "competition"],
    ["notebook", "book", "fallback", "tryit", "widget", "report"],
    ["steps"],
    ["executor", "sweep", "pipeline"],
]


def test_the_layers_cover_the_package_and_no_import_runs_back_up():
    layer_of = {name: index for index, names in enumerate(LAYERS) for name in names}
    assert sorted(layer_of) == sorted(MODULES)
    upward = {f"{name} -> {imported}" for name in MODULES for imported in GRAPH[name]
              if layer_of[imported] > layer_of[name]}
    assert upward == set()
