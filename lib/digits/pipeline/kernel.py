"""Kernel: the project's Jupyter kernel, "Python (digit-recognizer)", and JupyterLab's settings in the environment.

    python -m digits.pipeline.kernel install          # make setup: the kernel and Lab's settings, in this environment
    python -m digits.pipeline.kernel -f CONNECTION    # what Jupyter runs to start the kernel

The kernel is IPython's, with one difference: TensorFlow's C++ libraries print
start-up notes straight to the process's standard error when they load, before
its logging reads TF_CPP_MIN_LOG_LEVEL, so the kernel loads them (on the first
`import tensorflow`) with that stream pointed at /dev/null, and no cell,
terminal or report shows the notes. Everything TensorFlow prints later (real
warnings) shows as usual.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import types
from pathlib import Path

KERNEL_NAME = "digit-recognizer"
DISPLAY_NAME = "Python (digit-recognizer)"
# Quieter TensorFlow logging (warnings and errors still show) in every process that starts from this kernel.
KERNEL_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# What TensorFlow (and oneDNN) read for how many threads to use.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
# JupyterLab, offline: no news toast asking to reach the internet, no update checks.
LAB_SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


class QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports TensorFlow, whenever something first imports it, with the process's standard error closed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        """TensorFlow's own spec, its loading wrapped; None for every other module."""
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            self.loader = spec.loader
            spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        """Run TensorFlow's __init__ (which loads its C++ libraries) with file descriptor 2 on /dev/null."""
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def share_of_cores(parts: int) -> int:
    """This machine's cores shared among `parts` (at least one each): a run's threads when `parts` runs train at once.

    A run's weights depend on how many threads trained it, so `make all` takes the same share as a sweep with the
    same WORKERS (all the cores unless WORKERS says otherwise): both train the very same runs.
    """
    return max(1, (os.cpu_count() or 1) // parts)


def kernel_environment(project: Path, threads: int = 0) -> dict[str, str]:
    """The environment of the project's kernels (the pipeline's and JupyterLab's): this clone's own lib/ first, even
    in an environment that several clones share; TensorFlow's logging quiet; and `threads` for TensorFlow when
    given (0: its own choice, all the cores)."""
    environment = {"PYTHONPATH": os.pathsep.join([str(project / "lib"), os.environ.get("PYTHONPATH", "")]),
                   **KERNEL_ENVIRONMENT}
    return environment | ({name: str(threads) for name in THREAD_VARIABLES} if threads else {})


def quiet_tensorflow_start_up() -> None:
    """From now on, the first import of TensorFlow in this process prints none of its C++ start-up notes."""
    os.environ.update({key: os.environ.get(key, value) for key, value in KERNEL_ENVIRONMENT.items()})
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())


def install(prefix: Path) -> list[Path]:
    """Install the kernel spec and Lab's settings into the environment at `prefix`; return the files written."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = {"argv": [sys.executable, "-m", "digits.pipeline.kernel", "-f", "{connection_file}"],
            "display_name": DISPLAY_NAME, "language": "python", "env": KERNEL_ENVIRONMENT,
            "metadata": {"debugger": True}}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
        kernel_dir = Path(KernelSpecManager().install_kernel_spec(folder, KERNEL_NAME, prefix=str(prefix)))
    settings = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(settings.read_text()) if settings.is_file() else {}
    settings.write_text(json.dumps({**existing, **LAB_SETTINGS}, indent=2) + "\n")
    return [kernel_dir / "kernel.json", settings]


def main() -> None:
    """`install`, or start the kernel (the arguments are ipykernel's)."""
    if sys.argv[1:] == ["install"]:
        for path in install(Path(sys.prefix)):
            print(f"installed {path}")
        return
    quiet_tensorflow_start_up()
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
