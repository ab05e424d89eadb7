"""Trust, round two: what an attacker or a clumsy user tries ends in one clear line or the right answer; never a hang,
a silent wrong answer, a value that Make expands or runs, or a cache that changes an answer.

Each test runs the command as a user does, against real tools: Make itself, a Dask
scheduler without workers, an HTTP server and a raw socket listener where a scheduler
should be, Python's HTTP client against the served book. Commands that stop before
any work run in a plain copy of the project (`project`); those that need the
session's finished run work on a copy of it (`fresh_project`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import test_competition
from test_competition import calls, make_kaggle_data

from digits.parameters import PARAMETERS_LIST, quoted
from digits.util.files import read_checked_json
from helpers import (
    PROJECT_ROOT,
    QUICK,
    QUICK_RUN,
    clean_environment,
    copy_project,
    errors,
    reported,
    run_folder,
    run_make,
    trainings,
    wait_until,
    write_tiny_data,
)

pytestmark = pytest.mark.slow

CONNECT = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}  # Dask's own setting, shortened for the tests
fake_kaggle = test_competition.fake_kaggle  # the fixture of the stand-in for the kaggle command


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project as a clone has it, no run trained: for the commands that stop before any work."""
    return copy_project(tmp_path_factory.mktemp("trust") / "trust clone")


