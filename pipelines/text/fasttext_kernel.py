"""fastText's supervised model in numpy: the hidden average, softmax and hierarchical-softmax losses, SGD steps.

Rows are ragged id lists (``lengths`` and flat ``ids``). The hidden vector of a row is the mean of its ids'
input rows (``np.add.reduceat``); the linear layer maps it to class scores. A training step follows
``Model::update`` and ``SoftmaxLoss``/``HierarchicalSoftmaxLoss::forward`` of official fastText, on a mini-batch
of rows at once instead of one row at a time: every row of a batch sees the weights as the batch found them, its
output-layer update is ``lr (target - p) x hidden`` and the gradient reaching its hidden vector is divided by its
number of ids and added to each id's input row (``scatter_add``, as ``normalizeGradient`` does for supervised
models). The learning rate falls linearly from row to row by tokens, as fastText's does by progress.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("softmax", "hs")


@dataclass(frozen=True)
class Tree:
    """fastText's Huffman tree over classes (``HierarchicalSoftmaxLoss::buildTree``): per class its path of inner
    nodes (rows of the output matrix, leaf to root) and binary codes, padded to the deepest path (``mask``)."""

    paths: np.ndarray  # (K, depth) int64
    codes: np.ndarray  # (K, depth) float32, 1 = right child
    mask: np.ndarray  # (K, depth) bool

    @classmethod
    def build(cls, counts: np.ndarray) -> "Tree":
        """The tree of classes with these counts; classes are taken most frequent first (fastText's label order,
        ties by class index) and the two least counted nodes merged at each step."""
        order = np.argsort(-np.asarray(counts), kind="stable")
        k = len(order)
        count = np.concatenate([np.asarray(counts, np.float64)[order], np.full(max(k - 1, 0), 1e15)])
        parent, binary = np.full(2 * k - 1, -1), np.zeros(2 * k - 1, bool)
        leaf, node = k - 1, k
        for i in range(k, 2 * k - 1):
            pair = []
            for _ in range(2):
                if leaf >= 0 and count[leaf] < count[node]:
                    pair.append(leaf)
                    leaf -= 1
                else:
                    pair.append(node)
                    node += 1
            count[i] = count[pair[0]] + count[pair[1]]
            parent[pair], binary[pair[1]] = i, True
        paths = [[] for _ in range(k)]
        codes = [[] for _ in range(k)]
        for rank, cls_ in enumerate(order):
            j = rank
            while parent[j] != -1:
                paths[cls_].append(parent[j] - k)
                codes[cls_].append(binary[j])
                j = parent[j]
        depth = max((len(p) for p in paths), default=0)
        mask = np.array([[d < len(p) for d in range(depth)] for p in paths], bool).reshape(k, depth)
        pad = np.zeros((k, depth), np.int64)
        pad[mask] = np.concatenate([np.asarray(p, np.int64) for p in paths]) if depth else []
        code = np.zeros((k, depth), np.float32)
        code[mask] = np.concatenate([np.asarray(c, np.float32) for c in codes]) if depth else []
        return cls(pad, code, mask)


def output_rows(loss: str, classes: int) -> int:
    """Rows of the output matrix: one per class (softmax), one per inner node of the tree (hs)."""
    return classes if loss == "softmax" else max(classes - 1, 1)


def hidden(w_in: np.ndarray, lengths: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Mean input row of each row's ids (zero for a row without ids); ids of -1 count in the mean as zero rows
    (n-gram buckets never seen in training, whose rows fastText keeps at their small random start)."""
    out = np.zeros((len(lengths), w_in.shape[1]), np.float32)
    nonempty = lengths > 0
    if not nonempty.any():
        return out
    rows = w_in[ids]
    rows[ids < 0] = 0.0
    starts = (np.cumsum(lengths) - lengths)[nonempty]
    out[nonempty] = np.add.reduceat(rows, starts, axis=0) / lengths[nonempty, None]
    return out


