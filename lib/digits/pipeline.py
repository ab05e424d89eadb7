"""Pipeline: the steps `make` runs, each checking the files on disk before it does any work.

    python -m digits.pipeline data|explore|train|evaluate|submit|report|runs|kaggle-data|kaggle-submit
        [--use-parameters]

The parameters come from the environment, where Make puts the variables given
on its command line (`make all EPOCHS=30` sets EPOCHS), so no value a user
passes is ever part of a shell command. A step is skipped when its output in the
run folder is complete and was made from the same inputs (parameters, data,
notebook and library code); what is on disk decides, not a stamp.

Without --use-parameters (a bare `make report` or `make notebooks`) and with no
run parameter given, the steps work on the latest finished run and never train.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from digits import competition, runs
from digits.config import (
    RUN_PARAMETERS,
    check_parameters,
    parameters_from_environment,
    project_root,
    run_parameters,
    shown,
)
from digits.data import data_tag, prepare_data
from digits.files import atomic_path, exclusive_lock, remove_stale_partials, sha256_of, write_text_atomic
from digits.submission import read_submission

KERNEL = "digit-recognizer"
LOCK_FILE = ".pipeline.lock"
STEPS = ("data", "explore", "train", "evaluate", "submit", "report", "runs", "kaggle-data", "kaggle-submit")


class StepError(Exception):
    """A step that cannot go on; its message is the one line the user sees."""


@dataclass
class Context:
    """Where a step works and on which run."""

    project: Path
    data_dir: Path
    models_dir: Path
    parameters: dict[str, Any]  # the run's parameters, resolved (the recipe's values filled in)
    run_dir: Path | None  # the run's or the ensemble's folder; None for steps that need none (data, explore, runs)
    latest: bool  # True when the run is the latest finished one rather than the one the parameters name
    ensemble: int = 1  # runs averaged: the seeds SEED..SEED+ensemble-1

    def members(self) -> list[tuple[dict[str, Any], Path]]:
        """The parameters and folder of each run to train: the run itself, or each member of the ensemble."""
        if self.ensemble == 1:
            return [(self.parameters, self.run_dir)]
        return [(parameters, runs.run_dir_for(parameters, self.data_dir, self.models_dir))
                for parameters in runs.member_parameters(self.parameters, self.ensemble)]


# --- Inputs and their digests -----------------------------------------------------------------


def _digest(*parts: Any) -> str:
    """SHA-256 of JSON-encoded parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def library_digest(project: Path) -> str:
    """Digest of the project's own package code: editing lib/digits/*.py reruns the notebooks."""
    return sha256_of(*sorted((project / "lib" / "digits").glob("*.py")))


def data_digest(data_dir: Path) -> str:
    """Digest of the data files the notebooks read."""
    return sha256_of(*(data_dir / name for name in ("train.csv", "test.csv", "test_labels.csv")))


# --- Choosing the run -------------------------------------------------------------------------


def make_context(step: str, use_parameters: bool) -> Context:
    """Check the parameters from the environment and pick the run the step works on."""
    given = parameters_from_environment()
    checked = check_parameters(**given)
    run = run_parameters(given)
    parameters = runs.resolved_parameters(run)
    project = project_root()
    data_dir = (project / checked.get("data_dir", "data")).absolute()
    models_dir = (project / checked.get("models_dir", "models")).absolute()
    context = Context(project, data_dir, models_dir, parameters, None, False)
    if step in ("data", "explore", "runs", "kaggle-data"):
        return context
    tag = data_tag(data_dir)
    if use_parameters or any(p.name in given for p in RUN_PARAMETERS):
        context.ensemble = run["ensemble"]
        context.run_dir = runs.run_dir_for(parameters, data_dir, models_dir, context.ensemble)
        return context
    for metrics in runs.finished_runs_and_ensembles(models_dir):
        run_dir = models_dir / metrics["run"]
        recorded = json.loads((run_dir / runs.RUN_FILE).read_text())["parameters"]
        ensemble = len(runs.members_of(run_dir)) if runs.is_ensemble(run_dir) else 1
        if runs.run_name(recorded, tag, ensemble) == run_dir.name:  # made on the data that DATA_DIR holds now
            return Context(project, data_dir, models_dir, recorded, run_dir, latest=True, ensemble=ensemble)
    raise StepError(f"no finished run in {shown(models_dir)} for the data in {shown(data_dir)}: `make all` trains "
                    f"one, or give parameters (for example `make {step} EPOCHS=15`)")


# --- Running a notebook -----------------------------------------------------------------------


