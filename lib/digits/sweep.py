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

import itertools
from collections.abc import Mapping
from typing import Any

from digits import catalog, runs, steps
from digits.display import text_table
from digits.executor import Executor
from digits.parameters import PARAMETERS, RUN_PARAMETERS, check_list

MAX_WITHOUT_FORCE = 100


def grid(given: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every combination of the run parameters' values (comma lists), in order; ValueError naming a bad value."""
    lists = {p.name: check_list(p, given[p.name]) for p in RUN_PARAMETERS if p.name in given}
    return [dict(zip(lists, values)) for values in itertools.product(*lists.values())]


def describe_grid(given: Mapping[str, Any], size: int) -> str:
    """`12 runs: EPOCHS 5, 10, 15, 30 x SEED 42, 43, 44 (SAMPLE_SIZE=2000)`."""
    values = {PARAMETERS[name].variable: [v.strip() for v in str(given[name]).split(",")]
              for name in (p.name for p in RUN_PARAMETERS) if name in given}
    axes = [f"{variable} {', '.join(listed)}" for variable, listed in values.items() if len(listed) > 1]
    fixed = [f"{variable}={listed[0]}" for variable, listed in values.items() if len(listed) == 1]
    return (f"{size} run{'s' if size != 1 else ''}" + (f": {' x '.join(axes)}" if axes else "")
            + (f" ({', '.join(fixed)})" if fixed else ""))


def sweep(context: steps.Context, executor: Executor) -> None:
    """Train the grid's runs on the workers, evaluate and submit each here, render the report; one line per lost run."""
    combinations = grid(context.given)
    print(f"sweep: {describe_grid(context.given, len(combinations))}", flush=True)
    if len(combinations) > MAX_WITHOUT_FORCE and not context.settings.get("force"):
        raise ValueError(f"{len(combinations)} runs is more than {MAX_WITHOUT_FORCE}: give FORCE=1 to sweep them all")
    steps.step_data(context)
    folders = {"data_dir": context.data_dir, "models_dir": context.models_dir}
    grid_runs = [runs.resolve({**context.given, **combination, **folders}) for combination in combinations]
    members = list({member.name: member for run in grid_runs for member in run.trained}.values())
    outcomes = executor.train(context.project, context.data_dir, context.models_dir, members)
    lost = {outcome.run for outcome in outcomes if outcome.lost}
    done = [run for run in grid_runs if not lost & {member.name for member in run.trained}]
    for run in done:
        context.run = run
        runs.start(run)
        steps.step_evaluate(context)
        steps.step_submit(context)
    if done:
        steps.step_explore(context)
        steps.step_report(context)
    table = catalog.runs_table(context.models_dir, context.data_dir)
    table = table[table["run"].isin({run.name for run in done})]
    if len(table):
        print(text_table(table))
    if lost:
        raise ValueError(f"{len(lost)} of {len(members)} run(s) lost ({', '.join(sorted(lost))}): "
                         "the same command again resumes them")
