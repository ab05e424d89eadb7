"""Data layer: the embedded MNIST, the Kaggle-format CSVs, and every way a CSV can be wrong."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest

from digits.data import load_test, load_train, prepare_data
from digits.formats.csvfiles import PIXEL_COLUMNS, TEST_COLUMNS, TRAIN_COLUMNS, DataError
from digits.formats.mnist import expected_checksums, read_idx
from digits.util.paths import raw_mnist_dir
from helpers import PROJECT_ROOT, run_pipeline

# Class counts of the MNIST training and test sets, from the data's README.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def csv_text(header: list[str], rows: list[list], newline: str = "\n") -> str:
    """A CSV document from a header and rows of cells."""
    return newline.join(",".join(map(str, row)) for row in [header, *rows]) + newline


def train_rows(count: int = 3) -> list[list]:
    """Valid train rows: label then 784 pixels with a little ink."""
    return [[index % 10] + [(index * 7 + pixel) % 256 for pixel in range(784)] for index in range(count)]


def pixel_rows(count: int = 3) -> list[list]:
    """Valid test rows: 784 pixels."""
    return [row[1:] for row in train_rows(count)]


def with_cell(rows: list[list], row: int, column: int, value) -> list[list]:
    """A copy of rows with one cell replaced."""
    changed = [list(r) for r in rows]
    changed[row][column] = value
    return changed


BAD_TRAIN_FILES = {
    "empty file": ("", "train.csv: file is empty"),
    "header only": (csv_text(TRAIN_COLUMNS, []), "train.csv: header only, no data rows"),
    "missing column": (csv_text(TRAIN_COLUMNS[:-1], [r[:-1] for r in train_rows()]),
                       "train.csv, line 1: 784 columns, expected 785; missing pixel783"),
    "misnamed column": (csv_text(["label", "pixel0", "pixl1", *PIXEL_COLUMNS[2:]], train_rows()),
                        "train.csv, line 1, column 3: expected 'pixel1', found 'pixl1'"),
    "label column missing": (csv_text(PIXEL_COLUMNS, pixel_rows()),
                             "train.csv, line 1, column 1: expected 'label', found 'pixel0'"),
    "extra column": (csv_text([*TRAIN_COLUMNS, "note"], [r + [1] for r in train_rows()]),
                     "train.csv, line 1, column 786: unexpected extra column 'note'"),
    "short row": (csv_text(TRAIN_COLUMNS, train_rows()[:1] + [train_rows()[1][:-1]]),
                  "train.csv, line 3: 784 values, expected 785"),
    "long row": (csv_text(TRAIN_COLUMNS, train_rows()[:2] + [train_rows()[2] + [0]]),
                 "train.csv, line 4: 786 values, expected 785"),
    "word in a cell": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 1, 11, "abc")),
                       "train.csv, line 3, column pixel10: 'abc' is not a whole number"),
    "decimal in a cell": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 0, 5, "1.5")),
                          "train.csv, line 2, column pixel4: '1.5' is not a whole number"),
    "empty cell": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 2, 100, "")),
                   "train.csv, line 4, column pixel99: empty cell"),
    "NaN cell": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 0, 784, "NaN")),
                 "train.csv, line 2, column pixel783: missing value 'NaN'"),
    "pixel above 255": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 1, 1, 256)),
                        "train.csv, line 3, column pixel0: value 256 is outside 0..255"),
    "negative pixel": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 2, 300, -1)),
                       "train.csv, line 4, column pixel299: value -1 is outside 0..255"),
    "label above 9": (csv_text(TRAIN_COLUMNS, with_cell(train_rows(), 2, 0, 10)),
                      "train.csv, line 4, column label: value 10 is outside 0..9"),
}

BAD_TEST_FILES = {
    "test file with a label column": (csv_text(TRAIN_COLUMNS, train_rows()),
                                      "test.csv, line 1: a test file has no 'label' column"),
    "test header only": (csv_text(TEST_COLUMNS, []), "test.csv: header only, no data rows"),
    "test pixel above 255": (csv_text(TEST_COLUMNS, with_cell(pixel_rows(), 0, 0, 999)),
                             "test.csv, line 2, column pixel0: value 999 is outside 0..255"),
}


@pytest.mark.parametrize("case", BAD_TRAIN_FILES)
def test_bad_train_file_is_a_clear_error(case, tmp_path):
    text, message = BAD_TRAIN_FILES[case]
    (tmp_path / "train.csv").write_text(text)
    with pytest.raises(DataError) as raised:
        load_train(tmp_path / "train.csv")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("case", BAD_TEST_FILES)
def test_bad_test_file_is_a_clear_error(case, tmp_path):
    text, message = BAD_TEST_FILES[case]
    (tmp_path / "test.csv").write_text(text)
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        load_test(tmp_path / "test.csv")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv: file not found"):
        load_train(tmp_path / "train.csv")


@pytest.mark.parametrize("newline, bom", [("\n", False), ("\r\n", False), ("\n", True), ("\r\n", True)])
def test_crlf_and_bom_are_accepted(newline, bom, tmp_path):
    text = csv_text(TRAIN_COLUMNS, train_rows(4), newline=newline)
    (tmp_path / "train.csv").write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    images, labels = load_train(tmp_path / "train.csv")
    expected = np.array(train_rows(4))
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, expected[:, 0])
    # pixel x lies at row x // 28, column x % 28
    np.testing.assert_allclose(images[1, 30 // 28, 30 % 28, 0], expected[1, 1 + 30] / 255)
    assert 0 <= images.min() and images.max() <= 1


def run_prepare(data_dir) -> subprocess.CompletedProcess:
    """`python -m digits.pipeline data DATA_DIR=...`, as `make data DATA_DIR=...` runs it."""
    return run_pipeline(PROJECT_ROOT, "data", f"DATA_DIR={data_dir}")


@pytest.mark.parametrize("case", ["misnamed column", "word in a cell", "label above 9"])
def test_bad_existing_file_stops_make_data_and_changes_nothing(case, tmp_path):
    text, message = BAD_TRAIN_FILES[case]
    (tmp_path / "train.csv").write_text(text)
    (tmp_path / "test.csv").write_text(csv_text(TEST_COLUMNS, pixel_rows()))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    result = run_prepare(tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_only_one_kaggle_file_is_an_error(tmp_path):
    (tmp_path / "test.csv").write_text(csv_text(TEST_COLUMNS, pixel_rows()))
    result = run_prepare(tmp_path)
    assert result.returncode != 0 and "only test.csv is present" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["test.csv"]


def test_missing_data_dir_is_an_error(tmp_path):
    result = run_prepare(tmp_path / "nope")
    assert result.returncode != 0 and "nope" in result.stderr and "must be an existing folder" in result.stderr


def test_existing_kaggle_files_are_checked_and_left_untouched(tmp_path):
    (tmp_path / "train.csv").write_text(csv_text(TRAIN_COLUMNS, train_rows(5), newline="\r\n"))
    (tmp_path / "test.csv").write_text(csv_text(TEST_COLUMNS, pixel_rows(2)))
    before = {name: (tmp_path / name).read_bytes() for name in ("train.csv", "test.csv")}
    result = run_prepare(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "checked" in result.stdout and "5 rows" in result.stdout
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert not (tmp_path / "test_labels.csv").exists()


def test_embedded_mnist_becomes_kaggle_csvs(tmp_path):
    summary = prepare_data(tmp_path)
    assert summary == {"source": "embedded MNIST", "train": 60000, "test": 10000}
    train_header = (tmp_path / "train.csv").open().readline().rstrip("\n").split(",")
    test_header = (tmp_path / "test.csv").open().readline().rstrip("\n").split(",")
    assert train_header == ["label"] + [f"pixel{i}" for i in range(784)]
    assert test_header == [f"pixel{i}" for i in range(784)]
    images, labels = load_train(tmp_path / "train.csv")
    assert images.shape == (60000, 28, 28, 1)
    assert np.bincount(labels).tolist() == TRAIN_COUNTS
    assert load_test(tmp_path / "test.csv").shape == (10000, 28, 28, 1)
    test_labels = np.loadtxt(tmp_path / "test_labels.csv", delimiter=",", skiprows=1, dtype=int)
    np.testing.assert_array_equal(test_labels[:, 0], np.arange(1, 10001))
    assert np.bincount(test_labels[:, 1]).tolist() == TEST_COUNTS
    assert not list(tmp_path.glob(".*partial*"))


def test_changed_mnist_file_fails_its_checksum(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(raw_mnist_dir(), raw)
    path = raw / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[100] = (content[100] + 1) % 10
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        read_idx(path, expected_checksums(raw)["t10k-labels-idx1-ubyte"])


def test_a_header_with_spaces_after_the_commas_is_accepted(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(", ".join(TRAIN_COLUMNS) + "\n" + "\n".join(", ".join(map(str, r)) for r in train_rows(3)) + "\n")
    images, labels = load_train(path)
    assert images.shape == (3, 28, 28, 1) and labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("separator, name", [(";", "semicolons"), ("\t", "tabs")])
def test_other_separators_are_named_without_printing_the_header(separator, name, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(separator.join(TRAIN_COLUMNS) + "\n" + separator.join(map(str, train_rows(1)[0])) + "\n")
    with pytest.raises(DataError) as raised:
        load_train(path)
    message = str(raised.value)
    assert f"separated by {name}; expected commas" in message and len(message) < 300