def executed_inputs(path: Path) -> str | None:
    """The inputs digest recorded in an executed notebook, or None when it is missing or unreadable."""
    try:
        return nbformat.read(path, as_version=4).metadata.get("digits", {}).get("inputs")
    # A truncated or foreign file: the notebook must run again either way.
    except Exception:  # noqa: BLE001
        return None


def run_notebook(context: Context, name: str, target: Path, parameters: dict[str, Any], inputs: str) -> None:
    """Execute notebooks/<name>.ipynb with papermill into `target`, streaming its output; record `inputs`."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from digits.report import tidy_for_report

    source = context.project / "notebooks" / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target.parent)
    failed = target.with_name(f"_failed-{target.name}")
    print(f"==> running {shown(source)} -> {shown(target)}", flush=True)
    # The kernel imports this project's own lib/, even from an environment that several clones share.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(context.project / "lib"), os.environ.get("PYTHONPATH", "")])
    with atomic_path(target) as temporary:
        try:
            papermill.execute_notebook(
                source, temporary, parameters=parameters, kernel_name=KERNEL, cwd=source.parent,
                progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr,
            )
        except PapermillExecutionError as error:
            os.replace(temporary, failed)
            raise StepError(f"{shown(source)} failed: {error.ename}: {error.evalue} "
                            f"(the executed copy is {shown(failed)})") from None
        tidy_for_report(temporary)
        notebook = nbformat.read(temporary, as_version=4)
        notebook.metadata["digits"] = {"inputs": inputs}
        nbformat.write(notebook, temporary)
    failed.unlink(missing_ok=True)


# --- The steps --------------------------------------------------------------------------------


def step_data(context: Context) -> None:
    """Write train.csv, test.csv and test_labels.csv from the embedded MNIST, or check the files there."""
    remove_stale_partials(context.data_dir)
    summary = prepare_data(context.data_dir)
    verb = "checked" if summary["source"] == "existing files" else "wrote"
    print(f"{verb} {shown(context.data_dir / 'train.csv')} ({summary['train']:,} rows) and test.csv "
          f"({summary['test']:,} rows) [{summary['source']}]", flush=True)


def step_explore(context: Context) -> None:
    """Run 10-explore on the data, unless its executed copy is from the same inputs."""
    folder = context.models_dir / runs.EXPLORE_DIR
    target = folder / "10-explore.ipynb"
    inputs = _digest("explore", sha256_of(context.project / "notebooks" / "10-explore.ipynb"),
                     library_digest(context.project), data_digest(context.data_dir))
    if executed_inputs(target) == inputs:
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / runs.RUN_FILE, json.dumps({"run": runs.EXPLORE_DIR, "parameters": {}}) + "\n")
    run_notebook(context, "10-explore", target, {"data_dir": shown(context.data_dir)}, inputs)


def step_train(context: Context) -> None:
    """Train each run that is not finished (the run, or every member of the ensemble)."""
    members = context.members()
    for parameters, run_dir in members:
        _train_one_run(context, parameters, run_dir)
    if context.ensemble > 1:
        runs.start_run(context.run_dir, context.parameters, [run_dir for _, run_dir in members])


def _folders(context: Context) -> dict[str, str]:
    """The notebooks' data_dir and models_dir parameters: relative to the project when inside it."""
    return {"data_dir": shown(context.data_dir), "models_dir": shown(context.models_dir)}


def _train_one_run(context: Context, parameters: dict[str, Any], run_dir: Path) -> None:
    """Run 20-train unless the run is finished and its executed notebook is from the same inputs."""
    target = run_dir / runs.NOTEBOOKS_DIR / "20-train.ipynb"
    inputs = _digest("train", sha256_of(context.project / "notebooks" / "20-train.ipynb"),
                     library_digest(context.project), data_digest(context.data_dir), parameters)
    finished = runs.is_finished(run_dir)
    # The latest run is shown as it is: a bare `make report` never retrains, even after a code change.
    if finished and (executed_inputs(target) == inputs or (context.latest and target.is_file())):
        return
    runs.start_run(run_dir, parameters)
    for folder in (run_dir, run_dir / runs.CHECKPOINT_DIR):
        remove_stale_partials(folder)
    run_notebook(context, "20-train", target, {**parameters, **_folders(context)}, inputs)
    runs.check_finished(run_dir)


def _downstream_inputs(context: Context, step: str, notebook: str) -> str:
    """Inputs of a step that reads the trained models: notebook, code, data and the models themselves."""
    models = [member / "model.keras" for member in runs.members_of(context.run_dir)]
    return _digest(step, sha256_of(context.project / "notebooks" / f"{notebook}.ipynb"),
                   library_digest(context.project), data_digest(context.data_dir),
                   context.run_dir.name, sha256_of(*models))


