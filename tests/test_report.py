"""Report preparation: what an executed notebook looks like once tidied for the report."""

from __future__ import annotations

import nbformat
from digits.report import HIDE_OPTION, tidy_for_report
from nbformat.v4 import new_code_cell, new_notebook, new_output

TENSORFLOW_NOTES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795721301.930697   11965 port.cc:153] oneDNN custom operations are on.\n"
)


def test_tidy_hides_parameters_and_drops_only_tensorflow_notes(tmp_path):
    notebook = new_notebook(cells=[
        new_code_cell("epochs: int = 3  # how long", metadata={"tags": ["parameters"]}),
        new_code_cell("# Parameters\nepochs = 1", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("import digits", outputs=[
            new_output("stream", name="stderr", text=TENSORFLOW_NOTES),
            new_output("stream", name="stderr", text="UserWarning: something worth reading\n"),
            new_output("stream", name="stdout", text="I0000 is fine on stdout\n"),
        ]),
    ])
    path = tmp_path / "run.ipynb"
    nbformat.write(notebook, path)
    tidy_for_report(path)
    tidy_for_report(path)  # idempotent
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].source == f"{HIDE_OPTION}\nepochs: int = 3  # how long"
    assert cells[1].source.startswith(HIDE_OPTION) and cells[1].source.count(HIDE_OPTION) == 1
    assert [output.text for output in cells[2].outputs] == [
        "UserWarning: something worth reading\n", "I0000 is fine on stdout\n"]
    assert not cells[2].source.startswith(HIDE_OPTION)
