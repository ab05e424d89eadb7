"""Sweep: many runs in one command, the product of comma lists of run parameters, trained by Dask workers.

    make sweep EPOCHS=5,10,15,30 SEED=42,43,44          # 12 runs
    make sweep ARCH=strided,wide WORKERS=2             # two at a time on this machine
    make sweep SEED=42,43 DASK_SCHEDULER_ADDRESS=tcp://host:8786   # on a cluster

Each combination is an ordinary run: the same folder, files and executed
training notebook as `make all` with those values, so a finished one is reused
and `make all EPOCHS=10 SEED=43` afterwards finds it. Then each run is evaluated
and submitted, and the report (of the grid's last run) shows what the sweep
found.
"""

from __future__ import annotations

from typing import Any

from digits import runs
from digits.parameters import RUN_PARAMETERS
from digits.pipeline import steps
from digits.pipeline.commandline import Options
from digits.pipeline.workers import Executor
from digits.runs import catalog
from digits.util.display import text_table

MAX_WITHOUT_FORCE = 100


def shown_value(value: Any) -> str:
    """A parsed value of a comma list as make's command line spells it (empty: the recipe's)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "" if value is None else str(value)


def describe_grid(options: Options) -> str:
    """`12 runs: EPOCHS 5, 10, 15, 30 x SEED 42, 43, 44 (SAMPLE_SIZE=2000)`: each value once, as parsed."""
    values = {p.variable: list(dict.fromkeys(shown_value(combination[p.name]) for combination in options.grid))
              for p in RUN_PARAMETERS if options.given(p.name)}
    axes = [f"{variable} {', '.join(listed)}" for variable, listed in values.items() if len(listed) > 1]
    fixed = [f"{variable}={listed[0]}" for variable, listed in values.items() if len(listed) == 1]
    size = len(options.grid)
    return (f"{size} run{'s' if size != 1 else ''}" + (f": {' x '.join(axes)}" if axes else "")
            + (f" ({', '.join(fixed)})" if fixed else ""))


def announce(options: Options, where: str) -> None:
    """The sweep's first line, before any work or connection: its runs and where they train; ValueError for more
    than MAX_WITHOUT_FORCE runs without FORCE=1."""
    print(f"sweep: {describe_grid(options)} {where}", flush=True)
    if len(options.grid) > MAX_WITHOUT_FORCE and not options["force"]:
        raise ValueError(f"{len(options.grid)} runs is more than {MAX_WITHOUT_FORCE}: give FORCE=1 to sweep them all")


def sweep(context: steps.Context, executor: Executor) -> None:
    """Train the grid's runs on the workers, evaluate and submit each here, render the report; one line per lost run."""
    combinations = context.options.grid
    steps.step_data(context)
    grid_runs = [runs.resolve_parsed({**context.options.run_values, **combination}, context.data_dir,
                                     context.models_dir) for combination in combinations]
    members = list({member.name: member for run in grid_runs for member in run.single_runs}.values())
    outcomes = executor.train(context.project, context.data_dir, context.models_dir, members)
    lost = {outcome.run for outcome in outcomes if outcome.lost}
    done = [run for run in grid_runs if not lost & {member.name for member in run.single_runs}]
    for run in done:
        context.run = run
        runs.create_folder(run)
        steps.step_evaluate(context)
        steps.step_submit(context)
    if done:
        steps.step_explore(context)
        steps.step_report(context)
    swept = [name for name, values in context.options.lists.items() if len(values) > 1]
    catalog.record_sweep(context.models_dir, describe_grid(context.options), swept, [run.name for run in done])
    table = catalog.runs_table(context.models_dir, context.data_dir)
    table = table[table["run"].isin({run.name for run in done})]
    if len(table):
        print(text_table(table))
        best = table.sort_values(["val_accuracy", "train_minutes"], ascending=[False, True]).iloc[0]
        print(f"best by validation accuracy: {best['run']} ({best['val_accuracy']:.2%}); `make use RUN={best['run']}` "
              "makes it the run that make report, predict and kaggle-submit use (the sweep changed nothing there)")
    if lost:
        raise ValueError(f"{len(lost)} of {len(members)} run(s) lost ({', '.join(sorted(lost))}): "
                         "the same command again resumes them")
