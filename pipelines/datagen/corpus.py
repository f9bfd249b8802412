"""Documents drawn from a topic model: each has a topic mixture; words come from topics or background."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.datagen.world import build_world, rng_for

CORPUS_SCHEMA = "doc_id BIGINT, topic INT, text STRING"
WORDS_SCHEMA = "word STRING, topic INT"


def corpus_chunk(
    seed: int, chunk: int, start: int, count: int, background_share: float = 0.3, mean_length: int = 60
) -> pd.DataFrame:
    """Documents ``start .. start+count-1``; the same for a given seed whatever the partitioning."""
    world = build_world(seed)
    rng = rng_for(seed, "corpus", chunk)
    theta = rng.dirichlet(np.full(world.n_topics, 0.2), size=count)
    lengths = rng.poisson(mean_length, size=count) + 5
    texts = []
    for mix, length in zip(theta, lengths):
        n_background = rng.binomial(length, background_share)
        per_topic = rng.multinomial(length - n_background, mix)
        ids = [rng.choice(world.vocabulary.size, size=n_background, p=world.background)]
        ids += [rng.choice(world.vocabulary.size, size=n, p=world.topic_words[k]) for k, n in enumerate(per_topic) if n]
        tokens = np.concatenate(ids)
        rng.shuffle(tokens)
        texts.append(" ".join(world.vocabulary[tokens]))
    return pd.DataFrame(
        {
            "doc_id": np.arange(start, start + count, dtype=np.int64),
            "topic": theta.argmax(axis=1).astype(np.int32),
            "text": texts,
        }
    )


def word_topics(seed: int) -> pd.DataFrame:
    """Each vocabulary word with the topic most likely to emit it: the ground truth for word vectors."""
    world = build_world(seed)
    return pd.DataFrame({"word": world.vocabulary, "topic": world.topic_words.argmax(axis=0).astype(np.int32)})
