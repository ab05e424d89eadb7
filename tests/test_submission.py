"""Submission files: writing, every way one can be wrong, and scoring."""

from __future__ import annotations

import numpy as np
import pytest

from digits.formats.submission import SubmissionError, read_submission, write_submission


def test_written_submission_reads_back(tmp_path):
    labels = np.array([7, 2, 1, 0, 4])
    path = write_submission(labels, tmp_path / "submission.csv")
    assert path.read_text() == "ImageId,Label\n1,7\n2,2\n3,1\n4,0\n5,4\n"
    np.testing.assert_array_equal(read_submission(path, expected_rows=5), labels)
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("labels", [np.array([]), np.array([1, 10]), np.array([-1, 2]), np.array([[1, 2]])])
def test_writer_rejects_impossible_labels(labels, tmp_path):
    with pytest.raises(ValueError, match="digits 0..9"):
        write_submission(labels, tmp_path / "submission.csv")
    assert not (tmp_path / "submission.csv").exists()


BAD_SUBMISSIONS = {
    "empty file": ("", "file is empty"),
    "header only": ("ImageId,Label\n", "header only, no predictions"),
    "wrong header": ("Id,Label\n1,3\n", "line 1: header must be ImageId,Label, found Id,Label"),
    "swapped header": ("Label,ImageId\n1,3\n", "line 1: header must be ImageId,Label"),
    "ids from 0": ("ImageId,Label\n0,3\n1,4\n", "line 2: ImageId '0', expected 1"),
    "missing id": ("ImageId,Label\n1,3\n3,4\n", "line 3: ImageId '3', expected 2"),
    "repeated id": ("ImageId,Label\n1,3\n1,4\n", "line 3: ImageId '1', expected 2"),
    "label 10": ("ImageId,Label\n1,10\n", "line 2: Label '10' is not a digit 0..9"),
    "label not a number": ("ImageId,Label\n1,seven\n", "line 2: Label 'seven' is not a digit 0..9"),
    "empty label": ("ImageId,Label\n1,\n", "line 2: Label '' is not a digit 0..9"),
    "probability instead of label": ("ImageId,Label\n1,0.9\n", "line 2: Label '0.9' is not a digit 0..9"),
    "extra column": ("ImageId,Label,Score\n1,3,0.5\n", "line 1: header must be ImageId,Label"),
    "short row": ("ImageId,Label\n1,3\n2\n", "line 3: 1 values, expected 2"),
}


@pytest.mark.parametrize("case", BAD_SUBMISSIONS)
def test_bad_submission_is_a_clear_error(case, tmp_path):
    text, message = BAD_SUBMISSIONS[case]
    path = tmp_path / "submission.csv"
    path.write_text(text)
    with pytest.raises(SubmissionError) as raised:
        read_submission(path)
    assert "submission.csv" in str(raised.value) and message in str(raised.value)


def test_wrong_row_count_is_an_error(tmp_path):
    path = write_submission(np.array([1, 2, 3]), tmp_path / "submission.csv")
    with pytest.raises(SubmissionError, match="3 predictions, expected 4"):
        read_submission(path, expected_rows=4)


def test_missing_submission_is_an_error(tmp_path):
    with pytest.raises(SubmissionError, match="nothing.csv: file not found"):
        read_submission(tmp_path / "nothing.csv")


def test_crlf_and_bom_submission_is_accepted(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_bytes(b"\xef\xbb\xbfImageId,Label\r\n1,3\r\n2,4\r\n")
    np.testing.assert_array_equal(read_submission(path), [3, 4])

