"""Supervised fastText: ids against the official library and a plain-Python reference, the kernel's SGD step against
fastText's per-example update written out in loops, and the Spark stages (learning, hs, save/load, determinism,
inside a Pipeline after the tokeniser)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import functions as F

from pipelines.text import fasttext_trainer
from pipelines.text.fasttext import FastTextClassificationModel, FastTextClassifier, FastTextError
from pipelines.text.fasttext_ids import fnv_hashes, line_ids
from pipelines.text.fasttext_kernel import Tree, hidden, log_probabilities, train_rows
from pipelines.text.tokenizer import TextTokenizer

WORDS = ["股市", "上涨", "球队", "比赛", "电影", "明星", "abc", "Zürich", "x"]


def reference_hash(word: str) -> int:
    """fastText's Dictionary::hash, byte by byte: each UTF-8 byte read as a signed char."""
    h = 2166136261
    for byte in word.encode("utf-8"):
        h ^= byte | 0xFFFFFF00 if byte >= 128 else byte
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def reference_line(tokens: list[str], vocab: list[str], n: int, bucket: int) -> list[int]:
    """Dictionary::getLine + addWordNgrams of a line of a file, in loops."""
    tokens = tokens + ["</s>"]
    index = {w: i for i, w in enumerate(vocab)}
    ids = [index[t] for t in tokens if t in index]
    signed = [h - 2**32 if h >= 2**31 else h for h in map(reference_hash, tokens)]
    for i in range(len(signed)):
        h = signed[i] % 2**64
        for j in range(i + 1, min(len(signed), i + n)):
            h = (h * 116049371 + signed[j]) % 2**64
            ids.append(len(vocab) + h % bucket)
    return ids


QUERIES = [["股市", "上涨", "新词"], ["明星"], [], ["电影", "unknown", "比赛", "x", "Zürich"], ["rare3", "abc"]]


def test_hashes_and_line_ids_match_a_plain_reference():
    words = WORDS + ["", "é" * 40]
    assert fnv_hashes(pa.array(words)).tolist() == [reference_hash(w) for w in words]
    vocab = ["</s>", "股市", "x", "abc", "比赛"]
    lengths, ids = line_ids(pa.array(QUERIES, pa.list_(pa.string())), pa.array(vocab), 3, 1000)
    rows = np.split(ids, np.cumsum(lengths)[:-1])
    assert [row.tolist() for row in rows] == [reference_line(q, vocab, 3, 1000) for q in QUERIES]


def test_line_ids_match_the_official_library(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    rng = random.Random(0)
    rare = [f"rare{i}" for i in range(3000)]  # about 2 occurrences each
    path = tmp_path / "train.txt"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(3000):
            tokens = [rng.choice(rng.choice([WORDS, rare])) for _ in range(rng.randint(1, 8))]
            f.write(f"__label__{i % 3} " + " ".join(tokens) + "\n")
    # epoch 0: the dictionary and the random start only, whose distinct rows the ids are compared through. The
    # official DenseMatrix::uniform fills one tenth of the matrix per thread, so fewer than 10 threads leave rows
    # of uninitialised memory (and short runs that stop with "Encountered NaN").
    model = fasttext.train_supervised(
        str(path), wordNgrams=3, bucket=1000, minCount=5, epoch=0, dim=8, thread=12, verbose=0
    )
    vocab = model.get_words()
    assert "</s>" in vocab and set(WORDS) < set(vocab) and 1 < len(vocab) - len(WORDS) < len(rare)  # minCount
    lengths, ids = line_ids(pa.array(QUERIES, pa.list_(pa.string())), pa.array(vocab), 3, 1000)
    matrix = model.get_input_matrix()
    for query, row in zip(QUERIES, np.split(ids, np.cumsum(lengths)[:-1])):
        # the official sentence vector of a supervised model is the mean input row of getLine's ids
        np.testing.assert_allclose(matrix[row].mean(axis=0), model.get_sentence_vector(" ".join(query)), atol=1e-6)
        words = [model.get_word_id(t) for t in query + ["</s>"] if model.get_word_id(t) >= 0]
        assert row[: len(words)].tolist() == words


def test_tree_is_fasttexts_huffman_tree():
    # classes by count, most frequent first: 1 (4), 3 (2), 0 (1), 2 (1); worked by hand from buildTree
    tree = Tree.build(np.array([1, 4, 1, 2]))
    paths = [p[m].tolist() for p, m in zip(tree.paths, tree.mask)]
    codes = [c[m].tolist() for c, m in zip(tree.codes, tree.mask)]
    assert paths == [[0, 1, 2], [2], [0, 1, 2], [1, 2]]
    assert codes == [[1, 0, 0], [1], [0, 0, 0], [1, 0]]


def reference_update(w_in, w_out, ids, label, lr, loss, tree):
    """Model::update with SoftmaxLoss / HierarchicalSoftmaxLoss::forward, one example, in loops (float64)."""
    h = w_in[ids].mean(axis=0)
    grad = np.zeros_like(h)
    if loss == "softmax":
        scores = w_out @ h
        p = np.exp(scores - scores.max())
        p /= p.sum()
        for i in range(len(w_out)):
            alpha = lr * (float(i == label) - p[i])
            grad += alpha * w_out[i]
            w_out[i] += alpha * h
    else:
        for node, code, used in zip(tree.paths[label], tree.codes[label], tree.mask[label]):
            if used:
                alpha = lr * (code - 1.0 / (1.0 + np.exp(-w_out[node] @ h)))
                grad += alpha * w_out[node]
                w_out[node] += alpha * h
    for i in ids:
        w_in[i] += grad / len(ids)


@pytest.mark.parametrize("loss", ["softmax", "hs"])
def test_kernel_step_is_fasttexts_update(loss):
    rng = np.random.default_rng(3)
    classes, dim = 5, 6
    tree = Tree.build(np.array([9, 3, 5, 1, 2])) if loss == "hs" else None
    w_in = rng.uniform(-0.5, 0.5, (30, dim)).astype(np.float32)
    w_out = rng.uniform(-0.5, 0.5, (classes if loss == "softmax" else classes - 1, dim)).astype(np.float32)
    lengths = np.array([3, 1, 4, 2])
    ids = np.array([0, 4, 4, 7, 1, 2, 29, 0, 5, 9])  # repeated ids within and across rows
    labels = np.array([2, 0, 4, 3])
    ref_in, ref_out = w_in.astype(np.float64), w_out.astype(np.float64)
    starts = np.cumsum(lengths) - lengths
    tokens_before = np.cumsum(lengths) - lengths
    for row, (s, n) in enumerate(zip(starts, lengths)):
        lr = 0.4 + (0.1 - 0.4) * tokens_before[row] / lengths.sum()
        reference_update(ref_in, ref_out, ids[s : s + n], labels[row], lr, loss, tree)
    trained = train_rows(w_in, w_out, lengths, ids, labels, (0.4, 0.1), loss, tree, batch_size=1)
    assert trained == lengths.sum()
    np.testing.assert_allclose(w_in, ref_in, atol=1e-5)
    np.testing.assert_allclose(w_out, ref_out, atol=1e-5)
    probabilities = np.exp(log_probabilities(w_out, hidden(w_in, lengths, ids), loss, tree))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def reviews(spark):
    """A separable corpus: class 0 has praise words, class 1 complaints, both share filler words."""
    rng = random.Random(7)
    good, bad, filler = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "sad"], ["the", "movie", "film"]
    rows = []
    for i in range(120):
        label = i % 2
        tokens = rng.sample(filler, 2) + rng.sample(bad if label else good, 2)
        rng.shuffle(tokens)
        rows.append((" ".join(tokens), float(label)))
    return spark.createDataFrame(rows, "text string, label double").coalesce(1).cache()


