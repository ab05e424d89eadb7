"""Steps: the pipeline's steps in their one order, each checking the files on disk before it does any work.

Each step does only what is missing or out of date: an executed notebook
records a digest of its inputs (parameters, data, notebook and library code),
and what is on disk decides, not a stamp. `digits.pipeline` is the command
line that runs them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digits import runs
from digits.data import prepare_data
from digits.parameters import RUN_PARAMETERS
from digits.pipeline import cleaning, notebooks
from digits.pipeline.commandline import Options
from digits.pipeline.kaggle import check_submission
from digits.pipeline.kernel import share_of_cores
from digits.runs import Run, catalog, records
from digits.util.display import shown
from digits.util.files import digest_of, remove_stale_partials


@dataclass
class Context:
    """What a command works on: the project, its parameters (parsed once), the folders, and (once chosen) the run."""

    project: Path
    options: Options
    data_dir: Path
    models_dir: Path
    train: bool  # True when the run may be trained (make all, make train); else a kept run is used as it is
    run: Run | None = None
    notebooks_ran: bool = False  # True once a notebook ran (the command did some work)
    explored: Path = field(init=False)
    kernel: notebooks.SharedKernel = field(init=False)  # one kernel for every notebook of the command
    # Trains several runs at once elsewhere (the workers of digits.pipeline.workers); True when any trained.
    train_elsewhere: Callable[[list[Run]], bool] | None = None

    def __post_init__(self) -> None:
        self.explored = self.models_dir / runs.EXPLORE_DIR / "10-explore.ipynb"
        # The share of the cores a run trains with here: all of them, unless WORKERS says otherwise.
        self.kernel = notebooks.SharedKernel(self.project, share_of_cores(self.options["workers"] or 1))


# --- Inputs and their digests -----------------------------------------------------------------------


def _digest(*parts: Any) -> str:
    """SHA-256 of JSON-encoded parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def notebook_digest(path: Path) -> str:
    """Digest of a source notebook's cells but its parameters cell: outputs and metadata that Lab saves do not count.

    Papermill sets every parameter, so a default edited in JupyterLab changes nothing the pipeline runs.
    """
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return _digest([(cell["cell_type"], "".join(cell["source"])) for cell in cells
                    if "parameters" not in cell.get("metadata", {}).get("tags", [])])


def library_digest(project: Path) -> str:
    """Digest of the project's own package code (and its browser side: scripts, styles): editing it reruns the
    notebooks and renders the report again."""
    package = project / "lib" / "digits"
    web = [path for path in package.rglob("web/**/*") if path.is_file()]
    return digest_of(*sorted(package.rglob("*.py")), *sorted(web))


def data_digest(data_dir: Path) -> str:
    """Digest of the data files the notebooks read."""
    return digest_of(*(data_dir / name for name in ("train.csv", "test.csv", "test_labels.csv")))


def _inputs(project: Path, data_dir: Path, step: str, notebook_name: str, *extra: Any) -> str:
    """Digest of a notebook step's inputs: the step, its notebook, the library, the data and anything else."""
    source = project / "notebooks" / f"{notebook_name}.ipynb"
    return _digest(step, notebook_digest(source), library_digest(project), data_digest(data_dir), *extra)


def _execute(context: Context, notebook_name: str, target: Path, parameters: dict[str, Any], inputs: str) -> None:
    """Run a source notebook into `target` with papermill."""
    context.notebooks_ran = True
    notebooks.execute(context.project / "notebooks" / f"{notebook_name}.ipynb", target, parameters, inputs,
                     context.kernel)


def _folders(context: Context) -> dict[str, str]:
    """The notebooks' data_dir and models_dir parameters: relative to the project when inside it."""
    return {"data_dir": shown(context.data_dir), "models_dir": shown(context.models_dir)}


# --- The steps --------------------------------------------------------------------------------------


def step_data(context: Context) -> None:
    """Write train.csv, test.csv and test_labels.csv from the embedded MNIST, or check the files there."""
    remove_stale_partials(context.data_dir)
    summary = prepare_data(context.data_dir)
    verb = "checked" if summary["source"] == "existing files" else "wrote"
    print(f"{verb} {shown(context.data_dir / 'train.csv')} ({summary['train']:,} rows) and test.csv "
          f"({summary['test']:,} rows) [{summary['source']}]", flush=True)


