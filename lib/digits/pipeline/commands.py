"""Commands: what make runs besides the pipeline's steps: the runs table, predictions, Kaggle, cleaning,
JupyterLab, the served book and sweeps. Each takes the command's Context (digits.pipeline.steps).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from digits.pipeline import kaggle as competition
from digits.pipeline import kept, kernel, serving, sweep
from digits.pipeline.commandline import using_line
from digits.pipeline.steps import Context, choose_run
from digits.pipeline.workers import Executor
from digits.runs import records
from digits.util.display import shown


def command_predict(context: Context) -> None:
    """Predict the images IMAGES names with the run (RUN, or the latest); write the table and the figure."""
    from digits import predict

    images = context.options["images"]
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
    return context.options["kaggle"] or str(Path(sys.executable).parent / "kaggle")


def command_kaggle_data(context: Context) -> None:
    """Download the competition's files with the Kaggle command into DATA_DIR, checked before they land; files
    already there are replaced only with FORCE=1."""
    rows = competition.download_data(context.data_dir, _kaggle(context), replace=bool(context.options["force"]))
    print(f"downloaded Kaggle's train.csv ({rows['train']:,} rows) and test.csv ({rows['test']:,} rows) "
          f"into {shown(context.data_dir)}", flush=True)


def command_kaggle_submit(context: Context) -> None:
    """Submit the run's submission.csv (checked against test.csv) to the competition with the Kaggle command; a
    quick run only with FORCE=1."""
    run = context.run
    metrics = records.read_metrics(run.folder)
    if records.is_quick(metrics) and not context.options["force"]:
        raise ValueError(f"{run.name} is a quick run, not a result: its submission would score far below the recipe's "
                         "(FORCE=1 submits it anyway; `make runs` lists the others, `make use RUN=name` chooses one)")
    print(competition.submit(run.folder, context.data_dir / "test.csv", metrics, _kaggle(context)), flush=True)
    print(f"submitted {shown(run.folder / 'submission.csv')}: \"{competition.submission_message(metrics)}\"",
          flush=True)


# Lab's terminal says only what matters: kernels on local sockets as the pipeline's (no "running over TCP" warning),
# the websocket's ping timeout equal to its interval (tornado lowers a longer one, with a warning), the project's
# contents manager (digits.pipeline.labcontents) and no start-up notes below a warning.
LAB_QUIET = ["--KernelManager.transport=ipc", '--ServerApp.tornado_settings={"ws_ping_timeout": 30000}',
             "--ServerApp.contents_manager_class=digits.pipeline.labcontents.ProjectContentsManager",
             "--ServerApp.log_level=WARN", "--LabApp.log_level=WARN"]


def command_lab(context: Context) -> None:
    """Start JupyterLab at the project's root with the project's kernel, on 127.0.0.1 with a token."""
    arguments = [str(Path(sys.executable).parent / "jupyter"), "lab", "--ip", "127.0.0.1",
                 f"--ServerApp.root_dir={context.project}",
                 f"--KernelSpecManager.allowed_kernelspecs={kernel.KERNEL_NAME}",
                 "--KernelSpecManager.ensure_native_kernel=False", *LAB_QUIET]
    if context.options["port"]:
        arguments += ["--port", str(context.options["port"]), "--ServerApp.port_retries=0"]
    if context.options["browser"] is False:
        arguments.append("--no-browser")
    if os.geteuid() == 0:  # Jupyter refuses to run as root unless told; containers often run as root.
        arguments.append("--allow-root")
    os.execve(arguments[0], arguments, {**os.environ, **kernel.kernel_environment(context.project)})


def executor(context: Context) -> Executor:
    """The workers that train several runs at once: a local cluster (WORKERS), or DASK_SCHEDULER_ADDRESS's (saying
    so when it comes from the environment)."""
    address = context.options["dask_scheduler_address"]
    if "dask_scheduler_address" in context.options.from_environment and address:
        print(using_line("dask_scheduler_address", address), file=sys.stderr, flush=True)
    return Executor(context.options["workers"], address)


def command_sweep(context: Context) -> None:
    """Train every combination of the comma lists of run parameters on the workers; evaluate; report."""
    workers = executor(context)
    sweep.announce(context.options, workers.where())
    with workers:
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
    serving.serve(book, context.options["port"] or serving.DEFAULT_PORT)


COMMANDS: dict[str, Callable[[Context], None]] = {
    "runs": kept.command_runs, "compare": kept.command_compare, "use": kept.command_use, "predict": command_predict, "kaggle-data": command_kaggle_data,
    "kaggle-submit": command_kaggle_submit, "clean-models": kept.command_clean_models, "lab": command_lab,
    "serve-report": command_serve_report, "sweep": command_sweep,
}
RUNLESS = ("runs", "compare", "use", "predict", "kaggle-data", "clean-models", "lab", "serve-report", "sweep")
