"""Data: embedded MNIST to Kaggle-format CSVs, and strict, fast CSV loading.

Kaggle's "Digit Recognizer" files: `train.csv` has a `label` column then
`pixel0`..`pixel783`, `test.csv` the pixels only; pixel x lies at row x // 28,
column x % 28, grey levels 0..255.

`make data` writes (or checks) the CSVs through `prepare_data`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from digits.config import IMAGE_SIDE, N_CLASSES, N_PIXELS, SPLIT_SEED
from digits.files import atomic_path, sha256_of, write_text_atomic
from digits.parameters import check_validation_fraction
from digits.paths import raw_mnist_dir
from digits.submission import read_submission

PIXEL_COLUMNS = [f"pixel{index}" for index in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
TEST_COLUMNS = PIXEL_COLUMNS
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}
PREPARED_STAMP = ".prepared.json"
_INTEGER = re.compile(r"-?[0-9]+")


class DataError(ValueError):
    """Bad input data; the message names the file and, where it can, the line and column."""


# --- Embedded MNIST (IDX files) ---------------------------------------------------------


def expected_checksums(raw_dir: Path) -> dict[str, str]:
    """Read SHA256SUMS.uncompressed: file name -> SHA-256 of the decompressed IDX file."""
    sums_path = raw_dir / "SHA256SUMS.uncompressed"
    if not sums_path.is_file():
        raise DataError(f"{sums_path}: checksum file not found")
    pairs = (line.split() for line in sums_path.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def read_idx(path: Path, expected_sha256: str) -> np.ndarray:
    """Read one gzip IDX file after checking the SHA-256 of its decompressed content."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        content = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable gzip file ({error})") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected_sha256:
        raise DataError(f"{path}: checksum mismatch (got {digest[:12]}..., expected {expected_sha256[:12]}...)")
    n_dims = content[3]
    magic = int.from_bytes(content[:4], "big")
    if IDX_MAGIC.get(n_dims) != magic:
        raise DataError(f"{path}: not an IDX image or label file (magic {magic:#010x})")
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)]
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def load_mnist(raw_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Load the four checked MNIST arrays: train/test images (n, 28, 28) and labels (n,)."""
    raw_dir = raw_dir or raw_mnist_dir()
    sums = expected_checksums(raw_dir)
    return {key: read_idx(raw_dir / f"{name}.gz", sums[name]) for key, name in MNIST_FILES.items()}


# --- Writing Kaggle-format CSVs ---------------------------------------------------------


def write_csv(path: Path, columns: list[str], values: np.ndarray) -> None:
    """Write a 2-D integer array as a CSV with a plain header, atomically."""
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise ValueError(f"{path}: {values.shape} values do not fit {len(columns)} columns")
    table = pa.Table.from_arrays([pa.array(values[:, i]) for i in range(len(columns))], names=columns)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write((",".join(columns) + "\n").encode())
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False, quoting_style="none"))


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


# --- Reading and validating Kaggle-format CSVs ------------------------------------------


def _read_header(path: Path) -> list[str]:
    """Return the header's column names; accept a UTF-8 BOM and CRLF line ends."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (run `make data`, or put Kaggle's file there)")
    with open(path, "rb") as handle:
        first_line = handle.readline()
    if not first_line.strip():
        raise DataError(f"{path}: file is empty (expected a header line and data rows)")
    try:
        header = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError(f"{path}, line 1: header is not UTF-8 text") from None
    for separator, name in (("\t", "tabs"), (";", "semicolons")):
        if separator in header and "," not in header:
            raise DataError(f"{path}, line 1: columns are separated by {name}; expected commas (Kaggle's format)")
    # Spaces after the commas ("label, pixel0, ...") are accepted, as are quoted names.
    return [name.strip().strip('"') for name in header.split(",")]


def _check_header(path: Path, header: list[str], expected: list[str]) -> None:
    """Raise DataError on the first header difference, naming the column."""
    if expected[0] != "label" and header[:1] == ["label"]:
        raise DataError(f"{path}, line 1: a test file has no 'label' column (is this a train file?)")
    for position, (found, wanted) in enumerate(zip(header, expected, strict=False), start=1):
        if found != wanted:
            found = found if len(found) <= 40 else found[:40] + "..."
            raise DataError(f"{path}, line 1, column {position}: expected {wanted!r}, found {found!r}")
    if len(header) < len(expected):
        missing = ", ".join(expected[len(header) :][:3])
        raise DataError(f"{path}, line 1: {len(header)} columns, expected {len(expected)}; missing {missing}...")
    if len(header) > len(expected):
        extra = header[len(expected)][:40]
        raise DataError(f"{path}, line 1, column {len(expected) + 1}: unexpected extra column {extra!r}")


