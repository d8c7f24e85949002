"""Writing tables: JSONL that any JSON reader reads back exactly, written column-wise by Arrow."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from rm_demo.tables import write_jsonl, write_table

HARD_TEXT = [
    "plain",
    'a "quote"',
    "back\\slash",
    "line\nbreak\r\n\ttab",
    "\x00\x01\x0b\x1f\x7f",
    "don’t é 😀",
    "\u2028",
    "",
]


def read_jsonl(path):
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text.splitlines()  # splits at U+2028 and other Unicode line breaks too: none may be raw
    return [json.loads(line) for line in lines]


def test_text_round_trips_through_any_json_reader(tmp_path):
    frame = pd.DataFrame({"text": HARD_TEXT, "object_text": pd.Series(HARD_TEXT[::-1], dtype=object)})
    write_jsonl(frame, tmp_path / "out.jsonl")
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["text"] for r in records] == HARD_TEXT
    assert [r["object_text"] for r in records] == HARD_TEXT[::-1]
    assert "don’t" in (tmp_path / "out.jsonl").read_text(encoding="utf-8")  # UTF-8 as is, not \u escapes


def test_numbers_nulls_and_booleans_keep_their_json_types(tmp_path):
    frame = pd.DataFrame(
        {
            "score": [4.0, 1.5, float("nan"), math.inf, -0.0, 1e20],
            "row": np.arange(6) - 2,
            "kept": [True, False] * 3,
            "note": pd.array(["x", None, "y", None, "z", None], dtype="str"),
            'odd "name"': 1,
        }
    )
    write_jsonl(frame, tmp_path / "out.jsonl")
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["score"] for r in records] == [4.0, 1.5, None, None, -0.0, 1e20]
    assert all(type(r["score"]) is float for r in records if r["score"] is not None)  # 4.0 stays a float
    assert [r["row"] for r in records] == [-2, -1, 0, 1, 2, 3]
    assert [r["kept"] for r in records] == [True, False] * 3
    assert [r["note"] for r in records] == ["x", None, "y", None, "z", None]
    assert records[0]['odd "name"'] == 1


@pytest.mark.parametrize(
    "column", [pd.Series([1, "a", None], dtype=object), pd.to_datetime(["2026-01-01", "2026-01-02", None])]
)
def test_other_column_types_are_written_by_pandas(tmp_path, column):
    frame = pd.DataFrame({"value": column, "text": ["a", "b", "c"]})
    write_jsonl(frame, tmp_path / "out.jsonl")
    by_pandas = frame.to_json(orient="records", lines=True, date_format="iso")
    expected = [json.loads(line) for line in by_pandas.splitlines()]
    assert read_jsonl(tmp_path / "out.jsonl") == expected


def test_empty_frames(tmp_path):
    write_jsonl(pd.DataFrame({"a": pd.Series([], dtype="str")}), tmp_path / "none.jsonl")
    assert (tmp_path / "none.jsonl").read_text() == ""
    write_jsonl(pd.DataFrame(index=range(2)), tmp_path / "no_columns.jsonl")
    assert read_jsonl(tmp_path / "no_columns.jsonl") == [{}, {}]


def test_a_sliced_frame_writes_only_its_rows(tmp_path):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "n": range(10)}).iloc[3:6]
    write_table(frame, tmp_path / "out.jsonl")
    assert read_jsonl(tmp_path / "out.jsonl") == [{"text": f"t{i}", "n": i} for i in (3, 4, 5)]
