"""Word2Vec family on Spark: vocabulary as aggregates, trainers (``sgns``, ``ppmi``, ``mllib``), queries, evaluation.

Modules: ``vocabulary`` (counts, min_count, subsampling), ``coding`` (unigram^0.75 noise, Huffman codes),
``kernel`` (the one place a gensim model is built and trained on a shard), ``trainer_sgns`` (synchronised
distributed training), ``subwords`` (fastText's character n-grams, their buckets, composed vectors), ``ppmi``
(count-based vectors), ``mllib`` (Spark's own Word2Vec), ``model`` (Estimator/Model, persistence, exports),
``queries`` (batch most-similar and analogies), ``evaluation`` (analogy accuracy, WordSim353/SimLex-999, item
neighbours' category share), ``jobs`` (job mains).
"""
