"""JupyterLab as a user finds it: notebooks run in place from notebooks/, git that sees only edits, `make lab`.

The notebooks are executed the way Lab executes them: in their own folder, with
the project's kernel, outputs saved into the same file. Lab's server itself is
started by `make lab` and asked over its REST API what it offers.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from digits.data import prepare_data
from helpers import clean_environment, commit_all, copy_project, reported, run_make, trainings

pytestmark = pytest.mark.slow

TINY_RUN = {"epochs": 1, "sample_size": 500, "batch_size": 64}


def git(project: Path, *arguments: str) -> str:
    """A git command's output in the project."""
    return subprocess.run(["git", *arguments], cwd=project, capture_output=True, text=True, check=True).stdout


def edit_parameters(path: Path, values: dict) -> None:
    """Change values in a notebook's parameters cell, as a user types them in Lab."""
    notebook = nbformat.read(path, as_version=4)
    (cell,) = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    for name, value in values.items():
        cell.source, count = re.subn(rf"^{name}: ([^=]+) = [^#]*#", f"{name}: \\1 = {value!r}  #", cell.source,
                                     flags=re.MULTILINE)
        assert count == 1, name
    nbformat.write(notebook, path)


def run_in_place(project: Path, name: str) -> nbformat.NotebookNode:
    """Run notebooks/<name>.ipynb top to bottom in its own folder with the project's kernel and save it, as Lab does."""
    path = project / "notebooks" / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name="digit-recognizer", timeout=600,
                            resources={"metadata": {"path": str(path.parent)}})
    # `make lab` starts Lab with the clone's lib/ first on the kernel's path, as this does.
    client.execute(env=clean_environment(PYTHONPATH=str(project / "lib")))
    # Lab saves the kernel's language_info and the current notebook format along with the outputs.
    notebook.metadata["language_info"] = {"name": "python", "version": sys.version.split()[0],
                                          "mimetype": "text/x-python", "file_extension": ".py"}
    nbformat.write(notebook, path)
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything a notebook's cells printed."""
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def lab_project(tmp_path_factory) -> Path:
    """A clone with the full MNIST data and `make setup` done (the nbstripout filter installed)."""
    project = copy_project(tmp_path_factory.mktemp("lab") / "lab clone")
    commit_all(project)
    result = run_make(project, "setup")
    assert result.returncode == 0, result.stderr
    assert "installed the nbstripout git filter" in result.stdout
    prepare_data(project / "data")
    return project


def test_a_run_trained_in_lab_is_picked_up_by_the_next_notebooks_and_by_make(lab_project):
    edit_parameters(lab_project / "notebooks" / "20-train.ipynb", TINY_RUN)
    trained = run_in_place(lab_project, "20-train")
    assert "training strided: 450 images" in printed(trained)
    run = lab_project / "models" / "strided-e1-s42-b64-n500"
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
    # The next notebooks, their parameters untouched ("" is the latest run on the data), take that run.
    evaluated = run_in_place(lab_project, "30-evaluate")
    assert f"{run.name}: test accuracy" in printed(evaluated) and "(a quick run, not a result)" in printed(evaluated)
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.3
    run_in_place(lab_project, "40-submit")
    assert (run / "submission.csv").is_file()
    # `make all` with the same values finds the same run and trains nothing.
    result = run_make(lab_project, "all", "EPOCHS=1", "SAMPLE_SIZE=500", "BATCH_SIZE=64")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert trainings(result.stdout) == 0 and f"reused {run.name} (trained " in result.stdout
    assert reported(result, run)
    # git sees the edited parameters and nothing else: no outputs, counts, kernel metadata or other notebooks.
    assert git(lab_project, "diff", "--name-only", "notebooks").splitlines() == ["notebooks/20-train.ipynb"]
    diff = git(lab_project, "diff", "--no-textconv", "notebooks")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 6, diff  # three parameter lines, each removed and added
    assert not re.search(r"outputs\": \[\s*\{|execution_count\": \d|image/png|language_info", diff)


