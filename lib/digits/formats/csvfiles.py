"""Kaggle-format CSV files: written plainly, read strictly (every bad row or cell named), fast (Arrow).

Kaggle's "Digit Recognizer" files: `train.csv` has a `label` column then
`pixel0`..`pixel783`, `test.csv` the pixels only; pixel x lies at row x // 28,
column x % 28, grey levels 0..255.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from digits.config import N_CLASSES, N_PIXELS
from digits.util.display import shown
from digits.util.files import atomic_path

PIXEL_COLUMNS = [f"pixel{index}" for index in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
TEST_COLUMNS = PIXEL_COLUMNS
_INTEGER = re.compile(r"-?[0-9]+")


class DataError(ValueError):
    """Bad input data; the message names the file and, where it can, the line and column."""


def write_csv(path: Path, columns: list[str], values: np.ndarray) -> None:
    """Write a 2-D integer array as a CSV with a plain header, atomically."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if values.ndim != 2 or values.shape[1] != len(columns):
        raise ValueError(f"{shown(path)}: {values.shape} values do not fit {len(columns)} columns")
    table = pa.Table.from_arrays([pa.array(values[:, i]) for i in range(len(columns))], names=columns)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write((",".join(columns) + "\n").encode())
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _read_header(path: Path) -> list[str]:
    """Return the header's column names; accept a UTF-8 BOM and CRLF line ends."""
    if not path.is_file():
        raise DataError(f"{shown(path)}: file not found (run `make data`, or put Kaggle's file there)")
    with open(path, "rb") as handle:
        first_line = handle.readline()
    if not first_line.strip():
        raise DataError(f"{shown(path)}: file is empty (expected a header line and data rows)")
    try:
        header = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError(f"{shown(path)}, line 1: header is not UTF-8 text") from None
    for separator, name in (("\t", "tabs"), (";", "semicolons")):
        if separator in header and "," not in header:
            raise DataError(f"{shown(path)}, line 1: columns are separated by {name}; expected commas (Kaggle's format)")
    # Spaces after the commas ("label, pixel0, ...") are accepted, as are quoted names.
    return [name.strip().strip('"') for name in header.split(",")]


def _check_header(path: Path, header: list[str], expected: list[str]) -> None:
    """Raise DataError on the first header difference, naming the column."""
    if expected[0] != "label" and header[:1] == ["label"]:
        raise DataError(f"{shown(path)}, line 1: a test file has no 'label' column (is this a train file?)")
    for position, (found, wanted) in enumerate(zip(header, expected, strict=False), start=1):
        if found != wanted:
            found = found if len(found) <= 40 else found[:40] + "..."
            raise DataError(f"{shown(path)}, line 1, column {position}: expected {wanted!r}, found {found!r}")
    if len(header) < len(expected):
        missing = ", ".join(expected[len(header) :][:3])
        raise DataError(f"{shown(path)}, line 1: {len(header)} columns, expected {len(expected)}; missing {missing}...")
    if len(header) > len(expected):
        extra = header[len(expected)][:40]
        raise DataError(f"{shown(path)}, line 1, column {len(expected) + 1}: unexpected extra column {extra!r}")


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
                where = f"{shown(path)}, line {reader.line_num}"
                if len(row) != len(columns):
                    return DataError(f"{where}: {len(row)} values, expected {len(columns)}")
                for name, cell in zip(columns, row, strict=True):
                    problem = _cell_problem(cell, N_CLASSES - 1 if name == "label" else 255)
                    if problem:
                        return DataError(f"{where}, column {name}: {problem}")
    except UnicodeDecodeError as error:
        return DataError(f"{shown(path)}: not UTF-8 text ({error.reason} at byte {error.start})")
    except csv.Error as error:
        return DataError(f"{shown(path)}: unreadable CSV ({error})")
    return None


def read_pixels_csv(path: str | Path, columns: list[str]) -> np.ndarray:
    """Read and strictly validate a Kaggle-format CSV into a uint8 array (rows, columns)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

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
        raise (_find_problem(path, columns) or DataError(f"{shown(path)}: {error}")) from None
    if table.num_rows == 0:
        raise DataError(f"{shown(path)}: header only, no data rows")
    values = np.empty((table.num_rows, len(columns)), dtype=np.uint8)
    for index, name in enumerate(columns):
        values[:, index] = table.column(name).to_numpy()
    if columns[0] == "label" and values[:, 0].max() >= N_CLASSES:
        bad_row = int(np.argmax(values[:, 0] >= N_CLASSES))
        raise (_find_problem(path, columns) or DataError(f"{shown(path)}, data row {bad_row + 1}, column label: out of range"))
    return values
