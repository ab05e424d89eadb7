"""Lab's contents: the files JupyterLab opens (make lab), as jupyter_server reads them, minus two false alarms.

Imported only by the Lab server (`--ServerApp.contents_manager_class`), never by the pipeline.

- A notebook without outputs has nothing in it to trust, so opening one (the
  project's notebooks are committed without outputs) logs no "Notebook ... is
  not trusted"; a notebook with outputs is checked, and warned about, as before.
- A notebook without `language_info` opens with the project kernel's, the one Lab
  would write into it when the kernel starts: the tab is not marked modified
  the moment it opens. Saving writes it into the file, and git's nbstripout
  filter keeps it out of commits.
"""

from __future__ import annotations

from typing import Any

from ipykernel.ipkernel import IPythonKernel
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager


class ProjectContentsManager(AsyncLargeFileManager):
    """jupyter_server's contents manager, quiet about notebooks with nothing to trust, and giving each notebook the
    kernel's language_info."""

    def mark_trusted_cells(self, nb: Any, path: str = "") -> None:
        """Trust a notebook without outputs silently (nothing in it runs or shows), check any other; give it the
        kernel's language_info where it has none."""
        nb.metadata.setdefault("language_info", dict(IPythonKernel.language_info))
        if any(cell.get("outputs") for cell in nb.cells):
            super().mark_trusted_cells(nb, path)
        else:
            self.notary.mark_cells(nb, True)