def _cell_problem(cell: str, high: int) -> str | None:
    """Describe what is wrong with one cell, or None when it is an integer in 0..high."""
    if cell.strip() == "":
        return "empty cell"
    if cell.strip().lower() in {"nan", "na", "n/a", "null", "none"}:
        return f"missing value {cell!r}"
    if not _INTEGER.fullmatch(cell):
        return f"{cell!r} is not a whole number"
    if not 0 <= int(cell) <= high:
        return f"value {int(cell)} is outside 0..{high}"
    return None


def _find_problem(path: Path, columns: list[str]) -> DataError | None:
    """Scan the file row by row for the first bad row or cell; slow, so only run after a failure."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if not row:
                    continue
                where = f"{path}, line {reader.line_num}"
                if len(row) != len(columns):
                    return DataError(f"{where}: {len(row)} values, expected {len(columns)}")
                for name, cell in zip(columns, row, strict=True):
                    problem = _cell_problem(cell, N_CLASSES - 1 if name == "label" else 255)
                    if problem:
                        return DataError(f"{where}, column {name}: {problem}")
    except UnicodeDecodeError as error:
        return DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})")
    except csv.Error as error:
        return DataError(f"{path}: unreadable CSV ({error})")
    return None


def read_pixels_csv(path: str | Path, columns: list[str]) -> np.ndarray:
    """Read and strictly validate a Kaggle-format CSV into a uint8 array (rows, columns)."""
    path = Path(path)
    _check_header(path, _read_header(path), columns)
    # Fast path: Arrow parses in parallel and rejects anything not in 0..255 via the uint8 type.
    convert = pacsv.ConvertOptions(
        column_types={name: pa.uint8() for name in columns},
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        # The header was checked above; Arrow takes the expected names, whatever spacing the file's header has.
        read_options = pacsv.ReadOptions(block_size=1 << 24, column_names=columns, skip_rows=1)
        table = pacsv.read_csv(path, read_options=read_options, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise (_find_problem(path, columns) or DataError(f"{path}: {error}")) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: header only, no data rows")
    values = np.empty((table.num_rows, len(columns)), dtype=np.uint8)
    for index, name in enumerate(columns):
        values[:, index] = table.column(name).to_numpy()
    if columns[0] == "label" and values[:, 0].max() >= N_CLASSES:
        bad_row = int(np.argmax(values[:, 0] >= N_CLASSES))
        raise (_find_problem(path, columns) or DataError(f"{path}, data row {bad_row + 1}, column label: out of range"))
    return values


def to_images(pixels: np.ndarray) -> np.ndarray:
    """Turn (n, 784) grey levels 0..255 into float32 images (n, 28, 28, 1) in [0, 1]."""
    images = pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1).astype(np.float32)
    images *= np.float32(1 / 255)
    return images


def load_train(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load train.csv: images (n, 28, 28, 1) float32 in [0, 1] and labels (n,) int64."""
    values = read_pixels_csv(path, TRAIN_COLUMNS)
    return to_images(values[:, 1:]), values[:, 0].astype(np.int64)


def load_test(path: str | Path) -> np.ndarray:
    """Load test.csv: images (n, 28, 28, 1) float32 in [0, 1]."""
    return to_images(read_pixels_csv(path, TEST_COLUMNS))


# --- The data folder -------------------------------------------------------------------


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
        return {"source": "existing files", "train": len(read_pixels_csv(train_path, TRAIN_COLUMNS)),
                "test": len(read_pixels_csv(test_path, TEST_COLUMNS))}
    summary = {"source": "embedded MNIST", **write_kaggle_csvs(data_dir)}
    # Records which train.csv the embedded MNIST gave, so that runs on it need no data tag in their names.
    stamp = {**summary, "train_sha256": sha256_of(train_path)}
    write_text_atomic(data_dir / PREPARED_STAMP, json.dumps(stamp, indent=2) + "\n")
    return summary


def count_rows(path: Path) -> int:
    """The data rows of a CSV file (its lines but the header), counted without parsing; 0 when it is missing."""
    if not Path(path).is_file():
        return 0
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n") - 1


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
    fraction = check_validation_fraction(fraction)
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
