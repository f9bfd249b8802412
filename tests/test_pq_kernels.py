"""PQ numpy kernels: code packing, encoding (equal to the previous path and to Faiss), vector batches,
ADC = distance to the decoded vector, top-k merging, k-means."""

import numpy as np
import pyarrow as pa
import pytest

from pipelines.pq.codebooks import kmeans, train_codebooks, train_opq
from udfs.pq import (
    RunningTopK,
    adc_distances,
    arrow_vectors,
    binary_to_float_lists,
    code_size,
    decode,
    encode,
    exact_distances,
    finite_rows,
    list_groups,
    lookup_tables,
    nearest,
    nonfinite_rows,
    pack_codes,
    prepare,
    probe_lists,
    scan_topk,
    unpack_codes,
    vectors_to_binary,
)

RNG = np.random.default_rng(3)
X = (RNG.standard_normal((600, 16)) @ RNG.standard_normal((16, 16))).astype(np.float32)


@pytest.mark.parametrize("nbits", [4, 5, 6, 7, 8])
def test_pack_unpack_round_trip_uses_faiss_layout(nbits):
    codes = RNG.integers(0, 1 << nbits, (50, 6)).astype(np.uint8)
    packed = pack_codes(codes, nbits)
    assert packed.shape == (50, code_size(6, nbits))
    np.testing.assert_array_equal(unpack_codes(packed, 6, nbits), codes)
    if nbits == 4:  # two codes per byte, the first in the low nibble
        np.testing.assert_array_equal(packed[:, 0], codes[:, 0] | (codes[:, 1] << 4))


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_adc_equals_distance_to_decoded_vectors(metric):
    books = train_codebooks(X, 4, 16, 10, seed=0)
    codes = encode(X, books)
    q = X[:7] + 0.1
    adc = adc_distances(lookup_tables(q, books, metric), codes)
    np.testing.assert_allclose(adc, exact_distances(q, decode(codes, books), metric), rtol=1e-4, atol=1e-3)


def test_encode_picks_the_nearest_centroid_per_sub_space():
    books = train_codebooks(X, 4, 16, 5, seed=1)
    codes = encode(X, books)
    sub = X.reshape(len(X), 4, 4)
    brute = ((sub[:, :, None, :] - books[None]) ** 2).sum(-1).argmin(-1)
    assert (codes == brute).mean() > 0.999  # float ties aside


def test_running_top_k_matches_a_full_sort():
    dist = RNG.random((5, 300)).astype(np.float32)
    top = RunningTopK(5, 10)
    for start in range(0, 300, 70):
        top.push(np.arange(5), dist[:, start : start + 70], np.arange(start, min(start + 70, 300)))
    got = np.sort(top.pos, axis=1)
    np.testing.assert_array_equal(got, np.sort(np.argsort(dist, axis=1)[:, :10], axis=1))


def test_list_groups_probes_and_a_block_scan_find_the_nearest():
    groups = list_groups(np.array([1, 0, 1, 2, 0]))
    assert [(lst, pos.tolist()) for lst, pos in groups] == [(0, [1, 4]), (1, [0, 2]), (2, [3])]
    coarse = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    probes = probe_lists(np.array([[9.0, 1.0], [1.0, 8.0]], np.float32), coarse, 2)
    assert [set(row) for row in probes.tolist()] == [{1, 0}, {2, 0}]
    x = RNG.random((50, 4)).astype(np.float32)
    q = RNG.random((7, 4)).astype(np.float32)
    top = scan_topk(50, 7, 3, 2, lambda rows: q[rows], lambda qb, pos: exact_distances(qb, x[pos], "l2"), 40)
    expected = np.argsort(exact_distances(q, x, "l2"), axis=1)[:, :3]
    np.testing.assert_array_equal(np.sort(top.pos, axis=1), np.sort(expected, axis=1))


@pytest.mark.parametrize("init", ["random", "k-means++"])
def test_kmeans_is_seeded_and_improves_on_its_initial_points(init):
    a, b = kmeans(X, 32, 10, seed=5, init=init), kmeans(X, 32, 10, seed=5, init=init)
    np.testing.assert_array_equal(a, b)
    sse = ((X - a[nearest(X, a)]) ** 2).sum()
    start = kmeans(X, 32, 0, seed=5, init=init)
    assert sse < ((X - start[nearest(X, start)]) ** 2).sum() * 0.8


def test_kmeans_fills_empty_clusters_on_duplicate_points():
    x = np.repeat(X[:10], 20, axis=0)  # 10 distinct points, 16 clusters
    centroids = kmeans(x, 16, 5, seed=0)
    assert np.isfinite(centroids).all() and len(centroids) == 16


