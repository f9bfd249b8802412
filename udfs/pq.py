"""Numpy kernels of product quantization, run inside Arrow/pandas UDFs and ``mapInPandas`` on Arrow batches.

Everything works on whole batches as matrices (BLAS matmul for distances, fancy indexing for table
reads); there is no per-row Python loop. Conventions: ``codebooks`` is ``(M, K, dsub)`` float32 with
``K = 2**nbits``; unpacked codes are ``(n, M)`` uint8; packed codes use Faiss's layout (``nbits``
bits per sub-space, least significant bit first, ``ceil(M * nbits / 8)`` bytes per vector).
Distances are squared L2 for ``l2``, ``-<q, x>`` for ``ip`` and ``1 - <q, x>`` for ``cosine``, so
that smaller is always nearer.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

METRICS = ("l2", "ip", "cosine")


def code_size(m: int, nbits: int) -> int:
    """Bytes per packed code: ``ceil(M * nbits / 8)`` (M bytes at 8 bits), as in Faiss."""
    return (m * nbits + 7) // 8


def stack_vectors(series: pd.Series, dim: int) -> np.ndarray:
    """A Series of equal-length arrays (an ``array<float>`` column) as an ``(n, dim)`` float32 matrix."""
    if len(series) == 0:
        return np.empty((0, dim), np.float32)
    return np.stack(series.to_numpy()).astype(np.float32, copy=False).reshape(len(series), dim)


def vectors_to_series(x: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """The rows of a float32 matrix as a Series of arrays (an ``array<float>`` column)."""
    return pd.Series(list(np.asarray(x, np.float32)), index=index, dtype=object)


def prepare(x: np.ndarray, metric: str, rotation: np.ndarray | None) -> np.ndarray:
    """Map raw vectors into the quantised space: unit length for cosine, then the OPQ rotation."""
    x = np.asarray(x, np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0).astype(np.float32)
    if rotation is not None:
        x = x @ rotation
    return x


def nearest(x: np.ndarray, centroids: np.ndarray, chunk_cells: int = 1 << 24) -> np.ndarray:
    """Index of the nearest centroid (squared L2) of each row, via ``||c||^2 - 2 x.c`` and matmul."""
    c_sq = np.einsum("kd,kd->k", centroids, centroids)
    out = np.empty(len(x), np.int64)
    step = max(1, chunk_cells // max(1, len(centroids)))
    for start in range(0, len(x), step):
        scores = x[start : start + step] @ centroids.T
        scores *= -2.0
        scores += c_sq
        out[start : start + step] = scores.argmin(axis=1)
    return out


def encode(x: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Unpacked PQ codes ``(n, M)`` uint8 of prepared vectors: the nearest centroid per sub-space."""
    m, _, dsub = codebooks.shape
    sub = x.reshape(len(x), m, dsub)
    codes = np.empty((len(x), m), np.uint8)
    for j in range(m):
        codes[:, j] = nearest(sub[:, j, :], codebooks[j])
    return codes


def decode(codes: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Reconstructed prepared vectors ``(n, d)``: the concatenation of each code's centroids."""
    m, _, dsub = codebooks.shape
    return codebooks[np.arange(m), codes.astype(np.intp)].reshape(len(codes), m * dsub)


def pack_codes(codes: np.ndarray, nbits: int) -> np.ndarray:
    """Pack ``(n, M)`` codes into ``(n, code_size)`` bytes, Faiss's bit layout (LSB first)."""
    if nbits == 8:
        return np.ascontiguousarray(codes, np.uint8)
    n, m = codes.shape
    bits = np.unpackbits(codes[:, :, None], axis=2, bitorder="little")[:, :, :nbits]
    return np.packbits(bits.reshape(n, m * nbits), axis=1, bitorder="little")


def unpack_codes(packed: np.ndarray, m: int, nbits: int) -> np.ndarray:
    """Inverse of ``pack_codes``: ``(n, code_size)`` bytes back to ``(n, M)`` codes."""
    if nbits == 8:
        return packed[:, :m]
    n = len(packed)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : m * nbits].reshape(n, m, nbits)
    return np.packbits(bits, axis=2, bitorder="little")[:, :, 0]


