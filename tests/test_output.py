"""Atomic commit: staged writes, run-date partitions and crashes between write and commit."""
import json
from pathlib import Path

import pytest
from chispa import assert_df_equality

from pipelines.output import STAGING_DIR, StagedOutput, write_atomic


def _df(spark, values, day="a"):
    return spark.createDataFrame([(v, day) for v in values], "v INT, tag STRING")


def test_write_atomic_commits_data_marker_and_files(spark, tmp_path):
    target = tmp_path / "out"
    committed = write_atomic(_df(spark, [1, 2, 3]), str(target), files={"_metrics.json": '{"rows": 3}'})
    assert committed == str(target)
    assert (target / "_SUCCESS").exists()
    assert json.loads((target / "_metrics.json").read_text()) == {"rows": 3}
    assert_df_equality(spark.read.parquet(str(target)), _df(spark, [1, 2, 3]), ignore_row_order=True)
    assert not (tmp_path / STAGING_DIR).exists()


def test_rerun_replaces_whole_output(spark, tmp_path):
    target = str(tmp_path / "out")
    write_atomic(_df(spark, [1, 2, 3]), target)
    write_atomic(_df(spark, [9]), target)
    assert_df_equality(spark.read.parquet(target), _df(spark, [9]))


def test_run_date_replaces_only_its_partition(spark, tmp_path):
    target = str(tmp_path / "out")
    write_atomic(_df(spark, [1, 2], "d1"), target, run_date="2026-01-01")
    write_atomic(_df(spark, [3], "d2"), target, run_date="2026-01-02")
    write_atomic(_df(spark, [4, 5], "d1-again"), target, run_date="2026-01-01")
    table = spark.read.parquet(target).select("v", "tag")
    expected = spark.createDataFrame([(3, "d2"), (4, "d1-again"), (5, "d1-again")], "v INT, tag STRING")
    assert_df_equality(table, expected, ignore_row_order=True)
    assert sorted(p.name for p in Path(target).iterdir()) == ["ds=2026-01-01", "ds=2026-01-02"]


def test_crash_between_write_and_commit_leaves_previous_output(spark, tmp_path):
    target = str(tmp_path / "out")
    write_atomic(_df(spark, [1, 2, 3]), target, files={"_metrics.json": "{}"})
    before = spark.read.parquet(target)
    before_rows = before.collect()

    staged = StagedOutput(spark, target)
    staged.write(_df(spark, [7, 8]))
    staged.put_json("_metrics.json", {"rows": 2})
    # The process dies here: no commit. Readers of the output and of its parent see the old data only.
    assert_df_equality(spark.read.parquet(target), spark.createDataFrame(before_rows, before.schema))
    assert Path(staged.staging_path.replace("file:", "")).exists()
    assert json.loads((Path(target) / "_metrics.json").read_text()) == {}

    # The next successful run commits and clears the dead run's staging directory.
    write_atomic(_df(spark, [4]), target)
    assert_df_equality(spark.read.parquet(target), _df(spark, [4]))
    assert not (tmp_path / STAGING_DIR).exists()


def test_crash_during_swap_is_recovered_by_next_commit(spark, tmp_path, monkeypatch):
    target = str(tmp_path / "out")
    write_atomic(_df(spark, [1]), target)
    staged = StagedOutput(spark, target)
    staged.write(_df(spark, [2]))
    real_rename = staged._fs.rename
    calls = []

    def rename_then_die(src, dst):
        calls.append((src, dst))
        real_rename(src, dst)
        if len(calls) == 1:  # old output moved aside, new one not yet in place
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(staged._fs, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        staged.commit()
    assert not Path(target).exists()
    # A new run puts the previous output back before it swaps, so no data is lost...
    recovering = StagedOutput(spark, target)
    recovering._recover_interrupted_swap()
    assert_df_equality(spark.read.parquet(target), _df(spark, [1]))
    # ...and then commits normally.
    recovering.write(_df(spark, [3]))
    recovering.commit()
    assert_df_equality(spark.read.parquet(target), _df(spark, [3]))


def test_abort_drops_staging_only(spark, tmp_path):
    target = str(tmp_path / "out")
    write_atomic(_df(spark, [1]), target)
    staged = StagedOutput(spark, target)
    staged.write(_df(spark, [2]))
    staged.abort()
    assert not Path(staged.staging_path).exists()
    assert_df_equality(spark.read.parquet(target), _df(spark, [1]))
