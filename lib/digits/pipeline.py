"""Pipeline: the one entry point of `make`, and the one place that orders the steps.

    python -m digits.pipeline all|notebooks|report|data|explore|train|evaluate|submit [NAME=value ...]
    python -m digits.pipeline runs|predict|kaggle-data|kaggle-submit|clean-models|lab [NAME=value ...]

Under make, the parameters are the variables of make's command line, read from
MAKEFLAGS as typed (`make all EPOCHS=30`); run directly, they are the NAME=value
arguments. Each step checks the files on disk and does only what is missing or
out of date: an executed notebook records a digest of its inputs (parameters,
data, notebook and library code), and what is on disk decides, not a stamp.

`all` works on the run its parameters name, training it if needed. The other
commands work on the run that run parameters name, or RUN=name, or else the
latest finished run, and never train it.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from digits import catalog, competition, files, kernel, records, runs, sweep
from digits.commandline import given_as_variables, given_on_make_command_line, ignored_in_environment
from digits.display import shown, text_table
from digits.executor import Executor
from digits.files import exclusive_lock, write_frame_atomic
from digits.parameters import RUN_PARAMETERS, check_parameters
from digits.paths import project_root
from digits.steps import STEP_NAMES, Context, choose_run, step_data, steps_for

LOCK_FILE = ".pipeline.lock"
# What is known of the project's files (digests, checks passed), by their stat: a cache, safe to delete.
CACHE_FILE = ".cache/files.json"


# --- The other commands -----------------------------------------------------------------------------


def command_runs(context: Context) -> None:
    """Print the table of every kept run and write runs.csv."""
    for problem in catalog.damaged_runs(context.models_dir, context.data_dir):
        print(f"left out, damaged: {problem}")
    table = catalog.runs_table(context.models_dir, context.data_dir)
    if table.empty:
        print(f"no finished runs in {shown(context.models_dir)}")
        return
    write_frame_atomic(table, context.models_dir / "runs.csv")
    print(text_table(table))
    print(f"(newest first; written to {shown(context.models_dir / 'runs.csv')})")


def command_predict(context: Context) -> None:
    """Predict the images IMAGES names with the run (RUN, or the latest); write the table and the figure."""
    from digits import predict

    images = context.settings.get("images", "")
    if not images:
        raise ValueError("no images given: make predict IMAGES=a-folder-or-file (for example IMAGES=data/samples)")
    paths = predict.image_files(images)
    run = choose_run(context, "predict")
    table, pairs = predict.predict_images(paths, run)
    folder = predict.save_predictions(table, pairs, run)
    print(predict.format_table(table))
    print(f"{run.name}: wrote {shown(folder / 'predictions.csv')} and {shown(folder / 'predictions.png')}")
    if not table["label"].notna().any():
        raise ValueError(f"none of the {len(table)} file(s) could be predicted")


def _kaggle(context: Context) -> str:
    """The Kaggle command: KAGGLE, or the environment's own."""
    return context.settings.get("kaggle") or str(Path(sys.executable).parent / "kaggle")


def command_kaggle_data(context: Context) -> None:
    """Download the competition's files with the Kaggle command into DATA_DIR, checked before they land."""
    rows = competition.download_data(context.data_dir, _kaggle(context))
    print(f"downloaded Kaggle's train.csv ({rows['train']:,} rows) and test.csv ({rows['test']:,} rows) "
          f"into {shown(context.data_dir)}", flush=True)


def command_kaggle_submit(context: Context) -> None:
    """Submit the run's submission.csv (checked against test.csv) to the competition with the Kaggle command."""
    run = context.run
    metrics = records.read_metrics(run.folder)
    print(competition.submit(run.folder, context.data_dir / "test.csv", metrics, _kaggle(context)), flush=True)
    print(f"submitted {shown(run.folder / 'submission.csv')}: \"{competition.submission_message(metrics)}\"",
          flush=True)


def command_clean_models(context: Context) -> None:
    """Remove the run folders this project made in MODELS_DIR (and runs.csv), listing them first."""
    folders = catalog.project_folders(context.models_dir)
    if not folders:
        print(f"nothing to remove: no folder in {shown(context.models_dir)} was made by this project")
        return
    training = [folder for folder in folders if catalog.in_training(folder)]
    folders = [folder for folder in folders if folder not in training]
    for folder in training:
        print(f"left alone: {folder.name} is being trained by another command")
    print(f"removing {len(folders)} folder(s) that this project made in {shown(context.models_dir)}:")
    for folder in folders:
        print(f"  {folder.name}")
    removed = catalog.clean(context.models_dir, folders)
    print(f"removed {len(removed)} folder(s); anything else in {shown(context.models_dir)} is left as it was")


