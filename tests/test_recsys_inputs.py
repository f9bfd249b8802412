"""Recommender inputs: the item index with its popularity prior, archive members, and one-line errors for bad input."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.job_runtime import run_job
from pipelines.recsys.archive import read_members
from pipelines.recsys.index import index_query, index_vectors
from pipelines.recsys.tables import RecsysError

ROOT = Path(__file__).resolve().parents[1]


def test_index_inner_product_is_cosine_plus_popularity_prior(spark):
    vectors = spark.createDataFrame(
        [("1", [3.0, 4.0]), ("2", [0.0, 2.0]), ("3", [1.0, 0.0])], "word STRING, vector ARRAY<FLOAT>"
    )
    history = spark.createDataFrame([(1,), (1,), (2,), (9,)], "item_id BIGINT")
    indexed = index_vectors(vectors, history, 0.5, 2).collect()
    items = {r["item_id"]: (np.array(r["vector"]), r["events"]) for r in indexed}
    query = spark.createDataFrame([([0.0, 5.0],)], "vector ARRAY<FLOAT>").select(index_query("vector", 2).alias("q"))
    q = np.array(query.first()["q"])
    np.testing.assert_allclose(q, [0.0, 1.0, 1.0, 0.0])
    for word, cos in (("1", 0.8), ("2", 1.0), ("3", 0.0)):
        vector, events = items[word]
        assert len(vector) == 4 and vector[3] == 0
        assert q @ vector == pytest.approx(cos + 0.5 * math.log1p(events), rel=1e-6)
    assert [items[w][1] for w in ("1", "2", "3")] == [2, 1, 0]
    plain = index_vectors(vectors, history, 0.0, 0).first()
    assert len(plain["vector"]) == 2
    with pytest.raises(ValueError, match="popularity dims must be >= 1"):
        index_vectors(vectors, history, 0.5, 0)


def test_archive_members(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("top/ratings.csv", "a,b\n1,2\n")
        z.writestr("top/README.txt", "hello")
    assert read_members(str(archive), {"ratings.csv": "ratings"}) == {"ratings": ("ratings.csv", b"a,b\n1,2\n")}
    with pytest.raises(RecsysError, match=r"data.zip: member 'movies.csv' not found; members: top/ratings.csv"):
        read_members(str(archive), {"movies.csv": "movies"})
    with pytest.raises(RecsysError, match="archive not found"):
        read_members(str(tmp_path / "nope.zip"), {"a": "b"})


def test_split_job_names_the_missing_column(spark, tmp_path, capsys):
    path = tmp_path / "events"
    spark.createDataFrame([(1, 2)], "user_id BIGINT, item_id BIGINT").write.parquet(str(path))
    code = run_job("split_interactions", ["--set", f"input.path={path}", "--set", f"output.path={tmp_path / 'out'}"])
    assert code == 1
    assert f"error: {path}: column 'ts' not found; columns: user_id, item_id" in capsys.readouterr().err
    code = run_job(
        "split_interactions",
        ["--set", f"input.path={tmp_path / 'missing'}", "--set", f"output.path={tmp_path / 'out'}"],
    )
    assert code == 1 and f"input path not found: {tmp_path / 'missing'}" in capsys.readouterr().err