def make(project: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    """`make ARGUMENTS` exactly as typed (run_make adds VENV and QUARTO: here the test gives what it means to)."""
    return subprocess.run(["make", "--no-print-directory", *arguments], cwd=project, capture_output=True, text=True,
                          env=clean_environment(**environment), timeout=600, check=False)


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """True once something accepts connections on the port of 127.0.0.1."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- 1 and 2: a scheduler that does not answer, has no workers, or is exported ----------------------------


@contextmanager
def not_a_scheduler(kind: str) -> Iterator[str]:
    """Something that is not a Dask scheduler on 127.0.0.1: an HTTP server, or a listener that sends garbage."""
    if kind == "http":
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"tcp://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        connections = []

        def answer() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:  # closed: the test is over
                    return
                connections.append(connection)
                connection.sendall(bytes(range(256)) * 4)

        threading.Thread(target=answer, daemon=True).start()
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        for connection in connections:
            connection.close()


@contextmanager
def scheduler_without_workers(project: Path) -> Iterator[str]:
    """A real Dask scheduler on 127.0.0.1, in a process of its own, that no worker joins: its address."""
    port = free_port()
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], cwd=project, env=clean_environment(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: listening(port), timeout=120, what="the scheduler listening")
        yield f"tcp://127.0.0.1:{port}"
    finally:
        scheduler.terminate()
        scheduler.wait(30)


@pytest.mark.parametrize("kind, said", [
    ("http", "no Dask scheduler answered at {address} within 3 s (is it a scheduler?)"),
    ("garbage", "what answers at {address} is not a Dask scheduler: it sent what Dask cannot read"),
])
def test_a_sweep_where_no_scheduler_answers_says_so_quickly_and_frees_the_lock(kind, said, project):
    with not_a_scheduler(kind) as address:
        started = time.monotonic()
        result = run_make(project, "sweep", "SEED=5,6", f"DASK_SCHEDULER_ADDRESS={address}", timeout=120, **CONNECT)
        seconds = time.monotonic() - started
    assert result.returncode != 0
    assert result.stdout.splitlines()[0] == f"sweep: 2 runs: SEED 5, 6 on the Dask cluster at {address}"
    assert errors(result) == [f"error: {said.format(address=address)}"], result.stderr
    assert seconds < 60  # Dask's connect timeout and the start-up, not forever
    after = run_make(project, "runs", timeout=120)  # the lock is free: another command goes straight on
    assert after.returncode == 0 and "waiting:" not in after.stdout


def test_a_cluster_without_workers_is_waited_for_saying_so_then_given_up(project):
    with scheduler_without_workers(project) as address:
        result = run_make(project, "sweep", "SEED=5,6", f"DASK_SCHEDULER_ADDRESS={address}", timeout=120,
                          DASK_DIGITS__WORKER_WAIT="2s", **CONNECT)
    assert result.returncode != 0
    assert result.stdout.splitlines() == [f"sweep: 2 runs: SEED 5, 6 on the Dask cluster at {address}",
                                          f"waiting for a worker to join {address}: up to 2 s"]
    assert errors(result) == [(f"error: no worker joined {address} within 2 s: start one there with "
                              f"`dask worker {address}` (DASK_DIGITS__WORKER_WAIT=30min waits longer)")]


def test_an_exported_scheduler_address_is_used_and_said_and_the_command_line_wins(project):
    with scheduler_without_workers(project) as address:
        exported = run_make(project, "sweep", "SEED=5,6", timeout=120, DASK_SCHEDULER_ADDRESS=address,
                            DASK_DIGITS__WORKER_WAIT="1s", **CONNECT)
        typed = run_make(project, "sweep", "SEED=5,6", f"DASK_SCHEDULER_ADDRESS={address}", timeout=120,
                         DASK_SCHEDULER_ADDRESS="tcp://127.0.0.1:1", DASK_DIGITS__WORKER_WAIT="1s", **CONNECT)
    assert f"using DASK_SCHEDULER_ADDRESS={address} from the environment" in exported.stderr.splitlines()
    for result in (exported, typed):
        assert result.stdout.splitlines() == [f"sweep: 2 runs: SEED 5, 6 on the Dask cluster at {address}",
                                              f"waiting for a worker to join {address}: up to 1 s"]
    assert "from the environment" not in typed.stderr


# --- 3 and 4: every stored cache and output is checked before use -------------------------------------------


def zero_the_values(copy: Path) -> None:
    """Overwrite the data bytes of a .npy file with zeros, its header kept: it still loads."""
    with open(copy, "r+b") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        read_header(handle)
        handle.write(b"\0" * (copy.stat().st_size - handle.tell()))


def test_a_zeroed_parsed_copy_of_test_csv_is_named_and_parsed_again(fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    test_csv = fresh_project / "tiny data" / "test.csv"
    digest = hashlib.sha256(test_csv.read_bytes() + b"\0").hexdigest()
    (copy,) = (fresh_project / ".cache" / "parsed").glob(f"{digest[:32]}-784-*.npy")
    zero_the_values(copy)
    assert not np.load(copy).any()
    submission, accuracy = (run / "submission.csv").read_text(), json.loads((run / "metrics.json").read_text())
    for name in ("evaluation.csv", "submission.csv", "test_probabilities.npz"):  # evaluated and predicted again
        (run / name).unlink()
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f".cache/parsed/{copy.name}: the parsed copy of tiny data/test.csv is damaged: parsing test.csv again"
            in result.stdout.splitlines())
    assert (run / "submission.csv").read_text() == submission
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] == accuracy["test_accuracy"]


def flip_a_bit(path: Path) -> None:
    """One bit flipped inside the stored probabilities: the archive's checksum fails (BadZipFile)."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))


def change_a_value(path: Path) -> None:
    """A valid archive whose first image now says another digit, its stored digest kept."""
    with np.load(path) as stored:
        items = {name: stored[name] for name in stored.files}
    probabilities = items["probabilities"].copy()
    wrong = (probabilities[0].argmax() + 1) % 10
    probabilities[0] = 0
    probabilities[0, wrong] = 1
    np.savez(path, **{**items, "probabilities": probabilities})


@pytest.mark.parametrize("damage", [flip_a_bit, change_a_value])
def test_damaged_stored_probabilities_are_named_and_predicted_again(damage, fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    submission = (run / "submission.csv").read_text()
    damage(run / "test_probabilities.npz")
    (run / "submission.csv").unlink()
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f"models/{run.name}/test_probabilities.npz: damaged: predicting the test images again"
            in result.stdout.splitlines())
    assert (run / "submission.csv").read_text() == submission


def wrong_shape(cache: Path) -> None:
    """Valid JSON of the right format and digest, but entries of the wrong shape."""
    content = {"/somewhere/train.csv": {"stat": "not a stat", "passed": ["a list"]}}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    cache.write_text(json.dumps({"format": 2, "digest": digest, "content": content}))


def changed_digest_of_a_file(cache: Path) -> None:
    """A remembered file digest changed, the cache's own digest kept."""
    record = json.loads(cache.read_text())
    entry = next(entry for entry in record["content"].values() if "sha256" in entry)
    entry["sha256"] = "0" * 64
    cache.write_text(json.dumps(record))


def a_list(cache: Path) -> None:
    cache.write_text("[1, 2, 3]")


@pytest.mark.parametrize("damage", [wrong_shape, changed_digest_of_a_file, a_list])
def test_a_damaged_file_cache_is_named_and_rebuilt(damage, fresh_project):
    cache = fresh_project / ".cache" / "files.json"
    damage(cache)
    result = run_make(fresh_project, "all", *QUICK)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == ".cache/files.json: damaged: starting afresh"
    assert trainings(result.stdout) == 0 and "==> running" not in result.stdout
    assert read_checked_json(cache, 2)  # written again, whole


# --- 5: Make never expands or runs a value --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["$(shell touch {marker})", "`touch {marker}`", "$$(touch {marker})"])
def test_gpu_is_never_expanded_or_run_by_make(value, project, tmp_path):
    typed = value.format(marker=tmp_path / "made")
    result = make(project, "check", f"GPU={typed}")
    assert result.returncode != 0
    assert errors(result) == [f"error: bad parameter: gpu must be 1 or empty, got {quoted(typed)}"]
    assert not (tmp_path / "made").exists()


ODD = "v e;n:v $(shell touch MADE) `touch MADE` 'q' \"d\" $$HOME #x"


def test_a_venv_path_with_shell_and_make_syntax_works_as_typed(project, tmp_path):
    odd = tmp_path / ODD
    odd.symlink_to(sys.prefix)  # this test run's environment, under a name full of syntax
    before = set(os.listdir(project))
    for arguments in (["setup"], ["runs"]):
        result = make(project, *arguments, f"VENV={odd}")
        assert result.returncode == 0, result.stderr
    assert result.stdout == "no finished runs in models\n"
    assert os.listdir(tmp_path) == [ODD] and not list(project.rglob("MADE")) and not Path("MADE").exists()
    assert set(os.listdir(project)) - before <= {".cache", ".pipeline.lock"}


def test_exported_venv_and_gpu_are_used_and_said(project, tmp_path):
    odd = tmp_path / ODD
    odd.symlink_to(sys.prefix)
    result = make(project, "runs", VENV=str(odd))
    assert result.returncode == 0, result.stderr
    assert f"using VENV={odd} from the environment" in result.stderr.splitlines()
    result = make(project, "check", f"VENV={sys.prefix}", GPU="1")
    assert result.returncode == 0 and result.stderr.splitlines() == ["using GPU=1 from the environment"]
    result = make(project, "check", f"VENV={sys.prefix}", GPU="$(shell touch MADE)")
    assert errors(result) == [("error: bad parameter: gpu must be 1 or empty, got '$(shell touch MADE)' (from the "
                              "environment)")]
    assert not list(project.rglob("MADE"))


FAKE_PYTHON = '#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n'


def stand_in_environment(folder: Path, log: Path, editable_of: Path | None = None) -> Path:
    """An environment whose python only records what it is asked to run; with the editable install of a clone."""
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text(FAKE_PYTHON.format(log=log))
    (folder / "bin" / "python").chmod(0o755)
    if editable_of:
        installed = folder / "lib" / "python3.11" / "site-packages" / "digit_recognizer-1.0.0.dist-info"
        record = installed / "direct_url.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"dir_info": {"editable": True}, "url": editable_of.as_uri()}))
    return folder


def test_a_shared_environment_keeps_the_other_clones_editable_install(project, tmp_path):
    other = tmp_path / "other clone"
    other.mkdir()
    (other / "pyproject.toml").write_text("[project]\nname = 'digit-recognizer'\n")
    log = tmp_path / "calls.log"
    shared = stand_in_environment(tmp_path / "shared env", log, editable_of=other)
    result = make(project, "setup", f"VENV={shared}")
    assert result.returncode == 0, result.stderr
    assert (f"{shared} holds the editable install of another clone ({other}): left as it is (every command runs "
            "this clone's own lib/)") in result.stdout.splitlines()
    assert log.read_text().splitlines() == [f"-m pip install --quiet --require-hashes -r {project}/requirements.lock",
                                            "-m digits.pipeline.kernel install"]
    again = make(project, "setup", f"VENV={shared}")  # installed: its stamp says so
    assert again.returncode == 0 and again.stdout == "" and len(log.read_text().splitlines()) == 2
    own = stand_in_environment(tmp_path / "own env", tmp_path / "own.log")
    assert make(project, "setup", f"VENV={own}").returncode == 0
    assert f"-m pip install --quiet --no-deps -e {project}" in (tmp_path / "own.log").read_text().splitlines()


# --- 6: one line instead of a traceback --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book(project) -> Path:
    """A rendered book in the plain copy: what serve-report serves."""
    folder = project / "report" / "_book"
    (folder / "figures").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>the book</h1>")
    (folder / "figures" / "a.txt").write_text("in the book")
    return folder


def test_serve_report_on_a_port_in_use_is_one_line_naming_a_free_one(project, book):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_make(project, "serve-report", f"PORT={port}", timeout=120)
    assert result.returncode != 0 and len(errors(result)) == 1, result.stderr
    said = rf"error: port {port} on 127\.0\.0\.1 is in use: make serve-report PORT=(\d+)"
    found = re.fullmatch(said, errors(result)[0])
    assert found and int(found.group(1)) > port


@pytest.mark.parametrize("variable", ["DATA_DIR", "MODELS_DIR"])
def test_a_path_of_ten_thousand_characters_is_one_short_line(variable, project):
    value = ("d" * 99 + "/") * 100
    result = run_make(project, "all", f"{variable}={value}")
    assert result.returncode != 0
    assert errors(result) == [(f"error: bad parameter: {variable.lower()}: path too long: at most 4,096 characters, "
                              f"each name at most 255 bytes, got {quoted(value)}")]
    assert "(10,000 characters)" in errors(result)[0] and len(errors(result)[0]) < 200


# --- Minor cases ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:99999", "inproc://x", "tcp://127.0.0.1:0", "127.0.0.1:8786"])
def test_an_address_that_is_not_a_schedulers_is_refused(address, project):
    result = run_make(project, "sweep", "SEED=5,6", f"DASK_SCHEDULER_ADDRESS={address}")
    assert result.returncode != 0 and "sweep:" not in result.stdout
    assert errors(result) == [("error: bad parameter: dask_scheduler_address must be tcp://host:port or "
                              f"tls://host:port (a port from 1 to 65535), got '{address}'")]


def test_a_repeated_value_of_a_sweep_counts_once(project):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens: the sweep stops after its first line
    result = run_make(project, "sweep", "EPOCHS=1,1", f"DASK_SCHEDULER_ADDRESS={address}", timeout=120, **CONNECT)
    assert result.stdout.splitlines()[0] == f"sweep: 1 run (EPOCHS=1) on the Dask cluster at {address}"


def test_an_empty_item_of_a_sweep_is_refused_by_name(project):
    result = run_make(project, "sweep", "EPOCHS=1,,2")
    assert result.returncode != 0 and "sweep:" not in result.stdout
    assert errors(result) == ["error: bad parameter: epochs has an empty item (in EPOCHS=1,,2)"]


def test_every_exported_parameter_but_the_machines_is_ignored_with_a_note(project):
    exported = {p.variable: "1" for p in PARAMETERS_LIST if not p.from_environment}
    result = make(project, "runs", f"VENV={sys.prefix}", **exported)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {variable}=1 in the environment is ignored: give parameters on the make command line"
                     for variable in exported]
    assert {"WORKERS", "PORT", "QUARTO", "KAGGLE", "FORCE"} <= set(exported)
    assert not {"VENV", "GPU", "DASK_SCHEDULER_ADDRESS"} & set(exported)


