"""Feature preparation for GBDT+LR from a declared schema, as Spark ML stages fitted on training rows.

Trees get median-imputed numerics (``imputer``: the same medians on every run), missing-value flags and
frequency-ranked category indices; the LR gets signed-log numerics, the same flags, one-hot categories and hashed
high-cardinality ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.feature import FeatureHasher, OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.errors import UserError
from pipelines.gbdt_lr.categories import RareCategoryGrouper, RareCategoryGrouperModel
from pipelines.gbdt_lr.imputer import MedianImputer

TREE_FEATURES = "tree_features"
LR_FEATURES = "lr_features"


class FeatureError(UserError):
    """Input that would make the model silently wrong; the message names the column."""


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns are the label, numeric, low-cardinality categorical and high-cardinality ids."""

    label: str
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    hashed: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "FeatureSpec":
        return cls(cfg["label"], list(cfg["numeric"]), list(cfg["categorical"]), list(cfg["hashed"]))

    @property
    def inputs(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.hashed]

    def tree_input_names(self) -> list[str]:
        """Names of the tree feature vector's slots, in order (for importances)."""
        return (
            [f"{c}" for c in self.numeric]
            + [f"{c}__missing" for c in self.numeric]
            + [f"{c}" for c in self.categorical]
            + [f"{c}__rank" for c in self.hashed]
        )


def check_columns(df: DataFrame, spec: FeatureSpec, where: str, need_label: bool = True) -> None:
    """Every declared column present; a clear error otherwise (scoring-time schema mismatch included)."""
    wanted = [*spec.inputs, *([spec.label] if need_label else [])]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise FeatureError(f"{where}: missing column(s) {missing}; the model expects {wanted}")
    string_like = {f.name for f in df.schema if f.dataType.typeName() == "string"}
    not_numeric = [c for c in spec.numeric if c in string_like]
    if not_numeric:
        raise FeatureError(
            f"{where}: numeric column(s) {not_numeric} are strings; cast them or declare them categorical"
        )
    if need_label and not isinstance(df.schema[spec.label].dataType, T.NumericType):
        raise FeatureError(
            f"{where}: label column '{spec.label}' must be numeric (0 or 1), got "
            f"{df.schema[spec.label].dataType.simpleString()}"
        )


def check_training_data(df: DataFrame, spec: FeatureSpec, where: str) -> None:
    """Columns as declared, labels 0 or 1, no all-null feature, no single-valued categorical; one aggregate pass.

    Run on the whole input before any split or filter, so that a row labelled 2 or null fails the job instead
    of being dropped by the split; the message counts such rows and shows the smallest and largest bad label.
    """
    check_columns(df, spec, where)
    label = F.col(spec.label)
    bad = label.isNull() | ~label.isin(0, 1)
    aggs = [
        F.count_if(bad).alias("_bad"),
        F.count_if(label.isNull()).alias("_null"),
        F.min(F.when(bad, label)).alias("_min"),
        F.max(F.when(bad, label)).alias("_max"),
    ]
    aggs += [F.count(F.col(c)).alias(f"_n_{i}") for i, c in enumerate(spec.inputs)]
    aggs += [F.approx_count_distinct(F.col(c)).alias(f"_d_{i}") for i, c in enumerate(spec.categorical)]
    row = df.agg(*aggs).first()
    if row["_bad"]:
        examples = (["null"] if row["_null"] else []) + [
            str(v) for v in dict.fromkeys((row["_min"], row["_max"])) if v is not None
        ]
        raise FeatureError(
            f"{where}: label column '{spec.label}' must be 0 or 1 in every row; {row['_bad']:,} "
            f"rows are not, e.g. {', '.join(examples)}"
        )
    all_null = [c for i, c in enumerate(spec.inputs) if row[f"_n_{i}"] == 0]
    if all_null:
        raise FeatureError(f"{where}: feature column(s) {all_null} are null in every training row")
    constant = [c for i, c in enumerate(spec.categorical) if row[f"_d_{i}"] <= 1]
    if constant:
        raise FeatureError(f"{where}: categorical column(s) {constant} have a single value in training; drop them")


def preparation_stages(
    spec: FeatureSpec, min_category_count: int, log_numeric: bool, hash_buckets: int
) -> list[Transformer]:
    """Unfitted stages that add ``tree_features`` and ``lr_features``."""
    num, cat, ids = spec.numeric, spec.categorical, spec.hashed
    flags = [f"CAST(`{c}` IS NULL AS DOUBLE) AS `{c}__missing`" for c in num]
    casts = [f"CAST(`{c}` AS DOUBLE) AS `{c}__num`" for c in num]
    stages: list[Transformer] = [
        SQLTransformer(
            statement=f"SELECT *, {', '.join(flags + casts)} FROM __THIS__" if num else "SELECT * FROM __THIS__"
        ),
    ]
    if num:
        stages.append(MedianImputer(inputCols=[f"{c}__num" for c in num], outputCols=[f"{c}__imp" for c in num]))
        scale = [
            f"SIGN(`{c}__imp`) * LN(1 + ABS(`{c}__imp`)) AS `{c}__lr`" if log_numeric else f"`{c}__imp` AS `{c}__lr`"
            for c in num
        ]
        stages.append(SQLTransformer(statement=f"SELECT *, {', '.join(scale)} FROM __THIS__"))
    grouped = [*cat, *ids]
    if grouped:
        stages += [
            RareCategoryGrouper(
                inputCols=grouped, outputCols=[f"{c}__grp" for c in grouped], minCount=min_category_count
            ),
            StringIndexer(
                inputCols=[f"{c}__grp" for c in grouped],
                outputCols=[f"{c}__idx" for c in grouped],
                handleInvalid="keep",
                stringOrderType="frequencyDesc",
            ),
        ]
    if ids:
        # Frequency rank as an ordered number: trees split popular from rare ids without 1000s of bins.
        ranks = [f"CAST(`{c}__idx` AS DOUBLE) AS `{c}__rank`" for c in ids]
        stages.append(SQLTransformer(statement=f"SELECT *, {', '.join(ranks)} FROM __THIS__"))
    stages.append(
        VectorAssembler(
            inputCols=[f"{c}__imp" for c in num]
            + [f"{c}__missing" for c in num]
            + [f"{c}__idx" for c in cat]
            + [f"{c}__rank" for c in ids],
            outputCol=TREE_FEATURES,
        )
    )
    lr_inputs = [f"{c}__lr" for c in num] + [f"{c}__missing" for c in num]
    if cat:
        indices, one_hot = [f"{c}__idx" for c in cat], [f"{c}__ohe" for c in cat]
        stages.append(OneHotEncoder(inputCols=indices, outputCols=one_hot, handleInvalid="keep", dropLast=False))
        lr_inputs += one_hot
    if ids:
        groups = [f"{c}__grp" for c in ids]
        stages.append(
            FeatureHasher(inputCols=groups, categoricalCols=groups, outputCol="ids__hashed", numFeatures=hash_buckets)
        )
        lr_inputs.append("ids__hashed")
    stages.append(VectorAssembler(inputCols=lr_inputs, outputCol=LR_FEATURES))
    return stages


def max_category_count(prep: PipelineModel) -> int:
    """Most categories kept in any column (trees need maxBins above it); 0 without categoricals."""
    kept = [
        values
        for stage in prep.stages
        if isinstance(stage, RareCategoryGrouperModel)
        for values in stage.getOrDefault(stage.keptValues)
    ]
    return max((len(v) for v in kept), default=0)
