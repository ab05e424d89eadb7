"""Environment: the project's Python environment (VENV, GPU), checked, and installed only when it is out of date.

    python3 -m digits.pipeline.environment check     # make check: VENV, GPU and the parameters; installs nothing
    python3 -m digits.pipeline.environment install   # make setup: the same, then the environment if out of date

VENV and GPU are taken from make's command line, else from the environment (one
line says so), else their defaults; Make hands VENV to the recipes unexpanded
(DIGITS_VENV), so no value is ever part of Make's text or of a shell command,
and here they are only arguments. The environment keeps a stamp (.setup-cpu or
.setup-gpu) whose content is the digest of the lock file and pyproject.toml:
what is on disk decides, not modification times. An environment that another
clone's editable install already uses is left as it is: every command runs this
clone's own lib/ anyway. Runs with the system's python3 and the standard library
only, since it is what creates the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from digits.pipeline.commandline import check_command_line, using_line
from digits.util.files import write_text_atomic
from digits.util.paths import project_root

DISTRIBUTION = "digit_recognizer"  # the project's name in site-packages (pyproject.toml's, normalised)
GIT_FILTER_NOTE = "installed the nbstripout git filter: notebook outputs never reach a commit"


def lock_file(gpu: bool) -> str:
    """The lock file of the variant: TensorFlow with CUDA, or the CPU build."""
    return "requirements-gpu.lock" if gpu else "requirements.lock"


def stamp_path(venv: Path, gpu: bool) -> Path:
    """The stamp an installed variant keeps in its environment."""
    return venv / (".setup-gpu" if gpu else ".setup-cpu")


def inputs_digest(project: Path, gpu: bool) -> str:
    """SHA-256 of what the environment is installed from: the variant's lock file and pyproject.toml."""
    digest = hashlib.sha256()
    for name in (lock_file(gpu), "pyproject.toml"):
        digest.update(f"{name}\0".encode() + (project / name).read_bytes() + b"\0")
    return digest.hexdigest()


def up_to_date(venv: Path, gpu: bool, project: Path) -> bool:
    """True when the environment's stamp holds the digest of this project's lock file and pyproject.toml."""
    try:
        return stamp_path(venv, gpu).read_text(encoding="utf-8").strip() == inputs_digest(project, gpu)
    except (OSError, UnicodeDecodeError):
        return False


def write_stamp(venv: Path, gpu: bool, project: Path) -> None:
    """Record that the environment holds what this project's lock file and pyproject.toml say."""
    write_text_atomic(stamp_path(venv, gpu), inputs_digest(project, gpu) + "\n")


def editable_owner(venv: Path) -> Path | None:
    """The clone whose editable install of the project the environment holds, or None."""
    for record in sorted(venv.glob(f"lib/python3*/site-packages/{DISTRIBUTION}-*.dist-info/direct_url.json")):
        try:
            installed = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(installed, dict) and installed.get("dir_info", {}).get("editable"):
            return Path(unquote(urlparse(str(installed.get("url", ""))).path))
    return None


def run(*command: str | Path) -> None:
    """Run a command of the install (its own output shows); ValueError naming it when it fails."""
    result = subprocess.run([str(part) for part in command], check=False)
    if result.returncode != 0:
        shown = " ".join(str(part) for part in command[1:5])
        raise ValueError(f"`{shown} ...` failed (exit status {result.returncode}): the lines above say why")


def install(venv: Path, gpu: bool, project: Path) -> None:
    """Create the environment if needed and install the lock, this clone (unless another clone's editable install
    is there) and the project's kernel; then write the stamp."""
    if gpu and platform.system() != "Linux":
        raise ValueError("GPU=1 installs TensorFlow with CUDA, which exists for Linux only")
    lock = lock_file(gpu)
    print(f"setting up the environment in {venv} from {lock} (a few minutes the first time)", flush=True)
    python = venv / "bin" / "python"
    if not os.access(python, os.X_OK):
        run(sys.executable, "-m", "venv", venv)
    # The CPU and GPU builds of TensorFlow cannot share an environment: switching removes the other one first.
    if stamp_path(venv, not gpu).is_file():
        run(python, "-m", "pip", "uninstall", "--quiet", "--yes", "tensorflow", "tensorflow-cpu")
        stamp_path(venv, not gpu).unlink()
    run(python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", project / lock)
    owner = editable_owner(venv)
    if owner is not None and owner.resolve() != project.resolve() and (owner / "pyproject.toml").is_file():
        print(f"{venv} holds the editable install of another clone ({owner}): left as it is (every command "
              "runs this clone's own lib/)", flush=True)
    else:
        run(python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", project)
    run(python, "-m", "digits.pipeline.kernel", "install")
    write_stamp(venv, gpu, project)


def install_git_filter(venv: Path) -> None:
    """In a git clone without it, install nbstripout as the filter for notebooks (outputs never reach a commit)."""
    try:
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, check=False)
        if inside.returncode != 0 or subprocess.run(["git", "config", "--get", "filter.nbstripout.clean"],
                                                    capture_output=True, check=False).returncode == 0:
            return
        subprocess.run([str(venv / "bin" / "python"), "-m", "nbstripout", "--install"], check=True)
        subprocess.run(["git", "config", "filter.nbstripout.extrakeys", "metadata.language_info"], check=True)
    except (OSError, subprocess.CalledProcessError):
        return  # no git, or a repository that cannot be configured: notebooks are then committed as they are
    print(GIT_FILTER_NOTE, flush=True)


def main(arguments: list[str]) -> int:
    """`check` or `install`; one line and status 2 for a bad parameter, 1 for a failed install."""
    if arguments not in (["check"], ["install"]):
        print("usage: python3 -m digits.pipeline.environment check|install", file=sys.stderr)
        return 2
    try:
        options = check_command_line(os.environ)
    except ValueError as error:
        print(f"error: bad parameter: {error}", file=sys.stderr)
        return 2
    for name in ("venv", "gpu"):
        if name in options.from_environment:
            print(using_line(name, options.typed[name]), file=sys.stderr)
    venv, gpu, project = options["venv"], bool(options["gpu"]), project_root()
    if arguments == ["install"]:
        try:
            if not up_to_date(venv, gpu, project):
                install(venv, gpu, project)
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        install_git_filter(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
