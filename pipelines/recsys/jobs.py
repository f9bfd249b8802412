"""Mains of the recommender jobs: unpack_archive, split_interactions, build_item_index, recall_candidates,
build_features, train_ranker, recsys_baselines and evaluate_recsys (``jobs/<job>.py``; defaults in
``conf/jobs/<job>.yaml``).

Intermediate tables are written once (staged) and read back from the staging directory by later stages
of the same job, so nothing is computed twice and nothing grows on the driver.
"""

from __future__ import annotations

import json
import time
from functools import reduce
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.errors import load_model
from pipelines.gbdt_lr.features import check_training_data
from pipelines.gbdt_lr.model import SCORE
from pipelines.gbdt_lr.report import MODELS, importance_table
from pipelines.metrics import roc_auc
from pipelines.output import qualify
from pipelines.pq.encoder import PQEncoderModel
from pipelines.recsys.archive import read_members
from pipelines.recsys.baselines import als_lists, check_int_ids, fit_als, popularity_lists, tune_als
from pipelines.recsys.coarse import coarse_cut
from pipelines.recsys.ease import ease_lists, ease_weights, fit_index, tune_ease
from pipelines.recsys.evaluation import (
    diversity_metrics,
    position_metrics,
    ranker_quality,
    recall_curves,
    target_positions,
)
from pipelines.recsys.features import LABEL, FeatureSettings, candidate_features
from pipelines.recsys.index import index_query, index_vectors
from pipelines.recsys.lists import ranked_lists
from pipelines.recsys.merge import ROUTE_FEATURES, merge_routes, route_recall, target_share
from pipelines.recsys.plots import recall_curve_png
from pipelines.recsys.queries import recent_items, unit_item_vectors, user_queries
from pipelines.recsys.ranker import SPEC, fit_ranker, score_candidates
from pipelines.recsys.recall import pq_candidates
from pipelines.recsys.rerank import mmr_lists, settings_from
from pipelines.recsys.routes import (
    cold_users,
    cooccurrence_neighbours,
    neighbour_route,
    popularity_route,
    pq_route,
    route_lists,
    session_contexts,
    transition_neighbours,
)
from pipelines.recsys.sessions import sessionize
from pipelines.recsys.split import context, leave_last_out, tie_break, with_splits
from pipelines.recsys.tables import (
    ITEM,
    SESSION,
    SPLIT,
    TEST,
    TS,
    USER,
    VALID,
    RecsysError,
    epoch_seconds,
    read_parquet,
)

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext


def staged(ctx: "JobContext", key: str, df: DataFrame, path: str) -> DataFrame:
    """Stage ``df`` as output ``key`` and read it back (materialised once for the rest of the job)."""
    out = ctx.stage(key, df, path)
    return ctx.spark.read.parquet(out.staging_path)


def unpack_archive_job(ctx: "JobContext") -> None:
    """``jobs/unpack_archive.py``: copy chosen members of a zip into ``<output.path>/<name>/`` each."""
    cfg = ctx.config
    if not cfg["members"]:
        raise RecsysError("members: name at least one archive member, e.g. {ratings.csv: ratings}")
    root = cfg["output"]["path"].rstrip("/")
    found = read_members(qualify(cfg["archive"]), cfg["members"])
    for name, (file_name, data) in found.items():
        ctx.stage_files(name, f"{root}/{name}", {file_name: data})
    ctx.metrics["archive"] = {
        "path": qualify(cfg["archive"]),
        "members": {name: {"file": f, "bytes": len(d)} for name, (f, d) in found.items()},
    }


def index_job(ctx: "JobContext") -> None:
    """``jobs/build_item_index.py``: unit item vectors with a popularity sub-space, for build_pq (metric ip)."""
    cfg = ctx.config
    vectors = read_parquet(ctx.spark, cfg["input"]["vectors"], ["word", "vector"])
    history = read_parquet(ctx.spark, cfg["input"]["history"], [ITEM])
    p = cfg["popularity"]
    staged(ctx, "items", index_vectors(vectors, history, p["weight"], p["dims"]), cfg["output"]["path"])
    ctx.metrics["index"] = {"items": ctx.outputs["items"].rows, **p}


