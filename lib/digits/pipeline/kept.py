"""Kept runs: the commands that list, compare, choose and remove them.

    make runs [EPOCHS=15,30 ARCH=wide] [SORT=val_accuracy]   the table (filtered, sorted) and what the runs show
    make compare RUN=a,b                                      is b better than a? counts, McNemar's p, seeds, figure
    make use RUN=name                                         the run later commands use when none is named
    make clean-models [RUN=name]                              remove runs (only the files the project made)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from digits.data import csv_rows
from digits.formats.csvfiles import TRAIN_COLUMNS
from digits.pipeline.steps import Context
from digits.runs import Run, catalog, records, removal
from digits.runs.comparison import comparisons, why_nothing_compares
from digits.util.display import shown, text_table
from digits.util.files import atomic_path, write_frame_atomic


def command_runs(context: Context) -> None:
    """Print the table of the kept runs (those the run parameters' lists select, sorted by SORT), write runs.csv,
    then what they show."""
    for problem in catalog.damaged_runs(context.models_dir, context.data_dir):
        print(f"left out, damaged: {problem}")
    table = catalog.runs_table(context.models_dir, context.data_dir, context.options.lists, context.options["sort"])
    if table.empty:
        selected = " that match the parameters given" if context.options.lists else ""
        print(f"no finished runs{selected} in {shown(context.models_dir)}")
        return
    write_frame_atomic(table, context.models_dir / "runs.csv")
    print(text_table(table))
    order = f"sorted by {context.options['sort']}" if context.options["sort"] else "newest first"
    print(f"({order}; written to {shown(context.models_dir / 'runs.csv')})")
    kept = [metrics for metrics in catalog.single_run_metrics(context.models_dir, context.data_dir)
            if metrics["run"] in set(table["run"])]
    rows = csv_rows(context.data_dir / "train.csv", TRAIN_COLUMNS)
    found = comparisons(kept, rows)
    print("\nWhat the runs show:" if found else f"\n{why_nothing_compares(kept, rows)}")
    for comparison in found:
        print(f"\n{comparison.title}")
        print(text_table(pd.DataFrame(comparison.rows(), columns=comparison.header), percent_columns=()))


def _two_runs(context: Context) -> tuple[Run, Run]:
    """The two kept runs RUN=a,b names; ValueError unless it names exactly two."""
    names = [name.strip() for name in context.options["run"].split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError("make compare needs two runs: make compare RUN=first,second (`make runs` lists them)")
    return tuple(catalog.find(name, context.data_dir, context.models_dir) for name in names)


def command_compare(context: Context) -> None:
    """Is B better than A? The parameters that differ, both accuracies, the images each alone gets right, McNemar's
    exact p-value, the spread between seeds, one sentence, and a figure of the images on which they disagree."""
    from digits import plots
    from digits.compare import compare_runs
    from digits.evaluate import predict_run, test_probabilities

    def probabilities_of(run: Run, images: np.ndarray, scored_on: str) -> np.ndarray:
        return test_probabilities(run, images) if scored_on == "test" else predict_run(run, images)

    a, b = _two_runs(context)
    kept = catalog.single_run_metrics(context.models_dir, context.data_dir)
    result, images, labels, answers = compare_runs(a, b, kept, probabilities_of)
    print(f"comparing {a.name} (A) and {b.name} (B) on the {len(images):,} {result.scored_on} images")
    for name, (value_a, value_b) in result.differing.items():
        print(f"  {name:<20} A {value_a}   B {value_b}")
    for label, name, validation, accuracy in zip("AB", result.names, result.validation, result.accuracies):
        print(f"  {label} {name}: validation {validation:.2%}, {result.scored_on} {accuracy:.2%}")
    print(f"  right only by A: {result.a_only}   right only by B: {result.b_only}   "
          f"McNemar's exact test: p = {result.p_value:.3g}")
    for name, (spread, seeds) in result.spreads.items():
        print(f"  seeds of {name}'s recipe: {seeds}, standard deviation {spread * 100:.2f} points")
    print(result.sentence())
    path = context.models_dir / f"compare-{a.name}-{b.name}.png"
    figure = plots.disagreements(images, labels, answers, result.disagreements, result.names)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, bbox_inches="tight", metadata={"Software": None})
    print(f"the {len(result.disagreements)} images on which they disagree: {shown(path)}")


def command_use(context: Context) -> None:
    """Choose the run that report, predict, submit and kaggle-submit use when none is named."""
    if not context.options["run"]:
        raise ValueError("make use needs a run: make use RUN=name (`make runs` lists them)")
    run = catalog.find(context.options["run"], context.data_dir, context.models_dir)
    catalog.choose(run, "chosen with `make use`")
    quick = " (a quick run, not a result)" if records.is_quick(records.read_metrics(run.folder)) else ""
    print(f"chose {run.name}{quick}: make report, make predict, make submit and make kaggle-submit now use it")


def command_clean_models(context: Context) -> None:
    """Remove the runs this project made in MODELS_DIR (RUN=name: that one only), file by file: what the project
    did not make is kept and named."""
    folders = removal.project_folders(context.models_dir)
    if context.options["run"]:
        folder = context.models_dir / context.options["run"]
        if folder not in folders:
            raise ValueError(f"no run {context.options['run']!r} made by this project in {shown(context.models_dir)}")
        folders = [folder]
    if not folders:
        print(f"nothing to remove: no folder in {shown(context.models_dir)} was made by this project")
        return
    for folder in [folder for folder in folders if removal.in_training(folder)]:
        print(f"left alone: {folder.name} is being trained by another command")
        folders.remove(folder)
    print(f"removing {len(folders)} run folder(s) that this project made in {shown(context.models_dir)}:")
    for folder in folders:
        kept = removal.remove_run(folder)
        print(f"  {folder.name}" + (f": kept {', '.join(_relative(path, folder) for path in kept)}, "
                                    "not made by this project" if kept else ""))
    if not context.options["run"]:
        removal.remove_folder_files(context.models_dir)
    print(f"anything else in {shown(context.models_dir)} is left as it was")


def _relative(path: Path, folder: Path) -> str:
    return str(path.relative_to(folder))