def arrow_vectors(vectors: pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """An ``array<float>`` Arrow column as ``(present, x)``: which rows are non-null, and those rows as an
    ``(n_present, dim)`` float32 matrix taken from the list values without per-row objects. Every present
    row must have ``dim`` values; a null component reads as NaN."""
    present = vectors.is_valid().to_numpy(zero_copy_only=False)
    flat = vectors.drop_null().flatten().to_numpy(zero_copy_only=False)
    return present, np.asarray(flat, np.float32).reshape(int(present.sum()), dim)


def codes_to_arrow(packed: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Packed codes ``(valid.sum(), width)`` as an Arrow binary column built from one data buffer; rows
    not ``valid`` are null."""
    width = packed.shape[1] if packed.ndim == 2 else 0
    offsets = np.zeros(len(valid) + 1, np.int32)
    np.cumsum(np.where(valid, width, 0), out=offsets[1:])
    mask = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.binary(), len(valid),
                                 [mask, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(packed, np.uint8))],
                                 null_count=int(len(valid) - valid.sum()))


def series_to_codes(series: pd.Series, size: int) -> np.ndarray:
    """A Series of ``bytes`` (binary column, no nulls) as an ``(n, size)`` uint8 matrix."""
    return np.frombuffer(b"".join(series.to_numpy()), np.uint8).reshape(len(series), size)


def lookup_tables(q: np.ndarray, codebooks: np.ndarray, metric: str) -> np.ndarray:
    """ADC tables ``(M, B, K)`` for prepared queries ``(B, d)``: each query sub-vector to each centroid."""
    m, _, dsub = codebooks.shape
    sub = q.reshape(len(q), m, dsub).transpose(1, 0, 2)
    ip = np.matmul(sub, codebooks.transpose(0, 2, 1))
    if metric != "l2":
        return -ip
    ip *= -2.0
    ip += np.einsum("mbd,mbd->mb", sub, sub)[:, :, None]
    ip += np.einsum("mkd,mkd->mk", codebooks, codebooks)[:, None, :]
    return ip


def adc_distances(luts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Asymmetric distances ``(B, n)``: per query the sum of M table reads indexed by the item codes."""
    acc = np.take(luts[0], codes[:, 0], axis=1)
    for j in range(1, luts.shape[0]):
        acc += np.take(luts[j], codes[:, j], axis=1)
    return acc


def exact_distances(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances ``(B, n)`` of prepared queries to prepared items (``||q||^2 - 2 q.x + ||x||^2``)."""
    ip = q @ x.T
    if metric != "l2":
        return -ip
    ip *= -2.0
    ip += np.einsum("bd,bd->b", q, q)[:, None]
    ip += np.einsum("nd,nd->n", x, x)[None, :]
    return np.maximum(ip, 0.0, out=ip)


def metric_offset(metric: str) -> float:
    """Constant added to ``-<q, x>`` so that cosine distances read ``1 - cos``."""
    return 1.0 if metric == "cosine" else 0.0


class RunningTopK:
    """The k smallest distances per query so far, as ``(Q, k)`` arrays of distances and item positions."""

    def __init__(self, n_queries: int, k: int):
        self.k = k
        self.dist = np.full((n_queries, k), np.inf, np.float32)
        self.pos = np.full((n_queries, k), -1, np.int64)

    def push(self, rows: np.ndarray, dist: np.ndarray, positions: np.ndarray) -> None:
        """Merge a ``(len(rows), n)`` block of distances to items at ``positions`` into queries ``rows``."""
        k = self.k
        if dist.shape[1] > k:
            part = np.argpartition(dist, k - 1, axis=1)[:, :k]
            cand_d, cand_p = np.take_along_axis(dist, part, axis=1), positions[part]
        else:
            cand_d, cand_p = dist, np.broadcast_to(positions, dist.shape)
        all_d = np.concatenate([self.dist[rows], cand_d], axis=1)
        all_p = np.concatenate([self.pos[rows], cand_p], axis=1)
        keep = np.argpartition(all_d, k - 1, axis=1)[:, :k]
        self.dist[rows] = np.take_along_axis(all_d, keep, axis=1)
        self.pos[rows] = np.take_along_axis(all_p, keep, axis=1)

    def frame(self, query_ids: np.ndarray, item_ids: np.ndarray, offset: float = 0.0) -> pd.DataFrame:
        """The found neighbours as rows ``(query_id, item_id, distance)``, unsorted."""
        q, j = np.nonzero(self.pos >= 0)
        return pd.DataFrame(
            {
                "query_id": query_ids[q],
                "item_id": item_ids[self.pos[q, j]],
                "distance": self.dist[q, j].astype(np.float64) + offset,
            }
        )


def scan_topk(
    n_items: int,
    groups: list[tuple[np.ndarray, np.ndarray]],
    k: int,
    n_queries: int,
    block: int,
    tables: Callable[[np.ndarray], object],
    distances: Callable[[object, np.ndarray], np.ndarray],
    chunk_cells: int = 1 << 22,
) -> RunningTopK:
    """Top-k of ``n_queries`` over ``n_items`` items of one partition.

    ``groups`` pairs item positions with the query rows that scan them (one group for a flat scan,
    one per inverted list for IVF). ``tables(query_rows)`` prepares a query block once (ADC lookup
    tables, or the query vectors), ``distances(prepared, item_positions)`` returns its ``(B, n)``
    distances. Blocks of ``block`` queries and item chunks of about ``chunk_cells / block`` rows
    bound the memory of one distance matrix.
    """
    top = RunningTopK(n_queries, k)
    for items, queries in groups:
        if len(items) == 0 or len(queries) == 0:
            continue
        for start in range(0, len(queries), block):
            rows = queries[start : start + block]
            prepared = tables(rows)
            step = max(k, chunk_cells // len(rows))
            for first in range(0, len(items), step):
                chunk = items[first : first + step]
                top.push(rows, distances(prepared, chunk), chunk)
    return top


def ivf_groups(
    n_items: int, n_queries: int, lists: np.ndarray | None = None, probes: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Item positions per inverted list paired with the query rows that probe it.

    Without IVF (``probes`` None) that is one group: every item against every query.
    """
    if probes is None or lists is None:
        return [(np.arange(n_items), np.arange(n_queries))]
    order = np.argsort(lists, kind="stable")
    ids, starts = np.unique(lists[order], return_index=True)
    bounds = np.append(starts, len(order))
    return [
        (order[bounds[i] : bounds[i + 1]], np.nonzero((probes == ids[i]).any(axis=1))[0])
        for i in range(len(ids))
    ]


def concat_batches(batches: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """One pandas frame of a partition's Arrow batches (``None`` for an empty partition)."""
    frames = [b for b in batches if len(b)]
    return pd.concat(frames, ignore_index=True) if frames else None
