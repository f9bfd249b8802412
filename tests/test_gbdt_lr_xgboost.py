"""XGBoost trees for GBDT+LR and the GBDTLR Estimator: leaf slots against the booster, persistence, Pipeline and
CrossValidator, early stopping, scale_pos_weight against downsampling, one-sentence Param errors."""

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import CrossValidator, CrossValidatorModel, ParamGridBuilder
from pyspark.sql import functions as F

from pipelines.datagen import demo_tables
from pipelines.gbdt_lr.leaves import leaf_offsets
from pipelines.gbdt_lr.model import GBDTLR, GBDTLRModel, stratified_split
from pipelines.gbdt_lr.xgboost_leaves import XGBoostLeafEncoder, XGBoostLeafEncoderModel
from pipelines.metrics import roc_auc
from pipelines.validation import ParamError

FEATURES = ["i1", "i2", "i3", "i4", "i5", "i6"]
COLUMNS = dict(labelCol="label", numericCols=FEATURES, categoricalCols=["c1", "c2", "c3"], hashedCols=["c4"])
SMALL = dict(numTrees=8, maxDepth=3, regGrid=[0.01, 0.1], maxIter=10, **COLUMNS)


@pytest.fixture(scope="module")
def clicks(spark):
    return demo_tables(spark, size=0.06, seed=3)["clicks"].cache()


@pytest.fixture(scope="module")
def split(clicks):
    train_df, test_df = stratified_split(clicks, "label", 0.3, seed=7)
    return train_df.cache(), test_df.cache()


@pytest.fixture(scope="module")
def vectors(clicks):
    filled = clicks.fillna(0.0, subset=FEATURES)
    return VectorAssembler(inputCols=FEATURES, outputCol="f").transform(filled).cache()


@pytest.fixture(scope="module")
def lossguide(vectors):
    """Leaf-wise trees with a leaf budget: trees of different leaf counts, node ids with gaps between leaves."""
    return XGBoostLeafEncoder(
        featuresCol="f",
        labelCol="label",
        numTrees=6,
        maxDepth=0,
        maxLeaves=16,
        minChildWeight=40.0,
        growPolicy="lossguide",
        learningRate=0.3,
        numWorkers=2,
    ).fit(vectors)


def _leaves_from_table(booster):
    """Per tree, the node ids of its leaves in order, from ``trees_to_dataframe`` (not from the JSON dump)."""
    table = booster.trees_to_dataframe()
    leaves = table[table.Feature == "Leaf"]
    return [sorted(leaves[leaves.Tree == t].Node.tolist()) for t in sorted(table.Tree.unique())]


def test_leaf_offsets_and_slot_counts_follow_the_booster(lossguide):
    per_tree = _leaves_from_table(lossguide.booster)
    counts = lossguide.leaf_counts()
    assert counts == [len(ids) for ids in per_tree]
    assert len(counts) == 6 and max(counts) <= 16 and len(set(counts)) > 1, counts
    assert leaf_offsets(counts) == list(np.cumsum([0, *counts[:-1]]))


def test_udf_leaves_equal_the_booster_on_collected_rows(lossguide, vectors):
    """The pandas UDF's one-hot slots are, row by row, ``Booster.predict(pred_leaf=True)``'s leaf node mapped to
    its ordinal among its tree's leaves, at the tree's offset."""
    import xgboost as xgb

    rows = (
        lossguide.transform(vectors)
        .select("click_id", vector_to_array("f").alias("x"), vector_to_array("leaves").alias("v"))
        .orderBy("click_id")
        .toPandas()
    )
    x = np.stack(rows.x.to_numpy())
    nodes = lossguide.booster.predict(xgb.DMatrix(x, missing=np.nan), pred_leaf=True).astype(int)
    per_tree, counts = _leaves_from_table(lossguide.booster), lossguide.leaf_counts()
    offsets = leaf_offsets(counts)
    expected = np.zeros((len(rows), sum(counts)))
    for t, ids in enumerate(per_tree):
        expected[np.arange(len(rows)), offsets[t] + np.searchsorted(ids, nodes[:, t])] = 1.0
    np.testing.assert_array_equal(np.stack(rows.v.to_numpy()), expected)


