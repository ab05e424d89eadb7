"""Summary: the report's first page for a run (report/_summary.md): its numbers, the runs table and figures.

Every value that reaches the page is escaped (digits.util.display.markdown_text).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from digits.parameters import RUN_PARAMETERS
from digits.report import comparisons
from digits.runs import Run, catalog, records
from digits.util.display import markdown_table, markdown_text, percent, readable_numbers
from digits.util.files import atomic_path, write_frame_atomic, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RUNS_FIGURE = "runs-accuracy.png"
# Short headers, so that the runs table fits the page's text column.
RUNS_TABLE_HEADERS = {"val_accuracy": "validation", "test_accuracy": "test", "train_minutes": "minutes",
                      "images_per_second": "images/s", "finished_at": "finished", "quick": "quick"}


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
             ["precision", metrics.get("precision")],
             ["threads", metrics.get("threads", "not recorded")]]
    rows = [[name, "all" if name == "sample_size" and not value else value] for name, value in rows]
    parts += ["## Run parameters and versions", "", markdown_table(["parameter", "value"], rows), "",
              "## Submission", "",
              "[Download submission.csv](submission.csv) (`ImageId,Label`, one row per image of test.csv).", ""]
    return "\n".join(parts)


def runs_markdown(table: pd.DataFrame, current: Sequence[str]) -> str:
    """The Runs section: every kept run, the current ones (a run, or an ensemble and its members) in bold."""
    shown_table = readable_numbers(table)
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
    def save(figure: Figure, name: str) -> None:
        with atomic_path(report_dir / name) as temporary:
            figure.savefig(temporary, bbox_inches="tight", metadata={"Software": None})
        plt.close(figure)

    sections = [summary_markdown(metrics, results), runs_markdown(table, current),
                comparisons.runs_shown_markdown(run, save), comparisons.versus_markdown(run, save)]
    write_text_atomic(report_dir / "_summary.md", "\n".join(sections))
    submission = run.folder / "submission.csv"
    if submission.is_file():
        with atomic_path(report_dir / "submission.csv") as temporary:
            shutil.copyfile(submission, temporary)
