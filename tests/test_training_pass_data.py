"""CSV validation of the pass model's training data."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.__main__ import run
from training.errors import DataError
from training.passing.data import load_pass_csv

BAD_CSVS = {
    "empty": ("", "file is empty"),
    "blank lines only": ("\n\n", "file is empty"),
    "header only": ("hours,passed\n", "no data rows"),
    "missing column": ("hours,score\n1,0\n3,1\n", "missing column(s) passed"),
    "both columns missing": ("a,b\n1,0\n", "missing column(s) hours, passed"),
    "non-numeric hours": ("hours,passed\n1,0\nlots,1\n", "line 3: hours 'lots' is not a number"),
    "non-numeric label": ("hours,passed\n1,0\n3,yes\n", "passed 'yes' is not a number"),
    "label outside 0/1": ("hours,passed\n1,0\n3,2\n", "passed '2' is not 0 or 1"),
    "negative label": ("hours,passed\n1,-1\n3,1\n", "passed '-1' is not 0 or 1"),
    "single class": ("hours,passed\n1,1\n3,1\n", "need both classes"),
    "short row": ("hours,passed\n1,0\n3\n", "expected 2 fields, got 1"),
    "not finite": ("hours,passed\n1,0\nnan,1\n", "not a finite number"),
    "negative hours": ("hours,passed\n-1,0\n3,1\n", "hours '-1' is negative"),
    "constant hours": ("hours,passed\n2,0\n2,1\n", "same hours"),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_raises_a_one_line_data_error(tmp_path, case):
    text, expected = BAD_CSVS[case]
    with pytest.raises(DataError) as caught:
        load_pass_csv(write(tmp_path, text))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_pass_csv(tmp_path / "nope.csv")


def test_good_csv_loads_columns_in_any_order_with_extra_columns(tmp_path):
    path = write(tmp_path, "\ufeffname, Passed ,Hours\nann,0,1.5\nbob,1.0,4\n\n")
    data = load_pass_csv(path)
    assert data.hours.shape == (2, 1) and data.passed.shape == (2, 1)
    assert data.hours.squeeze(1).tolist() == [1.5, 4.0]
    assert data.passed.squeeze(1).tolist() == [0.0, 1.0]


def test_default_csv_is_the_classic_four_points():
    data = load_pass_csv(Path(__file__).parent.parent / "training" / "data" / "hours.csv")
    assert data.hours.squeeze(1).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert data.passed.squeeze(1).tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("case", ["empty", "missing column", "label outside 0/1", "single class"])
def test_cli_exits_2_with_one_line_on_stderr(tmp_path, capsys, case):
    text, expected = BAD_CSVS[case]
    code = run(["pass", "--data", str(write(tmp_path, text)), "--repository", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err
    assert not (tmp_path / "m").exists()
