"""The kNN index against exact neighbours, and pynndescent's independence of the thread count."""

import numba
import numpy as np
import pytest

from lava_sc._core.knn import NeighbourIndex


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(8, 15))
    return (centres[rng.integers(0, 8, 5000)] + rng.normal(size=(5000, 15))).astype(np.float32)


def test_exact_index_matches_brute_force(points):
    idx, dist = NeighbourIndex(points, method="exact").query(points[:200], 5)
    full = np.linalg.norm(points[:200, None, :] - points[None, :, :], axis=2)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :5], rtol=1e-4, atol=1e-4)
    assert (idx[:, 0] == np.arange(200)).all()


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_pynndescent_neighbours_do_not_depend_on_the_thread_count(points):
    """pynndescent (used for > 10-d embeddings of >= 20,000 cells) parallelises with numba; LAVA's
    localities must not change with the number of threads."""
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            runs.append(NeighbourIndex(points, method="pynndescent", random_state=0).query(points[:1000], 10))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    exact, _ = NeighbourIndex(points, method="exact").query(points[:1000], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(runs[0][0], exact, strict=True)])
    assert recall >= 0.9