def _require_finished(context: Context) -> None:
    """Stop with one line when a run is not finished or damaged (the training step comes first)."""
    try:
        runs.check_ready(context.run_dir)
    except ValueError as error:
        raise StepError(f"{error}: run `make train` (or `make all`) with the same parameters first") from None


def _downstream_parameters(context: Context) -> dict[str, Any]:
    """The papermill parameters of the evaluation and submission notebooks: the run's name and the folders."""
    return {"run": context.run_dir.name, **_folders(context)}


def step_evaluate(context: Context) -> None:
    """Run 30-evaluate unless evaluation.csv and the test accuracy are there from the same inputs."""
    _require_finished(context)
    target = context.run_dir / runs.NOTEBOOKS_DIR / "30-evaluate.ipynb"
    inputs = _downstream_inputs(context, "evaluate", "30-evaluate")
    try:
        scored = "test_accuracy" in runs.read_metrics(context.run_dir)
    except ValueError:
        scored = False
    if scored and (context.run_dir / "evaluation.csv").is_file() and executed_inputs(target) == inputs:
        return
    run_notebook(context, "30-evaluate", target, _downstream_parameters(context), inputs)


def step_submit(context: Context) -> None:
    """Run 40-submit unless a valid submission.csv is there from the same inputs."""
    _require_finished(context)
    target = context.run_dir / runs.NOTEBOOKS_DIR / "40-submit.ipynb"
    inputs = _downstream_inputs(context, "submit", "40-submit")
    try:
        read_submission(context.run_dir / "submission.csv")
        complete = True
    except ValueError:
        complete = False
    if complete and executed_inputs(target) == inputs:
        return
    run_notebook(context, "40-submit", target, _downstream_parameters(context), inputs)


def step_report(context: Context) -> None:
    """Render the report of the run (Quarto, or the self-contained fallback) unless it is up to date."""
    from digits.report import render_report

    _require_finished(context)
    entry = render_report(context.project / "report", context.run_dir,
                          context.models_dir / runs.EXPLORE_DIR / "10-explore.ipynb",
                          extra_inputs=library_digest(context.project))
    print(f"report: {shown(entry)} (run {context.run_dir.name})", flush=True)


def step_runs(context: Context) -> None:
    """Print the table of every kept run and write runs.csv."""
    runs.main(["table", "--models-dir", str(context.models_dir)])


def step_kaggle_data(context: Context) -> None:
    """Download the competition's files with the Kaggle command into DATA_DIR, checked before they land."""
    rows = competition.download_data(context.data_dir, os.environ.get("KAGGLE") or "kaggle")
    print(f"downloaded Kaggle's train.csv ({rows['train']:,} rows) and test.csv ({rows['test']:,} rows) "
          f"into {shown(context.data_dir)}", flush=True)


def step_kaggle_submit(context: Context) -> None:
    """Submit the run's submission.csv to the competition with the Kaggle command."""
    _require_finished(context)
    metrics = runs.read_metrics(context.run_dir)
    print(competition.submit(context.run_dir, metrics, os.environ.get("KAGGLE") or "kaggle"), flush=True)
    print(f"submitted {shown(context.run_dir / 'submission.csv')}: \"{competition.submission_message(metrics)}\"",
          flush=True)


STEP_FUNCTIONS: dict[str, Callable[[Context], None]] = {
    "data": step_data, "explore": step_explore, "train": step_train, "evaluate": step_evaluate,
    "submit": step_submit, "report": step_report, "runs": step_runs,
    "kaggle-data": step_kaggle_data, "kaggle-submit": step_kaggle_submit,
}


def main(argv: list[str] | None = None) -> int:
    """Run one step; any failure is one line on stderr and status 1 (2 for a bad parameter)."""
    parser = argparse.ArgumentParser(description="Run one step of the pipeline (parameters from the environment).")
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--use-parameters", action="store_true",
                        help="work on the run the parameters name (training it if needed), not the latest run")
    arguments = parser.parse_args(argv)
    try:
        context = make_context(arguments.step, arguments.use_parameters)
    except ValueError as error:
        print(f"error: bad parameter: {error}", file=sys.stderr)
        return 2
    except StepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        with exclusive_lock(context.project / LOCK_FILE):
            STEP_FUNCTIONS[arguments.step](context)
    except (StepError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        where = shown(error.filename) if error.filename else arguments.step
        print(f"error: {where}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to go on (training resumes after its last epoch)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