def split_job(ctx: "JobContext") -> None:
    """``jobs/split_interactions.py``: common column names, sessions, leave-last-out history and targets."""
    cfg, cols = ctx.config, ctx.config["input"]
    path = qualify(cols["path"])
    raw = read_parquet(
        ctx.spark,
        path,
        [cols["user_col"], cols["item_col"], cols["time_col"], *([cols["session_col"]] if cols["session_col"] else [])],
    )
    events = raw.select(
        F.col(cols["user_col"]).alias(USER),
        F.col(cols["item_col"]).alias(ITEM),
        epoch_seconds(raw, cols["time_col"], path).alias(TS),
        *([F.col(cols["session_col"]).alias(SESSION)] if cols["session_col"] else []),
    )
    nulls = events.filter(F.col(USER).isNull() | F.col(ITEM).isNull() | F.col(TS).isNull()).count()
    if nulls:
        raise RecsysError(
            f"{path}: {nulls} rows have a null {cols['user_col']}, {cols['item_col']} or {cols['time_col']}"
        )
    if not cols["session_col"]:
        events = sessionize(events, cfg["sessions"]["gap_s"], [tie_break()])
    split = leave_last_out(events, cfg["split"]["min_history"])
    root = cfg["output"]["path"].rstrip("/")
    history = staged(ctx, "history", split.history, f"{root}/history")
    targets = staged(ctx, "targets", split.targets, f"{root}/targets")
    by_split = {r[SPLIT]: r["n"] for r in targets.groupBy(SPLIT).agg(F.count(F.lit(1)).alias("n")).collect()}
    ctx.metrics["split"] = {
        "events": ctx.outputs["history"].rows + ctx.outputs["targets"].rows,
        "history_events": ctx.outputs["history"].rows,
        "users": history.select(USER).distinct().count(),
        "users_with_targets": by_split.get(TEST, 0),
        "items": history.select(ITEM).distinct().count(),
        "sessions": history.select(SESSION).distinct().count(),
    }
    ctx.log(f"split: {ctx.metrics['split']}")


def _inputs(ctx: "JobContext") -> tuple[DataFrame, DataFrame]:
    paths = ctx.config["input"]
    history = read_parquet(ctx.spark, paths["history"], [USER, ITEM, TS])
    targets = read_parquet(ctx.spark, paths["targets"], [USER, ITEM, TS, SPLIT])
    return history, targets


def _seen(contexts: DataFrame, exclude: bool) -> DataFrame | None:
    return contexts.select(SPLIT, USER, ITEM).distinct() if exclude else None


