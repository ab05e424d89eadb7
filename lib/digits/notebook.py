"""Notebook: run a source notebook with papermill into a build copy, and tidy executed copies for the report.

An executed copy records a digest of its inputs (`metadata.digits.inputs`), so
the pipeline can tell it is up to date without running it again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum

from digits.display import shown
from digits.files import atomic_path, remove_stale_partials
from digits.kernel import KERNEL_NAME

PARAMETER_TAGS = {"parameters", "injected-parameters"}
HIDE_OPTION = "#| include: false"


class NotebookFailed(ValueError):
    """A notebook stopped with an error; the message names the notebook, the error and the executed copy."""


class LocalKernelManager(AsyncKernelManager):
    """Kernels reached over local sockets (IPC) rather than TCP: nothing on the network, and no warning about it."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt, except while shutting down: papermill stops a kernel only after its last cell, and a SIGINT
        then only makes the kernel log "KeyboardInterrupt caught in kernel"."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


def executed_inputs(path: Path) -> str | None:
    """The inputs digest recorded in an executed notebook, or None when it is missing or unreadable."""
    try:
        return nbformat.read(path, as_version=4).metadata.get("digits", {}).get("inputs")
    # A truncated or foreign file: the notebook must run again either way.
    except Exception:  # noqa: BLE001
        return None


def execute(source: Path, target: Path, parameters: dict[str, Any], inputs: str, project: Path) -> None:
    """Execute `source` with papermill into `target` (atomically), streaming its output; record `inputs`."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target.parent)
    failed = target.with_name(f"_failed-{target.name}")
    print(f"==> running {shown(source)} -> {shown(target)}", flush=True)
    # The kernel imports this project's own lib/, even from an environment that several clones share.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(project / "lib"), os.environ.get("PYTHONPATH", "")])
    with atomic_path(target) as temporary:
        try:
            papermill.execute_notebook(
                source, temporary, parameters=parameters, kernel_name=KERNEL_NAME, cwd=source.parent,
                progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr,
                kernel_manager_class=LocalKernelManager,
            )
        except PapermillExecutionError as error:
            os.replace(temporary, failed)
            raise NotebookFailed(f"{shown(source)} failed: {error.ename}: {error.evalue} "
                                 f"(the executed copy is {shown(failed)})") from None
        tidy_for_report(temporary)
        notebook = nbformat.read(temporary, as_version=4)
        notebook.metadata["digits"] = {"inputs": inputs}
        nbformat.write(notebook, temporary)
    failed.unlink(missing_ok=True)


def tidy_for_report(notebook_path: str | Path) -> None:
    """Prepare an executed notebook for the report, in place.

    The parameters and papermill's injected-parameters cells get `include: false`
    (the run's parameters are shown as a table instead).
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tagged = PARAMETER_TAGS & set(cell.metadata.get("tags", []))
        if tagged and not cell.source.startswith(HIDE_OPTION):
            cell.source = f"{HIDE_OPTION}\n{cell.source}"
    with atomic_path(notebook_path) as temporary:
        nbformat.write(notebook, temporary)
