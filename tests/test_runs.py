"""Runs: worked out once from the parameters, found again by name or as the latest, listed, compared, cleaned."""

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
from digits.parameters import RUN_PARAMETERS, parse_parameters
from digits.runs import catalog, records, removal
from digits.util.files import atomic_path, exclusive_lock, remove_stale_partials
from helpers import PROJECT_ROOT, fake_finished_run, run_pipeline, write_tiny_data


def name_of(**given) -> str:
    """The run name of the given parameters (defaults for the rest) on the embedded MNIST."""
    checked = parse_parameters(**({p.name: p.default for p in RUN_PARAMETERS} | given))
    return runs.run_name(runs.resolved_values(checked), "", checked["ensemble"])


@pytest.mark.parametrize("given, name", [
    ({}, "strided-e15-s42"),
    ({"epochs": 15}, "strided-e15-s42"),  # the recipe's value, named the same
    ({"epochs": 30}, "strided-e30-s42"),
    ({"sample_size": 2000, "epochs": 1}, "strided-e1-s42-n2000"),
    ({"arch": "baseline"}, "baseline-e10-s42"),
    ({"arch": "wide"}, "wide-e15-s42"),
    ({"batch_size": 64, "validation_fraction": 0.2}, "strided-e15-s42-b64-v0.2"),
    ({"augment": "off"}, "strided-e15-s42-augoff"),
    ({"arch": "baseline", "augment": "off"}, "baseline-e10-s42"),  # the baseline recipe has no augmentation
    ({"ensemble": 5}, "strided-e15-s42-ens5"),
])
def test_run_names_come_from_the_parameters_that_define_the_run(given, name):
    assert name_of(**given) == name


@pytest.fixture
def tiny_data(tmp_path, mnist) -> Path:
    return write_tiny_data(tmp_path / "data", mnist, n_train=300, n_test=50)


def test_resolve_fills_the_recipe_names_the_run_and_places_it(tiny_data, tmp_path):
    run = runs.resolve({"arch": "baseline", "data_dir": tiny_data, "models_dir": tmp_path / "models"})
    assert (run.epochs, run.batch_size, run.augment, run.seed) == (10, 128, False, 42)
    assert run.name.startswith("baseline-e10-s42-d") and run.folder == tmp_path / "models" / run.name
    assert run.plan.learning_rate == 1e-3 and not run.plan.cosine_schedule and run.members == ()
    assert not run.folder.exists()  # working a run out writes nothing


def test_resolving_a_runs_own_parameters_gives_the_same_run(tiny_data, tmp_path):
    run = runs.resolve({"epochs": "3", "seed": "5", "ensemble": "2", "data_dir": tiny_data,
                        "models_dir": tmp_path / "models"})
    again = runs.resolve({**run.parameters, "data_dir": tiny_data, "models_dir": tmp_path / "models"})
    assert again == run
    assert [member.seed for member in run.members] == [5, 6] and run.name.endswith(f"ens2-{run.data_tag}")
    assert all(member.members == () and member.epochs == 3 for member in run.members)


def test_resolve_refuses_a_sample_larger_than_the_data(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="sample_size 400 is more than the 300 rows of .*train.csv"):
        runs.resolve({"sample_size": 400, "data_dir": tiny_data, "models_dir": tmp_path})
    assert runs.resolve({"sample_size": 300, "data_dir": tiny_data, "models_dir": tmp_path}).sample_size == 300


def test_a_kept_run_loads_as_the_run_that_made_it(tiny_data, tmp_path):
    run = runs.resolve({"epochs": 2, "ensemble": 3, "data_dir": tiny_data, "models_dir": tmp_path / "models"})
    runs.create_folder(run)
    assert runs.load(run.folder, tiny_data) == run
    assert json.loads((run.folder / "run.json").read_text())["made_by"] == "digit-recognizer"


def test_the_latest_run_is_the_newest_finished_one_on_the_same_data(tmp_path, mnist):
    older = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    newer = fake_finished_run(tmp_path, "2026-01-03T00:00:00+00:00", 0.9, epochs=3)
    data, models = tmp_path / "data", tmp_path / "models"
    assert catalog.latest(data, models) == newer
    assert catalog.find("", data, models) == newer and catalog.find(older.name, data, models) == older
    # A run made on other data is not the latest for this data, however new.
    other_data = write_tiny_data(tmp_path / "other data", mnist, n_train=20, n_test=5)
    other = fake_finished_run(tmp_path, "2026-02-01T00:00:00+00:00", 0.9, data_dir=other_data, epochs=4)
    assert catalog.latest(data, models) == newer and catalog.latest(other_data, models) == other
    write_tiny_data(data, mnist, n_train=30, n_test=5)  # the data changed: no run was made on it
    with pytest.raises(ValueError, match="no finished run in .*models for the data in .*data"):
        catalog.latest(data, models)


