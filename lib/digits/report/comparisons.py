"""Comparisons: the report's answer to "what do the runs show?" and "is this run better than the one most like it?".

The last sweep's answer comes first (what it set out to vary), then what all
the kept runs show (digits.runs.comparison), or one sentence on why nothing
compares; then this run against the kept run most like it, with McNemar's exact
test and the spread between seeds (digits.compare). Only what evaluation kept is
read here: no model is loaded and nothing is predicted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from digits import plots
from digits.compare import Verdict, verdict
from digits.data import csv_rows, load_test, load_test_labels
from digits.formats.csvfiles import TEST_COLUMNS, TRAIN_COLUMNS
from digits.runs import Run, catalog, records
from digits.runs.comparison import RECIPE, Comparison, comparisons, on_a_sample, why_nothing_compares
from digits.util.display import markdown_table, markdown_text, percent

SWEEP_FIGURE = "runs-sweep.png"
COMPARED_FIGURE = "runs-compared.png"
VERSUS_FIGURE = "runs-versus.png"

SaveFigure = Callable[[object, str], None]


def tables_markdown(found: list[Comparison]) -> str:
    """A small table per comparison, under a line saying what varies and what the runs share."""
    parts = []
    for comparison in found:
        shared = ", ".join(f"{name} {value}" for name, value in comparison.shared.items()
                           if name in ("arch", "epochs", "sample_size") and name != comparison.parameter)
        what = ("the spread between seeds" if comparison.parameter == "seed"
                else f"accuracy by `{comparison.parameter}`, seeds pooled")  # a parameter's name: safe as code
        parts += [f"**{markdown_text(comparison.title)}**: {what} ({markdown_text(shared)}).", "",
                  markdown_table(comparison.header, comparison.rows()), ""]
    return "\n".join(parts)


def _section(found: list[Comparison], figure: str, save: SaveFigure, caption: str) -> list[str]:
    """The tables and, where a parameter varies, one small panel per parameter."""
    panels = [comparison for comparison in found if comparison.parameter != "seed"]
    parts = [tables_markdown(found)]
    if panels:
        save(plots.comparisons(panels), figure)
        label = figure.removesuffix(".png")
        parts += [f"![{caption}]({figure}){{#fig-{label}}}", ""]
    return parts


def runs_shown_markdown(run: Run, save: SaveFigure) -> str:
    """What the kept runs show: the last sweep's answer first, then every comparison, or why there is none."""
    kept = catalog.single_run_metrics(run.models_dir, run.data_dir)
    rows = csv_rows(run.data_dir / "train.csv", TRAIN_COLUMNS)
    parts = ["### What the runs show", ""]
    sweep = catalog.last_sweep(run.models_dir)
    swept = [metrics for metrics in kept if sweep and metrics["run"] in sweep["runs"]]
    found_in_sweep = comparisons(swept, rows, [name for name in sweep["swept"] if name in RECIPE]) if sweep else []
    if found_in_sweep:
        parts += [f"The last sweep answers first ({markdown_text(sweep['grid'])}):", ""]
        parts += _section(found_in_sweep, SWEEP_FIGURE, save, "What the last sweep shows: mean accuracy over the "
                          "seeds (± one standard deviation), lowest and highest run, for each value it swept.")
        parts += ["Every kept run:", ""]
    found = comparisons(kept, rows)
    if found:
        parts += _section(found, COMPARED_FIGURE, save, "For each parameter that varies, mean accuracy over the "
                          "seeds (± one standard deviation), lowest and highest run; quick runs apart.")
    else:
        parts += [markdown_text(why_nothing_compares(kept, rows)), ""]
    return "\n".join(parts)


def most_like(metrics: dict, kept: list[dict], rows_of_data: int) -> dict | None:
    """The newest kept run of the same kind (quick or full) that differs from this one in one parameter alone."""
    def differences(other: dict) -> int:
        return sum(other.get(name) != metrics.get(name) for name in [*RECIPE, "seed"])
    alike = [other for other in kept if differences(other) == 1
             and on_a_sample(other, rows_of_data) == on_a_sample(metrics, rows_of_data)]
    return max(alike, key=lambda other: other["finished_at"], default=None)


def stored_verdict(run: Run, other: Run, kept: list[dict]) -> tuple[Verdict, np.ndarray, np.ndarray, tuple] | None:
    """The other run against this one on the test images, from the probabilities their evaluations kept: the
    verdict, the images, their labels and both runs' answers; None without them (or without the test labels)."""
    rows = csv_rows(run.data_dir / "test.csv", TEST_COLUMNS)
    labels = load_test_labels(run.data_dir, rows)
    kept_probabilities = tuple(records.stored_probabilities(one.folder, records.probabilities_source(
        one.single_runs, one.data_dir), rows) for one in (other, run))
    if labels is None or any(probabilities is None for probabilities in kept_probabilities):
        return None
    metrics = (records.read_metrics(other.folder), records.read_metrics(run.folder))
    answers = tuple(probabilities.argmax(axis=1) for probabilities in kept_probabilities)
    return (verdict(metrics, labels, kept_probabilities, "test", kept), load_test(run.data_dir / "test.csv"), labels,
            answers)


def versus_markdown(run: Run, save: SaveFigure) -> str:
    """This run against the kept run most like it: the counts, McNemar's p-value, the seeds, a sentence, a figure."""
    kept = catalog.single_run_metrics(run.models_dir, run.data_dir)
    metrics = next((metrics for metrics in kept if metrics["run"] == run.name), None)
    other = most_like(metrics, kept, csv_rows(run.data_dir / "train.csv", TRAIN_COLUMNS)) if metrics else None
    found = stored_verdict(run, catalog.find(other["run"], run.data_dir, run.models_dir), kept) if other else None
    if found is None:
        return ""
    result, images, labels, answers = found
    save(plots.disagreements(images, labels, answers, result.disagreements, result.names), VERSUS_FIGURE)
    differing = ", ".join(f"{name} {a} (there) and {b} (here)" for name, (a, b) in result.differing.items())
    scores = [[name, percent(validation), percent(accuracy), right_only] for name, validation, accuracy, right_only
              in zip(result.names, result.validation, result.accuracies, (result.a_only, result.b_only))]
    return "\n".join([
        f"### Is this run better than {markdown_text(other['run'])}?", "",
        f"The kept run most like this one differs from it in one parameter: {markdown_text(differing)}.", "",
        markdown_table(["run", "validation", "test", "test images only it gets right"], scores), "",
        markdown_text(result.sentence()), "",
        f"![The test images on which the two runs answer differently.]({VERSUS_FIGURE}){{#fig-runs-versus}}", "",
    ])


def figure_files(report_dir: Path) -> list[Path]:
    """The figures this module may write into the report's folder."""
    return [report_dir / name for name in (SWEEP_FIGURE, COMPARED_FIGURE, VERSUS_FIGURE)]
