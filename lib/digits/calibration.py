"""Calibration: one temperature that makes the probabilities mean what they say, and the confidence below which
the model says "unsure".

Label smoothing and augmentation leave the network's probabilities too low or
too high; one temperature T, fitted on the validation split (never the test
images), fixes most of that: each probability p becomes p^(1/T), renormalised
(the same as dividing the network's logits by T), so the most probable digit
never changes. The unsure threshold is also chosen on validation: the lowest
confidence at which the answers at or above it are still TARGET right.

Both are fitted once per run, where evaluation has the validation probabilities
(digits.evaluate), and kept in the run's calibration.json with a digest of what
they were made from; `read` checks that file before every use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from digits.runs import Run, records
from digits.util.display import shown
from digits.util.files import digest_of, write_text_atomic

FILE = records.CALIBRATION_FILE
FORMAT = 1  # changes whenever the file's meaning does: an older file is made again
TEMPERATURES = (0.05, 20.0)  # the range the temperature is searched in
TARGET = 0.999  # the answers at or above the unsure threshold were this often right on validation
ECE_BINS = 15  # equal-width bins of confidence for the expected calibration error
CURVE_BINS = 10  # and for the reliability diagram


@dataclass(frozen=True)
class Calibration:
    """A run's temperature and unsure threshold, and what they did on the validation images."""

    temperature: float
    threshold: float  # answers less confident than this (after the temperature) are "unsure"
    validation: dict  # images, ECE and negative log-likelihood before and after, coverage and accuracy answered


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities p as p^(1/T), renormalised: softmax(logits / T) for a softmax's output."""
    if not TEMPERATURES[0] <= temperature <= TEMPERATURES[1]:
        raise ValueError(f"temperature {temperature} is outside {TEMPERATURES[0]}..{TEMPERATURES[1]}")
    logs = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), np.finfo(np.float64).tiny)) / temperature
    scaled = np.exp(logs - logs.max(axis=-1, keepdims=True))
    return (scaled / scaled.sum(axis=-1, keepdims=True)).astype(np.asarray(probabilities).dtype)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean of -log p(true digit): what the temperature minimises."""
    chosen = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(chosen, np.finfo(np.float64).tiny)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the labels (fit it on validation only)."""
    if len(probabilities) != len(labels) or not len(labels):
        raise ValueError(f"{len(probabilities)} probability rows for {len(labels)} labels: need as many, at least one")
    found = minimize_scalar(lambda t: negative_log_likelihood(scale(probabilities, t), labels),
                            bounds=TEMPERATURES, method="bounded", options={"xatol": 1e-4})
    return float(found.x)


