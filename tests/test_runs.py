"""Run folders: names from the parameters, damage found before use, the runs table, cleaning, locking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from digits import runs
from digits.config import run_parameters
from digits.files import atomic_path, exclusive_lock, remove_stale_partials


def parameters(**given) -> dict:
    """Checked run parameters: the defaults with the given ones."""
    return run_parameters(given)


@pytest.mark.parametrize("given, name", [
    ({}, "strided-e15-s42"),
    ({"epochs": 15}, "strided-e15-s42"),  # the recipe's value, named the same
    ({"epochs": 30}, "strided-e30-s42"),
    ({"sample_size": 2000, "epochs": 1}, "strided-e1-s42-n2000"),
    ({"arch": "baseline"}, "baseline-e10-s42"),
    ({"batch_size": 64, "validation_fraction": 0.2}, "strided-e15-s42-b64-v0.2"),
    ({"augment": "off"}, "strided-e15-s42-augoff"),
    ({"arch": "baseline", "augment": "off"}, "baseline-e10-s42"),  # the baseline recipe has no augmentation
])
def test_run_names_come_from_the_parameters_that_define_the_run(given, name):
    assert runs.run_name(parameters(**given)) == name


def test_runs_on_other_data_carry_a_data_tag():
    assert runs.run_name(parameters(), "d1a2b3c") == "strided-e15-s42-d1a2b3c"


def make_finished_run(models_dir: Path, name: str, finished_at: str, val_accuracy: float, epochs: int = 2,
                      **extra) -> Path:
    """A run folder with the files a finished run has (a small but complete Keras archive)."""
    run_dir = models_dir / name
    run_dir.mkdir(parents=True)
    given = {"epochs": epochs, **{k: v for k, v in extra.items() if k in ("seed", "sample_size", "arch")}}
    extra = {k: v for k, v in extra.items() if k not in given}
    runs.start_run(run_dir, parameters(**given))
    with zipfile.ZipFile(run_dir / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * 4096)
    history = pd.DataFrame([{"epoch": e + 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0,
                             "val_accuracy": val_accuracy, "learning_rate": 0.001, "seconds": 2.0}
                            for e in range(epochs)])
    history.to_csv(run_dir / "history.csv", index=False)
    metrics = {**runs.resolved_parameters(parameters(**given)), "run": name, "val_accuracy": val_accuracy,
               "test_accuracy": extra.pop("test_accuracy", None), "train_seconds": 2.0 * epochs,
               "images_per_second": 100.0,
               "fingerprint": "abc", "finished_at": finished_at, **extra}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def damage_truncated_model(run_dir: Path) -> None:
    content = (run_dir / "model.keras").read_bytes()
    (run_dir / "model.keras").write_bytes(content[: len(content) // 2])


def damage_metrics(run_dir: Path) -> None:
    (run_dir / "metrics.json").write_text("{garbage")


def damage_history(run_dir: Path) -> None:
    (run_dir / "history.csv").unlink()


def damage_model_member(run_dir: Path) -> None:
    """A zip whose stored weights no longer match their checksum."""
    path = run_dir / "model.keras"
    content = bytearray(path.read_bytes())
    offset = content.find(b"\0" * 64)
    content[offset : offset + 8] = b"xxxxxxxx"
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("damage, named", [
    (damage_truncated_model, "model.keras"),
    (damage_model_member, "model.keras"),
    (damage_metrics, "metrics.json"),
    (damage_history, "history.csv"),
])
def test_a_damaged_run_is_found_and_the_file_named(damage, named, tmp_path):
    run_dir = make_finished_run(tmp_path, "strided-e2-s42", "2026-01-01T00:00:00+00:00", 0.9)
    assert runs.check_finished(run_dir)["run"] == "strided-e2-s42"
    damage(run_dir)
    with pytest.raises(ValueError, match=named):
        runs.check_finished(run_dir)
    assert not runs.is_finished(run_dir)
    assert runs.finished_runs(tmp_path) == []


def test_runs_table_lists_every_run_newest_first_with_the_differing_parameters(tmp_path):
    make_finished_run(tmp_path, "strided-e2-s42", "2026-01-01T00:00:00+00:00", 0.90, epochs=2)
    make_finished_run(tmp_path, "strided-e3-s42", "2026-01-03T00:00:00+00:00", 0.95, epochs=3)
    make_finished_run(tmp_path, "strided-e2-s7", "2026-01-02T00:00:00+00:00", 0.91, epochs=2, seed=7)
    table = runs.runs_table(tmp_path)
    assert table["run"].tolist() == ["strided-e3-s42", "strided-e2-s7", "strided-e2-s42"]
    assert list(table.columns) == ["run", "epochs", "seed", "val_accuracy", "test_accuracy", "train_minutes",
                                   "images_per_second", "finished_at"]
    assert table["epochs"].tolist() == [3, 2, 2] and table["seed"].tolist() == [42, 7, 42]
    assert runs.latest_run(tmp_path).name == "strided-e3-s42"


def test_make_runs_command_writes_runs_csv(tmp_path):
    make_finished_run(tmp_path / "my models", "strided-e2-s42", "2026-01-01T00:00:00+00:00", 0.9)
    result = subprocess.run([sys.executable, "-m", "digits.runs", "table", "--models-dir", str(tmp_path / "my models")],
                            capture_output=True, text=True, check=True)
    assert "strided-e2-s42" in result.stdout and "90.00%" in result.stdout
    assert pd.read_csv(tmp_path / "my models" / "runs.csv")["run"].tolist() == ["strided-e2-s42"]


def test_clean_removes_only_the_folders_the_project_made(tmp_path):
    models = tmp_path / "models"
    make_finished_run(models, "strided-e2-s42", "2026-01-01T00:00:00+00:00", 0.9)
    (models / "my notes").mkdir()
    (models / "my notes" / "keep.txt").write_text("mine")
    (models / "README.md").write_text("readme")
    outside = tmp_path / "unrelated"
    outside.mkdir()
    (models / "link").symlink_to(outside)
    (outside / runs.RUN_FILE).write_text("{}")  # even a link to a folder that looks like a run is left alone
    assert runs.clean(models) == ["strided-e2-s42"]
    assert sorted(path.name for path in models.iterdir()) == ["README.md", "link", "my notes"]
    assert (outside / runs.RUN_FILE).is_file()


def test_stale_partial_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.partial-{dead.stdout.strip()}.keras"
    stale.write_text("half")
    with atomic_path(tmp_path / "history.csv") as live:
        live.write_text("being written")
        removed = remove_stale_partials(tmp_path)
        assert removed == [stale] and live.is_file()
    assert not stale.exists()


def test_the_lock_makes_a_second_process_wait(tmp_path):
    lock = tmp_path / ".pipeline.lock"
    waiter = [sys.executable, "-c",
              "import sys, time; from pathlib import Path; from digits.files import exclusive_lock\n"
              "with exclusive_lock(Path(sys.argv[1])): print(f'got it {time.time()}', flush=True)", str(lock)]
    with exclusive_lock(lock):
        process = subprocess.Popen(waiter, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        released = time.time()
    output, _ = process.communicate(timeout=30)
    assert f"another pipeline run (pid {os.getpid()})" in output
    assert float(output.strip().splitlines()[-1].split()[-1]) >= released
