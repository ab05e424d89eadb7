"""Report: the summary page of a run, then the HTML book with Quarto (or the self-contained page of digits.fallback).

`render_report` copies the run's executed notebooks into report/notebooks/,
writes report/_summary.md (the run's numbers and the table of all runs), the
runs figure and report/_chapters.yml (the book's chapters, in the pipeline's
order), then renders report/ as a Quarto book (report/_quarto.yml) from the
notebooks' stored outputs. Every value that reaches the page is escaped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from digits import book, catalog, records, tryit
from digits.display import markdown_table, markdown_text, percent, shown
from digits.files import atomic_path, digest_of, remove_stale_partials, write_frame_atomic, write_text_atomic
from digits.parameters import RUN_PARAMETERS
from digits.runs import Run

if TYPE_CHECKING:
    import nbformat

RUNS_FIGURE = "runs-accuracy.png"
SWEEP_FIGURE = "runs-sweep.png"
CHAPTERS_FILE = "_chapters.yml"
# Short headers, so that the runs table fits the page's text column.
RUNS_TABLE_HEADERS = {"val_accuracy": "validation", "test_accuracy": "test", "train_minutes": "minutes",
                      "images_per_second": "images/s", "finished_at": "finished", "quick": ""}


def summary_markdown(metrics: dict, results: pd.DataFrame | None) -> str:
    """The summary's numbers: headline, results against baselines, run parameters, versions, submission."""
    minutes = metrics["train_seconds"] / 60
    test_accuracy = metrics.get("test_accuracy")
    parameters = f"{metrics.get('params', 0):,}"
    run, arch = markdown_text(metrics["run"]), markdown_text(metrics["arch"])
    if metrics.get("kind") == "ensemble":
        parameters = f"{len(metrics['members'])} × {parameters}"  # every member has its own weights
        who = (f"The ensemble `{run}`, the average of {len(metrics['members'])} `{arch}` runs "
               f"(seeds {markdown_text(metrics['seed'])}),")
    else:
        who = f"The `{arch}` network of run `{run}`"
    note = records.weak_run_note(metrics)
    epochs = metrics["epochs"]
    parts = [
        *([f"::: {{.callout-warning}}\n{markdown_text(note)}\n:::", ""] if note else []),
        (f"{who} reached **{percent(test_accuracy) or 'an unknown'} test accuracy** and "
         f"{percent(metrics['val_accuracy'])} validation accuracy after {epochs} epoch{'s' if epochs != 1 else ''} "
         f"({minutes:.1f} minutes of training, {metrics.get('images_per_second', 0):,.0f} images per second)."),
        "",
        markdown_table(["test accuracy", "validation accuracy", "training time", "epochs", "parameters"],
                       [[percent(test_accuracy) or "not known", percent(metrics["val_accuracy"]),
                         f"{minutes:.1f} min", epochs, parameters]]),
        "",
        "## Results against baselines",
        "",
    ]
    if results is not None:
        rows = [[row["model"], percent(row["validation accuracy"]), percent(row["test accuracy"]), row["epochs"]]
                for row in results.to_dict("records")]
        parts += [markdown_table(["model", "validation accuracy", "test accuracy", "epochs"], rows), ""]
    else:
        parts += ["(Run notebooks/30-evaluate.ipynb for the comparison.)", ""]
    names = [p.name for p in RUN_PARAMETERS if p.name in metrics] + ["learning_rate", "n_train", "n_validation"]
    rows = [[name, metrics.get(name)] for name in names]
    rows += [[f"{name} version", metrics.get(f"{name}_version")] for name in ("python", "tensorflow", "keras")]
    rows += [["trained on", metrics.get("device", "not recorded")],
             ["precision", metrics.get("precision", "float32")],  # runs from before bfloat16 trained in float32
             ["threads", metrics.get("threads", "not recorded")]]
    rows = [[name, "all" if name == "sample_size" and not value else value] for name, value in rows]
    parts += ["## Run parameters and versions", "", markdown_table(["parameter", "value"], rows), "",
              "## Submission", "",
              "[Download submission.csv](submission.csv) (`ImageId,Label`, one row per image of test.csv).", ""]
    return "\n".join(parts)


def runs_markdown(table: pd.DataFrame, current: Sequence[str]) -> str:
    """The Runs section: every kept run, the current ones (a run, or an ensemble and its members) in bold."""
    shown_table = table.copy()
    for column in ("val_accuracy", "test_accuracy"):
        shown_table[column] = shown_table[column].map(percent)
    bold = [index for index, name in enumerate(shown_table["run"]) if name in current]
    headers = [RUNS_TABLE_HEADERS.get(column, column) for column in shown_table.columns]
    return "\n".join([
        "## Runs", "",
        (f"Every run kept in the models folder, newest first; this report shows **{markdown_text(current[0])}**. "
         "`make runs` prints the same table; `make all EPOCHS=30` (or any other parameters) adds a run "
         "and `make report` shows the newest."), "",
        # Its own scroll box: a long run name never pushes the table under the page's contents.
        "::: {.runs-table}", markdown_table(headers, shown_table.itertuples(index=False), bold_rows=bold), ":::", "",
        (f"![Validation accuracy per epoch of every kept run; the run of this report is drawn thicker.]"
         f"({RUNS_FIGURE}){{#fig-runs}}"), "",
    ])


