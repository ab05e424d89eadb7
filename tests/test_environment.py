"""The locked environment: what `make setup` installed is exactly what the lock file says."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PINNED = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)(?: ; ([^\\]+))?", flags=re.MULTILINE)


def pins(lock: Path) -> dict[str, str]:
    """Package name -> pinned version, for the pins whose markers hold on this machine and Python."""
    found = {}
    for name, version, marker in PINNED.findall(lock.read_text()):
        if not marker.strip() or Marker(marker.strip()).evaluate({"extra": ""}):
            found[name.lower().replace("_", "-")] = version
    return found


def test_every_pin_has_hashes():
    for lock in ("requirements.lock", "requirements-gpu.lock"):
        text = (PROJECT_ROOT / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
        pinned = [block for block in blocks if PINNED.match(block)]
        assert len(pinned) > 50
        assert all("--hash=sha256:" in block for block in pinned), lock


@pytest.mark.skipif(not (Path(sys.prefix) / ".setup-cpu").is_file(),
                    reason="run with `make test`: the environment made by `make setup` (CPU) is checked")
def test_make_setup_installed_exactly_the_lock():
    expected = pins(PROJECT_ROOT / "requirements.lock")
    installed = {dist.metadata["Name"].lower().replace("_", "-"): dist.version for dist in metadata.distributions()}
    different = {name: (version, installed.get(name)) for name, version in expected.items()
                 if installed.get(name) != version}
    assert different == {}


def test_the_lock_covers_every_dependency_of_pyproject():
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]
    text = (PROJECT_ROOT / "requirements.lock").read_text().lower()
    for requirement in requirements:
        assert f"\n{requirement.name.lower()}==" in text, requirement.name


def test_the_conda_environment_installs_the_same_lock():
    environment = (PROJECT_ROOT / "environment.yml").read_text()
    assert "-r requirements.lock" in environment and "quarto" in environment
    python = re.search(r"python=(3\.\d+)", environment).group(1)
    import tomllib

    supported = SpecifierSet(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert supported.contains(python + ".0"), (python, supported)