def log_probabilities(w_out: np.ndarray, h: np.ndarray, loss: str, tree: Tree | None) -> np.ndarray:
    """Log-probability of every class for hidden vectors ``h``: log-softmax of ``h W_out^T``, or, for ``hs``, the
    sum along each class's path of ``log sigmoid(+-score)`` of its inner nodes (fastText's ``dfs`` scores)."""
    scores = h @ w_out.T
    if loss == "softmax":
        scores = scores - scores.max(axis=1, keepdims=True)
        return scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    node = scores[:, tree.paths]  # (B, K, depth)
    sign = 2.0 * tree.codes - 1.0
    return np.where(tree.mask, -np.logaddexp(0.0, -sign * node), 0.0).sum(axis=2)


def scatter_add(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``np.add.at(target, rows, values)`` for float32 rows: the first occurrence of each row by plain indexed
    addition, only repeated rows through ``np.add.at`` (five times faster on batches where most ids differ)."""
    values = values.astype(np.float32, copy=False)
    _, first = np.unique(rows, return_index=True)
    target[rows[first]] += values[first]
    if len(first) < len(rows):
        again = np.ones(len(rows), bool)
        again[first] = False
        np.add.at(target, rows[again], values[again])


def _softmax_step(w_out: np.ndarray, h: np.ndarray, labels: np.ndarray, lr: np.ndarray) -> np.ndarray:
    p = np.exp(log_probabilities(w_out, h, "softmax", None))
    p[np.arange(len(labels)), labels] -= 1.0
    g = -lr[:, None] * p  # lr (target - p)
    grad = g @ w_out
    w_out += g.T @ h
    return grad


def _hs_step(w_out: np.ndarray, h: np.ndarray, labels: np.ndarray, lr: np.ndarray, tree: Tree) -> np.ndarray:
    nodes, mask = tree.paths[labels], tree.mask[labels]  # (B, depth)
    rows = w_out[nodes]  # (B, depth, d)
    f = 1.0 / (1.0 + np.exp(-np.einsum("bd,bkd->bk", h, rows)))
    g = (lr[:, None] * (tree.codes[labels] - f) * mask).astype(np.float32)
    grad = np.einsum("bk,bkd->bd", g, rows)
    scatter_add(w_out, nodes[mask], (g[:, :, None] * h[:, None, :])[mask])
    return grad


def train_rows(
    w_in: np.ndarray,
    w_out: np.ndarray,
    lengths: np.ndarray,
    ids: np.ndarray,
    labels: np.ndarray,
    alphas: tuple[float, float],
    loss: str,
    tree: Tree | None,
    batch_size: int,
) -> int:
    """One pass of SGD over the rows in order, updating ``w_in`` and ``w_out`` in place, the learning rate going
    linearly from ``alphas[0]`` to ``alphas[1]`` by tokens; returns the tokens (ids) trained. Rows without ids
    are skipped, as fastText skips them."""
    keep = lengths > 0
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    starts, lengths, labels = offsets[:-1][keep], lengths[keep], labels[keep]
    total = int(lengths.sum())
    if not total:
        return 0
    done = np.cumsum(lengths) - lengths
    lr_rows = (alphas[0] + (alphas[1] - alphas[0]) * done / total).astype(np.float32)
    for lo in range(0, len(lengths), batch_size):
        lens, first = lengths[lo : lo + batch_size], starts[lo : lo + batch_size]
        batch_ids = ids[np.repeat(first - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())]
        h = hidden(w_in, lens, batch_ids)
        lr = lr_rows[lo : lo + batch_size]
        y = labels[lo : lo + batch_size]
        grad = _softmax_step(w_out, h, y, lr) if loss == "softmax" else _hs_step(w_out, h, y, lr, tree)
        scatter_add(w_in, batch_ids, np.repeat(grad / lens[:, None].astype(np.float32), lens, axis=0))
    return total
