"""Data: the data folder (train.csv and test.csv, from the embedded MNIST or Kaggle), images, and the split.

`make data` writes (or checks) the CSVs through `prepare_data`; the notebooks
load them as images through `load_train`, `load_test` and `load_split`. A file
is checked and parsed once per change (`csv_values`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from digits.config import IMAGE_SIDE, N_PIXELS, SPLIT_SEED
from digits.formats.csvfiles import TEST_COLUMNS, TRAIN_COLUMNS, DataError, read_pixels_csv, write_csv
from digits.formats.mnist import load_mnist
from digits.formats.submission import read_submission
from digits.parameters import parse_validation_fraction
from digits.util import files
from digits.util.display import shown
from digits.util.files import atomic_path, sha256_of, write_text_atomic
from digits.util.paths import project_root

PREPARED_STAMP = ".prepared.json"


# --- The data folder -------------------------------------------------------------------


def write_kaggle_csvs(data_dir: Path, raw_dir: Path | None = None) -> dict[str, int]:
    """Write train.csv, test.csv and test_labels.csv from the embedded MNIST; return row counts."""
    mnist = load_mnist(raw_dir)
    train_pixels = mnist["train_images"].reshape(-1, N_PIXELS)
    test_pixels = mnist["test_images"].reshape(-1, N_PIXELS)
    test_ids = np.arange(1, len(test_pixels) + 1)
    write_csv(data_dir / "train.csv", TRAIN_COLUMNS, np.column_stack([mnist["train_labels"], train_pixels]))
    write_csv(data_dir / "test.csv", TEST_COLUMNS, test_pixels)
    write_csv(data_dir / "test_labels.csv", ["ImageId", "Label"], np.column_stack([test_ids, mnist["test_labels"]]))
    return {"train": len(train_pixels), "test": len(test_pixels)}


def to_images(pixels: np.ndarray) -> np.ndarray:
    """Turn (n, 784) grey levels 0..255 into float32 images (n, 28, 28, 1) in [0, 1]."""
    images = pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1).astype(np.float32)
    images *= np.float32(1 / 255)
    return images


# --- Reading the CSV files, once per change ------------------------------------------------------
# One cache of what a CSV file holds, keyed by the file's content digest (digits.util.files.CACHE reads a file
# again only when its size, times or inode changed): its row count beside the digest, its checked values in
# this process, and a NumPy copy of them in the project's .cache/parsed/, named by the digests of the CSV and
# of the values, and checked against the second before it is used.
_IN_MEMORY: dict[tuple[str, int], np.ndarray] = {}


def _rows_check(columns: list[str]) -> str:
    """The name under which a file's row count is remembered."""
    return f"rows of a {len(columns)}-column Kaggle CSV"


def _values_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).data).hexdigest()[:32]


def _parsed_folder() -> Path | None:
    """The project's folder of parsed copies, or None outside a project."""
    try:
        return project_root() / ".cache" / "parsed"
    except ValueError:
        return None


def _load_parsed_copy(folder: Path, csv_digest: str, path: Path, columns: list[str]) -> np.ndarray | None:
    """The parsed copy of a CSV's contents if there is one whose values match the digest in its name."""
    for copy in sorted(folder.glob(f"{csv_digest[:32]}-{len(columns)}-*.npy")):
        try:
            values = np.load(copy, allow_pickle=False)
        except (OSError, ValueError):
            values = None
        if (values is not None and values.dtype == np.uint8 and values.shape[1:] == (len(columns),)
                and copy.stem.rsplit("-", 1)[1] == _values_digest(values)):
            return values
        print(f"{shown(copy)}: the parsed copy of {shown(path)} is damaged: parsing {path.name} again", flush=True)
        copy.unlink(missing_ok=True)
    return None


def _keep_parsed_copy(folder: Path, csv_digest: str, values: np.ndarray) -> None:
    """Write the checked values as the file's copy, replacing the copies of the file's earlier contents."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / f"{csv_digest[:32]}-{values.shape[1]}-{_values_digest(values)}.npy"
        with atomic_path(copy) as temporary:
            np.save(temporary, values)
    except OSError:
        pass  # a cache that cannot be written costs time later, nothing else


def csv_values(path: str | Path, columns: list[str]) -> np.ndarray:
    """The checked values (rows, columns) of a Kaggle-format CSV, parsed once per change of the file (read-only)."""
    path = Path(path)
    if not path.is_file():
        return read_pixels_csv(path, columns)  # says which file is missing, and how to get it
    key = (files.sha256_of(path), len(columns))
    if key in _IN_MEMORY:
        return _IN_MEMORY[key]
    folder = _parsed_folder()
    values = _load_parsed_copy(folder, key[0], path, columns) if folder else None
    if values is None:
        values = read_pixels_csv(path, columns)
        if folder:
            _keep_parsed_copy(folder, key[0], values)
    files.CACHE.remember(path, _rows_check(columns), len(values))
    values.flags.writeable = False  # shared by every caller in the process: nobody changes what the next one gets
    for older in [known for known in _IN_MEMORY if known[1] == len(columns)]:
        del _IN_MEMORY[older]  # one file of each kind (train, test) is all a command needs
    _IN_MEMORY[key] = values
    return values


def csv_rows(path: str | Path, columns: list[str]) -> int:
    """The rows of a Kaggle-format CSV that passed every check; an unchanged file is not read again."""
    rows = files.CACHE.passed(Path(path), _rows_check(columns))
    return rows if isinstance(rows, int) else len(csv_values(path, columns))


def load_train(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load train.csv: images (n, 28, 28, 1) float32 in [0, 1] and labels (n,) int64."""
    values = csv_values(path, TRAIN_COLUMNS)
    return to_images(values[:, 1:]), values[:, 0].astype(np.int64)