def recall_job(ctx: "JobContext") -> None:
    """``jobs/recall_candidates.py``: the recall routes, their merge with quotas and the coarse cut.

    Outputs: ``queries`` (PQ query vectors), ``routes`` (every route's candidates, one shape), ``merged`` (the
    deduplicated union with route features), ``candidates`` (merged, cut per user by the coarse ranker) and
    ``route_lists`` (each route's test candidates as ranked lists; ``next_item`` is the Markov baseline).
    """
    cfg = ctx.config
    history, targets = _inputs(ctx)
    root = cfg["output"]["path"].rstrip("/")
    r, routes_cfg = cfg["recall"], cfg["routes"]
    quotas = {name: c["k"] for name, c in routes_cfg.items() if c["k"] > 0}
    all_contexts = with_splits(history, targets).persist(StorageLevel.MEMORY_AND_DISK)
    target_users = targets.select(SPLIT, USER)
    contexts = all_contexts.join(target_users, [SPLIT, USER])  # users to recommend to
    seen = _seen(contexts, r["exclude_seen"])
    if seen is not None:
        seen = staged(ctx, "seen", seen, f"{root}/seen")
    started = time.time()
    found = _pq_route(ctx, history, contexts, seen, quotas.get("pq", 0), f"{root}/queries")
    for name in ("item_cf", "next_item"):
        if name in quotas:
            c = routes_cfg[name]
            neighbours = (
                cooccurrence_neighbours(session_contexts(history, targets), c["window"], c["neighbours"])
                if name == "item_cf"
                else transition_neighbours(all_contexts, c["neighbours"])
            )
            found.append(
                neighbour_route(recent_items(contexts, c["n_recent"]), neighbours, c["decay"], seen, c["k"], name)
            )
    if "popularity" in quotas:
        found.append(popularity_route(all_contexts, target_users, seen, quotas["popularity"], "popularity"))
    if "recent_popularity" in quotas:
        found.append(
            popularity_route(
                all_contexts,
                target_users,
                seen,
                quotas["recent_popularity"],
                "recent_popularity",
                routes_cfg["recent_popularity"]["days"],
            )
        )
    cold = cold_users(target_users, all_contexts)
    n_cold = cold.count()
    if "cold_start" in quotas:
        found.append(popularity_route(all_contexts, cold, seen, quotas["cold_start"], "cold_start"))
    if not found:
        raise RecsysError("routes: give at least one route a k above 0")
    routes = staged(ctx, "routes", reduce(DataFrame.unionByName, found), f"{root}/routes")
    routes_s = time.time() - started
    merged = staged(ctx, "merged", merge_routes(routes, quotas, cfg["merge"]["budget"]), f"{root}/merged")
    co = cfg["coarse"]
    started = time.time()
    cut = coarse_cut(merged, all_contexts, targets, co["budget"], co["max_iter"], co["reg"]) if co["budget"] else merged
    candidates = staged(ctx, "candidates", cut, f"{root}/candidates")
    coarse_s = time.time() - started
    staged(ctx, "route_lists", route_lists(routes, cfg["route_lists"]["size"]), f"{root}/route_lists")
    shares = route_recall(routes, merged, targets, quotas)
    final = target_share(candidates, targets)
    per_user = candidates.groupBy(SPLIT, USER).count().groupBy(SPLIT).agg(F.avg("count").alias("n")).collect()
    empty = target_users.join(candidates.select(SPLIT, USER).distinct(), [SPLIT, USER], "left_anti").count()
    all_contexts.unpersist()
    ctx.metrics["recall"] = {
        "k": co["budget"] or cfg["merge"]["budget"],
        "exclude_seen": r["exclude_seen"],
        "quotas": quotas,
        "merge_budget": cfg["merge"]["budget"],
        "coarse_budget": co["budget"],
        "routes_s": round(routes_s, 3),
        "coarse_s": round(coarse_s, 3),
        "route_recall": shares,
        **{f"{s}_merged_target_in_candidates": v["merged"] for s, v in shares.items()},
        **{f"{s}_target_in_candidates": v for s, v in final.items()},
        **{f"{row[SPLIT]}_candidates_per_user": row["n"] for row in per_user},
        "cold_start_users": n_cold,
        "target_users_without_candidates": empty,
    }
    ctx.log(f"recall: {ctx.metrics['recall']}")


def _pq_route(
    ctx: "JobContext", history: DataFrame, contexts: DataFrame, seen: DataFrame | None, k: int, queries_path: str
) -> list[DataFrame]:
    """The PQ route (item2vec query vectors of the recent items, PQ top-``k`` unseen), staging the queries
    the features job reads; an empty list when the route is off (``k`` 0): the queries are written anyway."""
    cfg = ctx.config
    vectors = read_parquet(ctx.spark, cfg["input"]["vectors"], ["word", "vector"])
    q = cfg["query"]
    recent = recent_items(contexts, q["n_recent"])
    queries = staged(ctx, "queries", user_queries(recent, unit_item_vectors(vectors), q["decay"]), queries_path)
    if k < 1:
        return []
    codes = read_parquet(ctx.spark, cfg["input"]["codes"], ["item_id", "code"])
    model = load_model(PQEncoderModel.load, qualify(cfg["input"]["pq_model"]))
    searched = queries.select(SPLIT, USER, index_query(F.col("vector"), q["popularity_dims"]).alias("vector"))
    r = cfg["recall"]
    return [
        pq_route(
            pq_candidates(
                model, codes, searched, seen, k, history.schema[ITEM].dataType, r["block_users"], r["partitions"]
            )
        )
    ]


def _items(ctx: "JobContext") -> DataFrame:
    """``(item_id, categories)`` from the item table named in ``input.items``."""
    src = ctx.config["input"]["items"]
    path = qualify(src["path"])
    items = read_parquet(ctx.spark, path, [src["item_col"], src["category_col"]])
    value = F.col(src["category_col"]).cast("string")
    categories = F.split(value, src["category_sep"], -1) if src["category_sep"] else F.array(value)
    return items.select(
        F.col(src["item_col"]).alias(ITEM),
        F.filter(categories, lambda c: c.isNotNull() & (c != "")).alias("categories"),
    )


