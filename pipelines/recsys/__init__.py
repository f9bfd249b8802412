"""The recommender funnel: leave-last-out split, item2vec + PQ recall, GBDT+LR ranking, evaluation.

One idea per module: ``tables`` (reading and checking inputs), ``split`` (leave-last-out per user),
``sessions`` (session ids from time gaps), ``queries`` (user query vectors), ``index`` (item vectors
with a popularity prior, for PQ), ``recall`` (PQ candidates), ``cooccurrence`` (item pairs within a
window), ``features`` (ranker features), ``ranker`` (GBDT+LR on candidates), ``lists`` (ranked lists),
``baselines`` (popularity, implicit ALS), ``ease`` (the EASE anchor), ``rerank`` (MMR by category),
``evaluation`` (AUC/GAUC, recall/NDCG@k, the recall@k curve, diversity), ``vectors`` (array arithmetic),
``plots``, ``archive`` (unzip a source archive) and ``jobs``.
"""
