"""Main: the one entry point of `make` (`python -m digits.pipeline COMMAND`), which orders the steps.

    python -m digits.pipeline all|notebooks|report|data|explore|train|evaluate|submit [NAME=value ...]
    python -m digits.pipeline runs|predict|sweep|kaggle-data|kaggle-submit|clean-models|lab|serve-report [...]

Under make, the parameters are the variables of make's command line, read from
MAKEFLAGS as typed (`make all EPOCHS=30`); run directly, they are the NAME=value
arguments. They are parsed once (digits.pipeline.commandline.Options). Each step
checks the files on disk and does only what is missing or out of date: an
executed notebook records a digest of its inputs (parameters, data, notebook and
library code), and what is on disk decides, not a stamp.

`all` and `train` work on the run their parameters name, training it if needed.
The other commands work on the run that run parameters name, or RUN=name, or
else the latest finished run, and never train it.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import time
from collections.abc import Mapping

from digits import runs
from digits.parameters import quoted
from digits.pipeline import kernel
from digits.pipeline.commandline import (
    given_as_variables,
    given_on_make_command_line,
    ignored_in_environment,
    parse_options,
)
from digits.pipeline.commands import COMMANDS, RUNLESS, train_on_workers
from digits.pipeline.steps import STEP_NAMES, Context, choose_run, step_data, steps_for
from digits.runs import records
from digits.util import files
from digits.util.display import shown
from digits.util.files import exclusive_lock
from digits.util.paths import project_root

LOCK_FILE = ".pipeline.lock"
# What is known of the project's files (digests, checks passed), by their stat: a cache, safe to delete.
CACHE_FILE = ".cache/files.json"

STEP_COMMANDS = ("all", "notebooks", "report", *STEP_NAMES)


def run_command(command: str, context: Context) -> None:
    """Run a command: its steps in order, or one of the other commands. The run is chosen first where the data is
    there already, so that the command's first line says which run it works on."""
    needs_run = command not in RUNLESS if command in COMMANDS else any(step.needs_run for step in steps_for(command))
    if needs_run and (context.data_dir / "train.csv").is_file():
        context.run = choose_run(context, command)
    if command in COMMANDS:
        if needs_run:
            step_data(context)
            context.run = context.run or choose_run(context, command)
        COMMANDS[command](context)
        return
    started, seconds = time.perf_counter(), {}
    for step in steps_for(command):
        step_started = time.perf_counter()
        if step.needs_run and context.run is None:
            context.run = choose_run(context, command)
        step.action(context)
        seconds[step.name] = round(time.perf_counter() - step_started, 1)
    print_timings(context, seconds, time.perf_counter() - started)


def print_timings(context: Context, seconds: dict[str, float], total: float) -> None:
    """One line per step with its seconds (and the run's own training time), recorded in the run's metrics."""
    trained = [records.read_metrics(member.folder) for member in context.run.single_runs] if context.run else []
    training = sum(metrics["train_seconds"] for metrics in trained)
    print("seconds per step:")
    for name, value in seconds.items():
        note = f"   (of which training: {training / 60:.2f} min)" if name == "train" and trained else ""
        print(f"  {name:<9}{value:6.1f}{note}")
    print(f"  {'total':<9}{total:6.1f}", flush=True)
    if context.run and context.notebooks_ran:  # a command that did nothing leaves the metrics as they are
        records.record_scores(context.run.folder, step_seconds=seconds)


# --- Command line -----------------------------------------------------------------------------------


def given_parameters(arguments: list[str], environment: Mapping[str, str]) -> dict[str, str]:
    """The parameters: NAME=value arguments, or under make the variables of make's command line."""
    if arguments:
        pairs = [argument.partition("=") for argument in arguments]
        bad = [name for name, equals, _ in pairs if not equals]
        if bad:
            raise ValueError(f"expected NAME=value, got {bad[0]!r}")
        return given_as_variables({name: value for name, _, value in pairs})
    return given_on_make_command_line(environment)


def make_context(command: str, arguments: list[str]) -> Context:
    """Parse the parameters once (one line naming a bad one) and say which exported shell variables are ignored.

    RUN names a kept run: `make all RUN=name` shows it, training nothing.
    """
    typed = given_parameters(arguments, os.environ)
    options = parse_options(typed, lists=command in ("sweep", "runs"), environment=os.environ)
    for ignored in ignored_in_environment(os.environ, typed):
        print(f"note: {ignored} in the environment is ignored: give parameters on the make command line",
              file=sys.stderr)
    data_dir, models_dir = runs.folders(options.values)
    if not data_dir.is_dir():
        raise ValueError(f"data_dir must be an existing folder, got {quoted(str(typed.get('data_dir', 'data')))}")
    if models_dir.exists() and not models_dir.is_dir():
        raise ValueError(f"models_dir must be a folder, got {quoted(str(typed.get('models_dir')))} (not a folder)")
    context = Context(project_root(), options, data_dir, models_dir,
                      train=command in ("all", "train") and not options["run"])
    context.train_elsewhere = lambda members: train_on_workers(context, members)
    return context


def where_it_failed(error: OSError, context: Context, command: str) -> str:
    """The path an operating-system error is about: its file, or else the folder on a disk that is full."""
    if error.filename:
        return shown(error.filename)
    if error.errno == errno.ENOSPC:
        for folder in (context.models_dir, context.data_dir, context.project / "report"):
            existing = next((path for path in (folder, *folder.parents) if path.exists()), folder)
            if shutil.disk_usage(existing).free < 1 << 20:
                return shown(folder)
    return command


def main(argv: list[str] | None = None) -> int:
    """Run one command; any failure is one line on stderr and status 1 (2 for a bad parameter)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in (*STEP_COMMANDS, *COMMANDS):
        print(f"usage: python -m digits.pipeline {{{','.join((*STEP_COMMANDS, *COMMANDS))}}} [NAME=value ...]",
              file=sys.stderr)
        return 2
    command = argv[0]
    try:
        context = make_context(command, argv[1:])
    except ValueError as error:
        print(f"error: bad parameter: {error}", file=sys.stderr)
        return 2
    files.use_cache(context.project / CACHE_FILE)
    kernel.quiet_tensorflow_start_up()  # the report's "Try it" page reads the models with Keras in this process
    try:
        if command in ("lab", "serve-report"):  # servers run for hours beside the pipeline: they take no lock
            COMMANDS[command](context)
            return 0
        with exclusive_lock(context.project / LOCK_FILE):
            try:
                run_command(command, context)
            finally:
                context.kernel.close()
                files.CACHE.save()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {where_it_failed(error, context, command)}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to go on (training resumes after its last epoch)",
              file=sys.stderr)
        return 130
    return 0