def command_lab(context: Context) -> None:
    """Start JupyterLab at the project's root with the project's kernel, on 127.0.0.1 with a token."""
    arguments = [str(Path(sys.executable).parent / "jupyter"), "lab", "--ip", "127.0.0.1",
                 f"--ServerApp.root_dir={context.project}",
                 f"--KernelSpecManager.allowed_kernelspecs={kernel.KERNEL_NAME}",
                 "--KernelSpecManager.ensure_native_kernel=False", "--ServerApp.log_level=WARN"]
    if context.settings.get("port"):
        arguments += ["--port", str(context.settings["port"]), "--ServerApp.port_retries=0"]
    if context.settings.get("browser") is False:
        arguments.append("--no-browser")
    if os.geteuid() == 0:  # Jupyter refuses to run as root unless told; containers often run as root.
        arguments.append("--allow-root")
    # The kernels import this clone's own lib/, even from an environment that several clones share.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(context.project / "lib"),
                                                                os.environ.get("PYTHONPATH", "")])}
    os.execve(arguments[0], arguments, environment)


def executor(context: Context) -> Executor:
    """The workers that train several runs at once: a local cluster (WORKERS), or DASK_SCHEDULER_ADDRESS's."""
    return Executor(context.settings.get("workers"), context.settings.get("dask_scheduler_address", ""))


def command_sweep(context: Context) -> None:
    """Train every combination of the comma lists of run parameters on the workers; evaluate; report."""
    with executor(context) as workers:
        sweep.sweep(context, workers)


def train_on_workers(context: Context, members: list) -> bool:
    """Train an ensemble's members on the workers (several at once); ValueError naming any lost one."""
    with executor(context) as workers:
        outcomes = workers.train(context.project, context.data_dir, context.models_dir, members)
    lost = [outcome.run for outcome in outcomes if outcome.lost]
    if lost:
        raise ValueError(f"lost {', '.join(lost)}: the same command again resumes them")
    return any(outcome.trained for outcome in outcomes)


def command_serve_report(context: Context) -> None:
    """Serve the rendered book on 127.0.0.1 (PORT, default 8000), where its search works as it cannot from disk."""
    book = context.project / "report" / "_book"
    if not (book / "index.html").is_file():
        raise ValueError(f"{shown(book / 'index.html')}: missing; `make report` renders the book first")
    port = str(context.settings.get("port") or 8000)
    print(f"serving {shown(book)} at http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(book),
                              port])


STEP_COMMANDS = ("all", "notebooks", "report", *STEP_NAMES)
COMMANDS: dict[str, Callable[[Context], None]] = {
    "runs": command_runs, "predict": command_predict, "kaggle-data": command_kaggle_data,
    "kaggle-submit": command_kaggle_submit, "clean-models": command_clean_models, "lab": command_lab,
    "serve-report": command_serve_report, "sweep": command_sweep,
}
RUNLESS = ("runs", "predict", "kaggle-data", "clean-models", "lab", "serve-report", "sweep")


def run_command(command: str, context: Context) -> None:
    """Run a command: its steps in order, or one of the other commands."""
    if command in COMMANDS:
        if command not in RUNLESS:
            step_data(context)
            context.run = choose_run(context, command)
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
    trained = [records.read_metrics(member.folder) for member in context.run.trained] if context.run else []
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
    """Check the parameters (one line naming a bad one) and say which exported shell variables are ignored."""
    given = given_parameters(arguments, os.environ)
    # A sweep's run parameters are comma lists: the sweep checks each of their values before any work.
    checked_now = {name: value for name, value in given.items()
                   if command != "sweep" or name not in {p.name for p in RUN_PARAMETERS}}
    settings = check_parameters(**checked_now)
    if command == "sweep":
        sweep.grid(given)
    for ignored in ignored_in_environment(os.environ, given):
        print(f"note: {ignored} in the environment is ignored: give parameters on the make command line",
              file=sys.stderr)
    project = project_root()
    data_dir, models_dir = runs.folders(given)
    if not data_dir.is_dir():
        raise ValueError(f"data_dir must be an existing folder, got {str(given.get('data_dir', 'data'))!r}")
    if models_dir.exists() and not models_dir.is_dir():
        raise ValueError(f"models_dir must be a folder, got {str(given.get('models_dir'))!r} (not a folder)")
    context = Context(project, given, settings, data_dir, models_dir, train=command == "all")
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


if __name__ == "__main__":
    sys.exit(main())
