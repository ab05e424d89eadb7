"""Comparison: what a set of kept runs shows, whatever they are.

For each run parameter that varies, the runs that agree on everything else
(their seed aside) are set side by side: accuracy for each value of that
parameter, the seeds of a value pooled (mean, spread, lowest, highest), and the
training minutes. Runs of one recipe that differ in their seed alone give the
spread between seeds: how large a difference must be to mean anything. Quick
runs (trained on fewer images than the data has) are compared among themselves,
never with full runs. Where nothing compares, `why_nothing_compares` says why in
one sentence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from digits.parameters import PARAMETERS, RUN_PARAMETERS
from digits.util.display import percent

# What a run's recipe is made of, besides its seed (and an ensemble's size, which single runs do not have).
RECIPE = [p.name for p in RUN_PARAMETERS if p.name not in ("seed", "ensemble")]


@dataclass
class Comparison:
    """Runs that differ in one parameter: accuracy (seeds pooled) and minutes for each of its values."""

    parameter: str  # the parameter that varies, or "seed" for the spread between seeds of one recipe
    shared: dict[str, Any]  # what the runs have in common (their recipe but the parameter)
    quick: bool  # True for quick runs, compared only among themselves
    table: pd.DataFrame  # a row per value: runs, mean, sd, lowest, highest, minutes
    score: str = "test_accuracy"  # or "val_accuracy" where the test labels are not known
    runs: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """`epochs (strided, quick runs)`: the parameter and what sets these runs apart from others."""
        context = [str(self.shared[name]) for name in ("arch",) if name in self.shared]
        context += ["quick runs"] if self.quick else []
        return f"{self.parameter} ({', '.join(context)})" if context else self.parameter

    @property
    def header(self) -> list[str]:
        """The columns of its table as people read them."""
        return [self.parameter if self.parameter != "seed" else "seeds", "runs",
                "test" if self.score == "test_accuracy" else "validation", "sd (points)", "lowest", "highest",
                "minutes"]

    def rows(self) -> list[list[Any]]:
        """Its table as people read it: percentages, the spread in points, minutes."""
        return [[row[self.parameter] if self.parameter in row else f"{row['runs']} seeds", row["runs"],
                 percent(row["mean"]), "" if pd.isna(row["sd"]) else f"{row['sd'] * 100:.2f}",
                 percent(row["lowest"]), percent(row["highest"]), f"{row['minutes']:.1f}"]
                for row in self.table.to_dict("records")]


def _key(metrics: dict, names: list[str]) -> str:
    """The values of `names` in a run's metrics, as one comparable key."""
    return json.dumps([metrics.get(name) for name in names])


def is_quick(metrics: dict, rows_of_data: int) -> bool:
    """True for a run trained on fewer images than the data has."""
    return 0 < (metrics.get("sample_size") or 0) < rows_of_data


def _summary(group: list[dict], parameter: str, score: str) -> pd.DataFrame:
    """A row per value of `parameter`: how many runs, their mean, spread and extremes of `score`, and minutes."""
    frame = pd.DataFrame(group)
    values = frame[parameter].map(lambda value: json.dumps(value))
    grouped = frame.groupby(values, sort=False)
    table = pd.DataFrame({
        parameter: grouped[parameter].first(),
        "runs": grouped.size(),
        "mean": grouped[score].mean(),
        "sd": grouped[score].std(ddof=1),
        "lowest": grouped[score].min(),
        "highest": grouped[score].max(),
        "minutes": grouped["train_seconds"].mean() / 60,
    }).reset_index(drop=True)
    order = table[parameter].map(lambda value: (str(type(value)), value if value is not None else -1))
    return table.iloc[sorted(range(len(table)), key=lambda index: order.iloc[index])].reset_index(drop=True)


def comparisons(kept: list[dict], rows_of_data: int, parameters: list[str] | None = None) -> list[Comparison]:
    """Every comparison the kept single runs' metrics allow (or only along `parameters`), quick runs apart."""
    found = []
    for quick in (False, True):
        group = [metrics for metrics in kept if is_quick(metrics, rows_of_data) == quick]
        if len(group) < 2:
            continue
        score = "test_accuracy" if all(m.get("test_accuracy") is not None for m in group) else "val_accuracy"
        for parameter in [*(parameters or RECIPE), "seed"]:
            others = [name for name in RECIPE if name != parameter]
            sets: dict[str, list[dict]] = {}
            for metrics in group:
                sets.setdefault(_key(metrics, others), []).append(metrics)
            for members in sets.values():
                distinct = {_key(metrics, [parameter]) for metrics in members}
                if len(distinct) < 2 or (parameter == "seed" and len(members) < 2):
                    continue
                table = _summary(members, parameter if parameter != "seed" else "arch", score)
                shared = {name: members[0].get(name) for name in others}
                found.append(Comparison(parameter, shared, quick, table, score, [m["run"] for m in members]))
    return found


def why_nothing_compares(kept: list[dict], rows_of_data: int) -> str:
    """One sentence on why the kept runs allow no comparison (call it when `comparisons` found none)."""
    if len(kept) < 2:
        return ("Only one run is kept, so there is nothing to compare it with: train another with one parameter "
                "changed (`make all EPOCHS=30`), or the same recipe with other seeds (`make sweep SEED=42,43,44`).")
    groups = [[m for m in kept if is_quick(m, rows_of_data) == quick] for quick in (False, True)]
    pairs = [(a, b) for group in groups for index, a in enumerate(group) for b in group[index + 1:]]
    if not pairs:
        return ("The kept runs cannot be compared: quick runs (trained on a sample of the data) are compared only "
                "with quick runs, and full runs only with full runs, and neither kind has two runs.")
    def differing(pair: tuple[dict, dict]) -> list[str]:
        return [PARAMETERS[name].variable for name in RECIPE if pair[0].get(name) != pair[1].get(name)]
    closest = min(pairs, key=lambda pair: len(differing(pair)))
    return (f"The kept runs cannot be compared: no two of the same kind differ in one parameter alone (seeds "
            f"aside); the closest, {closest[0]['run']} and {closest[1]['run']}, differ in "
            f"{' and '.join(differing(closest))}. Change one parameter at a time (`make sweep EPOCHS=5,10,15`) "
            "to see what it does.")
