"""The dask kernels against their in-memory counterparts (default scheduler; the cluster runs in tests/tl)."""

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")

from lava_sc._core import distributed  # noqa: E402
from lava_sc._core.correlations import SketchOptions, sketch_localities  # noqa: E402
from lava_sc._core.expression import column_floor  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_threaded_blas")


@pytest.fixture(scope="module")
def data():
    """Sparse log-counts (with a shifted, fully dense gene and an all-zero gene) and random localities."""
    rng = np.random.default_rng(0)
    n, g, n_loc = 600, 40, 23
    latent = rng.normal(size=(n, 1))
    mu = rng.uniform(-1, 1.5, g) + 1.2 * latent * (np.arange(g) < 18)
    x = np.log1p(rng.poisson(np.exp(mu))).astype(np.float32)
    x[:, 20] += 1.5  # never zero: its floor is its minimum, not 0
    x[:, 21] = 0.0
    rows = np.concatenate([rng.choice(n, 80, replace=False) for _ in range(n_loc)])
    cols = np.repeat(np.arange(n_loc), 80)
    membership = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n_loc))
    return sp.csr_matrix(x), membership, rng.normal(size=(n, 2))


def as_dask(x, kind, chunks=(130, -1)):
    if kind == "dense":
        return da.from_array(x.toarray(), chunks=chunks)
    return da.from_array(x, chunks=chunks, asarray=False)


def same(a, b):
    assert len(a) == len(b)
    for s, t in zip(a, b, strict=True):
        np.testing.assert_array_equal(s.gene_a, t.gene_a)
        np.testing.assert_array_equal(s.gene_b, t.gene_b)
        np.testing.assert_array_equal(s.r, t.r)
        assert (s.n_tests, s.n_null_exceed) == (t.n_tests, t.n_null_exceed)


def test_is_dask(data):
    x, _, _ = data
    assert distributed.is_dask(as_dask(x, "dense"))
    assert not distributed.is_dask(x)
    assert not distributed.is_dask(x.toarray())


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_column_statistics_match_in_memory(data, kind):
    x, _, _ = data
    lazy = as_dask(x, kind, chunks=(130, 15))  # uneven row chunks, several column chunks
    floor = distributed.column_floor(lazy)
    np.testing.assert_array_equal(floor, column_floor(x))
    assert floor.dtype == np.float32 and floor[20] > 0 and floor[0] == 0
    dense = x.toarray().astype(np.float64)
    np.testing.assert_allclose(distributed.column_summary(lazy).variance, dense.var(axis=0), rtol=1e-10, atol=1e-14)
    assert distributed.column_summary(lazy).variance[21] == 0
    assert distributed.all_finite(lazy)
    np.testing.assert_array_equal(
        distributed.gather_columns(lazy, [3, 1]).toarray()
        if kind == "sparse"
        else distributed.gather_columns(lazy, [3, 1]),
        x[:, [3, 1]].toarray(),
    )


def test_non_finite_values_are_found():
    x = sp.random(50, 8, density=0.3, format="csr", dtype=np.float32, random_state=0)
    x.data[3] = np.nan
    assert not distributed.all_finite(as_dask(x, "sparse", chunks=(20, 4)))
    dense = np.zeros((50, 8), dtype=np.float32)
    dense[49, 7] = np.inf
    assert not distributed.all_finite(da.from_array(dense, chunks=(20, 4)))


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("per_task", [1, 7, 64])
def test_sketches_are_identical_to_the_in_memory_path(data, kind, per_task):
    x, membership, _ = data
    options = SketchOptions(min_abs_r=0.05)
    ref = sketch_localities(x, membership, options, random_state=3)
    ticks = []
    out = distributed.sketch_localities_dask(
        as_dask(x, kind),
        membership,
        options,
        random_state=3,
        localities_per_task=per_task,
        progress=lambda: ticks.append(1),
    )
    same(out, ref)
    assert len(ticks) == membership.shape[1]
    assert sum(len(s.r) for s in ref) > 0


def test_covariates_are_remapped_to_the_gathered_rows(data):
    x, membership, covariates = data
    options = SketchOptions(two_sided=True, max_partners=None)
    ref = sketch_localities(x, membership, options, covariates=covariates, random_state=0)
    out = distributed.sketch_localities_dask(
        as_dask(x, "sparse"), membership, options, covariates=covariates, random_state=0, localities_per_task=5
    )
    same(out, ref)
    assert sum(len(s.r) for s in ref) > 0


