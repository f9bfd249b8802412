"""Slow tier: conf/pipelines/recsys_movielens.yaml on ../shared/data/movielens_latest_small (skipped without it).

The full grids and the comparison table are benchmarks/bench_recsys.py's; here the pipeline runs end to end with
one-point ALS and EASE grids, and the ranked lists must beat popularity and the PQ order alone on NDCG@10. It is
the slow tier's longest test: 496 s on a quiet 2-core machine with the slow tier's full JIT (baselines 118 s,
recall 124 s, rank 100 s, features 62 s), 750 s with the unit tier's C1-only JIT.
"""

import pytest

from pipelines.orchestration.definition import build_pipeline, read_definition
from pipelines.orchestration.runner import Runner
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
DEFINITION = ROOT / "conf" / "pipelines" / "recsys_movielens.yaml"


def test_movielens_pipeline_beats_popularity(spark, shared_data, tmp_path):
    archive = shared_data / "movielens_latest_small" / "ml-latest-small.zip"
    if not archive.is_file():
        pytest.skip(f"not found: {archive}")
    data = read_definition(DEFINITION)  # with the demo's definition it extends merged in
    data["spark"]["conf_file"] = "conf/spark/test.yaml"
    data["steps"]["unpack"]["set"]["archive"] = str(archive)
    data["steps"]["unpack"]["inputs"] = [str(archive)]
    data["steps"]["baselines"]["set"]["als"] = {"ranks": [64], "reg_params": [0.1], "alphas": [10.0]}
    data["steps"]["baselines"]["set"]["ease.lambdas"] = [100.0]
    pipeline = build_pipeline(data, DEFINITION, str(tmp_path))
    manifest = Runner(pipeline, "session", spark=spark).run("2026-11-20").data
    steps = {s["name"]: s for s in manifest["steps"]}
    assert steps["split"]["metrics"]["split"]["users_with_targets"] == 610
    assert steps["split"]["metrics"]["split"]["events"] == 100836
    methods = steps["evaluate"]["metrics"]["evaluation"]["methods"]
    assert methods["ours"]["users"] == 610
    assert methods["ours"]["ndcg@10"] > methods["popularity"]["ndcg@10"]
    assert methods["ours"]["ndcg@10"] > methods["ours_recall_only"]["ndcg@10"]
    assert steps["evaluate"]["metrics"]["evaluation"]["ranker"]["gauc"] > 0.6