def test_a_damaged_run_is_not_found(tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    (run.folder / "history.csv").unlink()
    with pytest.raises(ValueError, match="history.csv: missing"):
        catalog.find(run.name, tmp_path / "data", tmp_path / "models")
    with pytest.raises(ValueError, match="no run 'nope' in"):
        catalog.find("nope", tmp_path / "data", tmp_path / "models")


@pytest.mark.parametrize("record, ours", [
    ({}, False),  # another tool's run.json
    ({"run": "exp1"}, False),
    ({"run": "exp1", "parameters": {"epochs": 2}}, False),  # its parameters name another run
    ({"run": "strided-e2-s42", "parameters": {"epochs": 2}}, False),  # without the project's mark
    ({"run": "exp1", "made_by": "digit-recognizer"}, True),
])
def test_only_folders_this_project_made_are_its_own(record, ours, tmp_path):
    name = record.get("run", "exp1")
    (tmp_path / name).mkdir()
    (tmp_path / name / "run.json").write_text(json.dumps(record))
    assert removal.made_by_this_project(tmp_path / name) is ours


def test_removing_runs_takes_only_the_folders_and_files_the_project_made(tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    noted = fake_finished_run(tmp_path, "2026-01-02T00:00:00+00:00", 0.9, epochs=3)
    (noted.folder / "NOTES.md").write_text("# kept for the talk\n")
    (noted.folder / "checkpoint").mkdir()
    (noted.folder / "checkpoint" / "my figure.png").write_bytes(b"png")
    models = tmp_path / "models"
    (models / "my notes").mkdir()
    (models / "my notes" / "keep.txt").write_text("mine")
    (models / "exp1").mkdir()
    (models / "exp1" / "run.json").write_text("{}")
    outside = tmp_path / "unrelated"
    outside.mkdir()
    (models / "link").symlink_to(outside)
    (outside / "run.json").write_text(json.dumps({"run": "link", "made_by": "digit-recognizer"}))
    assert removal.project_folders(models) == sorted([run.folder, noted.folder])
    assert removal.remove_run(run.folder) == [] and not run.folder.exists()
    assert removal.remove_run(noted.folder) == [noted.folder / "NOTES.md", noted.folder / "checkpoint" / "my figure.png"]
    assert sorted(path.name for path in noted.folder.rglob("*")) == ["NOTES.md", "checkpoint", "my figure.png"]
    assert sorted(path.name for path in models.iterdir()) == ["exp1", "link", "my notes", noted.name]
    assert (outside / "run.json").is_file()


def test_runs_table_lists_every_run_newest_first_rounded_with_quick_runs_marked(tmp_path):
    fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9012345678, epochs=2)
    fake_finished_run(tmp_path, "2026-01-03T00:00:00+00:00", 0.9951, epochs=3, test_accuracy=0.99612345)
    fake_finished_run(tmp_path, "2026-01-02T00:00:00+00:00", 0.91, epochs=2, seed=7)
    table = catalog.runs_table(tmp_path / "models", tmp_path / "data")
    assert [name.split("-d")[0] for name in table["run"]] == ["strided-e3-s42", "strided-e2-s7", "strided-e2-s42"]
    assert list(table.columns) == ["run", "epochs", "seed", "val_accuracy", "test_accuracy", "train_minutes",
                                   "images_per_second", "finished_at", "quick"]
    assert table["val_accuracy"].tolist() == [0.9951, 0.91, 0.9012]
    assert table["test_accuracy"].tolist()[0] == 0.9961
    assert table["quick"].tolist() == ["", "quick run", "quick run"]


def test_make_runs_writes_runs_csv_and_marks_quick_runs(tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    result = subprocess.run([sys.executable, "-m", "digits.pipeline", "runs", f"MODELS_DIR={tmp_path / 'models'}",
                             f"DATA_DIR={tmp_path / 'data'}"], capture_output=True, text=True, env=environment,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert run.name in result.stdout and "90.00%" in result.stdout and "quick run" in result.stdout
    assert pd.read_csv(tmp_path / "models" / "runs.csv")["run"].tolist() == [run.name]


# --- A run's records, checked ------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"val_accuracy": "high"}, "val_accuracy must be a number from 0 to 1, got 'high'"),
    ({"val_accuracy": 1.5}, "val_accuracy must be a number from 0 to 1, got 1.5"),
    ({"epochs": "2"}, "epochs must be a whole number above 0, got '2'"),
    ({"finished_at": 3}, "finished_at must be a date and time"),
    ({"test_accuracy": [1]}, "test_accuracy must be a number from 0 to 1, or null"),
    ({"train_seconds": None}, "train_seconds must be a number of seconds"),
])
def test_metrics_with_wrong_types_are_named_not_a_traceback(change, message, tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    metrics = json.loads((run.folder / "metrics.json").read_text()) | change
    (run.folder / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=f"metrics.json: {message}"):
        records.read_metrics(run.folder)
    assert catalog.runs_table(tmp_path / "models", tmp_path / "data").empty  # the table leaves it out
    result = run_pipeline(PROJECT_ROOT, "runs", f"MODELS_DIR={tmp_path / 'models'}", f"DATA_DIR={tmp_path / 'data'}")
    assert result.returncode == 0 and result.stderr == ""  # `make runs` says why, in one line
    assert result.stdout.splitlines()[0].startswith(f"left out, damaged: {run.folder / 'metrics.json'}: {message}")


def test_binary_metrics_are_named(tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    (run.folder / "metrics.json").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match=r"metrics.json: not text \(binary bytes\)"):
        records.read_metrics(run.folder)


@pytest.mark.parametrize("content, message", [
    (b"model,validation accuracy\nx,0.9\n", "expected the columns model, validation accuracy, test accuracy, epochs"),
    (b"model,validation accuracy,test accuracy,epochs\nx,high,0.9,1\n", "'validation accuracy' must hold numbers"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not text"),
])
def test_a_damaged_evaluation_is_named(content, message, tmp_path):
    (tmp_path / "evaluation.csv").write_bytes(content)
    with pytest.raises(ValueError, match=f"evaluation.csv: .*{message}"):
        records.read_evaluation(tmp_path / "evaluation.csv")


def damage_model_member(run_dir: Path) -> None:
    """A zip whose stored weights no longer match their checksum."""
    path = run_dir / "model.keras"
    content = bytearray(path.read_bytes())
    offset = content.find(b"\0" * 64)
    content[offset : offset + 8] = b"xxxxxxxx"
    path.write_bytes(bytes(content))


def truncate_model(run_dir: Path) -> None:
    content = (run_dir / "model.keras").read_bytes()
    (run_dir / "model.keras").write_bytes(content[: len(content) // 2])


@pytest.mark.parametrize("damage, named", [
    (truncate_model, "model.keras"),
    (damage_model_member, "model.keras"),
    (lambda run_dir: (run_dir / "metrics.json").write_text("{garbage"), "metrics.json"),
    (lambda run_dir: (run_dir / "history.csv").unlink(), "history.csv"),
    (lambda run_dir: (run_dir / "history.csv").write_text("epoch,loss\n1,x\n"), "history.csv"),
])
def test_a_damaged_run_is_found_and_the_file_named(damage, named, tmp_path):
    run = fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.9, epochs=2)
    assert records.check_finished(run.folder)["run"] == run.name
    damage(run.folder)
    with pytest.raises(ValueError, match=named):
        records.check_finished(run.folder)
    assert not records.is_finished(run.folder)
    assert catalog.kept_runs(tmp_path / "models", tmp_path / "data") == []


def test_a_model_archive_without_weights_is_not_a_model(tmp_path):
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="model.keras: not a Keras model file"):
        records.check_model_file(tmp_path / "model.keras")


# --- Files: leftovers of killed writes, the lock ------------------------------------------------------------


def test_stale_partial_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
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
              ("import sys, time; from pathlib import Path; from digits.util.files import exclusive_lock\n"
               "with exclusive_lock(Path(sys.argv[1])): print(f'got it {time.time()}', flush=True)"), str(lock)]
    with exclusive_lock(lock):
        process = subprocess.Popen(waiter, stdout=subprocess.PIPE, text=True)
        said = process.stdout.readline()  # the waiter's first line: it found the lock taken and waits
        released = time.time()
    output, _ = process.communicate(timeout=30)
    assert f"another pipeline run (pid {os.getpid()})" in said
    assert float(output.strip().splitlines()[-1].split()[-1]) >= released
