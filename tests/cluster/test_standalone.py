"""Cluster tier: jobs submitted with spark-submit to a real standalone cluster on 127.0.0.1.

Local mode runs Python in one process tree and hides serialisation bugs; here the package travels
to the executors as the ``--py-files`` zip, and results must match what local mode computes.
"""

import json

import pytest
from chispa import assert_df_equality

from pipelines.datagen import demo_tables

pytestmark = pytest.mark.cluster


def test_generate_and_ingest_on_two_executors(cluster, submit, spark, tmp_path):
    raw = tmp_path / "raw"
    submit(
        "generate_demo_data",
        "--set",
        "size=0.05",
        "--set",
        "seed=11",
        "--set",
        "malformed_fraction=0.02",
        "--set",
        f"output.path={raw}",
    )
    clean = tmp_path / "clean"
    done = submit(
        "ingest",
        "--set",
        f"input.path={raw / 'clicks'}",
        "--set",
        f"output.path={clean}",
        "--set",
        "max_malformed_fraction=0.05",
        "--run-date",
        "2026-05-01",
    )
    assert f"output: {clean / 'ds=2026-05-01'}" in done.stdout

    metrics = json.loads((clean / "ds=2026-05-01" / "_metrics.json").read_text())
    assert metrics["spark"]["master"] == cluster.url
    assert metrics["spark"]["executors"] == 2
    ingest = metrics["ingest"]["output"]
    assert ingest["rows_in"] == 2500
    assert ingest["rows_in"] == ingest["rows_good"] + ingest["rows_quarantined"] and ingest["rows_quarantined"] > 0

    # Rows made by pandas UDFs on the cluster's executors equal the same generation in local mode.
    expected = demo_tables(spark, size=0.05, seed=11)["clicks"]
    got = spark.read.parquet(str(clean / "ds=2026-05-01"))
    quarantined_ids = expected.join(got, "click_id", "left_anti")
    assert quarantined_ids.count() == ingest["rows_quarantined"]
    assert_df_equality(
        got,
        expected.join(quarantined_ids.select("click_id"), "click_id", "left_anti"),
        ignore_row_order=True,
        ignore_column_order=True,
        allow_nan_equality=True,
    )