def step_explore(context: Context) -> None:
    """Run 10-explore on the data, unless its executed copy is from the same inputs."""
    inputs = _inputs(context.project, context.data_dir, "explore", "10-explore")
    if notebooks.executed_inputs(context.explored) == inputs:
        return
    runs.create_explore_folder(context.explored.parent)
    _execute(context, "10-explore", context.explored, {"data_dir": shown(context.data_dir)}, inputs)


def train_member(project: Path, data_dir: Path, member: Run, kernel: notebooks.SharedKernel, may_train: bool) -> bool:
    """Run 20-train for one run unless it is finished and its executed copy up to date; True when it ran.

    A kept run is shown as it is when it may not be trained (a bare `make report`): never retrained, even after
    a code change. This is also what a Dask worker does for each run of a sweep (digits.pipeline.workers).
    """
    target = member.folder / runs.NOTEBOOKS_DIR / "20-train.ipynb"
    inputs = _inputs(project, data_dir, "train", "20-train", runs.as_given(member))
    finished = records.is_finished(member.folder)
    if finished and (notebooks.executed_inputs(target) == inputs or (not may_train and target.is_file())):
        return False
    if not finished and not may_train:
        raise ValueError(f"{member.name} is not finished: `make all` with its parameters trains it")
    runs.create_folder(member)
    for folder in (member.folder, member.folder / runs.CHECKPOINT_DIR):
        remove_stale_partials(folder)
    # The command chooses the run itself (make all, make train); a sweep's worker chooses nothing.
    notebooks.execute(project / "notebooks" / "20-train.ipynb", target, {**runs.as_given(member), "choose": False},
                      inputs, kernel)
    records.check_finished(member.folder)
    return True


def step_train(context: Context) -> None:
    """Run 20-train for the run here, or for each member of an ensemble on the workers (digits.pipeline.workers)."""
    run = context.run
    if run.members and context.train and context.train_elsewhere:
        context.notebooks_ran |= context.train_elsewhere(list(run.members))
    else:
        for member in run.single_runs:
            trained = train_member(context.project, context.data_dir, member, context.kernel, context.train)
            context.notebooks_ran |= trained
            if not trained:
                print(records.reused_line(member.folder), flush=True)
    runs.create_folder(run)
    if context.train:
        catalog.choose(run, "the run the last `make all` or `make train` named")


def _downstream(context: Context, step: str, notebook_name: str) -> tuple[Path, str]:
    """The executed copy of a step that reads the trained models, and its inputs (the models among them)."""
    run = context.run
    runs.check_ready(run)
    models = digest_of(*(member.folder / "model.keras" for member in run.single_runs))
    return run.folder / runs.NOTEBOOKS_DIR / f"{notebook_name}.ipynb", _inputs(
        context.project, context.data_dir, step, notebook_name, run.name, models)


def step_evaluate(context: Context) -> None:
    """Run 30-evaluate unless evaluation.csv and the test accuracy are there, checked, from the same inputs."""
    target, inputs = _downstream(context, "evaluate", "30-evaluate")
    try:
        records.read_evaluation(context.run.folder / "evaluation.csv")
        scored = "test_accuracy" in records.read_metrics(context.run.folder)
    except ValueError as error:
        scored = False
        if (context.run.folder / "evaluation.csv").exists():
            print(f"{error}: evaluating again", flush=True)
    if scored and notebooks.executed_inputs(target) == inputs:
        return
    _execute(context, "30-evaluate", target, {"run": context.run.name, **_folders(context)}, inputs)


def step_submit(context: Context) -> None:
    """Run 40-submit unless a valid submission.csv (one row per test image) is there from the same inputs."""
    target, inputs = _downstream(context, "submit", "40-submit")
    submission = context.run.folder / "submission.csv"
    try:
        check_submission(submission, context.data_dir / "test.csv")
        complete = True
    except ValueError as error:
        complete = False
        if submission.exists():
            print(f"{error}: predicting the submission again", flush=True)
    if complete and notebooks.executed_inputs(target) == inputs:
        return
    _execute(context, "40-submit", target, {"run": context.run.name, **_folders(context)}, inputs)
    check_submission(submission, context.data_dir / "test.csv")


