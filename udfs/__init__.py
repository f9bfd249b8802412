"""Every pandas/Arrow UDF the pipelines declare (``*_udf``, numpy inside, Arrow batches in and out), with the
numpy kernels of PQ, TF-IDF, similar documents and word2vec queries they and ``mapInPandas`` run on batches."""
