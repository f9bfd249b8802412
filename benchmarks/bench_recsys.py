"""The recommender pipeline on MovieLens ml-latest-small against popularity, tuned implicit ALS and tuned EASE.

Runs ``conf/pipelines/recsys_movielens.yaml`` (leave-last-out per user; ratings as implicit interactions in
timestamp order) in one local SparkSession and prints recall@10 and NDCG@10 of every method in one table,
with the seconds each took, and the test target's recall by each recall route, by their merge
(``target_in_candidates``) and after the coarse cut (``test_target_in_candidates``). ``ours_s`` is item2vec + PQ +
recall routes, merge and coarse cut + features + GBDT+LR (the steps after the shared split); ``als_s``
(``ease_s``) is the ALS grid (EASE lambdas) on the validation target plus the final fit and lists. ``markov`` is
the next-item route's own list (transition counts from the user's latest items). ``ours_reranked`` is ours
re-ranked by MMR over genres; ``diversity_before``/``diversity_after`` are the intra-list diversity@10 of ours
before and after.

Usage: python benchmarks/bench_recsys.py [--root DIR] [--set STEP.KEY=VALUE ...]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.orchestration.definition import build_pipeline, read_definition  # noqa: E402
from pipelines.orchestration.report import write_report  # noqa: E402
from pipelines.orchestration.runner import Runner  # noqa: E402
from pipelines.session import get_spark  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "conf" / "pipelines" / "recsys_movielens.yaml"
ARCHIVE = ROOT.parent / "shared" / "data" / "movielens_latest_small" / "ml-latest-small.zip"
OURS_STEPS = ("item2vec", "build_pq", "recall", "features", "rank")
METHODS = (
    "ours",
    "ours_reranked",
    "ours_lr_only",
    "ours_trees_only",
    "ours_recall_only",
    "ease",
    "markov",
    "als",
    "popularity",
)


def with_overrides(data: dict, sets: list[str]) -> dict:
    """``STEP.KEY=VALUE`` overrides (values as YAML) applied to the steps' ``set`` mappings."""
    data = copy.deepcopy(data)
    for text in sets:
        key, value = text.split("=", 1)
        step, dotted = key.split(".", 1)
        data["steps"][step]["set"][dotted] = yaml.safe_load(value)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="output directory (default: a new temporary directory)")
    parser.add_argument("--run-date", default="2026-11-20")
    parser.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE")
    args = parser.parse_args()
    if not ARCHIVE.is_file():
        sys.exit(f"error: MovieLens archive not found: {ARCHIVE}")
    root = args.root or tempfile.mkdtemp(prefix="bench-recsys-")
    data = with_overrides(read_definition(DEFINITION), args.set)  # the demo's definition it extends merged in
    data["steps"]["unpack"]["set"]["archive"] = str(ARCHIVE)
    data["steps"]["unpack"]["inputs"] = [str(ARCHIVE)]
    pipeline = build_pipeline(data, DEFINITION, root)
    spark = get_spark("bench-recsys", ROOT / data["spark"]["conf_file"])
    started = time.time()
    manifest = Runner(pipeline, "session", force=True, spark=spark).run(args.run_date)
    wall_s = time.time() - started
    steps = {s["name"]: s for s in manifest.data["steps"]}
    evaluation = steps["evaluate"]["metrics"]["evaluation"]
    methods, ranker = evaluation["methods"], evaluation["ranker"]
    baselines = steps["baselines"]["metrics"]["baselines"]
    ours_s = sum(steps[s]["duration_s"] for s in OURS_STEPS)
    als_s = baselines["als"]["total_s"]
    recall = steps["recall"]["metrics"]["recall"]
    ease_s = baselines["ease"]["total_s"]
    seconds = {"ours": ours_s, "als": als_s, "ease": ease_s, "popularity": baselines["popularity_s"]}
    routes = recall["route_recall"]["test"]
    print(
        f"\nMovieLens ml-latest-small, leave-last-out: {methods['ours']['users']} users; test target among "
        f"each route's candidates: "
        + ", ".join(f"{r} {v:.1%}" for r, v in routes.items())
        + f" (quotas {recall['quotas']}); {recall['k']} per user after the coarse cut: "
        f"{recall['test_target_in_candidates']:.1%}; ranker test AUC {ranker['auc']:.4f}, GAUC {ranker['gauc']:.4f}"
    )
    print(f"{'method':<20} {'recall@10':>10} {'NDCG@10':>10} {'recall@100':>11} {'ILD@10':>7} {'seconds':>9}")
    for name in METHODS:
        if name in methods:
            m = methods[name]
            secs = f"{seconds[name]:9.1f}" if name in seconds else f"{'(ours)':>9}"
            print(
                f"{name:<20} {m['recall@10']:10.4f} {m['ndcg@10']:10.4f} {m.get('recall@100', float('nan')):11.4f} "
                f"{m.get('ild@10') or float('nan'):7.4f} {secs}"
            )
    chosen = baselines["als"]["chosen"]
    print(
        f"ALS chosen on the validation target: rank {chosen['rank']}, regParam {chosen['reg_param']}, alpha "
        f"{chosen['alpha']} ({len(baselines['als']['grid'])} grid points); EASE lambda "
        f"{baselines['ease']['chosen_lambda']} of {[g['lambda'] for g in baselines['ease']['grid']]} over "
        f"{baselines['ease']['items']} items; pipeline wall time {wall_s:.1f}s"
    )
    ours, reranked = methods["ours"], methods["ours_reranked"]
    best_anchor = max(methods[m]["ndcg@10"] for m in ("ease", "markov", "als", "popularity"))
    print(
        f"NDCG@10 ours / EASE {ours['ndcg@10'] / methods['ease']['ndcg@10']:.2f}x, ours / best anchor "
        f"{ours['ndcg@10'] / best_anchor:.2f}x; MMR (lambda {evaluation['rerank']['lambda']}): NDCG@10 "
        f"{ours['ndcg@10']:.4f} -> {reranked['ndcg@10']:.4f}, ILD@10 {ours['ild@10']:.4f} -> "
        f"{reranked['ild@10']:.4f}"
    )
    print(f"report: {write_report(manifest.path)}")
    spark.stop()
    print(
        json.dumps(
            {
                "ours_recall10": methods["ours"]["recall@10"],
                "ours_ndcg10": methods["ours"]["ndcg@10"],
                "als_recall10": methods["als"]["recall@10"],
                "als_ndcg10": methods["als"]["ndcg@10"],
                "pop_recall10": methods["popularity"]["recall@10"],
                "pop_ndcg10": methods["popularity"]["ndcg@10"],
                "ease_recall10": methods["ease"]["recall@10"],
                "ease_ndcg10": methods["ease"]["ndcg@10"],
                "markov_recall10": methods["markov"]["recall@10"],
                "markov_ndcg10": methods["markov"]["ndcg@10"],
                "ours_recall100": methods["ours"]["recall@100"],
                "ours_reranked_ndcg10": methods["ours_reranked"]["ndcg@10"],
                "diversity_before": methods["ours"]["ild@10"],
                "diversity_after": methods["ours_reranked"]["ild@10"],
                "coverage_before": methods["ours"]["coverage@10"],
                "coverage_after": methods["ours_reranked"]["coverage@10"],
                "recall_only_recall10": methods["ours_recall_only"]["recall@10"],
                "recall_only_ndcg10": methods["ours_recall_only"]["ndcg@10"],
                "ranker_auc": ranker["auc"],
                "ranker_gauc": ranker["gauc"],
                "candidates_k": recall["k"],
                "target_in_candidates": recall["test_merged_target_in_candidates"],
                "route_recall": {r: round(v, 4) for r, v in routes.items() if r != "merged"},
                "test_target_in_candidates": recall["test_target_in_candidates"],
                "users": methods["ours"]["users"],
                "ours_s": round(ours_s, 1),
                "als_s": round(als_s, 1),
                "pop_s": round(baselines["popularity_s"], 1),
                "ease_s": round(ease_s, 1),
                "wall_s": round(wall_s, 1),
                "als_chosen": chosen,
                "ease_lambda": baselines["ease"]["chosen_lambda"],
                "ease_items": baselines["ease"]["items"],
            }
        )
    )


if __name__ == "__main__":
    main()
