"""The job registry: every job's name, the function that runs it and what it does.

The entry files (``jobs/<job>.py``), the console command (``spark-ml-pipelines job <job>``), the pipeline
runner, ``--help`` and the Airflow generator all take jobs from here; a job's defaults are
``conf/jobs/<job>.yaml`` (``pipelines.resources.job_defaults``). Functions are imported when a job runs, so
listing jobs imports no job module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from pipelines.errors import UserError


@dataclass(frozen=True)
class Job:
    name: str
    target: str  # "module:function", the function taking a JobContext
    description: str

    @property
    def main(self) -> Callable[[Any], Any]:
        module, function = self.target.split(":")
        return getattr(importlib.import_module(module), function)


JOBS: dict[str, Job] = {
    job.name: job
    for job in [
        Job(
            "build_features",
            "pipelines.recsys.jobs:features_job",
            "Ranker features (user, item, user-item) and labels of every recall candidate, per split.",
        ),
        Job(
            "build_item_index",
            "pipelines.recsys.jobs:index_job",
            "Item index for recall: unit item2vec vectors plus a popularity sub-space, for a PQ inner-product search.",
        ),
        Job(
            "build_pq",
            "pipelines.pq.jobs:build_pq_job",
            "Train product-quantization codebooks on a sample of item vectors and encode the whole item table.",
        ),
        Job(
            "build_tfidf",
            "pipelines.text.jobs:build_tfidf_job",
            "Fit tokeniser + TF-IDF (scikit-learn formulas) on a corpus; write the model, TF-IDF vectors and keywords.",
        ),
        Job(
            "demo",
            "pipelines.demo:demo_job",
            "End-to-end demo in local mode: the recommender pipeline (recsys_demo.yaml) on generated data, "
            "HTML report.",
        ),
        Job(
            "evaluate",
            "pipelines.metrics.job:evaluate_job",
            "Evaluate a scored table: exact ROC-AUC, PR-AUC, log loss, NE, calibration, thresholds, GAUC, plots.",
        ),
        Job(
            "evaluate_embeddings",
            "pipelines.word2vec.jobs:evaluate_embeddings_job",
            "Evaluate word vectors (analogies, WordSim353, SimLex-999) or item vectors (neighbours sharing a "
            "category).",
        ),
        Job(
            "evaluate_recsys",
            "pipelines.recsys.jobs:evaluate_job",
            "Recommender evaluation: ranker AUC/GAUC, recall/NDCG@k, recall@k curves and diversity of every method, "
            "ours re-ranked by MMR among them.",
        ),
        Job(
            "generate_demo_data",
            "pipelines.datagen:generate_job",
            "Generate the deterministic demo data: a topical corpus, user-item sessions and a click log.",
        ),
        Job(
            "ingest",
            "pipelines.ingest:ingest_job",
            "Ingest one table (Parquet, CSV, JSON lines) or text corpus into Parquet; malformed records go to "
            "quarantine.",
        ),
        Job(
            "predict_text",
            "pipelines.text.jobs:predict_text_job",
            "Batch-predict the label (and its probability) of every document of a corpus with a saved text classifier.",
        ),
        Job(
            "recall_candidates",
            "pipelines.recsys.jobs:recall_job",
            "Recall routes (PQ, item-CF, next-item, popularity, cold start), merged with quotas, coarse LR cut.",
        ),
        Job(
            "recsys_baselines",
            "pipelines.recsys.jobs:baselines_job",
            "Popularity, implicit ALS and EASE (tuned on the validation target) ranked lists for the test users.",
        ),
        Job(
            "score",
            "pipelines.gbdt_lr.job:score_job",
            "Batch-score a table with a saved GBDT+LR model, writing scores with the model version and run date.",
        ),
        Job(
            "search_pq",
            "pipelines.pq.jobs:search_pq_job",
            "Batch top-k search of query vectors over PQ-coded items (ADC, optional IVF and re-ranking), with recall.",
        ),
        Job(
            "similar_docs",
            "pipelines.text.jobs:similar_docs_job",
            "Top-k cosine neighbours of every document of a TF-IDF index (build_tfidf output), or of new documents.",
        ),
        Job(
            "split_interactions",
            "pipelines.recsys.jobs:split_job",
            "Leave-last-out split per user by time: history, validation target (second to last) and test target "
            "(last).",
        ),
        Job(
            "train_gbdt_lr",
            "pipelines.gbdt_lr.job:train_job",
            "Train GBDT+LR (boosted-tree leaves one-hot into a logistic regression) with LR-only and trees-only "
            "baselines.",
        ),
        Job(
            "train_ranker",
            "pipelines.recsys.jobs:rank_job",
            "GBDT+LR ranker trained on the validation candidates; scores of the test candidates.",
        ),
        Job(
            "train_text_classifier",
            "pipelines.text.jobs:train_text_classifier_job",
            "Train a text classifier (tfidf_lr: TF-IDF + elastic-net multinomial LR) on a labelled corpus; multiclass "
            "report with a confusion matrix.",
        ),
        Job(
            "train_word2vec",
            "pipelines.word2vec.jobs:train_word2vec_job",
            "Train word vectors (sgns skip-gram/CBOW, ppmi or MLlib) on a corpus, or item vectors on user sessions "
            "(item2vec).",
        ),
        Job(
            "unpack_archive",
            "pipelines.recsys.jobs:unpack_archive_job",
            "Copy members of a zip archive (a downloaded data set) into one output directory each.",
        ),
    ]
}


def get_job(name: str) -> Job:
    """The registered job ``name``; an unknown name is one line listing the jobs there are."""
    try:
        return JOBS[name]
    except KeyError:
        raise UserError(f"unknown job '{name}'; jobs: {', '.join(JOBS)}") from None
