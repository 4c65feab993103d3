"""Outputs are written atomically: a crash mid-write leaves no half-written artefact."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from credit_scoring.io import find_table_file, write_atomic, write_json, write_parquet


def test_write_parquet_round_trips(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    path = write_parquet(df, tmp_path / "sub" / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), df, check_dtype=False)


def test_a_failing_writer_leaves_neither_the_target_nor_a_temp_file(tmp_path):
    target = tmp_path / "out.json"

    def boom(tmp):
        tmp.write_text('{"half": ')
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, boom)
    assert not target.exists(), "a crashed write must not create the target"
    assert list(tmp_path.iterdir()) == [], "the temporary file must be cleaned up"


def test_a_failing_rewrite_keeps_the_previous_good_version(tmp_path):
    target = write_json({"v": 1}, tmp_path / "m.json")

    def boom(tmp):
        tmp.write_text("garbage")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        write_atomic(target, boom)
    assert json.loads(target.read_text()) == {"v": 1}


def test_find_table_file_prefers_parquet_and_accepts_csv(tmp_path):
    assert find_table_file(tmp_path, "events") is None
    (tmp_path / "events.csv").write_text("a\n1\n")
    assert find_table_file(tmp_path, "events").name == "events.csv"
    (tmp_path / "events.parquet").write_bytes(b"")
    assert find_table_file(tmp_path, "events").name == "events.parquet"