def test_a_long_value_with_newlines_is_shown_short_and_on_one_line(project):
    value = "7\n" * 4999 + "77"  # 10,000 characters (Make drops a trailing newline)
    result = run_make(project, "all", f"EPOCHS={value}")
    said = f"error: bad parameter: epochs must be a whole number from 1 to 1000, got {quoted(value)}"
    assert errors(result) == [said]
    assert len(errors(result)[0]) < 200 and "(10,000 characters)" in errors(result)[0]
    result = run_make(project, "runs", SEED=value)
    assert (f"note: SEED={quoted(value)} in the environment is ignored: give parameters on the make command line"
            in result.stderr.splitlines())


def test_make_all_with_run_shows_that_kept_run_and_trains_nothing(fresh_project):
    run = run_folder(fresh_project, QUICK_RUN)
    before = sorted(path.name for path in (fresh_project / "models").iterdir())
    result = run_make(fresh_project, "all", f"RUN={run.name}", "DATA_DIR=tiny data")
    assert result.returncode == 0, result.stderr[-3000:]
    assert trainings(result.stdout) == 0 and reported(result, run)
    assert sorted(path.name for path in (fresh_project / "models").iterdir()) == before


def status(port: int, path: str) -> int | None:
    """The HTTP status of GET path on 127.0.0.1:port (None while nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError):
        return None


def test_serve_report_serves_only_the_books_own_files_and_lists_no_folder(project, book, tmp_path):
    (tmp_path / "secret.txt").write_text("private")
    (book / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (book / "outside").symlink_to(tmp_path, target_is_directory=True)
    port = free_port()
    server = subprocess.Popen(["make", "--no-print-directory", "serve-report", f"PORT={port}", f"VENV={sys.prefix}"],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env=clean_environment())
    try:
        wait_until(lambda: server.poll() is not None or status(port, "/") == 200, timeout=120, what="the book served")
        assert server.poll() is None
        assert status(port, "/figures/a.txt") == 200
        for path in ("/leak.txt", "/outside/secret.txt", "/outside/", "/figures/", "/../secret.txt", "/%2e%2e/x"):
            assert status(port, path) == 404, path
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C
        stdout, _ = server.communicate(timeout=60)
    assert "stopped serving the book" in stdout


def test_make_clean_removes_only_what_rendering_wrote(fresh_project):
    report = fresh_project / "report"
    (report / "notebooks" / "my-notes.ipynb").write_text("{}")
    (report / "_book" / "mine.txt").write_text("mine")
    edited = report / "notebooks" / "30-evaluate.ipynb"
    edited.write_text(edited.read_text() + "\n")
    result = make(fresh_project, "clean")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "kept report/_book/mine.txt: not written by rendering",
        "kept report/notebooks/30-evaluate.ipynb: changed since rendering wrote it",
        "kept report/notebooks/my-notes.ipynb: not written by rendering"]
    tracked = subprocess.run(["git", "ls-files", "report"], cwd=fresh_project, capture_output=True, text=True,
                             check=True).stdout.split()
    left = {path.relative_to(fresh_project).as_posix() for path in report.rglob("*") if not path.is_dir()}
    assert left == {*tracked, "report/_book/mine.txt", "report/notebooks/30-evaluate.ipynb",
                    "report/notebooks/my-notes.ipynb"}


def test_kaggle_data_replaces_files_only_with_force_and_says_what_it_removes(project, fake_kaggle, tmp_path, mnist):
    data = write_tiny_data(tmp_path / "data", mnist, n_train=20, n_test=5)
    before = {path.name: path.read_bytes() for path in data.iterdir()}
    result = make_kaggle_data(project, fake_kaggle, data)
    assert result.returncode != 0 and errors(result) == [
        (f"error: {data} already holds train.csv and test.csv: FORCE=1 replaces them with Kaggle's "
        "(or give another DATA_DIR)")]
    assert calls(fake_kaggle) == [] and {path.name: path.read_bytes() for path in data.iterdir()} == before
    result = make_kaggle_data(project, fake_kaggle, data, "FORCE=1")
    assert result.returncode == 0, result.stderr
    assert (f"removed {data}/test_labels.csv: it labels the embedded MNIST test images, and would score Kaggle's "
            "test.csv wrongly") in result.stdout.splitlines()
    assert sorted(path.name for path in data.iterdir()) == ["test.csv", "train.csv"]
    assert (data / "train.csv").read_bytes() != before["train.csv"]


def test_the_cluster_recipe_binds_the_scheduler_to_one_interface_and_warns():
    notes = (PROJECT_ROOT / "docs" / "trust-notes.md").read_text()
    started = re.findall(r"^.*\bdask scheduler\b.*$", notes, flags=re.MULTILINE)
    assert started and all("--host" in line and "0.0.0.0" not in line for line in started)
    assert "tls://" in notes and "Warning" in notes and "--host" in notes
