"""Kept runs compared and chosen: what the runs show, is B better than A, the chosen run, one run removed, notes,
filters. These tests use runs that look finished (trained on nothing); test_choosing.py trains real ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from digits.compare import mcnemar_exact, seed_spread, verdict
from digits.report.comparisons import runs_shown_markdown
from digits.runs import catalog
from digits.runs.comparison import comparisons, why_nothing_compares
from helpers import PROJECT_ROOT, fake_finished_run, run_pipeline, write_tiny_data

# --- Is B better than A? ---------------------------------------------------------------------------------------


def test_mcnemar_on_a_hand_made_case():
    # 10 images only A gets right, 2 only B: under "equally good", 12 fair coin flips with 2 or fewer (or 10 or
    # more) heads, twice the tail 1 + 12 + 66 out of 4,096.
    assert mcnemar_exact(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096) == pytest.approx(0.0386, abs=1e-4)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0


def test_the_verdict_counts_the_images_each_gets_right_and_tests_them_as_scipy_does():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    answers = [np.where(rng.random(2000) < share, labels, (labels + 1) % 10) for share in (0.90, 0.93)]
    probabilities = tuple(np.eye(10)[answer] for answer in answers)
    metrics = ({"run": "a", "epochs": 15, "seed": 1, "val_accuracy": 0.9},
               {"run": "b", "epochs": 30, "seed": 1, "val_accuracy": 0.93})
    result = verdict(metrics, labels, probabilities, "test", [])
    right = [answer == labels for answer in answers]
    a_only, b_only = int((right[0] & ~right[1]).sum()), int((right[1] & ~right[0]).sum())
    assert (result.a_only, result.b_only) == (a_only, b_only)
    assert result.p_value == pytest.approx(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    assert result.differing == {"EPOCHS": (15, 30)}
    assert result.disagreements.tolist() == np.flatnonzero(answers[0] != answers[1]).tolist()
    assert result.p_value < 0.05 and "larger than chance" in result.sentence()
    assert "So b is better beyond chance; whether beyond the seeds is not known." in result.sentence()


def test_a_difference_within_the_seed_spread_is_not_called_better():
    kept = [{"run": f"r{seed}", "arch": "strided", "epochs": 15, "seed": seed, "test_accuracy": accuracy,
             "val_accuracy": accuracy} for seed, accuracy in ((1, 0.990), (2, 0.996), (3, 0.993))]
    assert seed_spread(kept[0], kept) == (pytest.approx(np.std([0.990, 0.996, 0.993], ddof=1)), 3)
    labels = np.zeros(1000, dtype=int)
    answers = [np.zeros(1000, dtype=int), np.zeros(1000, dtype=int)]
    answers[0][:30], answers[1][:5] = 1, 1  # B gets 25 more right: p tiny, but 2.5 points
    result = verdict((kept[0], kept[1]), labels, tuple(np.eye(10)[a] for a in answers), "test", kept)
    assert result.p_value < 1e-6 and result.spreads
    assert "no larger than twice that" not in result.sentence()  # 2.5 points beat twice a 0.3-point spread
    narrow = np.zeros(1000, dtype=int)
    narrow[:7] = 1  # A gets 7 wrong, B 5: 2 more right is within chance and within the seeds
    close = verdict((kept[0], kept[1]), labels, (np.eye(10)[narrow], np.eye(10)[answers[1]]), "test", kept)
    assert close.p_value > 0.05 and "neither is better than the other" in close.sentence()


# --- What the kept runs show -----------------------------------------------------------------------------------


@pytest.fixture
def sequence(tmp_path, mnist) -> Path:
    """Two quick tries (EPOCHS=2 and 3 on 400 images), then a sweep EPOCHS=1,2 SEED=1,2 on 200 images, and one
    full run: the models folder a user has after trying things."""
    data = write_tiny_data(tmp_path / "data", mnist, n_train=600, n_test=50)
    fake_finished_run(tmp_path, "2026-01-01T00:00:00+00:00", 0.80, 0.81, data, epochs=2, sample_size=400)
    fake_finished_run(tmp_path, "2026-01-02T00:00:00+00:00", 0.84, 0.85, data, epochs=3, sample_size=400)
    swept = [fake_finished_run(tmp_path, f"2026-01-03T00:0{index}:00+00:00", accuracy, accuracy, data,
                               epochs=epochs, seed=seed, sample_size=200)
             for index, (epochs, seed, accuracy) in enumerate([(1, 1, 0.70), (1, 2, 0.72), (2, 1, 0.78),
                                                                (2, 2, 0.80)])]
    catalog.record_sweep(tmp_path / "models", "4 runs: EPOCHS 1, 2 x SEED 1, 2 (SAMPLE_SIZE=200)",
                         ["epochs", "seed"],
                         [run.name for run in swept])
    fake_finished_run(tmp_path, "2026-01-04T00:00:00+00:00", 0.99, 0.99, data, epochs=1)
    return tmp_path


def test_quick_tries_a_sweep_and_a_full_run_each_compare_among_their_own_kind(sequence):
    kept = catalog.single_run_metrics(sequence / "models", sequence / "data")
    found = comparisons(kept, 600)
    epochs = [comparison for comparison in found if comparison.parameter == "epochs"]
    assert sorted((c.shared["sample_size"], c.table["epochs"].tolist(), c.table["runs"].tolist()) for c in epochs) == \
        [(200, [1, 2], [2, 2]), (400, [2, 3], [1, 1])]
    assert all(comparison.quick for comparison in found)  # the single full run has nothing of its kind
    sweep = next(c for c in epochs if c.shared["sample_size"] == 200)
    assert sweep.table["mean"].tolist() == pytest.approx([0.71, 0.79])
    assert sweep.table["sd"].tolist() == pytest.approx([np.std([0.70, 0.72], ddof=1), np.std([0.78, 0.80], ddof=1)])
    assert "sample_size" in {c.parameter for c in found}  # the quick tries against the sweep's 2 epochs


def test_the_report_shows_the_last_sweeps_answer_first_then_every_kept_run(sequence, tmp_path):
    run = catalog.latest(sequence / "data", sequence / "models")
    saved = {}
    markdown = runs_shown_markdown(run, lambda figure, name: saved.setdefault(name, figure)).replace("\\", "")
    sweep_part, _, every_part = markdown.partition("Every kept run:")
    assert "The last sweep answers first (4 runs: EPOCHS 1, 2 x SEED 1, 2 (SAMPLE_SIZE=200))" in sweep_part
    assert "| 1 | 2 | 71.00% |" in sweep_part and "| 2 | 2 | 79.00% |" in sweep_part
    assert "400" not in sweep_part  # the quick tries are not part of the sweep's answer
    assert "**epochs (strided, quick runs)**" in every_part and "sample_size 400" in every_part
    assert set(saved) == {"runs-sweep.png", "runs-compared.png"}


@pytest.mark.parametrize("tries, because", [
    ([{"epochs": 2}], "Only one run is kept"),
    ([{"epochs": 2}, {"epochs": 3, "arch": "wide"}], "differ in ARCH and EPOCHS"),
    ([{"epochs": 2}, {"epochs": 3, "sample_size": 300}], "neither kind has two runs"),
])
def test_where_nothing_compares_one_sentence_says_why(tries, because, tmp_path, mnist):
    data = write_tiny_data(tmp_path / "data", mnist, n_train=600, n_test=50)
    for index, parameters in enumerate(tries):
        fake_finished_run(tmp_path, f"2026-01-0{index + 1}T00:00:00+00:00", 0.9, 0.9, data, **parameters)
    kept = catalog.single_run_metrics(tmp_path / "models", data)
    assert comparisons(kept, 600) == []
    assert because in why_nothing_compares(kept, 600)
    run = catalog.latest(data, tmp_path / "models")
    shown = runs_shown_markdown(run, lambda figure, name: pytest.fail("no figure without a comparison"))
    assert because in shown.replace("\\", "")


# --- make runs, make use, make clean-models on kept runs ----------------------------------------------------------


def pipeline(root: Path, command: str, *arguments: str):
    return run_pipeline(PROJECT_ROOT, command, f"MODELS_DIR={root / 'models'}", f"DATA_DIR={root / 'data'}",
                        *arguments)


def table_runs(output: str) -> list[str]:
    """The run names of a printed runs table, in order."""
    return [line.split()[0] for line in output.splitlines() if line.strip().startswith("strided-")]


def test_make_runs_filters_with_the_sweep_grammar_sorts_and_shows_notes(sequence):
    runs_by_epochs = {2: [], 3: []}
    for run, _ in catalog.kept_runs(sequence / "models", sequence / "data"):
        runs_by_epochs.setdefault(run.epochs, []).append(run.name)
    noted = catalog.find(runs_by_epochs[3][0], sequence / "data", sequence / "models")
    (noted.folder / "NOTES.md").write_text("# longer training: does it pay?\nmore lines\n")
    result = pipeline(sequence, "runs", "EPOCHS=2,3")
    assert result.returncode == 0, result.stderr
    assert sorted(table_runs(result.stdout)) == sorted(runs_by_epochs[2] + runs_by_epochs[3])
    assert "longer training: does it pay?" in result.stdout and "more lines" not in result.stdout
    assert "note" in pd.read_csv(sequence / "models" / "runs.csv").columns
    ordered = pipeline(sequence, "runs", "SORT=val_accuracy")
    accuracies = pd.read_csv(sequence / "models" / "runs.csv")["val_accuracy"].tolist()
    assert accuracies == sorted(accuracies, reverse=True) and len(accuracies) == 7
    assert "sorted by val_accuracy" in ordered.stdout and "What the runs show:" in ordered.stdout
    assert pipeline(sequence, "runs", "ARCH=wide").stdout.startswith("no finished runs that match the parameters")
    wrong = pipeline(sequence, "runs", "SORT=loss")
    assert wrong.returncode != 0 and wrong.stderr.count("\n") == 1 and "sort must be one of" in wrong.stderr


def test_make_use_chooses_a_run_and_refuses_an_unknown_one(sequence):
    newest = catalog.latest(sequence / "data", sequence / "models")
    assert catalog.chosen(sequence / "data", sequence / "models").run == newest
    quick = next(run for run, _ in catalog.kept_runs(sequence / "models", sequence / "data") if run.sample_size)
    result = pipeline(sequence, "use", f"RUN={quick.name}")
    assert result.returncode == 0 and result.stdout.startswith(f"chose {quick.name} (a quick run, not a result)")
    choice = catalog.chosen(sequence / "data", sequence / "models")
    assert choice.run == quick and choice.why.startswith("chosen with `make use`")
    unknown = pipeline(sequence, "use", "RUN=nope")
    assert unknown.returncode != 0 and "no run 'nope'" in unknown.stderr
    assert catalog.chosen(sequence / "data", sequence / "models").run == quick
    pipeline(sequence, "clean-models", f"RUN={quick.name}")  # the chosen run is gone: the newest, and why
    fallback = catalog.chosen(sequence / "data", sequence / "models")
    assert fallback.run == newest and f"the chosen run {quick.name} is gone" in fallback.why


def test_clean_models_removes_one_run_or_all_keeping_notes_and_the_users_files(sequence):
    models = sequence / "models"
    names = sorted(path.name for path in models.iterdir() if path.is_dir())
    first, second = names[0], names[1]
    (models / first / "NOTES.md").write_text("kept for the talk\n")
    (models / "my plots").mkdir()
    (models / "my plots" / "a.png").write_bytes(b"png")
    pipeline(sequence, "runs")
    result = pipeline(sequence, "clean-models", f"RUN={second}")
    assert result.returncode == 0, result.stderr
    assert not (models / second).exists() and (models / first / "model.keras").is_file()
    assert (models / "runs.csv").is_file()  # one run removed: the folder's own files stay
    everything = pipeline(sequence, "clean-models")
    assert everything.returncode == 0, everything.stderr
    assert f"  {first}: kept NOTES.md, not made by this project" in everything.stdout
    assert sorted(path.name for path in models.rglob("*")) == sorted(["NOTES.md", "a.png", first, "my plots"])
    listed = pipeline(sequence, "runs")
    assert listed.stdout.startswith("no finished runs in")
    missing = pipeline(sequence, "clean-models", f"RUN={second}")
    assert missing.returncode != 0 and f"no run '{second}' made by this project" in missing.stderr


def test_a_sweep_record_that_is_not_the_projects_is_ignored(sequence):
    (sequence / "models" / "sweep.json").write_text(json.dumps({"grid": 3}))
    assert catalog.last_sweep(sequence / "models") is None
    run = catalog.latest(sequence / "data", sequence / "models")
    assert "The last sweep" not in runs_shown_markdown(run, lambda figure, name: None)
