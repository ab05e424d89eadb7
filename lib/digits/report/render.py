"""Render: the report of a run, rendered again only when what it shows changed.

`render_report` copies the run's executed notebooks into report/notebooks/,
writes the Try it chapter, report/_summary.md and its figures (digits.report.summary)
and report/_chapters.yml (the book's chapters, in the pipeline's order), then
renders report/ as a Quarto book (report/_quarto.yml) from the notebooks'
stored outputs, or, without Quarto, the self-contained page (digits.report.pages).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from digits.report import pages, tryit
from digits.report.summary import write_summary
from digits.runs import Run, catalog, records
from digits.util.display import shown
from digits.util.files import atomic_path, digest_of, remove_stale_partials, write_text_atomic

CHAPTERS_FILE = "_chapters.yml"
def render_quarto(report_dir: Path, quarto: str, notebooks: dict[str, Path]) -> Path:
    """Render the book with Quarto (`quarto render report/`), the run's executed notebooks beside their chapters,
    finished to work from disk; return the entry page."""
    subprocess.run([quarto, "render", str(report_dir), "--quiet"], check=True)
    pages.copy_notebooks(report_dir / "_book", notebooks)
    pages.finish_book(report_dir / "_book")
    return report_dir / "_book" / "index.html"


def html_as_raw_markdown(notebook: Any) -> None:
    """Turn HTML outputs (pandas tables, the Keras summary) into raw-HTML markdown outputs, in place.

    Quarto adds require.js and jQuery from a CDN to any page with a text/html
    output, for JavaScript widgets these notebooks do not have; a markdown output
    holding the same HTML renders the same and loads nothing.
    """
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            html_output = output.get("data", {}).pop("text/html", None)
            if html_output is not None:
                text = "".join(html_output) if isinstance(html_output, list) else html_output
                output["data"]["text/markdown"] = f"```{{=html}}\n{text}\n```"


def _report_inputs(report_dir: Path, notebooks: dict[str, Path], run: Run, table: pd.DataFrame, engine: str,
                   extra: str) -> str:
    """Digest of everything the rendered report shows: a report with the same inputs is not rendered again."""
    files = [*notebooks.values(), report_dir / "index.qmd", report_dir / "_quarto.yml", report_dir / "offline.scss",
             run.folder / "evaluation.csv", run.folder / "submission.csv",
             *(member.folder / "model.keras" for member in run.single_runs),  # the weights of the "Try it" page
             # What the comparisons read: the last sweep and the test probabilities each kept run's evaluation kept.
             run.models_dir / catalog.SWEEP_FILE,
             *(run.models_dir / name / records.PROBABILITIES_FILE for name in table["run"])]
    # The metrics the report shows: all but the seconds of the last command's steps, written after it renders.
    metrics = {key: value for key, value in records.read_metrics(run.folder).items() if key != "step_seconds"}
    parts = [digest_of(*files), json.dumps(metrics, sort_keys=True), table.to_csv(index=False), engine, extra,
             " ".join(notebooks)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def render_report(report_dir: Path, run: Run, notebooks: dict[str, Path], quarto: str | None,
                  extra_inputs: str = "", write_model: Callable[[Run, Path], None] = tryit.write_model) -> Path:
    """Copy the chapters' notebooks in, write the summary, and render with Quarto when given, else the fallback.

    Nothing is done when the report on disk was rendered from the same inputs (its stamp says which).
    `write_model` writes the Try it page's weights (it loads TensorFlow: the pipeline asks a running kernel).
    """
    for path in notebooks.values():
        if not path.is_file():
            raise ValueError(f"{shown(path)}: missing; run `make notebooks` first")
    entry, stamp = report_dir / "_book" / "index.html", report_dir / "_book" / ".inputs"
    table = catalog.runs_table(run.models_dir, run.data_dir)
    inputs = _report_inputs(report_dir, notebooks, run, table, quarto or "fallback", extra_inputs)
    if entry.is_file() and stamp.is_file() and stamp.read_text() == inputs:
        return entry
    import nbformat

    for folder in (report_dir, report_dir / "notebooks", report_dir / "_book"):
        remove_stale_partials(folder)
    (report_dir / "notebooks").mkdir(exist_ok=True)
    for name, path in notebooks.items():
        notebook = nbformat.read(path, as_version=4)
        if quarto:
            html_as_raw_markdown(notebook)
        with atomic_path(report_dir / "notebooks" / f"{name}.ipynb") as temporary:
            nbformat.write(notebook, temporary)
    write_model(run, report_dir / tryit.MODEL_FILE)
    tryit.write_chapter(report_dir, run, records.read_metrics(run.folder))
    chapters = ["index.qmd", *(f"notebooks/{name}.ipynb" for name in notebooks), tryit.CHAPTER]
    write_text_atomic(report_dir / CHAPTERS_FILE,
                      "# Written by make report, in the pipeline's order.\nbook:\n  chapters:\n"
                      + "".join(f"    - {chapter}\n" for chapter in chapters))
    write_summary(report_dir, run, table)
    if quarto:
        entry = render_quarto(report_dir, quarto, notebooks)
        # Quarto leaves an empty folder for the summary's embedded figures in the source tree.
        if (report_dir / "index_files").is_dir() and not any((report_dir / "index_files").rglob("*")):
            (report_dir / "index_files").rmdir()
    else:
        pages.copy_notebooks(report_dir / "_book", notebooks)
        entry = pages.render_page(report_dir, list(notebooks))
    write_text_atomic(stamp, inputs)
    return entry