def features_job(ctx: "JobContext") -> None:
    """``jobs/build_features.py``: one row per candidate with its label and the ranker's features."""
    cfg = ctx.config
    history, targets = _inputs(ctx)
    paths = cfg["input"]
    candidates = read_parquet(
        ctx.spark, paths["candidates"], [SPLIT, USER, ITEM, "distance", "recall_rank", *ROUTE_FEATURES]
    )
    queries = read_parquet(ctx.spark, paths["queries"], [SPLIT, USER, "vector"])
    vectors = unit_item_vectors(read_parquet(ctx.spark, paths["vectors"], ["word", "vector"]))
    contexts = with_splits(history, targets).persist(StorageLevel.MEMORY_AND_DISK)
    settings = FeatureSettings(**cfg["features"])
    recent = recent_items(contexts.join(targets.select(SPLIT, USER), [SPLIT, USER]), settings.n_recent)
    rows = candidate_features(candidates, contexts, targets, queries, vectors, _items(ctx), recent, settings)
    out = staged(ctx, "features", rows, cfg["output"]["path"])
    contexts.unpersist()
    stats = (
        out.groupBy(SPLIT)
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(LABEL).alias("positives"), F.countDistinct(USER).alias("users"))
        .collect()
    )
    ctx.metrics["features"] = {
        row[SPLIT]: {"rows": row["rows"], "positives": row["positives"], "users": row["users"]} for row in stats
    }
    ctx.log(f"features: {ctx.metrics['features']}")


def rank_job(ctx: "JobContext") -> None:
    """``jobs/train_ranker.py``: GBDT+LR on the validation candidates, scores of the test candidates."""
    cfg = ctx.config
    path = qualify(cfg["input"]["features"])
    rows = read_parquet(ctx.spark, path, [SPLIT, LABEL, *SPEC.inputs])
    check_training_data(rows, SPEC, path)  # every split, before the filter: a bad label fails, not vanishes
    train_rows = rows.filter(F.col(SPLIT) == VALID).persist(StorageLevel.MEMORY_AND_DISK)
    if not train_rows.filter(F.col(LABEL) == 1).limit(1).count():
        raise RecsysError(
            f"{path}: no validation target is among the candidates; raise recall.k or check the item vectors"
        )
    started = time.time()
    models = fit_ranker(train_rows, cfg["model"], ctx.log)
    train_s = time.time() - started
    root = cfg["output"]["path"].rstrip("/")
    ctx.stage_model("model", models.gbdt_lr, f"{root}/model")
    test_rows = rows.filter(F.col(SPLIT) == TEST)
    scores = staged(
        ctx, "scores", score_candidates(models, test_rows, [LABEL, "recall_rank", "distance"]), f"{root}/scores"
    )
    train_rows.unpersist()
    importances = models.gbdt_lr.trees.importances(SPEC.tree_input_names())
    ctx.metrics["ranker"] = {
        "train_s": round(train_s, 3),
        "chosen": models.chosen,
        "feature_importances": importances,
        "test_rows": ctx.outputs["scores"].rows,
        "test_auc": {name: roc_auc(scores, SCORE if name == "gbdt_lr" else f"score_{name}", LABEL) for name in MODELS},
    }
    lines = ["# Ranker feature importances (trees, shares)", "", *importance_table(importances)]
    ctx.stage_files(
        "report",
        f"{root}/report",
        {"importances.md": "\n".join(lines) + "\n", "chosen.json": json.dumps(models.chosen, indent=2) + "\n"},
    )


