"""Submission: write and validate Kaggle's `ImageId,Label` files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from digits.config import N_CLASSES
from digits.util.display import shown
from digits.util.files import atomic_path

HEADER = ["ImageId", "Label"]


class SubmissionError(ValueError):
    """A malformed submission; the message names the file and line."""


def write_submission(labels: np.ndarray, path: str | Path) -> Path:
    """Write predicted labels as `ImageId,Label` (ImageId 1..n in test.csv order), atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or labels.min() < 0 or labels.max() >= N_CLASSES:
        raise ValueError(f"{shown(path)}: labels must be a non-empty list of digits 0..9")
    path = Path(path)
    lines = [",".join(HEADER)] + [f"{image_id},{label}" for image_id, label in enumerate(labels.tolist(), start=1)]
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n")
    return path


def read_submission(path: str | Path, expected_rows: int | None = None) -> np.ndarray:
    """Validate an `ImageId,Label` file (header, ids 1..n, labels 0..9, row count) and return its labels."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{shown(path)}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise SubmissionError(f"{shown(path)}: file is empty (expected the header ImageId,Label)")
    if [cell.strip() for cell in rows[0]] != HEADER:
        raise SubmissionError(f"{shown(path)}, line 1: header must be ImageId,Label, found {','.join(rows[0])}")
    labels = []
    for line_number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise SubmissionError(f"{shown(path)}, line {line_number}: {len(row)} values, expected 2 (ImageId,Label)")
        image_id, label = (cell.strip() for cell in row)
        if image_id != str(line_number - 1):
            raise SubmissionError(f"{shown(path)}, line {line_number}: ImageId {image_id!r}, expected {line_number - 1}")
        if label not in {str(digit) for digit in range(N_CLASSES)}:
            raise SubmissionError(f"{shown(path)}, line {line_number}: Label {label!r} is not a digit 0..9")
        labels.append(int(label))
    if not labels:
        raise SubmissionError(f"{shown(path)}: header only, no predictions")
    if expected_rows is not None and len(labels) != expected_rows:
        raise SubmissionError(f"{shown(path)}: {len(labels)} predictions, expected {expected_rows} (one per test image)")
    return np.array(labels, dtype=np.int64)