def test_bad_arguments(data):
    x, membership, _ = data
    with pytest.raises(ValueError, match="localities_per_task"):
        distributed.sketch_localities_dask(as_dask(x, "dense"), membership, SketchOptions(), localities_per_task=0)
    with pytest.raises(ValueError, match="cells"):
        distributed.sketch_localities_dask(as_dask(x[:100], "dense"), membership, SketchOptions())


def test_batches_follow_the_rows_and_cover_every_locality_once():
    rng = np.random.default_rng(3)
    n, n_loc, size = 1000, 40, 50
    starts = rng.permutation(n_loc) * (n - size) // n_loc  # localities are row ranges, listed out of order
    rows = np.concatenate([np.arange(s, s + size) for s in starts])
    membership = sp.csc_matrix((np.ones(len(rows)), (rows, np.repeat(np.arange(n_loc), size))), shape=(n, n_loc))
    batches = distributed.locality_batches(membership, 8)
    assert [len(b) for b in batches] == [8] * 5
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n_loc))
    medians = np.concatenate([starts[b] for b in batches])
    assert (np.diff(medians) >= 0).all()  # in row order: a batch's rows are one compact stretch
    spans = [np.ptp(np.concatenate([np.arange(s, s + size) for s in starts[b]])) for b in batches]
    assert max(spans) < n // 4


def test_batches_leave_the_membership_as_it_was(data):
    _, membership, _ = data
    shuffled = membership.copy()
    shuffled.has_sorted_indices = False
    before = shuffled.indices.copy()
    distributed.locality_batches(shuffled, 5)
    np.testing.assert_array_equal(shuffled.indices, before)
    empty = sp.csc_matrix((10, 3))
    assert [b.tolist() for b in distributed.locality_batches(empty, 2)] == [[0, 1], [2]]


class CountingArray:
    """A dense array that counts the row blocks dask reads from it."""

    def __init__(self, values):
        self.values, self.shape, self.dtype, self.ndim, self.reads = values, values.shape, values.dtype, 2, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.values[key]


def test_one_statistics_pass_reads_each_chunk_once_and_forgets_after():
    rng = np.random.default_rng(0)
    source = CountingArray(rng.standard_normal((100, 6)).astype(np.float32))
    x = da.from_array(source, chunks=(25, -1), asarray=True)
    source.reads = 0  # dask may sample the array once to learn its type
    with distributed.one_statistics_pass():
        assert distributed.all_finite(x)
        variance = distributed.column_summary(x).variance
        floor = distributed.column_floor(x)
        with distributed.one_statistics_pass():  # re-entrant: an inner tool call shares the pass
            distributed.column_summary(x)
    assert source.reads == 4  # one pass over the 4 chunks for all three statistics
    np.testing.assert_allclose(variance, source.values.astype(np.float64).var(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(floor, source.values.min(axis=0))
    distributed.all_finite(x)  # outside the block nothing is kept: the data are read again
    distributed.all_finite(x)
    assert source.reads == 12


def test_a_lazy_correlations_run_makes_one_statistics_pass(data):
    """tl.correlations' finite check, gene variances and floors share one pass (they were three)."""
    import anndata as ad

    import lava_sc as lv

    x, membership, _ = data
    source = CountingArray(x.toarray())
    adata = ad.AnnData(X=da.from_array(source, chunks=(130, -1), asarray=True))
    adata.obsm["X_umap"] = np.random.default_rng(0).standard_normal((x.shape[0], 2)).astype(np.float32)
    lv.tl.localities(adata, random_state=0)
    n_chunks = adata.X.numblocks[0]
    source.reads = 0
    with dask_sync():
        lv.tl.correlations(adata, random_state=0)
    tasks = -(-adata.obsm["lava_localities"].shape[1] // distributed.LOCALITIES_PER_TASK)
    assert source.reads <= n_chunks * (1 + tasks)  # one statistics pass, then at most every chunk per task
    assert source.reads > n_chunks


def dask_sync():
    import dask

    return dask.config.set(scheduler="synchronous")
