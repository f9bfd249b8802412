"""The latent world behind the demo data: a vocabulary, topics over words, items in topics.

Items also have a release day (their popularity fades after it) and a successor in their topic (what people
often watch next, like a series' next episode): effects a ranker's features see and an averaged embedding
query does not.

Everything is a pure function of the seed, so every executor rebuilds the same world locally
instead of receiving it from the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]


def rng_for(seed: int, stream: str, chunk: int = 0) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, purpose, chunk)."""
    return np.random.default_rng([seed, sum(ord(c) * 31**i for i, c in enumerate(stream)) % (2**31), chunk])


@dataclass(frozen=True)
class World:
    vocabulary: np.ndarray  # (V,) words
    background: np.ndarray  # (V,) Zipf distribution shared by all topics ("function words")
    topic_words: np.ndarray  # (K, V) word distribution per topic
    item_topic: np.ndarray  # (n_items,) topic of each item
    item_popularity: np.ndarray  # (n_items,) Zipf weight of each item within its topic
    item_release: np.ndarray  # (n_items,) release day (from the sessions' epoch; negative: before it)
    item_successor: np.ndarray  # (n_items,) the item often consumed next: one cycle through each topic

    @property
    def n_topics(self) -> int:
        return self.topic_words.shape[0]


def _make_vocabulary(rng: np.random.Generator, size: int) -> np.ndarray:
    words: dict[str, None] = {}
    while len(words) < size:
        n_syllables = rng.integers(2, 4)
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n_syllables))
        words.setdefault(word, None)
    return np.array(list(words))


def _successors(rng: np.random.Generator, item_topic: np.ndarray) -> np.ndarray:
    """Each item's successor: the items of a topic in one random cycle, so every item has one and is one."""
    successor = np.arange(item_topic.size)
    for k in np.unique(item_topic):
        cycle = rng.permutation(np.flatnonzero(item_topic == k))
        successor[cycle] = np.roll(cycle, -1)
    return successor


@lru_cache(maxsize=4)
def build_world(
    seed: int,
    n_topics: int = 8,
    vocab_size: int = 3000,
    n_items: int = 1000,
    release_days: tuple[float, float] = (-20.0, 40.0),
) -> World:
    """Topics are sparse Dirichlet draws over disjoint-ish word blocks plus a shared background.

    Release days are uniform over ``release_days``; the draws after the vocabulary's and topics' leave
    those (and so the corpus) as they were.
    """
    rng = rng_for(seed, "world")
    vocabulary = _make_vocabulary(rng, vocab_size)
    ranks = np.arange(1, vocab_size + 1)
    background = (1.0 / ranks) / (1.0 / ranks).sum()
    topic_words = np.empty((n_topics, vocab_size))
    block = vocab_size // n_topics
    for k in range(n_topics):
        weights = rng.dirichlet(np.full(vocab_size, 0.02))
        focus = np.zeros(vocab_size)
        focus[k * block : (k + 1) * block] = rng.dirichlet(np.full(block, 0.3))
        topic_words[k] = 0.2 * weights + 0.8 * focus
    item_topic = rng.permutation(np.arange(n_items) % n_topics)
    item_popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    item_release = rng.uniform(*release_days, size=n_items)
    return World(
        vocabulary, background, topic_words, item_topic, item_popularity, item_release, _successors(rng, item_topic)
    )