def baselines_job(ctx: "JobContext") -> None:
    """``jobs/recsys_baselines.py``: popularity, ALS and EASE (both tuned on the validation target) lists for test
    users."""
    cfg = ctx.config
    history, targets = _inputs(ctx)
    n, k, exclude = cfg["list_size"], cfg["tune_k"], cfg["exclude_seen"]
    item_type = history.schema[ITEM].dataType
    contexts = {s: context(history, targets, s).persist(StorageLevel.MEMORY_AND_DISK) for s in (VALID, TEST)}
    users = {s: targets.filter(F.col(SPLIT) == s).select(USER, ITEM) for s in (VALID, TEST)}
    seen = {
        s: contexts[s].join(users[s].select(USER), USER).select(USER, ITEM).distinct() if exclude else None
        for s in (VALID, TEST)
    }
    root = cfg["output"]["path"].rstrip("/")
    started = time.time()
    pop = staged(ctx, "popularity", popularity_lists(contexts[TEST], users[TEST], seen[TEST], n), f"{root}/popularity")
    pop_s = time.time() - started
    a = cfg["als"]
    check_int_ids(contexts[TEST], [USER, ITEM], qualify(cfg["input"]["history"]))
    started = time.time()
    best, grid = tune_als(
        contexts[VALID], users[VALID], users[VALID], seen[VALID], n, k, a, a["max_iter"], a["seed"], item_type, ctx.log
    )
    tune_s = time.time() - started
    started = time.time()
    model = fit_als(contexts[TEST], best, a["max_iter"], a["seed"], a["blocks"])
    als = staged(ctx, "als", als_lists(model, users[TEST], seen[TEST], n, item_type), f"{root}/als")
    als_s = time.time() - started
    e = cfg["ease"]
    started = time.time()
    lam, ease_grid = tune_ease(contexts[VALID], users[VALID], users[VALID], n, k, e, exclude, item_type, ctx.log)
    ease_tune_s = time.time() - started
    started = time.time()
    user_items, ids, gram = fit_index(contexts[TEST], e["min_count"], e["max_items"])
    lists, weights = ease_lists(
        ease_weights(gram, lam), ids, user_items, users[TEST], n, exclude, e["block_users"], item_type
    )
    ease = staged(ctx, "ease", lists, f"{root}/ease")
    weights.destroy()
    user_items.unpersist()
    ease_s = time.time() - started
    for df in contexts.values():
        df.unpersist()
    ctx.metrics["baselines"] = {
        "list_size": n,
        "exclude_seen": exclude,
        "popularity_s": round(pop_s, 3),
        "als": {
            "grid": grid,
            "chosen": best.__dict__,
            "tune_s": round(tune_s, 3),
            "final_fit_and_lists_s": round(als_s, 3),
            "total_s": round(tune_s + als_s, 3),
        },
        "ease": {
            "grid": ease_grid,
            "chosen_lambda": lam,
            "items": len(ids),
            "min_count": e["min_count"],
            "tune_s": round(ease_tune_s, 3),
            "final_fit_and_lists_s": round(ease_s, 3),
            "total_s": round(ease_tune_s + ease_s, 3),
        },
        "rows": {"popularity": pop.count(), "als": als.count(), "ease": ease.count()},
    }


