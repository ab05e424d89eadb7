"""Sweeps: a grid of runs trained by Dask workers on this machine or on a cluster, and what the report shows of it.

The runs are tiny (600 rows, one or two epochs); the cluster is a scheduler and
workers started as separate processes on 127.0.0.1, as on a real cluster.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from helpers import QUICK, clean_environment, errors, run_folder, run_make, wait_until

pytestmark = pytest.mark.slow

GRID = ("EPOCHS=1,2", "SEED=42,43", "BATCH_SIZE=64", "DATA_DIR=tiny data")
NAMES = [f"strided-e{epochs}-s{seed}-b64-d" for epochs in (1, 2) for seed in (42, 43)]


def weights(run: Path) -> list[np.ndarray]:
    """The trained weights of a run's model."""
    from digits.model import load_model

    return load_model(run / "model.keras").get_weights()


def test_a_grid_on_two_local_workers_makes_the_runs_make_all_makes(fresh_project, tmp_path):
    result = run_make(fresh_project, "sweep", *GRID, "WORKERS=2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "sweep: 4 runs: EPOCHS 1, 2 x SEED 42, 43 (BATCH_SIZE=64) on this machine, 2 workers"
    assert sum(line.startswith("started ") for line in lines) == 4
    assert sum(line.startswith(("finished ", "kept ")) for line in lines) == 4  # e1-s42 was the session's run
    assert all(any(line.startswith(f"{name}") for line in lines) for name in NAMES)  # the closing table
    for name in NAMES:
        run = run_folder(fresh_project, name)
        assert {"model.keras", "evaluation.csv", "submission.csv"} <= {path.name for path in run.iterdir()}
        assert (run / "notebooks" / "20-train.ipynb").is_file()
    assert re.search(r"^kept     strided-e1-s42-b64-d\w+: ", result.stdout, flags=re.MULTILINE)  # the session's run
    # Each run's lines follow the line that says it started; a quick run is said to be one once; "1 epoch".
    trained = [line.split()[1].rstrip(":") for line in lines if line.startswith("finished ")]
    for name in trained:
        started = lines.index(next(line for line in lines if line.startswith(f"started  {name} ")))
        assert lines.index(f"==> running notebooks/20-train.ipynb -> models/{name}/notebooks/20-train.ipynb") > started
    assert sum(line.startswith("This is a quick run, not a result") for line in lines) == len(trained) == 3
    assert "1 epochs" not in result.stdout and "Port 8787" not in result.stdout + result.stderr
    # The three runs it trained, one `make all` each with the same share of the cores (the weights depend on it).
    for name, (epochs, seed) in zip(NAMES[1:], ((1, 43), (2, 42), (2, 43)), strict=True):
        single = run_make(fresh_project, "all", f"EPOCHS={epochs}", f"SEED={seed}", "BATCH_SIZE=64",
                          "DATA_DIR=tiny data", "WORKERS=2", f"MODELS_DIR={tmp_path / 'one by one'}")
        assert single.returncode == 0, single.stdout[-2000:]
        swept, alone = run_folder(fresh_project, name), run_folder(tmp_path, name, "one by one")
        assert swept.name == alone.name
        assert json.loads((swept / "metrics.json").read_text())["threads"] == 1
        for left, right in zip(weights(swept), weights(alone), strict=True):
            np.testing.assert_array_equal(left, right)
    # Afterwards `make all` finds a swept run: nothing trains.
    result = run_make(fresh_project, "all", "EPOCHS=2", "SEED=43", "BATCH_SIZE=64", "DATA_DIR=tiny data")
    assert result.returncode == 0 and "training strided:" not in result.stdout


@pytest.mark.parametrize("grid, message", [
    (("EPOCHS=1,x",), "error: bad parameter: epochs must be a whole number from 1 to 1000, got 'x' (in EPOCHS=1,x)"),
    (("SEED=1,2", "ARCH=strided,nope"), "arch must be one of strided, wide, baseline, got 'nope'"),
    ((f"SEED={','.join(map(str, range(101)))}",), "101 runs is more than 100: give FORCE=1 to sweep them all"),
])
def test_a_bad_grid_stops_before_any_work(grid, message, fresh_project):
    before = sorted(path.name for path in (fresh_project / "models").iterdir())
    result = run_make(fresh_project, "sweep", *grid, "DATA_DIR=tiny data")
    assert result.returncode != 0 and len(errors(result)) == 1 and message in errors(result)[0], result.stderr
    assert "started" not in result.stdout
    assert sorted(path.name for path in (fresh_project / "models").iterdir()) == before


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def cluster(project: Path, workers: int):
    """A Dask scheduler and workers, each its own process on 127.0.0.1, as on a cluster's machines: (address,
    worker processes, their logs). A worker that dies is not replaced, and its run is not tried elsewhere."""
    port = free_port()
    environment = clean_environment(PYTHONPATH=str(project / "lib"), DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], cwd=project, env=environment,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logs = [project / f"worker-{index}.log" for index in range(workers)]
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                   "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                                  cwd=project, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
                 for log in logs]
    try:
        wait_until(lambda: sum("Starting established connection" in log.read_text() for log in logs) >= workers,
                   timeout=120, what=f"{workers} worker(s) connecting to the scheduler")
        yield f"tcp://127.0.0.1:{port}", processes, logs
    finally:
        for process in [*processes, scheduler]:
            process.terminate()
        for process in [*processes, scheduler]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:  # a worker without a nanny can hang while it closes: the test is over
                process.kill()
                process.wait(20)


