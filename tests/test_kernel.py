"""The project's kernel: TensorFlow's start-up notes silenced at their source, real warnings kept; its install."""

from __future__ import annotations

import json
import subprocess
import sys

from digits.pipeline.kernel import DISPLAY_NAME, LAB_SETTINGS, install
from helpers import clean_environment

# What TensorFlow's C++ libraries print as they load; which of them depends on the processor.
START_UP_NOTES = ("oneDNN custom operations", "absl::InitializeLog", "cpu_feature_guard")


def import_tensorflow(quietly: bool) -> str:
    """What a fresh Python process prints on stderr importing TensorFlow (and warning once afterwards)."""
    code = ("from digits.pipeline.kernel import quiet_tensorflow_start_up; quiet_tensorflow_start_up()\n" if quietly else "")
    code += "import tensorflow, warnings\nwarnings.warn('a real warning after the import')\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=clean_environment(), check=True)
    return result.stderr


def test_tensorflow_prints_start_up_notes_unless_the_kernel_loads_it():
    assert any(note in import_tensorflow(quietly=False) for note in START_UP_NOTES)  # what there is to silence
    quiet = import_tensorflow(quietly=True)
    assert not any(note in quiet for note in START_UP_NOTES)
    assert "UserWarning: a real warning after the import" in quiet


def test_install_writes_the_kernel_and_labs_settings_into_the_environment(tmp_path):
    written = install(tmp_path)
    kernel = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "digit-recognizer" / "kernel.json").read_text())
    assert kernel["argv"] == [sys.executable, "-m", "digits.pipeline.kernel", "-f", "{connection_file}"]
    assert kernel["display_name"] == DISPLAY_NAME and kernel["env"]["TF_CPP_MIN_LOG_LEVEL"] == "2"
    settings = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(settings.read_text()) == LAB_SETTINGS and settings in written
