"""Compare: is run B better than run A? Answered on the same held-out images, against chance and against seeds.

Two runs scored on the same 10,000 test images (the validation images where the
test labels are not known) differ on the images one gets right and the other
wrong. McNemar's exact test asks whether that split is larger than chance: if
the runs were equally good, each such image would go either way with
probability one half (SciPy's binomial test on the two counts). A difference
can also be real and still no larger than what changing the seed alone does:
where the models folder holds several seeds of a recipe, their spread is the
yardstick. `make compare RUN=a,b` prints all of it; the report compares its
run with the kept run most like it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from digits.data import load_split, load_test, load_test_labels
from digits.parameters import PARAMETERS
from digits.runs import Run, records
from digits.runs.comparison import RECIPE

SIGNIFICANCE = 0.05  # the usual line between "larger than chance" and not


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """The two-sided p-value of McNemar's exact test on the images only A and only B get right."""
    total = a_only + b_only
    return 1.0 if total == 0 else float(binomtest(a_only, total, 0.5, alternative="two-sided").pvalue)


@dataclass
class Verdict:
    """Two runs side by side on the same held-out images."""

    names: tuple[str, str]
    differing: dict[str, tuple]  # parameter -> (A's value, B's value)
    scored_on: str  # "test" or "validation"
    accuracies: tuple[float, float]
    validation: tuple[float, float]
    a_only: int  # images A gets right and B wrong
    b_only: int  # images B gets right and A wrong
    p_value: float
    spreads: dict[str, tuple[float, int]]  # run -> (standard deviation over its recipe's seeds, how many seeds)
    disagreements: np.ndarray  # indices of the images on which their predictions differ

    @property
    def difference(self) -> float:
        """B's accuracy minus A's, in points."""
        return (self.accuracies[1] - self.accuracies[0]) * 100

    def sentence(self) -> str:
        """The answer in plain words: is the difference larger than chance, and than the spread between seeds?"""
        a, b = self.names
        better, worse = (b, a) if self.b_only > self.a_only else (a, b)
        gained = abs(self.b_only - self.a_only)
        if gained == 0:
            told = f"{a} and {b} get the same number of the {self.scored_on} images right"
        else:
            told = (f"{better} gets {gained} more of the {self.scored_on} images right than {worse} "
                    f"({abs(self.difference):.2f} points)")
        beyond_chance = self.p_value < SIGNIFICANCE
        words = [f"{told}. McNemar's exact test gives p = {self.p_value:.3g}: the difference is "
                 f"{'larger' if beyond_chance else 'no larger'} than chance."]
        if self.spreads:
            spread = max(sd for sd, _ in self.spreads.values()) * 100
            seeds = " and ".join(f"{n} seeds of {name}'s recipe" for name, (_, n) in self.spreads.items())
            beyond_seeds = abs(self.difference) > 2 * spread
            words.append(f"Seeds alone move the accuracy by {spread:.2f} points (standard deviation over {seeds}): "
                         f"the difference is {'larger' if beyond_seeds else 'no larger'} than twice that.")
        else:
            beyond_seeds = None
            words.append("How much seeds alone move the accuracy is not known here (no other seed of either recipe "
                         "is kept; `make sweep SEED=42,43,44` with the same parameters measures it).")
        if beyond_chance and beyond_seeds is not False and gained:
            words.append(f"So {better} is better" + (", beyond chance and the seeds." if beyond_seeds else
                                                     " beyond chance; whether beyond the seeds is not known."))
        else:
            words.append("So, on this evidence, neither is better than the other.")
        return " ".join(words)


def seed_spread(run_metrics: dict, kept: list[dict]) -> tuple[float, int] | None:
    """The standard deviation of the score over the kept runs of the same recipe and other seeds (with it)."""
    score = "test_accuracy" if run_metrics.get("test_accuracy") is not None else "val_accuracy"
    same = [m for m in kept if all(m.get(name) == run_metrics.get(name) for name in RECIPE)
            and m.get(score) is not None]
    seeds = {m["seed"]: m[score] for m in same}
    return (float(np.std(list(seeds.values()), ddof=1)), len(seeds)) if len(seeds) >= 2 else None


def verdict(metrics: tuple[dict, dict], labels: np.ndarray, probabilities: tuple[np.ndarray, np.ndarray],
            scored_on: str, kept: list[dict]) -> Verdict:
    """Compare two runs' predictions of the same labelled images."""
    predicted = [p.argmax(axis=1) for p in probabilities]
    right = [prediction == labels for prediction in predicted]
    a_only, b_only = int(np.sum(right[0] & ~right[1])), int(np.sum(right[1] & ~right[0]))
    spreads = {m["run"]: spread for m in metrics if (spread := seed_spread(m, kept))}
    differing = {PARAMETERS[name].variable: (metrics[0].get(name), metrics[1].get(name))
                 for name in [*RECIPE, "seed"] if json.dumps(metrics[0].get(name)) != json.dumps(metrics[1].get(name))}
    return Verdict((metrics[0]["run"], metrics[1]["run"]), differing, scored_on,
                   (float(right[0].mean()), float(right[1].mean())),
                   (metrics[0]["val_accuracy"], metrics[1]["val_accuracy"]), a_only, b_only,
                   mcnemar_exact(a_only, b_only), spreads, np.flatnonzero(predicted[0] != predicted[1]))


def held_out(a: Run, b: Run) -> tuple[str, np.ndarray, np.ndarray]:
    """The images both runs are scored on and their labels: the test images when their labels are known, else
    the validation images (which must then be the same for both)."""
    test_images = load_test(a.data_dir / "test.csv")
    labels = load_test_labels(a.data_dir, len(test_images))
    if labels is not None:
        return "test", test_images, labels
    if (a.sample_size, a.validation_fraction) != (b.sample_size, b.validation_fraction):
        raise ValueError(f"{a.name} and {b.name} were validated on different images and the test labels are not "
                         "known: there is nothing both were scored on")
    split = load_split(a.data_dir, a.sample_size, a.validation_fraction)
    return "validation", split.validation_images, split.validation_labels


def compare_runs(a: Run, b: Run, kept: list[dict], probabilities_of: Callable[[Run, np.ndarray, str], np.ndarray]
                 ) -> tuple[Verdict, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The verdict on two kept runs, with the held-out images, their labels and each run's answers; the
    probabilities come from `probabilities_of(run, images, scored_on)`."""
    if a.name == b.name:
        raise ValueError(f"compare a run with another one, not with itself ({a.name})")
    scored_on, images, labels = held_out(a, b)
    metrics = (records.read_metrics(a.folder), records.read_metrics(b.folder))
    probabilities = (probabilities_of(a, images, scored_on), probabilities_of(b, images, scored_on))
    answers = (probabilities[0].argmax(axis=1), probabilities[1].argmax(axis=1))
    return verdict(metrics, labels, probabilities, scored_on, kept), images, labels, answers
