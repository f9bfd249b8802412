"""Both file system implementations (``HadoopFS`` through the JVM, ``ArrowFS`` through pyarrow for Spark Connect
clients) give the same answers for every call the commit protocol, leases and the planner make."""

from __future__ import annotations

import os

import pytest

from pipelines.fs import ArrowFS, HadoopFS, file_system
from pipelines.lineage import fingerprint


@pytest.fixture(params=["hadoop", "arrow"])
def fs(request, spark):
    return HadoopFS(spark) if request.param == "hadoop" else ArrowFS()


@pytest.fixture(params=["plain", "file-uri"])
def base(request, tmp_path):
    return str(tmp_path) if request.param == "plain" else f"file://{tmp_path}"


def test_factory_picks_hadoop_on_a_classic_session(spark):
    assert type(file_system(spark)) is HadoopFS


def test_files_exist_read_and_list(fs, base):
    assert not fs.exists(f"{base}/a") and fs.list_names(f"{base}/a") == []
    fs.write_text(f"{base}/a/b/c.txt", "héllo")  # parents are made, as Hadoop's create makes them
    assert fs.exists(f"{base}/a/b/c.txt") and fs.is_file(f"{base}/a/b/c.txt") and not fs.is_dir(f"{base}/a/b/c.txt")
    assert fs.is_dir(f"{base}/a/b") and not fs.is_file(f"{base}/a/b")
    assert fs.read_text(f"{base}/a/b/c.txt") == "héllo"
    fs.write_bytes(f"{base}/a/b/c.txt", b"replaced")
    assert fs.read_text(f"{base}/a/b/c.txt") == "replaced"
    fs.mkdirs(f"{base}/a/empty/deeper")
    assert sorted(fs.list_names(f"{base}/a")) == ["b", "empty"]
    assert fs.list_names(f"{base}/a/b/c.txt") == ["c.txt"]
    with pytest.raises(FileNotFoundError, match="not found"):
        fs.read_text(f"{base}/a/none.txt")


def test_create_exclusive_once(fs, base):
    assert fs.create_exclusive(f"{base}/lease/x.json", b"first")
    assert not fs.create_exclusive(f"{base}/lease/x.json", b"second")
    assert fs.read_text(f"{base}/lease/x.json") == "first"


def test_rename(fs, base):
    fs.write_text(f"{base}/src/part", "1")
    fs.write_text(f"{base}/other/part", "2")
    for missing in [f"{base}/missing", f"{base}/src/none"]:
        with pytest.raises(OSError, match="could not rename"):
            fs.rename(missing, f"{base}/elsewhere")
    fs.rename(f"{base}/src", f"{base}/moved")
    assert not fs.exists(f"{base}/src") and fs.read_text(f"{base}/moved/part") == "1"
    fs.rename(f"{base}/moved/part", f"{base}/moved/renamed")  # files too (a lease set aside)
    assert fs.list_names(f"{base}/moved") == ["renamed"]
    fs.rename(f"{base}/moved", f"{base}/other")  # onto a directory: into it
    assert sorted(fs.list_names(f"{base}/other")) == ["moved", "part"]


def test_delete_recursive_and_not(fs, base):
    fs.write_text(f"{base}/full/f", "x")
    fs.mkdirs(f"{base}/empty")
    assert fs.delete(f"{base}/full", recursive=False) is False and fs.exists(f"{base}/full/f")
    assert fs.delete(f"{base}/empty", recursive=False) is True and not fs.exists(f"{base}/empty")
    assert fs.delete(f"{base}/full/f", recursive=False) is True
    fs.write_text(f"{base}/full/g/h", "x")
    assert fs.delete(f"{base}/full") is True and not fs.exists(f"{base}/full")
    assert fs.delete(f"{base}/full") is False


def test_files_under_skips_hidden_dirs(fs, base, tmp_path):
    for name in ["x/part-0", "x/sub/part-1", "x/_staging/junk", "x/sub/_leases/l"]:
        fs.write_text(f"{base}/{name}", name)
    found = {e.relative: e.length for e in fs.files_under(f"{base}/x", ("_staging", "_leases"))}
    assert found == {"part-0": 8, "sub/part-1": 12}
    (only,) = fs.files_under(f"{base}/x/part-0")
    assert only.relative == "part-0" and only.mtime_ms == int(os.stat(tmp_path / "x" / "part-0").st_mtime_ns // 10**6)


def test_both_fingerprint_a_directory_alike(spark, tmp_path):
    """The planner's staleness check compares fingerprints taken by either implementation."""
    for name in ["t/part-0.parquet", "t/ds=1/part-1.parquet", "t/_staging/tmp"]:
        ArrowFS().write_text(f"{tmp_path}/{name}", name * 3)
    arrow = fingerprint(ArrowFS(), f"{tmp_path}/t")
    assert arrow == fingerprint(HadoopFS(spark), f"{tmp_path}/t") and arrow["files"] == 2
