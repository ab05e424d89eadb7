"""Source notebooks: clean, titled, one typed parameters cell, thin code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_exist():
    assert [path.stem for path in NOTEBOOKS] == ["10-explore", "20-train", "30-evaluate", "40-submit", "50-predict"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_clean(path):
    cells = json.loads(path.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_has_title_and_one_typed_parameters_cell(path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    tagged = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1
    for line in "".join(tagged[0]["source"]).splitlines():
        assert ": " in line.split("=")[0] and "  # " in line, f"untyped or uncommented parameter: {line}"
    assert notebook["metadata"]["kernelspec"]["name"] == "digit-recognizer"
    assert not any("def " in "".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_as_jupyterlab_saves_it_through_the_git_filter(path):
    """nbformat 4.5, cell ids 0, 1, 2... (nbstripout's), no language_info: an unedited save changes nothing."""
    notebook = json.loads(path.read_text())
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert [cell["id"] for cell in notebook["cells"]] == [str(index) for index in range(len(notebook["cells"]))]
    assert set(notebook["metadata"]) == {"kernelspec"}
    assert path.read_text() == json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_markdown_reads_the_same_in_jupyterlab_and_the_book(path):
    markdown = "".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                       if cell["cell_type"] == "markdown")
    assert ":::" not in markdown and "{." not in markdown  # Quarto-only syntax shows raw in JupyterLab
