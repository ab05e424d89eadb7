"""The chosen run, with real runs: what `make all` names, a sweep leaves alone and `make use` changes is the run
that the report, `make predict` and `make kaggle-submit` use and name in their first line; `make compare` on two
of them; a finished run reused in one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import binomtest

from helpers import copy_project, run_folder, run_make, write_tiny_data

pytestmark = pytest.mark.slow

DATA = "DATA_DIR=tiny data"


def chosen_name(project) -> str:
    return json.loads((project / "models" / "chosen.json").read_text())["run"]


def first_line(result) -> str:
    return result.stdout.splitlines()[0]


def test_the_chosen_run_from_make_all_through_a_sweep_to_predict_and_kaggle(tmp_path, mnist):
    project = copy_project(tmp_path / "a clone")
    write_tiny_data(project / "tiny data", mnist)
    for epochs, sample in ((1, 300), (2, 400)):  # two quick tries
        result = run_make(project, "all", f"EPOCHS={epochs}", f"SAMPLE_SIZE={sample}", DATA)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    first, second = run_folder(project, "strided-e1-s42-n300-d"), run_folder(project, "strided-e2-s42-n400-d")
    assert chosen_name(project) == second.name  # the run the last `make all` named

    sweep = run_make(project, "sweep", "EPOCHS=1,2", "SEED=1,2", "SAMPLE_SIZE=200", DATA)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert chosen_name(project) == second.name  # a sweep does not choose
    best = re.search(r"^best by validation accuracy: (\S+) \(.*\); `make use RUN=(\S+)`", sweep.stdout, re.MULTILINE)
    assert best and best.group(1) == best.group(2)
    swept = [run_folder(project, f"strided-e{e}-s{s}-n200-d") for e in (1, 2) for s in (1, 2)]
    accuracies = {folder.name: json.loads((folder / "metrics.json").read_text())["val_accuracy"] for folder in swept}
    assert accuracies[best.group(1)] == max(accuracies.values())

    report = run_make(project, "report", DATA)
    assert report.returncode == 0, report.stderr[-3000:]
    assert first_line(report).startswith(f"using {second.name}, a quick run: ")
    summary = (project / "report" / "_summary.md").read_text().replace("\\", "")
    sweep_part, _, every_part = summary.partition("Every kept run:")
    assert "The last sweep answers first (4 runs: EPOCHS 1, 2 x SEED 1, 2 (SAMPLE_SIZE=200))" in sweep_part
    assert "sample_size 400" not in sweep_part and "accuracy by `sample_size`" in every_part  # the tries apart
    assert re.search(r"\*\*epochs \(strided, quick runs\)\*\*: accuracy by `epochs`.*sample_size 200", every_part)
    assert f"Is this run better than {first.name}?" not in summary  # e1-n300 differs in two parameters

    use = run_make(project, "use", f"RUN={first.name}", DATA)
    assert use.returncode == 0 and first_line(use).startswith(f"chose {first.name} (a quick run, not a result)")
    images = tmp_path / "my digits"
    images.mkdir()
    Image.fromarray(255 - mnist["test_images"][0]).save(images / "seven.png")
    predict = run_make(project, "predict", f"IMAGES={images}", DATA)
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert first_line(predict).startswith(f"using {first.name}, a quick run: chosen with `make use`")
    kaggle = run_make(project, "kaggle-submit", DATA, "KAGGLE=/bin/false")
    assert kaggle.returncode != 0 and f"error: {first.name} is a quick run, not a result" in kaggle.stderr
    assert kaggle.stdout.startswith(f"using {first.name}, a quick run")

    compare = run_make(project, "compare", f"RUN={first.name},{second.name}", DATA)
    assert compare.returncode == 0, compare.stderr[-3000:]
    labels = pd.read_csv(project / "tiny data" / "test_labels.csv")["Label"].to_numpy()
    answers = [np.load(folder / "test_probabilities.npz")["probabilities"].argmax(axis=1) for folder in (first, second)]
    a_only = int(np.sum((answers[0] == labels) & (answers[1] != labels)))
    b_only = int(np.sum((answers[1] == labels) & (answers[0] != labels)))
    p_value = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    assert f"right only by A: {a_only}   right only by B: {b_only}   McNemar's exact test: p = {p_value:.3g}" \
        in compare.stdout
    assert "EPOCHS" in compare.stdout and "SAMPLE_SIZE" in compare.stdout  # the parameters that differ
    figure = project / "models" / f"compare-{first.name}-{second.name}.png"
    assert f"the {int(np.sum(answers[0] != answers[1]))} images on which they disagree" in compare.stdout
    assert Image.open(figure).size[0] > 200

    again = run_make(project, "all", "EPOCHS=2", "SAMPLE_SIZE=400", DATA)
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(rf"^reused {second.name} \(trained \d{{4}}-\d\d-\d\d, \d+\.\d min\): nothing to train$",
                     again.stdout, re.MULTILINE)
    assert chosen_name(project) == second.name