def test_contributions_add_up_to_the_booster_margin(lossguide, vectors):
    """Each row's SHAP contributions (bias last) sum to the booster's margin on that row."""
    import xgboost as xgb

    x = np.stack(vectors.select(vector_to_array("f").alias("x")).limit(50).toPandas().x.to_numpy())
    contributions = lossguide.contributions(x)
    margin = lossguide.booster.predict(xgb.DMatrix(x, missing=np.nan), output_margin=True)
    assert contributions.shape == (50, len(FEATURES) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, rtol=1e-4, atol=1e-4)


def test_xgboost_leaf_model_persistence(lossguide, vectors, tmp_path):
    lossguide.write().overwrite().save(str(tmp_path / "leaves"))
    loaded = XGBoostLeafEncoderModel.load(str(tmp_path / "leaves"))
    assert loaded.booster_raw == lossguide.booster_raw and loaded.getOrDefault("growPolicy") == "lossguide"
    assert_df_equality(
        loaded.transform(vectors).select("click_id", "leaves"),
        lossguide.transform(vectors).select("click_id", "leaves"),
    )


def test_early_stopping_keeps_the_best_round(vectors):
    """With a large learning rate the validation loss turns up early; the kept booster ends at its best round."""
    model = XGBoostLeafEncoder(
        featuresCol="f",
        labelCol="label",
        numTrees=200,
        maxDepth=6,
        learningRate=0.8,
        minChildWeight=0.1,
        earlyStoppingRounds=5,
        validationFraction=0.3,
        numWorkers=2,
    ).fit(vectors)
    kept = len(model.leaf_counts())
    assert 1 <= kept < 100, kept


@pytest.fixture(scope="module")
def pipeline(split):
    """GBDTLR fitted as the one stage of a ``pyspark.ml.Pipeline``."""
    return Pipeline(stages=[GBDTLR(**SMALL)]).fit(split[0])


def test_estimator_round_trip_in_a_pipeline(split, pipeline, tmp_path):
    test_df = split[1]
    scored = pipeline.transform(test_df)
    assert set(scored.columns) == set(test_df.columns) | {"probability", "score"}
    assert roc_auc(scored, "score", "label") > 0.6
    pipeline.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    assert isinstance(loaded.stages[0], GBDTLRModel)
    assert loaded.stages[0].chosen == pipeline.stages[0].chosen
    assert_df_equality(
        loaded.transform(test_df).select("click_id", "score"), scored.select("click_id", "score"), ignore_row_order=True
    )
    GBDTLR(**SMALL).write().overwrite().save(str(tmp_path / "estimator"))
    assert GBDTLR.load(str(tmp_path / "estimator")).getOrDefault("numTrees") == 8


def test_modes_reuse_one_estimator(split, pipeline):
    train_df, test_df = split
    model = pipeline.stages[0]
    trees_only = model.copy({model.mode: "trees_only"})
    lr_only = GBDTLR(mode="lr_only", **SMALL).fit(train_df)
    assert "trees" not in lr_only.stages and "lr" in lr_only.stages
    for m in (model, trees_only, lr_only):
        assert roc_auc(m.transform(test_df), "score", "label") > 0.6
    with pytest.raises(ValueError, match="fitted with mode 'lr_only' and has no trees stage"):
        lr_only.copy({lr_only.mode: "gbdt_lr"}).transform(test_df)


@pytest.mark.slow  # five GBDT+LR fits (2 folds x 2 depths, then the best on all rows): about a minute on 2 cores
def test_cross_validator_tunes_the_trees(split, tmp_path):
    train_df, test_df = split
    estimator = GBDTLR(**{**SMALL, "numTrees": 4, "regGrid": [0.1], "maxIter": 5})
    grid = ParamGridBuilder().addGrid(estimator.maxDepth, [2, 4]).build()
    evaluator = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label")
    cv = CrossValidator(estimator=estimator, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2, seed=1)
    fitted = cv.fit(train_df)
    assert len(fitted.avgMetrics) == 2 and all(0.55 < m < 1 for m in fitted.avgMetrics)
    fitted.write().overwrite().save(str(tmp_path / "cv"))
    loaded = CrossValidatorModel.load(str(tmp_path / "cv"))
    assert loaded.bestModel.getOrDefault("maxDepth") == fitted.bestModel.getOrDefault("maxDepth")
    assert evaluator.evaluate(loaded.transform(test_df)) == pytest.approx(
        evaluator.evaluate(fitted.transform(test_df)), abs=1e-12
    )


