"""conf/pipelines/recsys_demo.yaml at the smallest sizes that still exercise every step (for tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "conf" / "pipelines" / "recsys_demo.yaml"
TINY = {  # dotted keys: the rest of each step stays
    "generate": {"size": 0.2},  # 200 users (~4,800 events), 200 items
    "item2vec": {"model.vector_size": 16, "model.epochs": 3, "model.min_count": 1, "model.syncs_per_epoch": 1},
    "index": {"popularity.dims": 4},
    "build_pq": {"quantizer.m": 5, "quantizer.nbits": 4, "quantizer.max_iter": 5},  # 16 + 4 dimensions
    "recall": {"routes.pq.k": 30, "merge.budget": 60, "coarse.budget": 30, "query.popularity_dims": 4},
    "rank": {
        "model.trees.num_trees": 5,
        "model.trees.max_depth": 3,
        "model.trees.min_instances_per_node": 5,
        "model.lr.reg_grid": [0.1],
        "model.lr.max_iter": 10,
        "model.downsampling.negative_rate": 0.5,
    },
    "baselines": {"als": {"ranks": [8], "reg_params": [0.1], "alphas": [1.0], "max_iter": 3}},
    "evaluate": {"list_size": 30, "ks": [10, 30]},
}


def tiny_definition(spark_conf: str = "conf/spark/test.yaml") -> dict:
    """The demo definition with tiny sizes and the tests' Spark settings."""
    data = yaml.safe_load(DEMO.read_text())
    data["spark"]["conf_file"] = spark_conf
    for step, sets in TINY.items():
        data["steps"][step]["set"].update(sets)
    return data


def write_tiny(path: Path, **spark: object) -> Path:
    """Write the tiny definition (``spark`` keys replace the definition's) to ``path``."""
    data = tiny_definition()
    data["spark"].update(spark)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