def test_softmax_in_a_pipeline_learns_and_loads_back(spark, reviews, tmp_path):
    pipeline = Pipeline(
        stages=[
            TextTokenizer(inputCol="text", outputCol="tokens"),
            FastTextClassifier(dim=8, epoch=4, lr=0.5, wordNgrams=2, epochsPerSync=4, seed=3),
        ]
    )
    model = pipeline.fit(reviews)
    scored = model.transform(reviews).select("label", "prediction", "probability", "rawPrediction").toPandas()
    assert (scored["label"] == scored["prediction"]).all()
    probabilities = np.stack(scored["probability"].map(lambda v: v.toArray()))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        np.stack(scored["rawPrediction"].map(lambda v: v.toArray())), np.log(probabilities), rtol=1e-5, atol=1e-6
    )
    model.write().save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))
    stage = loaded.stages[-1]
    assert isinstance(stage, FastTextClassificationModel) and stage.value("wordNgrams") == 2
    assert stage.summary == model.stages[-1].summary and stage.summary["classes"] == 2
    again = loaded.transform(reviews).select("probability").toPandas()
    np.testing.assert_array_equal(np.stack(again["probability"].map(lambda v: v.toArray())), probabilities)


@pytest.mark.slow  # over 9 s: the unit tier stays under 10 minutes
def test_hs_learns_and_repeats_with_a_seed(spark, reviews):
    tokens = TextTokenizer(inputCol="text", outputCol="tokens").transform(reviews).cache()
    estimator = FastTextClassifier(loss="hs", dim=8, epoch=2, lr=0.5, syncsPerEpoch=2, seed=5)
    first, second = estimator.fit(tokens), estimator.fit(tokens)
    np.testing.assert_array_equal(first.w_in, second.w_in)
    np.testing.assert_array_equal(first.w_out, second.w_out)
    assert first.summary["rounds"] == 4
    assert first.transform(tokens).where(F.col("prediction") != F.col("label")).count() == 0


def test_driver_and_executor_combines_train_alike(spark, reviews, monkeypatch):
    """A round's deltas combined on the driver (small models) or by reducers give the same weights, and the
    model keeps a row for exactly the n-gram buckets the rows use."""
    tokens = TextTokenizer(inputCol="text", outputCol="tokens").transform(reviews).cache()
    estimator = FastTextClassifier(dim=4, epoch=2, lr=0.5, wordNgrams=2, bucket=1000, seed=1)
    on_driver = estimator.fit(tokens)
    monkeypatch.setattr(fasttext_trainer, "DRIVER_COMBINE_BYTES", 0)
    on_executors = estimator.fit(tokens)
    assert (on_driver.summary["combine_on"], on_executors.summary["combine_on"]) == ("driver", "executors")
    np.testing.assert_array_equal(on_driver.w_in, on_executors.w_in)
    np.testing.assert_array_equal(on_driver.w_out, on_executors.w_out)
    words = pa.array(on_driver.words, pa.string())
    _, ids = line_ids(pa.array(tokens.toPandas()["tokens"].tolist(), pa.list_(pa.string())), words, 2, 1000)
    np.testing.assert_array_equal(on_driver.buckets, np.unique(ids[ids >= len(words)]) - len(words))


def test_labels_must_be_class_indices(spark):
    rows = spark.createDataFrame([(["a"], 0.0), (["b"], 0.5)], "tokens array<string>, label double")
    with pytest.raises(FastTextError, match="label column 'label': expected class indices"):
        FastTextClassifier().fit(rows)
