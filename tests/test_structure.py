"""The package's shape: subpackages in layers without import circles, short modules, each decision in one place."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from helpers import PROJECT_ROOT

LIB = PROJECT_ROOT / "lib"
PACKAGE = LIB / "digits"


def dotted(path: Path) -> str:
    """A module's dotted name below digits (`runs` for runs/__init__.py, `runs.catalog`, `config`)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {dotted(path): path for path in sorted(PACKAGE.rglob("*.py"))
           if path.name != "__main__.py" and path != PACKAGE / "__init__.py"}
SUBPACKAGES = sorted(path.parent for path in PACKAGE.rglob("__init__.py") if path.parent != PACKAGE)


def owner(name: str) -> str | None:
    """The module of the package that `name` (a module, or a name in one) is, or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(path: Path, package: str = "") -> set[str]:
    """The package's modules that a module imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "digits":
            base = node.module.removeprefix("digits").removeprefix(".")
            found.update(owner(f"{base}.{alias.name}".strip(".")) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(owner(alias.name.removeprefix("digits.")) for alias in node.names
                         if alias.name.startswith("digits."))
    # A module of a subpackage importing from the package's own __init__ imports nothing new.
    return {name for name in found if name and name != package and not package.startswith(f"{name}.")}


GRAPH = {name: imports_of(path, name) for name, path in MODULES.items()}


def test_the_detector_sees_imports_inside_functions_and_through_packages(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from digits import runs\n    import digits.train\n"
                      "from digits.runs import catalog, Run\nfrom digits.util.files import atomic_path\n")
    assert imports_of(module) == {"runs", "train", "runs.catalog", "util.files"}


def test_no_module_imports_itself_back_through_others():
    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in GRAPH[start])

    circles = [name for name in MODULES if reaches(name, name, {name})]
    assert circles == [], {name: sorted(GRAPH[name]) for name in circles}


@pytest.mark.parametrize("name", MODULES)
def test_every_module_is_short(name):
    assert MODULES[name].read_text().count("\n") <= 350


@pytest.mark.parametrize("folder", SUBPACKAGES, ids=lambda folder: folder.name)
def test_every_subpackage_says_its_job_and_what_it_may_import(folder):
    docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    assert len(docstring.split()) >= 15 and re.search(r"\bimports?\b", docstring, flags=re.IGNORECASE), docstring


# The layers of the package, from the ground up, as digits/__init__.py draws them: a module imports only from its
# own layer or those below it, so no import runs back up.
LAYERS = [
    ["util.*"],
    ["config", "parameters", "formats.*", "data"],
    ["runs.*"],
    ["model", "train", "prepare", "calibration", "evaluate", "explain", "compare", "predict", "plots"],
    ["report.*"],
    ["pipeline.*"],
]


def layer_of(name: str) -> int:
    return next(index for index, patterns in enumerate(LAYERS)
                if any(re.fullmatch(pattern.replace(".*", r"(\..+)?"), name) for pattern in patterns))


def test_the_layers_cover_the_package_and_no_import_runs_back_up():
    assert all(layer_of(name) >= 0 for name in MODULES)
    upward = {f"{name} -> {imported}" for name in MODULES for imported in GRAPH[name]
              if layer_of(imported) > layer_of(name)}
    assert upward == set()


def test_the_notebooks_never_import_what_make_runs():
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                         if cell["cell_type"] == "code" and "parameters" not in cell["metadata"].get("tags", []))
        module = PROJECT_ROOT / "tests" / f".{path.stem}.py"
        try:
            module.write_text(code)
            imported = imports_of(module)
        finally:
            module.unlink()
        assert imported and not [name for name in imported if name.startswith("pipeline")], path.name


def definitions(pattern: str) -> list[str]:
    """The modules whose source matches `pattern`."""
    return [name for name, path in MODULES.items() if re.search(pattern, path.read_text(), flags=re.MULTILINE)]


def test_a_run_is_worked_out_in_one_place():
    assert definitions(r"^def resolve\w*\(") == ["runs"]
    assert definitions(r"\bRun\(name=") == ["runs"]  # nothing else builds a Run
    assert definitions(r"^def latest\(") == ["runs.catalog"] and definitions(r"^def \w*latest\w*\(") == ["runs.catalog"]


def test_the_command_line_is_parsed_in_one_place():
    assert definitions(r"^def parse_options\(") == ["pipeline.commandline"]
    assert definitions(r"[\"']MAKEFLAGS[\"']") == ["pipeline.commandline"]


def test_the_step_order_is_defined_once():
    assert definitions(r"^STEPS = ") == ["pipeline.steps"]
    assert "chapters:" not in (PROJECT_ROOT / "report" / "_quarto.yml").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    # Make's pipeline targets depend on nothing but the environment: the order is the pipeline's.
    assert re.findall(r"^(?:all|notebooks|report|evaluate|submit): (.*?) ##", makefile, flags=re.MULTILINE) == [
        "setup"] * 5


@pytest.mark.parametrize("pattern, module", [
    (r"^def percent\(", "util.display"),
    (r"^def figure_html\(", "report.pages"),
    (r'src="data:image/png;base64', "report.pages"),  # the one place that builds an inline figure
    (r"^def content_security_policy\(", "report.pages"),
    (r"\.pipeline\.lock", "pipeline.main"),
    (r'f"\.\{[^}]*\}\.lock"', "runs"),  # a run's training lock
    (r"cpu_count\(\) or 1\) //", "pipeline.kernel"),  # a run's share of the cores
    (r"PYTHONPATH", "pipeline.kernel"),  # the kernels' environment
    (r"TF_CPP_MIN_LOG_LEVEL", "pipeline.kernel"),
    (r"\.cache/parsed|\"parsed\"", "data"),  # the one cache of parsed CSV files
])
def test_each_piece_of_knowledge_is_in_one_place(pattern, module):
    assert definitions(pattern) == [module]