def worker_address(log: Path) -> str:
    return re.search(r"Start worker at:\s+(tcp://\S+)", log.read_text()).group(1)


def test_a_local_cluster_starts_no_dashboard_and_takes_no_port_another_cluster_holds(capfd):
    from digits.pipeline.workers import Executor

    with socket.socket() as taken, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            taken.bind(("127.0.0.1", 8787))  # Dask's default dashboard port, held as another cluster would hold it
            taken.listen()
        except OSError:
            pass  # another program holds it already: the same case
        with Executor(1) as executor:
            assert executor.cluster.scheduler.http_server.port != 8787
            assert executor.client.run(lambda: 1) != {}  # its worker works
    assert [str(warning.message) for warning in caught] == []
    assert "8787" not in capfd.readouterr().err


def test_a_sweep_trains_on_the_workers_of_a_cluster(fresh_project):
    with cluster(fresh_project, 1) as (address, _, logs):
        result = run_make(fresh_project, "sweep", "SEED=5,6", *QUICK, f"DASK_SCHEDULER_ADDRESS={address}")
        where = worker_address(logs[0])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for seed in (5, 6):
        metrics = json.loads((run_folder(fresh_project, f"strided-e1-s{seed}-b64-d") / "metrics.json").read_text())
        assert metrics["trained_on"] == f"{socket.gethostname()} {where}"
        assert f"started  {metrics['run']} on {socket.gethostname()} {where}" in result.stdout


def test_a_killed_worker_loses_its_run_only_and_the_next_sweep_resumes_it(fresh_project):
    grid = ("SEED=7,8", "EPOCHS=40", "BATCH_SIZE=64", "DATA_DIR=tiny data")
    with cluster(fresh_project, 2) as (address, processes, logs):
        command = ["make", "--no-print-directory", "sweep", *grid, "QUARTO=no", f"DASK_SCHEDULER_ADDRESS={address}",
                   f"VENV={sys.prefix}"]
        sweeping = subprocess.Popen(command, cwd=fresh_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=clean_environment())
        started = _where_started("strided-e40-s7-b64-d", sweeping)
        # Kill its worker once an epoch or more is safely kept.
        wait_until(lambda: sweeping.poll() is not None
                   or list(fresh_project.glob("models/strided-e40-s7-b64-d*/checkpoint/state.json")),
                   timeout=300, what="a checkpoint of the long run")
        assert sweeping.poll() is None, sweeping.communicate()
        worker = next(process for process, log in zip(processes, logs, strict=True) if worker_address(log) in started)
        worker.send_signal(signal.SIGKILL)
        stdout, stderr = sweeping.communicate(timeout=600)
    victim = run_folder(fresh_project, "strided-e40-s7-b64-d")
    assert sweeping.returncode != 0
    assert f"lost     {victim.name}: its worker died in the middle of it" in stdout
    assert re.search(r"^finished strided-e40-s8-b64-d\w+: validation accuracy", stdout, flags=re.MULTILINE), stdout
    assert errors(subprocess.CompletedProcess([], 1, stdout, stderr))[-1].startswith("error: 1 of 2 run(s) lost")
    # The same command afterwards, here on this machine's workers, resumes the lost run after its last epoch.
    result = run_make(fresh_project, "sweep", *grid)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"resuming after epoch \d+ of 40", (victim / "notebooks" / "20-train.ipynb").read_text())


def _where_started(prefix: str, process: subprocess.Popen) -> str:
    """Read the sweep's output until it says where the run starting with `prefix` started; return that line."""
    while True:
        line = process.stdout.readline()
        assert line, "the sweep ended before it started the run"
        if line.startswith(f"started  {prefix}"):
            return line
