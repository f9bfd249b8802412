"""User sessions over items: each session follows one of the user's preferred topics.

Within a session, items are drawn by popularity times freshness at the session's time (interest fades
``fade_days`` after an item's release), and a share ``follow`` of the steps go on to the previous item's
successor. Both are what the ranker's features (item age and recent popularity; ``follows_last``) can learn
and an item2vec query, one averaged direction over the recent items, blurs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.datagen.world import World, build_world, rng_for

INTERACTIONS_SCHEMA = "user_id BIGINT, session_id BIGINT, item_id BIGINT, ts TIMESTAMP"
ITEMS_SCHEMA = "item_id BIGINT, topic INT, popularity DOUBLE"
_EPOCH = np.datetime64("2026-01-01T00:00:00")
_DAY = 86400
_STALE = 0.02  # interest left in an item long after its release, relative to a new release
_UNRELEASED = 1e-9  # before release: nothing, unless nothing of the topic is out yet


def item_weights(world: World, items: np.ndarray, day: float, fade_days: float) -> np.ndarray:
    """Probabilities of ``items`` on ``day``: popularity times ``exp(-age / fade_days)`` after release."""
    age = day - world.item_release[items]
    fresh = np.where(age >= 0, np.exp(-np.maximum(age, 0.0) / fade_days) + _STALE, _UNRELEASED)
    weights = world.item_popularity[items] * fresh
    return weights / weights.sum()


def sessions_chunk(
    seed: int,
    chunk: int,
    start: int,
    count: int,
    n_items: int = 1000,
    mean_sessions: float = 4.0,
    mean_length: float = 6.0,
    noise: float = 0.1,
    fade_days: float = 10.0,
    follow: float = 0.35,
) -> pd.DataFrame:
    """Interactions of users ``start .. start+count-1``; sessions numbered ``user * 1000 + s``."""
    world = build_world(seed, n_items=n_items)
    rng = rng_for(seed, "sessions", chunk)
    everything = np.arange(world.item_topic.size)
    by_topic = [np.flatnonzero(world.item_topic == k) for k in range(world.n_topics)]
    users, sessions, items, times = [], [], [], []
    for user in range(start, start + count):
        preference = rng.dirichlet(np.full(world.n_topics, 0.3))
        clock = rng.integers(0, 30 * _DAY)
        for s in range(rng.poisson(mean_sessions - 1) + 1):
            topic = rng.choice(world.n_topics, p=preference)
            length = rng.poisson(mean_length - 2) + 2
            day = clock / _DAY
            picked = rng.choice(by_topic[topic], size=length, p=item_weights(world, by_topic[topic], day, fade_days))
            off_topic = rng.random(length) < noise
            picked[off_topic] = rng.choice(
                everything, size=off_topic.sum(), p=item_weights(world, everything, day, fade_days)
            )
            for j in np.flatnonzero(rng.random(length - 1) < follow) + 1:  # in order: chains of successors
                successor = world.item_successor[picked[j - 1]]
                if world.item_release[successor] <= day:
                    picked[j] = successor
            steps = clock + np.cumsum(rng.integers(5, 300, size=length))
            clock = steps[-1] + rng.integers(3600, 5 * _DAY)
            users.append(np.full(length, user))
            sessions.append(np.full(length, user * 1000 + s))
            items.append(picked)
            times.append(steps)
    return pd.DataFrame(
        {
            "user_id": np.concatenate(users).astype(np.int64),
            "session_id": np.concatenate(sessions).astype(np.int64),
            "item_id": np.concatenate(items).astype(np.int64),
            "ts": _EPOCH + np.concatenate(times).astype("timedelta64[s]"),
        }
    )


def items_chunk(seed: int, chunk: int, start: int, count: int, n_items: int = 1000) -> pd.DataFrame:
    """Item catalogue rows ``start .. start+count-1`` with their latent topic and popularity."""
    world = build_world(seed, n_items=n_items)
    ids = np.arange(start, start + count)
    return pd.DataFrame(
        {
            "item_id": ids.astype(np.int64),
            "topic": world.item_topic[ids].astype(np.int32),
            "popularity": world.item_popularity[ids],
        }
    )