@pytest.mark.slow  # two trees-only fits of 100 trees, about 15 s
def test_scale_pos_weight_is_recalibrated_like_downsampling(split):
    """Weighting positives by 4 is keeping a quarter of the negatives in expectation, and the trees-only scores are
    re-calibrated alike. Downsampled trees then average the observed click rate; weighted trees come close (their
    raw probability is far above it), though less close: XGBoost starts both from the unweighted base rate, and
    100 shallow trees on 2,100 rows do not move the weighted ones all the way."""
    train_df, test_df = split
    rate = test_df.agg(F.avg("label")).first()[0]
    common = dict(SMALL, mode="trees_only", numTrees=100, maxDepth=2, stepSize=0.3)
    weighted = GBDTLR(scalePosWeight=4.0, **common).fit(train_df).transform(test_df)
    sampled = GBDTLR(negativeRate=0.25, **common).fit(train_df).transform(test_df)
    means = {
        name: df.agg(F.avg("score"), F.avg(vector_to_array("probability")[1])).first()
        for name, df in (("weighted", weighted), ("sampled", sampled))
    }
    assert means["sampled"][0] == pytest.approx(rate, abs=0.03)
    assert means["weighted"][0] == pytest.approx(rate, abs=0.07)
    assert means["weighted"][1] > rate + 0.1
    assert abs(roc_auc(weighted, "score", "label") - roc_auc(sampled, "score", "label")) < 0.05


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(mode="trees"),
            "The 'mode' parameter of GBDTLR must be one of gbdt_lr, lr_only, trees_only. Got 'trees' instead.",
        ),
        (
            dict(learner="lightgbm"),
            "The 'learner' parameter of GBDTLR must be one of xgboost, spark. Got 'lightgbm' instead.",
        ),
        (dict(negativeRate=0.0), "The 'negativeRate' parameter of GBDTLR must be a number in (0, 1]. Got 0.0 instead."),
    ],
)
def test_bad_params_are_one_sentence(split, params, message):
    with pytest.raises(ParamError) as caught:
        GBDTLR(**{**SMALL, **params}).fit(split[0])
    assert str(caught.value) == message


@pytest.mark.slow  # over 9 s: the unit tier stays under 10 minutes
def test_workers_follow_rows_and_a_single_worker_reads_partitions_in_order(vectors):
    rows = vectors.count()
    encoder = XGBoostLeafEncoder(featuresCol="f", labelCol="label", numTrees=4, maxDepth=3, subsample=0.5)
    assert encoder.copy({encoder.rowsPerWorker: rows}).workers(vectors) == 1
    assert encoder.copy({encoder.rowsPerWorker: rows // 2}).workers(vectors) == 2  # local[2]: two slots
    assert encoder.copy({encoder.rowsPerWorker: rows // 5}).workers(vectors) == 2  # at most the slots
    assert encoder.copy({encoder.numWorkers: 1, encoder.rowsPerWorker: 1}).workers(vectors) == 1
    # Rows reach the workers in one order however they are partitioned (sorted by their values' hash), and the
    # order matters: the same rows in another order on one partition give another booster (row subsampling).
    single = vectors.select("f", "label").coalesce(1).withColumn("idx", F.monotonically_increasing_id()).cache()
    boosters = [
        encoder.fit(df.drop("idx")).booster.save_raw("json")
        for df in (
            single.repartition(4, "idx"),
            single.orderBy(F.desc("idx")).repartition(3),
            single,
            single.orderBy(F.desc("idx")).coalesce(1),
        )
    ]
    assert boosters[0] == boosters[1]
    assert boosters[2] != boosters[3]
