"""User sessions over items: each session follows one of the user's preferred topics."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.datagen.world import build_world, rng_for

INTERACTIONS_SCHEMA = "user_id BIGINT, session_id BIGINT, item_id BIGINT, ts TIMESTAMP"
ITEMS_SCHEMA = "item_id BIGINT, topic INT, popularity DOUBLE"
_EPOCH = np.datetime64("2026-01-01T00:00:00")


def sessions_chunk(seed: int, chunk: int, start: int, count: int, n_items: int = 1000,
                   mean_sessions: float = 4.0, mean_length: float = 6.0, noise: float = 0.1) -> pd.DataFrame:
    """Interactions of users ``start .. start+count-1``; sessions numbered ``user * 1000 + s``."""
    world = build_world(seed, n_items=n_items)
    rng = rng_for(seed, "sessions", chunk)
    n_items = world.item_topic.size
    by_topic = [np.flatnonzero(world.item_topic == k) for k in range(world.n_topics)]
    topic_p = [world.item_popularity[ix] / world.item_popularity[ix].sum() for ix in by_topic]
    global_p = world.item_popularity / world.item_popularity.sum()
    users, sessions, items, times = [], [], [], []
    for user in range(start, start + count):
        preference = rng.dirichlet(np.full(world.n_topics, 0.3))
        clock = rng.integers(0, 30 * 86400)
        for s in range(rng.poisson(mean_sessions - 1) + 1):
            topic = rng.choice(world.n_topics, p=preference)
            length = rng.poisson(mean_length - 2) + 2
            picked = rng.choice(by_topic[topic], size=length, p=topic_p[topic])
            off_topic = rng.random(length) < noise
            picked[off_topic] = rng.choice(n_items, size=off_topic.sum(), p=global_p)
            steps = clock + np.cumsum(rng.integers(5, 300, size=length))
            clock = steps[-1] + rng.integers(3600, 5 * 86400)
            users.append(np.full(length, user))
            sessions.append(np.full(length, user * 1000 + s))
            items.append(picked)
            times.append(steps)
    return pd.DataFrame({
        "user_id": np.concatenate(users).astype(np.int64),
        "session_id": np.concatenate(sessions).astype(np.int64),
        "item_id": np.concatenate(items).astype(np.int64),
        "ts": _EPOCH + np.concatenate(times).astype("timedelta64[s]"),
    })


def items_chunk(seed: int, chunk: int, start: int, count: int, n_items: int = 1000) -> pd.DataFrame:
    """Item catalogue rows ``start .. start+count-1`` with their latent topic and popularity."""
    world = build_world(seed, n_items=n_items)
    ids = np.arange(start, start + count)
    return pd.DataFrame({"item_id": ids.astype(np.int64), "topic": world.item_topic[ids].astype(np.int32),
                         "popularity": world.item_popularity[ids]})