def _top(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's top-label confidence, and whether that label is right."""
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(labels)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: |accuracy - confidence| in equal-width bins of confidence, weighted by their images."""
    confidence, right = _top(probabilities, labels)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gaps = np.abs(np.bincount(which, right.astype(float), bins) - np.bincount(which, confidence, bins))
    return float(gaps.sum() / counts.sum())


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = CURVE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The reliability diagram's points (mean confidence, accuracy) of the non-empty bins (scikit-learn's curve)."""
    from sklearn.calibration import calibration_curve  # scikit-learn takes a second to load: only for the figure

    confidence, right = _top(probabilities, labels)
    accuracy, mean_confidence = calibration_curve(right, confidence, n_bins=bins, strategy="uniform")
    return mean_confidence, accuracy


def coverage_curve(probabilities: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """For each confidence, most confident first: the share of images answered at or above it and their accuracy."""
    confidence, right = _top(probabilities, labels)
    order = np.argsort(-confidence, kind="stable")
    answered = np.arange(1, len(order) + 1)
    return pd.DataFrame({"threshold": confidence[order], "coverage": answered / len(order),
                         "accuracy": np.cumsum(right[order]) / answered})


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray, target: float = TARGET) -> float:
    """The lowest confidence whose answers at or above it are at least `target` right (1.0 when none are)."""
    curve = coverage_curve(probabilities, labels)
    good = np.flatnonzero(curve["accuracy"].to_numpy() >= target)
    return float(curve["threshold"].iloc[good[-1]]) if len(good) else 1.0


def answered(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """The share of images answered (confidence at or above the threshold) and the accuracy of those answers."""
    confidence, right = _top(probabilities, labels)
    sure = confidence >= threshold
    return float(sure.mean()), float(right[sure].mean()) if sure.any() else float("nan")


def coverage_sentence(probabilities: np.ndarray, labels: np.ndarray, threshold: float, images: str) -> str:
    """What the threshold does on these (calibrated) probabilities, in a sentence."""
    coverage, accuracy = answered(probabilities, labels, threshold)
    confidence, right = _top(probabilities, labels)
    flagged = confidence < threshold
    if flagged.all():
        return (f"At the threshold chosen on validation (a confidence of {threshold:.2%}), the model answers none of "
                f"the {len(labels):,} {images} images: it is unsure of all of them.")
    said = (f"At the threshold chosen on validation (a confidence of {threshold:.2%}), the model answers "
            f"{coverage:.1%} of the {len(labels):,} {images} images, {accuracy:.2%} of them right")
    if not flagged.any():
        return said + "; it flags none as unsure."
    return (said + f"; it flags {flagged.mean():.1%} ({int(flagged.sum()):,}) as unsure, of which it would have read "
            f"{right[flagged].mean():.0%} right. Its {int((~right).sum())} mistakes: {int((~right & flagged).sum())} "
            "flagged, the rest answered.")


def fit(probabilities: np.ndarray, labels: np.ndarray) -> Calibration:
    """The temperature and the unsure threshold of validation probabilities, and what they do there."""
    temperature = fit_temperature(probabilities, labels)
    calibrated = scale(probabilities, temperature)
    threshold = choose_threshold(calibrated, labels)
    coverage, accuracy = answered(calibrated, labels, threshold)
    return Calibration(temperature, threshold, {
        "images": len(labels), "target": TARGET,
        "ece_before": expected_calibration_error(probabilities, labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "nll_before": negative_log_likelihood(probabilities, labels),
        "nll_after": negative_log_likelihood(calibrated, labels), "coverage": coverage, "accuracy": accuracy})


def verdict(probabilities: np.ndarray, threshold: float) -> str:
    """"" when the most likely digit is at or above the threshold, else "unsure: 4 or 9" (the two most likely)."""
    first, second = np.argsort(-np.asarray(probabilities), kind="stable")[:2]
    return "" if probabilities[first] >= threshold else f"unsure: {first} or {second}"


# --- Kept with the run --------------------------------------------------------------------------------


def source_of(run: Run) -> str:
    """What a run's calibration is made from: its models, train.csv and its validation split, and this format."""
    made_from = [digest_of(*(member.folder / "model.keras" for member in run.single_runs), run.data_dir / "train.csv"),
                 run.sample_size, run.validation_fraction, FORMAT]
    return hashlib.sha256(json.dumps(made_from).encode()).hexdigest()


def save(run: Run, calibration: Calibration) -> None:
    """Write the run's calibration.json atomically, with the digest of what it was made from."""
    record = {"format": FORMAT, "source": source_of(run), **asdict(calibration)}
    write_text_atomic(run.folder / FILE, json.dumps(record, indent=2) + "\n")


def read(run: Run) -> Calibration:
    """The run's calibration as kept; ValueError naming the file when it is missing, damaged or made from other
    models or data."""
    path = run.folder / FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{shown(path)}: {'missing' if isinstance(error, FileNotFoundError) else 'damaged'}") from None
    fields = isinstance(record, dict) and all(isinstance(record.get(key), (int, float)) and not isinstance(
        record.get(key), bool) for key in ("temperature", "threshold")) and isinstance(record.get("validation"), dict)
    if not fields or not TEMPERATURES[0] <= record["temperature"] <= TEMPERATURES[1] \
            or not 0 <= record["threshold"] <= 1 or record.get("format") != FORMAT:
        raise ValueError(f"{shown(path)}: damaged (not a calibration of this format)")
    if record.get("source") != source_of(run):
        raise ValueError(f"{shown(path)}: made from other models or data")
    return Calibration(float(record["temperature"]), float(record["threshold"]), record["validation"])
