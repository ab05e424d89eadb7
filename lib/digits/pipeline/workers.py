"""Executor: runs trained by Dask workers, on this machine or on a cluster, several at a time.

A sweep's runs and an ensemble's members are independent folders, each with a
lock, so they go to Dask's distributed scheduler as they are: a local cluster of
WORKERS processes by default (each training one run at a time with its share of
the cores), or the cluster at DASK_SCHEDULER_ADDRESS. On the worker, a task is
the training step of `make all` for one run (digits.pipeline.steps.train_member): the
same folder, files and executed notebook, reused when finished, resumed from its
last epoch when it was interrupted.

A worker that dies in the middle of a run loses that run only: it is reported,
the others go on, and the next command resumes it from its checkpoint.

Connecting to a cluster is bounded as a whole, the connection and Dask's
handshake (distributed.comm.timeouts.connect, 30 s by default): what answers
otherwise, or nothing at all, is one line naming the address. A cluster without
workers is waited for, saying so, for at most digits.worker-wait (10 minutes;
DASK_DIGITS__WORKER_WAIT=30s sets it as any Dask setting).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digits.pipeline.kernel import share_of_cores
from digits.runs import Run

TOPIC = "digits-training"  # the workers' messages to the command that sent them work
WORKER_WAIT = "digits.worker-wait"  # our Dask setting: how long a cluster without workers is waited for
WORKER_WAIT_DEFAULT = "10 minutes"


def default_workers() -> int:
    """As many runs at once as the cores allow without slowing each other down: one per two cores."""
    return share_of_cores(2)


@dataclass
class Outcome:
    """What became of one run sent to a worker."""

    run: str
    trained: bool = False  # False when it was finished already (reused)
    where: str = ""  # the worker's host and address
    minutes: float = 0.0
    val_accuracy: float | None = None
    lost: str = ""  # why the run was lost ("" when it was not)


def train_task(project: str, data_dir: str, models_dir: str, given: dict[str, Any], threads: int,
               says_started: bool) -> dict:
    """On a worker: train one run as `make all` would (or find it finished); return what happened. With
    `says_started` (a worker of this machine, printing to the command's terminal) it says itself that the run
    started, before the run's own lines; else the command says so when the worker tells it."""
    from distributed import get_worker

    from digits import runs
    from digits.pipeline import steps
    from digits.pipeline.kernel import quiet_tensorflow_start_up
    from digits.pipeline.notebooks import SharedKernel
    from digits.runs import records
    from digits.util import files

    worker = get_worker()
    where = f"{socket.gethostname()} {worker.address}"
    os.environ["DIGITS_TRAINED_ON"] = where  # the kernel says in the run's metrics where it trained
    quiet_tensorflow_start_up()
    project_path = Path(project) if (Path(project) / "lib" / "digits").is_dir() else None
    run = runs.resolve({**given, "data_dir": data_dir, "models_dir": models_dir})
    if says_started:
        print(started_line(run.name, where), flush=True)
    else:
        worker.log_event(TOPIC, {"event": "started", "run": run.name, "where": where})
    started = time.perf_counter()
    kernel = SharedKernel(project_path or Path.cwd(), threads)  # this worker's share of the cores
    try:
        with files.exclusive_lock(runs.training_lock(run.folder), holder=f"another command training {run.name}"):
            trained = steps.train_member(project_path or Path.cwd(), run.data_dir, run, kernel, may_train=True)
    finally:
        kernel.close()
    metrics = records.read_metrics(run.folder)
    return {"run": run.name, "trained": trained, "where": where, "minutes": (time.perf_counter() - started) / 60,
            "val_accuracy": metrics["val_accuracy"]}


def started_line(name: str, where: str) -> str:
    """The line that says a run started on a worker."""
    return f"started  {name} on {where}"


def duration(seconds: float) -> str:
    """Seconds as people read them: `10 min`, `30 s`."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


async def _identity(address: str, seconds: float) -> dict:
    """What the server at `address` says it is, asked as Dask's own client asks a scheduler."""
    from distributed.comm import connect
    from distributed.security import Security

    comm = await connect(address, timeout=seconds, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()  # at once: closing politely waits on a peer that may never answer


def check_scheduler(address: str) -> None:
    """ValueError naming the address unless a Dask scheduler answers there within Dask's connect timeout (the
    connection and the handshake together: Dask bounds only the first)."""
    import dask
    from dask.utils import parse_timedelta

    seconds = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    try:
        identity = asyncio.run(asyncio.wait_for(_identity(address, seconds), seconds))
    except (asyncio.TimeoutError, TimeoutError, OSError):
        raise ValueError(f"no Dask scheduler answered at {address} within {duration(seconds)} "
                         "(is it a scheduler?)") from None
    except Exception:  # noqa: BLE001 (bytes Dask cannot read: whatever it raises, it is not a scheduler)
        identity = None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != "Scheduler":
        said = f"it is a Dask {str(kind)[:20]}" if kind else "it sent what Dask cannot read"
        raise ValueError(f"what answers at {address} is not a Dask scheduler: {said}")


def wait_for_a_worker(client: Any, address: str) -> None:
    """Wait, saying so, for a first worker to join the cluster; ValueError after digits.worker-wait."""
    import dask
    from dask.utils import parse_timedelta

    if client.scheduler_info().get("workers"):
        return
    seconds = parse_timedelta(dask.config.get(WORKER_WAIT, WORKER_WAIT_DEFAULT), default="seconds")
    print(f"waiting for a worker to join {address}: up to {duration(seconds)}", flush=True)
    try:
        client.wait_for_workers(1, timeout=seconds)
    except (asyncio.TimeoutError, TimeoutError):
        raise ValueError(f"no worker joined {address} within {duration(seconds)}: start one there with "
                         f"`dask worker {address}` (DASK_DIGITS__WORKER_WAIT=30min waits longer)") from None


class Executor:
    """Dask's client: a local cluster of `workers` processes, or the cluster at `address`."""

    def __init__(self, workers: int | None = None, address: str = ""):
        self.address = address
        self.workers = workers or default_workers()
        self.client = None
        self.cluster = None

    def __enter__(self) -> Executor:  # noqa: PYI034 (typing.Self is Python 3.11 and later)
        import dask
        from distributed import Client, LocalCluster

        if self.address:
            check_scheduler(self.address)
            self.client = Client(self.address)
            try:
                wait_for_a_worker(self.client, self.address)
            except BaseException:
                self.client.close()  # `with` does not exit what did not enter
                raise
        else:
            # A worker killed in the middle of a run loses that run: it is reported, not tried again elsewhere.
            dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.admin.tick.limit": "1h",
                             "distributed.worker.daemon": False, "logging.distributed": "error"})
            # No dashboard; the scheduler's own HTTP server (health checks) on a free port of 127.0.0.1, never
            # Dask's 8787, which another cluster may hold.
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, host="127.0.0.1",
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            self.client = Client(self.cluster)
        return self

    def __exit__(self, *exception: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def where(self) -> str:
        """Where the runs train: `on the Dask cluster at tcp://...` or `on this machine, 2 workers`."""
        if self.address:
            return f"on the Dask cluster at {self.address}"
        return f"on this machine, {self.workers} worker{'s' if self.workers != 1 else ''}"

    def threads_per_run(self) -> int:
        """Each worker's share of its machine's cores (0 on a cluster's machines: TensorFlow's own choice there)."""
        return share_of_cores(self.workers) if self.cluster is not None else 0

    def train(self, project: Path, data_dir: Path, models_dir: Path, members: Iterable[Run],
              say: Callable[[str], None] = print) -> list[Outcome]:
        """Train the runs on the workers, saying when each starts and ends; a lost run is an Outcome with `lost`."""
        from distributed import as_completed

        def started(event: tuple[float, dict]) -> None:
            message = event[1]
            if message.get("event") == "started":
                say(started_line(message["run"], message["where"]))

        self.client.subscribe_topic(TOPIC, started)
        futures = {}
        for run in members:
            future = self.client.submit(train_task, str(project), str(data_dir), str(models_dir),
                                        {**run.parameters, "ensemble": 1}, self.threads_per_run(),
                                        self.cluster is not None, key=f"train-{run.name}", pure=False, retries=0)
            futures[future] = run.name
        outcomes = []
        for future in as_completed(futures):
            name = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 (a worker's death, or the run's own error: either way reported)
                outcomes.append(Outcome(name, lost=_why(error)))
                say(f"lost     {name}: {_why(error)}")
                continue
            outcomes.append(Outcome(**result))
            verb = "finished" if result["trained"] else "kept    "
            say(f"{verb} {name}: validation accuracy {result['val_accuracy']:.2%}, {result['minutes']:.1f} min, "
                f"on {result['where']}")
        self.client.unsubscribe_topic(TOPIC)
        return outcomes


def _why(error: BaseException) -> str:
    """One line for a lost run."""
    name = type(error).__name__
    if name == "KilledWorker":
        return "its worker died in the middle of it (the next command resumes it from its last finished epoch)"
    return f"{name}: {str(error).splitlines()[0] if str(error) else ''}"
