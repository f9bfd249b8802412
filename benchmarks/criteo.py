"""Loading the Criteo samples in ../shared/data/criteo_kaggle_samples (benchmarks and slow tests)."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from pipelines.ingest import read_table

CRITEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "criteo_kaggle_samples"
ARFF_45K = CRITEO / "train_sample_45K_reduced20cols.arff.gz"
CSV_4K = CRITEO / "train_sample_4K.csv.gz"
NUMERIC = [f"I{i}" for i in range(1, 14)]


def read_arff(spark: SparkSession, path: Path = ARFF_45K) -> tuple[DataFrame, list[str]]:
    """The 45K ARFF sample as a typed table (``?`` is missing) and its categorical columns."""
    lines = gzip.open(path, "rt").read().splitlines()
    names = [line.split()[1] for line in lines if line.lower().startswith("@attribute")]
    data_at = next(i for i, line in enumerate(lines) if line.lower().startswith("@data"))
    tmp = Path(tempfile.mkdtemp(prefix="criteo45k-")) / "train.csv"
    tmp.write_text(",".join(names) + "\n" + "\n".join(lines[data_at + 1 :]) + "\n")
    categorical = [n for n in names if n.startswith("C")]
    schema = ", ".join(
        [f"{n} INT" if n == "Label" else f"{n} DOUBLE" if n.startswith("I") else f"{n} STRING" for n in names]
    )
    table = read_table(spark, str(tmp), "csv", schema, {"nullValue": "?"})
    return table.data, categorical


def read_full_sample(spark: SparkSession, path: Path = CSV_4K) -> tuple[DataFrame, list[str]]:
    """The 4.6K-row sample with all 39 features; its 26 categoricals are hashed ids."""
    categorical = [f"C{i}" for i in range(1, 27)]
    schema = ", ".join(
        ["Id BIGINT", "Label INT", *[f"{n} DOUBLE" for n in NUMERIC], *[f"{c} STRING" for c in categorical]]
    )
    return read_table(spark, str(path), "csv", schema).data, categorical
