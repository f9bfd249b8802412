"""Tables derived from the vocabulary counts: the unigram^0.75 noise distribution and Huffman codes."""

from __future__ import annotations

import heapq

import numpy as np

NOISE_DOMAIN = 2**31 - 1


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """Negative-sampling probabilities, proportional to ``count ** exponent``."""
    weights = np.asarray(counts, np.float64) ** exponent
    return weights / weights.sum()


def noise_cum_table(counts: np.ndarray, exponent: float = 0.75, domain: int = NOISE_DOMAIN) -> np.ndarray:
    """The cumulative table word2vec samples negatives from (``searchsorted`` of a uniform integer)."""
    return np.round(np.cumsum(noise_distribution(counts, exponent)) * domain).astype(np.uint32)


class _Node(tuple):
    """(count, node index) ordered by count only, so ties fall as in word2vec's and gensim's heap."""

    def __lt__(self, other: tuple) -> bool:
        return self[0] < other[0]


def huffman_codes(counts: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Huffman code (0/1 per level, root first) and inner-node path of every word, as in word2vec.

    Inner nodes are numbered ``0 .. V-2`` in merge order, the root last, so ``points`` index rows of the
    hierarchical-softmax output matrix. Ties fall as in gensim, so the codes equal gensim's.
    """
    n = len(counts)
    heap = [_Node((int(c), i)) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * n, np.int64)
    branch = np.zeros(2 * n, np.uint8)
    for inner in range(n - 1):
        (c1, a), (c2, b) = heapq.heappop(heap), heapq.heappop(heap)
        node = n + inner
        parent[a], parent[b], branch[b] = node, node, 1
        heapq.heappush(heap, _Node((c1 + c2, node)))
    root = 2 * n - 2
    codes, points = [], []
    for word in range(n):
        code, path, node = [], [], word
        while node != root and n > 1:
            code.append(branch[node])
            node = parent[node]
            path.append(node - n)
        codes.append(np.array(code[::-1], np.uint8))
        points.append(np.array(path[::-1], np.int64))
    return codes, points
