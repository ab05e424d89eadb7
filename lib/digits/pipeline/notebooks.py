"""Notebook: run a source notebook with papermill into a build copy, and tidy executed copies for the report.

An executed copy records a digest of its inputs (`metadata.digits.inputs`), so
the pipeline can tell it is up to date without running it again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from traitlets import CaselessStrEnum, default

from digits.pipeline.kernel import KERNEL_NAME, kernel_environment
from digits.report.pages import tidy_for_report
from digits.util.display import shown
from digits.util.files import atomic_path, remove_stale_partials


class NotebookFailed(ValueError):
    """A notebook stopped with an error; the message names the notebook, the error and the executed copy."""


class LocalKernelManager(AsyncKernelManager):
    """Kernels reached over local sockets (IPC) rather than TCP: nothing on the network, and no warning about it."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        # The sockets live in a private temporary folder (never in the notebooks' folder), with a short path:
        # a Unix socket's path may not be longer than about a hundred characters.
        return str(Path(tempfile.mkdtemp(prefix="digits-kernel-")) / "kernel")

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt, except while shutting down: papermill stops a kernel only after its last cell, and a SIGINT
        then only makes the kernel log "KeyboardInterrupt caught in kernel"."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


def executed_inputs(path: Path) -> str | None:
    """The inputs digest recorded in an executed notebook, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))["metadata"]["digits"]["inputs"]
    # Missing, truncated or foreign (read as JSON, not through nbformat, which takes a second to import).
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


# Between two notebooks: an empty namespace and no open figures, as in a new kernel.
RESET = "get_ipython().run_line_magic('reset', '-f')\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')"


class SharedKernel:
    """One kernel for all the notebooks a command runs, its namespace emptied between them.

    Starting a kernel and importing TensorFlow take seconds; a fresh namespace is what makes a notebook
    independent of the one before, and `%reset` gives it without paying those seconds again.
    """

    def __init__(self, project: Path, threads: int = 0):
        self.project = project
        self.threads = threads  # TensorFlow's threads in the kernel (0: its own choice, all the cores)
        self.manager: LocalKernelManager | None = None
        self.used = False

    def ready(self) -> LocalKernelManager:
        """The started kernel, with an empty namespace."""
        if self.manager is None:
            os.environ.update(kernel_environment(self.project, self.threads))
            self.manager = LocalKernelManager(kernel_name=KERNEL_NAME)
            run_sync(self.manager.start_kernel)(cwd=str(self.project / "notebooks"))
        elif self.used:
            run_sync(self._run)(RESET)
        self.used = True
        return self.manager

    def call(self, module: str, function: str, *arguments: str) -> bool:
        """Call module.function(*arguments) in the kernel when one is running (its imports already paid): True;
        False when none is, so the caller does the work itself. The arguments are strings, passed as literals."""
        if self.manager is None or not run_sync(self.manager.is_alive)():
            return False
        run_sync(self._run)(f"import {module}\n{module}.{function}(*{list(arguments)!r})", f"{module}.{function}")
        return True

    async def _run(self, code: str, what: str = "the reset between notebooks") -> None:
        """Run code in the kernel, silently, and wait for it; NotebookFailed naming `what` if it fails."""
        client = self.manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            reply = await client.execute_interactive(code, silent=True, store_history=False, timeout=300)
            if reply["content"]["status"] != "ok":
                raise NotebookFailed(f"{what} failed in the kernel: {reply['content'].get('ename', '')}: "
                                     f"{reply['content'].get('evalue', '')}")
        finally:
            client.stop_channels()

    def close(self) -> None:
        """Stop the kernel, if one was started, and remove its sockets' folder."""
        if self.manager is not None:
            folder = Path(self.manager.ip).parent
            if run_sync(self.manager.is_alive)():
                # The notebooks are written: nothing in the kernel is left to save, so it is stopped at once.
                run_sync(self.manager.shutdown_kernel)(now=True)
            shutil.rmtree(folder, ignore_errors=True)
        self.manager = None


def execute(source: Path, target: Path, parameters: dict[str, Any], inputs: str, kernel: SharedKernel) -> None:
    """Execute `source` with papermill into `target` (atomically) in the shared kernel, streaming its output."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target.parent)
    failed = target.with_name(f"_failed-{target.name}")
    print(f"==> running {shown(source)} -> {shown(target)}", flush=True)
    with atomic_path(target) as temporary:
        try:
            executed = papermill.execute_notebook(
                source, temporary, parameters=parameters, kernel_name=KERNEL_NAME, cwd=source.parent,
                progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr, km=kernel.ready(),
            )
        except PapermillExecutionError as error:
            os.replace(temporary, failed)
            raise NotebookFailed(f"{shown(source)} failed: {error.ename}: {error.evalue} "
                                 f"(the executed copy is {shown(failed)})") from None
        tidy_for_report(executed)
        executed.metadata["digits"] = {"inputs": inputs}
        nbformat.write(executed, temporary)
    failed.unlink(missing_ok=True)