def evaluate_job(ctx: "JobContext") -> None:
    """``jobs/evaluate_recsys.py``: AUC/GAUC of the ranker; recall/NDCG@k, recall@k curves and diversity of every
    method, ours re-ranked by MMR among them."""
    cfg = ctx.config
    paths, n = cfg["input"], cfg["list_size"]
    history, all_targets = _inputs(ctx)
    targets = all_targets.filter(F.col(SPLIT) == TEST).select(USER, ITEM)
    scores = read_parquet(ctx.spark, paths["scores"], [USER, ITEM, LABEL, SCORE, "recall_rank"])
    items = _items(ctx).persist(StorageLevel.MEMORY_AND_DISK)
    rerank = settings_from(cfg["rerank"])
    lists = [
        ranked_lists(scores, [-F.col(SCORE), F.col("recall_rank")], n, "ours"),
        ranked_lists(scores, [F.col("recall_rank")], n, "ours_recall_only"),
        mmr_lists(scores, SCORE, items, context(history, all_targets, TEST), rerank, n),
    ]
    lists += [
        ranked_lists(scores, [-F.col(f"score_{m}"), F.col("recall_rank")], n, f"ours_{m}")
        for m in MODELS
        if m != "gbdt_lr" and f"score_{m}" in scores.columns
    ]
    for name in ("popularity", "als", "ease"):
        if paths[name]:
            lists.append(read_parquet(ctx.spark, paths[name], ["method", USER, "items"]))
    if paths["route_lists"]:  # each recall route alone; the next-item route is the sequential (Markov) baseline
        routes = read_parquet(ctx.spark, paths["route_lists"], ["method", USER, "items"])
        lists.append(
            routes.withColumn(
                "method",
                F.when(F.col("method") == "next_item", "markov").otherwise(F.concat(F.lit("route_"), F.col("method"))),
            )
        )
    root = cfg["output"]["path"].rstrip("/")
    everything = lists[0]
    for more in lists[1:]:
        everything = everything.unionByName(more)
    everything = staged(ctx, "lists", everything, f"{root}/lists")
    ks = sorted(set(cfg["ks"]))
    positions = target_positions(everything, targets).persist(StorageLevel.MEMORY_AND_DISK)
    results = position_metrics(positions, ks)
    curves = recall_curves(positions, n)
    positions.unpersist()
    dk = cfg["diversity_k"]
    for method, figures in diversity_metrics(everything, items, dk).items():
        results[method].update(figures)
    items.unpersist()
    quality = ranker_quality(scores, SCORE, LABEL)
    ctx.metrics["evaluation"] = {
        "methods": results,
        "ranker": quality,
        "list_size": n,
        "diversity_k": dk,
        "rerank": cfg["rerank"],
    }
    ctx.metrics["recall_at_k"] = {m: [round(v, 6) for v in c] for m, c in curves.items()}
    table = ctx.spark.createDataFrame(
        [(m, k, r[f"recall@{k}"], r[f"ndcg@{k}"]) for m, r in results.items() for k in ks],
        "method STRING, k INT, recall DOUBLE, ndcg DOUBLE",
    )
    ctx.stage("results", table, f"{root}/results")
    summary = render_summary(results, quality, ks, dk, cfg["rerank"]["lambda"])
    ctx.stage_files(
        "report", f"{root}/report", {"recall_at_k.png": recall_curve_png(curves, cfg["title"]), "summary.md": summary}
    )
    print(summary)


def render_summary(
    results: dict[str, dict[str, float]], quality: dict[str, Any], ks: list[int], dk: int, lam: float
) -> str:
    """The comparison as Markdown: one row per method, recall and NDCG at each k and diversity at ``dk``; MMR
    re-ranking before and after; the ranker's AUC/GAUC."""
    head = "| method | " + " | ".join(f"recall@{k} | NDCG@{k}" for k in ks) + f" | coverage@{dk} | ILD@{dk} | users |"
    lines = [
        "# Recommender evaluation (held-out last interaction per user)",
        "",
        head,
        "|---" * (2 * len(ks) + 4) + "|",
    ]
    sort_k = ks[-1] if 10 not in ks else 10
    for method, r in sorted(results.items(), key=lambda mr: -mr[1][f"ndcg@{sort_k}"]):
        cells = " | ".join(f"{r[f'recall@{k}']:.4f} | {r[f'ndcg@{k}']:.4f}" for k in ks)
        diversity = " | ".join(
            f"{r[key]:.4f}" if r.get(key) is not None else "-" for key in (f"coverage@{dk}", f"ild@{dk}")
        )
        lines.append(f"| {method} | {cells} | {diversity} | {r['users']:,} |")
    before, after = results.get("ours"), results.get("ours_reranked")
    if before and after and before.get(f"ild@{dk}") is not None and after.get(f"ild@{dk}") is not None:
        lines += [
            "",
            f"MMR re-ranking of ours (lambda {lam}): NDCG@{sort_k} {before[f'ndcg@{sort_k}']:.4f} -> "
            f"{after[f'ndcg@{sort_k}']:.4f}, ILD@{dk} {before[f'ild@{dk}']:.4f} -> {after[f'ild@{dk}']:.4f}, "
            f"coverage@{dk} {before[f'coverage@{dk}']:.4f} -> {after[f'coverage@{dk}']:.4f}.",
        ]
    lines += [
        "",
        f"Ranker on the test candidates: AUC {quality['auc']:.4f}, GAUC {quality['gauc']:.4f} over "
        f"{quality['gauc_users']:,} users ({quality['gauc_users_skipped']:,} without the target among "
        f"their candidates skipped); {quality['positives']:,} positives in {quality['rows']:,} rows.",
    ]
    return "\n".join(lines) + "\n"
