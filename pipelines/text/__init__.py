"""Text corpora: tokenisation (English and Chinese), TF-IDF with scikit-learn parity, keywords, similar documents.

Modules: ``validation`` (bad input), ``stop_words`` (shipped lists), ``tokenizer`` (the tokeniser stage),
``tfidf`` (the IDF stage and the pipeline builder), ``keywords``, ``similar`` (inverted-index cosine
neighbours) and ``jobs`` (the mains of ``jobs/build_tfidf.py`` and ``jobs/similar_docs.py``).

Supervised fastText: ``fasttext`` (the Estimator and its model), ``fasttext_ids`` (fastText's word and word n-gram
ids), ``fasttext_kernel`` (the numpy model and SGD step) and ``fasttext_trainer`` (rounds on Spark); its UDFs are in
``udfs.fasttext``.
"""