def sweep_markdown(parameter: str, summary: pd.DataFrame) -> str:
    """What the runs show: the table of accuracy and minutes by value (or the spread over seeds alone), and the plot."""
    score = "test" if summary.attrs.get("score") == "test_accuracy" else "validation"
    if parameter == "seed":
        row = summary.to_dict("records")[0]
        text = (f"The {row['runs']} runs differ in their seed alone: their {score} accuracy is "
                f"**{percent(row['mean'])} ± {row['sd'] * 100:.2f}** (standard deviation; {percent(row['lowest'])} to "
                f"{percent(row['highest'])}). A difference between two runs smaller than about twice that spread "
                "says nothing about their parameters.")
    else:
        text = (f"The runs differ in `{markdown_text(parameter)}` (and perhaps their seeds): their {score} accuracy, "
                "mean and spread over the seeds, and training minutes for each value.")
    rows = [[row[parameter] if parameter != "seed" else "all", row["runs"], percent(row["mean"]),
             "" if pd.isna(row["sd"]) else f"{row['sd'] * 100:.2f}", percent(row["lowest"]), percent(row["highest"]),
             f"{row['minutes']:.1f}"] for row in summary.to_dict("records")]
    header = [parameter if parameter != "seed" else "seeds", "runs", "mean", "sd (points)", "lowest", "highest",
              "minutes"]
    figure = (f"![{score.capitalize()} accuracy and training minutes against {markdown_text(parameter)}.]"
              f"({SWEEP_FIGURE}){{#fig-sweep}}")
    return "\n".join(["### What the runs show", "", text, "", markdown_table(header, rows), "", figure, ""])


def write_summary(report_dir: Path, run: Run, table: pd.DataFrame) -> None:
    """Write report/_summary.md, the runs table and figure from the run's files; copy the submission beside them."""
    import matplotlib.pyplot as plt

    from digits import plots

    metrics = records.read_metrics(run.folder)
    evaluation = run.folder / "evaluation.csv"
    results = records.read_evaluation(evaluation) if evaluation.is_file() else None
    write_frame_atomic(table, run.models_dir / "runs.csv")
    current = [run.name] + [member.name for member in run.members]
    figure = plots.validation_curves(catalog.histories(run.models_dir, run.data_dir), current=current)
    with atomic_path(report_dir / RUNS_FIGURE) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    sections = [summary_markdown(metrics, results), runs_markdown(table, current)]
    found = catalog.sweep_summary(run.models_dir, run.data_dir, run.data_tag)
    if found:
        figure = plots.sweep(found[1], found[0])
        with atomic_path(report_dir / SWEEP_FIGURE) as temporary:
            figure.savefig(temporary, bbox_inches="tight", metadata={"Software": None})
        plt.close(figure)
        sections.append(sweep_markdown(*found))
    write_text_atomic(report_dir / "_summary.md", "\n".join(sections))
    submission = run.folder / "submission.csv"
    if submission.is_file():
        with atomic_path(report_dir / "submission.csv") as temporary:
            shutil.copyfile(submission, temporary)


# --- Rendering ---------------------------------------------------------------------------


def render_quarto(report_dir: Path, quarto: str) -> Path:
    """Render the book with Quarto (`quarto render report/`), finished to work from disk; return the entry page."""
    subprocess.run([quarto, "render", str(report_dir), "--quiet"], check=True)
    book.finish_book(report_dir / "_book")
    return report_dir / "_book" / "index.html"


def html_as_raw_markdown(notebook: nbformat.NotebookNode) -> None:
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
    files = [*notebooks.values(), report_dir / "index.qmd", report_dir / "_quarto.yml",
             run.folder / "evaluation.csv", run.folder / "submission.csv",
             *(member.folder / "model.keras" for member in run.trained)]  # the weights of the "Try it" page
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

    from digits import fallback

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
        entry = render_quarto(report_dir, quarto)
        # Quarto leaves an empty folder for the summary's embedded figures in the source tree.
        if (report_dir / "index_files").is_dir() and not any((report_dir / "index_files").rglob("*")):
            (report_dir / "index_files").rmdir()
    else:
        entry = fallback.render(report_dir, list(notebooks))
    write_text_atomic(stamp, inputs)
    return entry