def test_a_notebook_opened_and_saved_without_edits_shows_nothing_in_git(lab_project):
    path = lab_project / "notebooks" / "50-predict.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["language_info"] = {"name": "python", "version": sys.version.split()[0]}
    nbformat.write(notebook, path)
    assert git(lab_project, "diff", "--no-textconv", "notebooks/50-predict.ipynb") == ""
    # git's status compares file sizes first; once refreshed by `git add`, the notebook is unchanged.
    git(lab_project, "add", "notebooks/50-predict.ipynb")
    assert git(lab_project, "status", "--porcelain", "notebooks/50-predict.ipynb") == ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(url: str, body: dict | None = None) -> dict:
    """What Lab's REST API answers at `url` (a POST of `body` when given)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def kernel_answers(base: str, kernel_id: str, token: str) -> bool:
    """True once the kernel answers, over Lab's websocket, the request Lab sends first (kernel_info)."""
    import asyncio
    import uuid

    from tornado.websocket import websocket_connect

    async def ask() -> bool:
        connection = await websocket_connect(f"ws{base[4:]}/api/kernels/{kernel_id}/channels?token={token}"
                                             f"&session_id={uuid.uuid4().hex}")
        request = uuid.uuid4().hex
        connection.write_message(json.dumps({
            "header": {"msg_id": request, "msg_type": "kernel_info_request", "username": "",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell", "buffers": []}))
        try:
            while (message := await connection.read_message()) is not None:
                reply = json.loads(message)
                if reply.get("parent_header", {}).get("msg_id") == request and reply["msg_type"] == "kernel_info_reply":
                    return True
            return False
        finally:
            connection.close()

    return asyncio.run(asyncio.wait_for(ask(), 90))


# What `make lab` printed before it: noise that Lab's own defaults cause, none of it a real problem.
LAB_NOISE = ("Kernel is running over TCP", "websocket_ping_timeout", "is not trusted", "WARNING", "[W ", "[I ")


def test_make_lab_serves_the_project_root_with_only_the_projects_kernel_no_news_and_no_noise(lab_project):
    port = free_port()
    command = ["make", "--no-print-directory", "lab", f"PORT={port}", "BROWSER=no", f"VENV={sys.prefix}"]
    server = subprocess.Popen(command, cwd=lab_project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=clean_environment())
    try:
        token, seen = None, []
        deadline = time.monotonic() + 120
        while token is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            seen.append(line)
            found = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", line)
            token = found.group(1) if found else None
        assert token, "".join(seen)
        base = f"http://127.0.0.1:{port}"
        kernels = api(f"{base}/api/kernelspecs?token={token}")
        assert list(kernels["kernelspecs"]) == ["digit-recognizer"]
        assert kernels["kernelspecs"]["digit-recognizer"]["spec"]["display_name"] == "Python (digit-recognizer)"
        root = {item["name"] for item in api(f"{base}/api/contents?token={token}")["content"]}
        assert {"models", "report", "notebooks", "data", "README.md"} <= root
        settings = api(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        defaults = {name: value.get("default") for name, value in settings["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False  # the environment's override
        # A notebook opened as Lab opens it: its contents (with the kernel's language_info, so that the tab is not
        # marked modified when the kernel starts), then a session whose kernel starts and answers.
        notebook = api(f"{base}/api/contents/notebooks/10-explore.ipynb?token={token}")["content"]
        assert notebook["metadata"]["language_info"]["version"] == sys.version.split()[0]
        session = api(f"{base}/api/sessions?token={token}", {"path": "notebooks/10-explore.ipynb", "type": "notebook",
                                                           "name": "", "kernel": {"name": "digit-recognizer"}})
        assert kernel_answers(base, session["kernel"]["id"], token)
    finally:
        server.terminate()
        seen.append(server.communicate(timeout=60)[0])
    printed = "".join(seen)
    assert [noise for noise in LAB_NOISE if noise in printed] == [], printed