def step_report(context: Context) -> None:
    """Render the report of the run (Quarto, or the self-contained page) unless it is up to date."""
    from digits.report import tryit
    from digits.report.render import render_report

    run = context.run
    runs.check_ready(run)
    # An ensemble's training chapter is its first member's; evaluation and submission are the ensemble's own.
    trained_in = {"20-train": run.single_runs[0].folder}
    chapters = {step.notebook: (context.explored if step.name == "explore" else
                                trained_in.get(step.notebook, run.folder) / runs.NOTEBOOKS_DIR /
                                f"{step.notebook}.ipynb")
                for step in STEPS if step.notebook}
    quarto = context.options["quarto"]

    def write_model(run: Run, target: Path) -> None:
        """The Try it page's weights, written by the command's kernel when it runs (TensorFlow is loaded there)."""
        if not context.kernel.call("digits.report.tryit", "write_model_of", str(run.folder), str(run.data_dir),
                                   str(target)):
            tryit.write_model(run, target)

    with cleaning.recording(context.project / "report"):  # what `make clean` may remove later
        entry = render_report(context.project / "report", run, chapters, quarto_command(quarto),
                              extra_inputs=library_digest(context.project), write_model=write_model)
    print(f"report: {shown(entry)} (run {run.name})", flush=True)


def quarto_command(quarto: str) -> str | None:
    """The Quarto command to render with, or None for the self-contained page (QUARTO=no, or none installed)."""
    import shutil

    if quarto.strip().lower() in ("no", "none", "off"):
        return None
    found = shutil.which(quarto)
    if found is None:
        print(f"Quarto ({quarto!r}) is not installed: rendering the self-contained page instead", flush=True)
    return found


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: its name, the notebook it runs (its report chapter), and what it does."""

    name: str
    action: Callable[[Context], None]
    notebook: str = ""
    needs_run: bool = True


# The order of the pipeline, here and nowhere else: Make's targets, the report's chapters and the book follow it.
STEPS = (
    Step("data", step_data, needs_run=False),
    Step("explore", step_explore, "10-explore", needs_run=False),
    Step("train", step_train, "20-train"),
    Step("evaluate", step_evaluate, "30-evaluate"),
    Step("submit", step_submit, "40-submit"),
    Step("report", step_report),
)
STEP_NAMES = [step.name for step in STEPS]


def steps_for(command: str) -> list[Step]:
    """The steps a command runs, in order: all of them up to it, but exploration only for the whole book."""
    if command in ("all", "report"):
        return list(STEPS)
    if command == "notebooks":
        return [step for step in STEPS if step.notebook or step.name == "data"]
    last = STEP_NAMES.index(command)
    return [step for step in STEPS[:last + 1] if step.name in (command, "data") or step.needs_run]


# --- Choosing the run ------------------------------------------------------------------------------


def choose_run(context: Context, command: str) -> Run:
    """The run a command works on: the one RUN names, the one its parameters define (always for `all` and
    `train`), or the chosen run (digits.runs.catalog.chosen), which the command names and says why in a line."""
    named_by_parameters = [p.variable for p in RUN_PARAMETERS if context.options.given(p.name)]
    if context.options["run"] and named_by_parameters:
        raise ValueError(f"give RUN or run parameters ({', '.join(named_by_parameters)}), not both")
    if context.options["run"]:
        return catalog.find(context.options["run"], context.data_dir, context.models_dir)
    if context.train or named_by_parameters:
        return runs.resolve_parsed(context.options.run_values, context.data_dir, context.models_dir)
    choice = catalog.chosen(context.data_dir, context.models_dir)
    quick = ", a quick run" if records.is_quick(records.read_metrics(choice.run.folder)) else ""
    print(f"using {choice.run.name}{quick}: {choice.why}", flush=True)
    return choice.run