def test_opq_rotation_is_orthogonal_and_lowers_the_error():
    x = X @ np.linalg.qr(RNG.standard_normal((16, 16)))[0].astype(np.float32)
    rotation = train_opq(x, 4, 16, 5, 5, seed=0)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(16), atol=1e-4)
    plain = train_codebooks(x, 4, 16, 10, 0)
    rotated = train_codebooks(x @ rotation, 4, 16, 10, 0)
    err = lambda v, b: ((v - decode(encode(v, b), b)) ** 2).sum()  # noqa: E731
    assert err(x @ rotation, rotated) < err(x, plain)


def test_cosine_prepare_normalises():
    got = prepare(np.array([[3.0, 4.0], [0.0, 0.0]]), "cosine", None)
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0]])


def test_default_init_is_faiss_random_distinct_points():
    start = kmeans(X, 16, 0, seed=2)
    rows = [np.nonzero((X == c).all(axis=1))[0] for c in start]
    assert all(len(r) == 1 for r in rows) and len({int(r[0]) for r in rows}) == 16
    np.testing.assert_array_equal(kmeans(X, 16, 5, seed=2), kmeans(X, 16, 5, seed=2, init="random"))
    assert not np.array_equal(kmeans(X, 16, 5, seed=2), kmeans(X, 16, 5, seed=2, init="k-means++"))


def _one_matrix_codes(x: np.ndarray, books: np.ndarray) -> np.ndarray:
    """The previous encoder: one ``||c||^2 - 2 x.c`` matrix per sub-space, argmin."""
    m, _, dsub = books.shape
    sub = x.reshape(len(x), m, dsub)
    out = np.empty((len(x), m), np.uint8)
    for j in range(m):
        scores = sub[:, j, :] @ books[j].T
        scores *= -2.0
        scores += np.einsum("kd,kd->k", books[j], books[j])
        out[:, j] = scores.argmin(axis=1)
    return out


@pytest.mark.parametrize("block_cells", [1, 1000, 1 << 18])
def test_blocked_encode_equals_one_matrix_per_sub_space(block_cells):
    books = train_codebooks(X, 4, 64, 5, seed=2)
    np.testing.assert_array_equal(encode(X, books, block_cells), _one_matrix_codes(X, books))
    centroids = X[:50] + 0.01
    np.testing.assert_array_equal(nearest(X, centroids, block_cells), _one_matrix_codes(X, centroids[None])[:, 0])
    assert encode(X[:0], books).shape == (0, 4) and nearest(X[:0], centroids).shape == (0,)


def test_codes_equal_faiss_compute_codes_given_the_same_centroids():
    faiss = pytest.importorskip("faiss")
    x = np.ascontiguousarray(np.repeat(X, 2, axis=0) + RNG.standard_normal((1200, 16)).astype(np.float32))
    pq = faiss.ProductQuantizer(16, 4, 8)
    pq.train(x)
    books = faiss.vector_to_array(pq.centroids).reshape(4, 256, 4)
    np.testing.assert_array_equal(pack_codes(encode(x, books), 8), pq.compute_codes(x))


def test_arrow_vectors_reads_float_double_and_binary_batches():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    rows = [x[0], None, x[2][:2], x[3]]
    floats = pa.array([None if r is None else r.tolist() for r in rows], pa.list_(pa.float32()))
    doubles = floats.cast(pa.list_(pa.float64()))
    blobs = pa.array([None if r is None else r.tobytes() for r in rows], pa.binary())
    for column in (floats, doubles, blobs):
        present, got = arrow_vectors(column, 3)
        np.testing.assert_array_equal(present, [True, False, False, True])
        np.testing.assert_array_equal(got, x[[0, 3]])
        present, got = arrow_vectors(column.slice(2), 3)  # batches can be slices of a buffer
        np.testing.assert_array_equal(present, [False, True])
        np.testing.assert_array_equal(got, x[[3]])


def test_binary_vectors_decode_to_float_lists_and_flag_nan_inf():
    x = RNG.standard_normal((3, 2)).astype(np.float32)
    x[1, 0] = np.inf
    blobs = pa.array(vectors_to_binary(x) + [None, b"abc"], pa.binary())
    decoded = binary_to_float_lists(blobs).to_pylist()
    assert decoded[3:] == [None, None]
    np.testing.assert_array_equal(np.array(decoded[:3], np.float32), x)
    np.testing.assert_array_equal(nonfinite_rows(blobs), [False, True, False, False, False])
    assert np.frombuffer(vectors_to_binary(x.astype(np.float64))[0], "<f4").tolist() == x[0].tolist()


def test_finite_rows_flags_nan_inf_but_not_an_overflowing_sum():
    x = np.ones((4, 3), np.float32)
    x[1, 2], x[2, 0] = np.nan, -np.inf
    x[3] = 3e38  # finite components whose float32 sum overflows
    np.testing.assert_array_equal(finite_rows(x), [True, False, False, True])
