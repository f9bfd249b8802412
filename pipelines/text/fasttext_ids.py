"""fastText's input ids of a line, vectorised over an Arrow batch of token lists.

Official fastText (``Dictionary::getLine``) turns a line into the ids it averages: each vocabulary word's id
(words counted ``minCount`` times or more, most frequent first), then, when ``wordNgrams > 1``, every word n-gram
of 2..wordNgrams words as ``nwords + h % bucket``, where ``h`` starts at the first word's hash and takes
``h = h * 116049371 + hash(next word)`` in 64-bit arithmetic over 32-bit word hashes read as signed
(``Dictionary::addWordNgrams``). Words out of the vocabulary get no id but their hash still enters the n-grams,
and every line read from a file ends with the ``</s>`` token (a word like any other). ``hash`` is 32-bit FNV-1a
over the UTF-8 bytes, each byte sign-extended first (fastText's ``int8_t`` cast, kept for old models: bytes of
non-ASCII text XOR as ``0xFFFFFF00 | byte``).

Everything here is numpy over whole batches: the distinct tokens of a batch are hashed by a loop over byte
positions (at most the longest token's length), looked up in the vocabulary by Arrow's hash join, and n-grams are
built by shifting the flat hash array.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EOS = "</s>"
NGRAM_MULTIPLIER = np.uint64(116049371)
FNV_OFFSET, FNV_PRIME = np.uint32(2166136261), np.uint32(16777619)


def fnv_hashes(strings: pa.Array) -> np.ndarray:
    """fastText's ``Dictionary::hash`` of each string (uint32), bytes sign-extended as in the C++ code."""
    strings = pc.cast(strings, pa.large_binary())
    offsets = np.frombuffer(strings.buffers()[1], np.int64)[strings.offset : strings.offset + len(strings) + 1]
    data = np.frombuffer(strings.buffers()[2], np.uint8) if strings.buffers()[2] is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.full(len(strings), FNV_OFFSET, np.uint32)
    for j in range(int(lengths.max(initial=0))):
        live = np.flatnonzero(lengths > j)
        byte = data[starts[live] + j].astype(np.uint32)
        byte = np.where(byte >= 128, byte | np.uint32(0xFFFFFF00), byte)
        hashes[live] = (hashes[live] ^ byte) * FNV_PRIME
    return hashes


def token_codes(tokens: pa.ListArray, vocabulary: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row lengths (with ``</s>`` appended to every row), then per token its vocabulary id (-1 when out of
    the vocabulary) and its hash, flat in row order. Null rows are empty lines (just ``</s>``)."""
    lengths = pc.fill_null(pc.list_value_length(tokens), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = tokens.flatten()
    encoded = pc.dictionary_encode(pa.concat_arrays([pa.array([EOS], flat.type), flat]))
    index = encoded.indices.to_numpy(zero_copy_only=False)
    ids = pc.fill_null(pc.index_in(encoded.dictionary, value_set=vocabulary), -1).to_numpy(zero_copy_only=False)
    hashes = fnv_hashes(encoded.dictionary)
    eos, index = index[0], index[1:]
    # put </s> after each row's tokens: row r's tokens move r places right, its </s> lands at its end
    out = np.empty(len(index) + len(lengths), np.int64)
    ends = np.cumsum(lengths + 1) - 1
    keep = np.ones(len(out), bool)
    keep[ends] = False
    out[keep], out[ends] = index, eos
    return lengths + 1, ids[out].astype(np.int64), hashes[out]


def line_ids(
    tokens: pa.ListArray, vocabulary: pa.Array, word_ngrams: int, bucket: int
) -> tuple[np.ndarray, np.ndarray]:
    """fastText's ids of each row (``getLine`` of the row's tokens joined by spaces, a line of a file):
    ``(row lengths, flat int64 ids)``, per row its words' ids in order, then its n-grams' ``nwords + bucket`` ids
    ordered by first word, then length. ``vocabulary`` holds the words in id order (``</s>`` among them)."""
    lengths, word_ids, hashes = token_codes(tokens, vocabulary)
    nwords = len(vocabulary)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    known = word_ids >= 0
    # (row, first word, n-gram length, id) of every id: words have length 0
    parts = [(rows[known], position[known], np.zeros(known.sum(), np.int64), word_ids[known])]
    if word_ngrams > 1 and bucket > 0:
        signed = hashes.view(np.int32).astype(np.int64).view(np.uint64)
        h = signed.copy()
        for k in range(1, word_ngrams):
            h = h[: len(h) - 1] * NGRAM_MULTIPLIER + signed[k:]
            first = np.flatnonzero(position[: len(h)] + k < lengths[rows[: len(h)]])
            parts.append(
                (
                    rows[first],
                    position[first],
                    np.full(len(first), k, np.int64),
                    nwords + (h[first] % np.uint64(bucket)).astype(np.int64),
                )
            )
    rows_all, first_all, order_all, ids_all = (np.concatenate(column) for column in zip(*parts))
    # words (order 0) before n-grams; n-grams by first word, then length, as addWordNgrams pushes them
    sort = np.lexsort((order_all, first_all, order_all > 0, rows_all))
    return np.bincount(rows_all, minlength=len(lengths)).astype(np.int64), ids_all[sort]


def compact_ids(ids: np.ndarray, nwords: int, buckets: np.ndarray) -> np.ndarray:
    """Raw ids with n-gram ids ``nwords + b`` renumbered ``nwords + position of b in buckets`` (the sorted buckets
    that occur in the training data: the rows a compact input matrix keeps); a bucket not among them becomes -1
    (``fasttext_kernel.hidden`` counts it as a zero row)."""
    out = ids.copy()
    grams = np.flatnonzero(ids >= nwords)
    b = ids[grams] - nwords
    pos = np.searchsorted(buckets, b)
    found = pos < len(buckets)
    found[found] = buckets[pos[found]] == b[found]
    out[grams] = np.where(found, nwords + pos, -1)
    return out
