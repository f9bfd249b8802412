"""Atomic commit: staged writes, run-date partitions, crashes between write and commit, and what is never
replaced or deleted (a directory this package did not write, other outputs' staging directories)."""

import json
from pathlib import Path

import pytest
from chispa import assert_df_equality

from pipelines import __version__
from pipelines.output import METRICS_FILE, STAGING_DIR, OutputError, StagedOutput


def _df(spark, values, day="a"):
    return spark.createDataFrame([(v, day) for v in values], "v INT, tag STRING")


def commit(spark, df, target, run_date=None) -> str:
    """Stage, seal with a metrics document as jobs write it, and commit."""
    out = StagedOutput(spark, target, run_date)
    out.write(df)
    out.put_json(METRICS_FILE, {"job": "test", "version": __version__, "run_date": run_date})
    return out.commit()


def test_commit_writes_data_marker_and_files(spark, tmp_path):
    target = tmp_path / "out"
    assert commit(spark, _df(spark, [1, 2, 3]), str(target)) == str(target)
    assert (target / "_SUCCESS").exists()
    assert json.loads((target / METRICS_FILE).read_text())["job"] == "test"
    assert_df_equality(spark.read.parquet(str(target)), _df(spark, [1, 2, 3]), ignore_row_order=True)
    assert not (tmp_path / STAGING_DIR).exists()


def test_rerun_replaces_whole_output(spark, tmp_path):
    target = str(tmp_path / "out")
    commit(spark, _df(spark, [1, 2, 3]), target)
    commit(spark, _df(spark, [9]), target)
    assert_df_equality(spark.read.parquet(target), _df(spark, [9]))


def test_run_date_replaces_only_its_partition(spark, tmp_path):
    target = str(tmp_path / "out")
    commit(spark, _df(spark, [1, 2], "d1"), target, run_date="2026-01-01")
    commit(spark, _df(spark, [3], "d2"), target, run_date="2026-01-02")
    commit(spark, _df(spark, [4, 5], "d1-again"), target, run_date="2026-01-01")
    table = spark.read.parquet(target).select("v", "tag")
    expected = spark.createDataFrame([(3, "d2"), (4, "d1-again"), (5, "d1-again")], "v INT, tag STRING")
    assert_df_equality(table, expected, ignore_row_order=True)
    assert sorted(p.name for p in Path(target).iterdir()) == ["ds=2026-01-01", "ds=2026-01-02"]


def test_crash_between_write_and_commit_leaves_previous_output(spark, tmp_path):
    target = str(tmp_path / "out")
    commit(spark, _df(spark, [1, 2, 3]), target)
    before = spark.read.parquet(target)
    before_rows = before.collect()
    metrics_before = (Path(target) / METRICS_FILE).read_text()

    staged = StagedOutput(spark, target)
    staged.write(_df(spark, [7, 8]))
    staged.put_json(METRICS_FILE, {"rows": 2})
    # The process dies here: no commit. Readers of the output and of its parent see the old data only.
    assert_df_equality(spark.read.parquet(target), spark.createDataFrame(before_rows, before.schema))
    assert Path(staged.staging_path).exists()
    assert (Path(target) / METRICS_FILE).read_text() == metrics_before

    # The next successful run commits and clears the dead run's staging directory.
    commit(spark, _df(spark, [4]), target)
    assert_df_equality(spark.read.parquet(target), _df(spark, [4]))
    assert not (tmp_path / STAGING_DIR).exists()


def test_crash_during_swap_is_recovered_by_next_commit(spark, tmp_path, monkeypatch):
    target = str(tmp_path / "out")
    commit(spark, _df(spark, [1]), target)
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
    monkeypatch.undo()
    # A new run puts the previous output back before it swaps, so no data is lost...
    recovering = StagedOutput(spark, target)
    recovering._recover_interrupted_swap()
    assert_df_equality(spark.read.parquet(target), _df(spark, [1]))
    # ...and then commits normally.
    recovering.write(_df(spark, [3]))
    recovering.put_json(METRICS_FILE, {"job": "test", "version": __version__})
    recovering.commit()
    assert_df_equality(spark.read.parquet(target), _df(spark, [3]))


def test_abort_drops_staging_only(spark, tmp_path):
    target = str(tmp_path / "out")
    commit(spark, _df(spark, [1]), target)
    staged = StagedOutput(spark, target)
    staged.write(_df(spark, [2]))
    staged.abort()
    assert not Path(staged.staging_path).exists()
    assert_df_equality(spark.read.parquet(target), _df(spark, [1]))


# --- what is never replaced or deleted --------------------------------------------------------------------------


def test_a_directory_not_written_by_us_is_refused_before_and_at_commit(spark, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("a user's file")
    with pytest.raises(OutputError, match=rf"output {target} exists and is not a committed output of this package"):
        StagedOutput(spark, str(target))
    # a Spark table without our _metrics.json is not ours either
    _df(spark, [1]).write.parquet(str(tmp_path / "theirs"))
    with pytest.raises(OutputError, match="is not a committed output of this package"):
        StagedOutput(spark, str(tmp_path / "theirs"))
    # appearing between staging and commit is caught too
    late = tmp_path / "late"
    staged = StagedOutput(spark, str(late))
    staged.write(_df(spark, [1]))
    late.mkdir()
    (late / "keep.csv").write_text("x\n")
    with pytest.raises(OutputError):
        staged.commit()
    assert (target / "notes.txt").read_text() == "a user's file" and (late / "keep.csv").exists()


def test_empty_path_file_target_and_empty_directory(spark, tmp_path):
    for empty in ("", "  "):
        with pytest.raises(OutputError, match="output path is empty"):
            StagedOutput(spark, empty)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        StagedOutput(spark, str(tmp_path / "a_file"))
    (tmp_path / "empty").mkdir()  # nothing to lose: allowed
    assert commit(spark, _df(spark, [5]), str(tmp_path / "empty")) == str(tmp_path / "empty")


def test_clean_up_touches_only_this_outputs_staging(spark, tmp_path):
    """Another output's staging directory in the same parent (a concurrent run of another date) and a
    foreign file in _staging survive a commit; only this output's dead staging directories go."""
    target = str(tmp_path / "out")
    other_date = StagedOutput(spark, target, "2026-01-02")
    other_date.write(_df(spark, [2]))
    dead = StagedOutput(spark, target, "2026-01-01")
    dead.write(_df(spark, [0]))
    similar = tmp_path / "out" / STAGING_DIR / "ds=2026-01-01.backup"
    similar.mkdir()
    commit(spark, _df(spark, [1]), target, "2026-01-01")
    staging = sorted(p.name for p in (tmp_path / "out" / STAGING_DIR).iterdir())
    assert staging == sorted([Path(other_date.staging_path).name, similar.name])
    other_date.put_json(METRICS_FILE, {"job": "test", "version": __version__})
    other_date.commit()  # its staging survived, so it still commits
    assert spark.read.parquet(target).count() == 2