def load_test(path: str | Path) -> np.ndarray:
    """Load test.csv: images (n, 28, 28, 1) float32 in [0, 1]."""
    return to_images(csv_values(path, TEST_COLUMNS))


def prepare_data(data_dir: str | Path) -> dict[str, object]:
    """Make sure data_dir holds valid train.csv and test.csv: check existing ones (never written to), or write them."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data_dir {str(data_dir)!r} is not an existing folder")
    train_path, test_path = data_dir / "train.csv", data_dir / "test.csv"
    present = [path.name for path in (train_path, test_path) if path.exists()]
    if len(present) == 1:
        raise DataError(
            f"{data_dir}: only {present[0]} is present; put both Kaggle files there, "
            f"or remove {present[0]} so that both are written from the embedded MNIST"
        )
    if present:
        return {"source": "existing files", "train": csv_rows(train_path, TRAIN_COLUMNS),
                "test": csv_rows(test_path, TEST_COLUMNS)}
    summary = {"source": "embedded MNIST", **write_kaggle_csvs(data_dir)}
    # Records which train.csv the embedded MNIST gave, so that runs on it need no data tag in their names.
    stamp = {**summary, "train_sha256": sha256_of(train_path)}
    write_text_atomic(data_dir / PREPARED_STAMP, json.dumps(stamp, indent=2) + "\n")
    return summary


def data_tag(data_dir: Path) -> str:
    """"" for the train.csv written from the embedded MNIST, else "d" and the start of its SHA-256.

    It goes into run names, so runs on other data (Kaggle's files) are kept beside the MNIST ones.
    """
    digest = sha256_of(data_dir / "train.csv")
    try:
        written = json.loads((data_dir / PREPARED_STAMP).read_text()).get("train_sha256")
    except (OSError, ValueError, AttributeError):
        written = None
    return "" if digest == written else f"d{digest[:6]}"


def overview(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray) -> pd.DataFrame:
    """One row per file: images, classes, grey-level range and share of ink."""
    return pd.DataFrame(
        {
            "images": [len(train_images), len(test_images)],
            "classes": [str(len(np.unique(train_labels))), "unlabelled"],
            "min grey level": [int(train_images.min() * 255), int(test_images.min() * 255)],
            "max grey level": [int(train_images.max() * 255), int(test_images.max() * 255)],
            "ink (share of pixels > 0)": [f"{(train_images > 0).mean():.1%}", f"{(test_images > 0).mean():.1%}"],
        },
        index=["train.csv", "test.csv"],
    )


class Split(NamedTuple):
    """Training and validation images (n, 28, 28, 1) in [0, 1] and their labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray


def load_split(data_dir: Path, sample_size: int, validation_fraction: float) -> Split:
    """train.csv (its first sample_size rows when sample_size > 0), split stratified by digit."""
    images, labels = load_train(Path(data_dir) / "train.csv")
    if sample_size:
        images, labels = images[:sample_size], labels[:sample_size]
    train_index, validation_index = split_train_validation(labels, validation_fraction)
    return Split(images[train_index], labels[train_index], images[validation_index], labels[validation_index])


def split_train_validation(labels: np.ndarray, fraction: float,
                           seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split: indices of training and validation rows, each class in proportion."""
    fraction = parse_validation_fraction(fraction)
    rng = np.random.default_rng(seed)
    validation = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        validation.append(rng.permutation(members)[: max(1, round(fraction * len(members)))])
    validation_index = np.sort(np.concatenate(validation))
    train_index = np.setdiff1d(np.arange(len(labels)), validation_index)
    if len(train_index) == 0:
        raise ValueError(f"validation_fraction {fraction} leaves no training rows out of {len(labels)}")
    return train_index, validation_index


def load_test_labels(data_dir: Path, n_images: int) -> np.ndarray | None:
    """The true labels of test.csv from test_labels.csv (written with the embedded MNIST), or None (Kaggle's)."""
    path = Path(data_dir) / "test_labels.csv"
    return read_submission(path, expected_rows=n_images) if path.is_file() else None
