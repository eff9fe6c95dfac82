"""Per-locality sketches of a dask array, run as dask tasks (threads, processes or a ``distributed`` cluster).

The expression matrix stays lazy (for example read from h5ad or zarr with
``anndata.experimental.read_elem_lazy``). Column statistics are dask reductions; the localities are
grouped into tasks by their position in the rows (:func:`locality_batches`), and each task gathers
only the rows of its localities (the sorted union of their cells) and sketches them with
:func:`~lava_sc._core.correlations.sketch_one` and the same per-locality seeds as the in-memory path,
so the results are identical to :func:`sketch_localities` whatever the chunking, the batching, the
scheduler or the order in which tasks finish.

``dask`` is imported lazily: this module is importable (and :func:`is_dask` works) without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .correlations import LocalitySketch, SketchOptions, locality_cells, pool_localities, sketch_one
from .expression import as_sketch_matrix

#: localities sketched by one dask task in ``tl.correlations``: 256 localities of 200 cells are about
#: 20,000 rows, a few 5,000-row chunks of a store written in embedding order (at 200,000 cells the
#: tasks read 6.2 times the store's rows with 64 localities per task, 2.9 times with 256)
LOCALITIES_PER_TASK = 256


def is_dask(x) -> bool:
    """Whether ``x`` is a dask array (without importing dask when it is not)."""
    if not type(x).__module__.startswith("dask"):
        return False
    import dask.array as da

    return isinstance(x, da.Array)


def _as_block(chunk):
    """A chunk as float32 CSR (sparse chunks) or a C-contiguous float32 array (dense chunks)."""
    if sp.issparse(chunk):
        return sp.csr_matrix(chunk, dtype=np.float32)
    return np.ascontiguousarray(chunk, dtype=np.float32)


def _per_block(matrix, func, n_rows: int, dtype):
    """Apply ``func`` to every chunk, each giving ``n_rows`` rows per chunk column (a small dense array)."""
    return matrix.map_blocks(
        func,
        chunks=((n_rows,) * matrix.numblocks[0], matrix.chunks[1]),
        dtype=dtype,
        meta=np.empty((0, 0), dtype=dtype),
    )


def _chunk_min(chunk) -> np.ndarray:
    if chunk.shape[0] == 0:
        return np.full(chunk.shape[1], np.inf, dtype=np.float64)
    low = chunk.min(axis=0)  # scipy counts implicit zeros, as column_floor does in memory
    low = low.toarray() if sp.issparse(low) else np.asarray(low)
    return low.ravel().astype(np.float64)


def _chunk_moments(chunk) -> np.ndarray:
    """Rows: count, mean, sum of squared deviations from the mean (per column, float64)."""
    n = chunk.shape[0]
    out = np.zeros((3, chunk.shape[1]))
    out[0] = n
    if n == 0:
        return out
    if sp.issparse(chunk):
        csc = sp.csc_matrix(chunk, dtype=np.float64)
        mean = np.asarray(csc.sum(axis=0)).ravel() / n
        nnz = np.diff(csc.indptr)
        dev = csc.data - np.repeat(mean, nnz)
        out[2] = np.bincount(np.repeat(np.arange(csc.shape[1]), nnz), weights=dev * dev, minlength=csc.shape[1])
        out[2] += (n - nnz) * mean**2
    else:
        x = np.asarray(chunk, dtype=np.float64)
        mean = x.mean(axis=0)
        out[2] = ((x - mean) ** 2).sum(axis=0)
    out[1] = mean
    return out


def _chunk_summary(chunk) -> np.ndarray:
    """Rows: all stored values finite (0/1, every column), count, mean, sum of squared deviations, minimum."""
    data = chunk.data if sp.issparse(chunk) else np.asarray(chunk)
    finite = bool(np.isfinite(data).all()) if data.dtype.kind == "f" else True
    out = np.full((5, chunk.shape[1]), np.nan)
    out[0] = float(finite)
    if finite:  # NaN or inf: the caller raises on `finite`; no statistics of such a chunk
        out[1:4] = _chunk_moments(chunk)
        out[4] = _chunk_min(chunk)
    else:
        out[1] = chunk.shape[0]
    return out


@dataclass(frozen=True)
class ColumnSummary:
    """What the tools need of every column of a dask array, from one pass over it."""

    finite: bool  # every stored value is finite
    variance: np.ndarray  # ddof 0, float64
    floor: np.ndarray  # minimum over all rows (implicit zeros of sparse chunks count), float64


#: summaries kept while a tool runs inside :func:`one_statistics_pass` (by dask name); None outside
_SHARED: dict[str, ColumnSummary] | None = None


@contextmanager
def one_statistics_pass():
    """Within this block the column summary of a dask array is computed once and shared by
    :func:`all_finite`, the variances (``column_summary(x).variance``) and :func:`column_floor` of that array (matched by its
    dask name), instead of one pass over the store each. Re-entrant; cleared when the outermost block
    ends, so a later tool call reads the data afresh."""
    global _SHARED
    outermost = _SHARED is None
    if outermost:
        _SHARED = {}
    try:
        yield
    finally:
        if outermost:
            _SHARED = None


def column_summary(matrix) -> ColumnSummary:
    """Finiteness, variances and minima of every column of a dask array, in one pass (per-chunk moments
    combined with the pairwise update of Chan et al.)."""
    if _SHARED is not None and matrix.name in _SHARED:
        return _SHARED[matrix.name]
    import dask

    (parts,) = dask.compute(_per_block(matrix, _chunk_summary, 5, np.float64))
    parts = np.asarray(parts).reshape(matrix.numblocks[0], 5, matrix.shape[1])
    count, mean, m2 = np.zeros(matrix.shape[1]), np.zeros(matrix.shape[1]), np.zeros(matrix.shape[1])
    for rows, (_, n_b, mean_b, m2_b, _) in zip(matrix.chunks[0], parts, strict=True):
        if rows == 0:
            continue
        total = count + n_b
        delta = mean_b - mean
        m2 = m2 + m2_b + delta**2 * count * n_b / total
        mean = mean + delta * n_b / total
        count = total
    summary = ColumnSummary(
        finite=bool(parts[:, 0, :].all()),
        variance=m2 / np.maximum(count, 1),
        floor=parts[:, 4, :].min(axis=0) if len(parts) else np.full(matrix.shape[1], np.inf),
    )
    if _SHARED is not None:
        _SHARED[matrix.name] = summary
    return summary


def column_floor(matrix) -> np.ndarray:
    """Each column's minimum over all rows of a dask array (dense or scipy-sparse chunks)."""
    return column_summary(matrix).floor.astype(matrix.dtype)


def all_finite(matrix) -> bool:
    """Whether every stored value of a dask array is finite."""
    return column_summary(matrix).finite


def gather_columns(matrix, idx: np.ndarray):
    """Materialise a few columns of a dask array as float32 CSR (sparse chunks) or a dense array."""
    return _as_block(matrix[:, np.asarray(idx)].astype(np.float32).compute())


def _sketch_task(block, floor, cells, locs, options, covariates, random_state) -> list[LocalitySketch]:
    """Sketch the localities of one task; ``cells`` index rows of ``block`` (and of ``covariates``)."""
    block = as_sketch_matrix(_as_block(block))
    with threadpool_limits(limits=1, user_api="blas"):  # as in memory: one BLAS thread per locality
        return [
            sketch_one(block, floor, c, options, covariates=covariates, seed=(random_state, int(loc)))
            for c, loc in zip(cells, locs, strict=True)
        ]


def n_tasks(n_localities: int, localities_per_task: int) -> int:
    return -(-n_localities // localities_per_task)


def locality_batches(membership: sp.csc_matrix, localities_per_task: int) -> list[np.ndarray]:
    """The localities of each task: runs of ``localities_per_task`` localities in order of their position
    in the matrix's rows, so that a task reads a compact stretch of rows.

    A locality's position is the median row of its cells (empty localities sort first; ties keep the
    locality order). In a store whose rows follow the embedding (:func:`lava_sc.io.embedding_order`),
    localities with close medians are neighbours in the embedding, and the union of a task's rows is a
    few contiguous runs: the task reads a few chunks of the store instead of one per locality. In a
    store in random order the batches are as good as any other; the sketches do not depend on them.
    """
    membership = sp.csc_matrix(membership)
    if not membership.has_sorted_indices:
        membership = membership.sorted_indices()  # a copy: the caller's matrix is left as it was
    n_loc = membership.shape[1]
    counts = np.diff(membership.indptr)
    median = np.full(n_loc, -1, dtype=np.int64)
    full = counts > 0
    median[full] = membership.indices[membership.indptr[:-1][full] + counts[full] // 2]
    order = np.argsort(median, kind="stable")
    return [order[first : first + localities_per_task] for first in range(0, n_loc, localities_per_task)]


def _active_client():
    """The ``distributed.Client`` that ``dask.compute`` would use now (default, ``as_current`` or config), or None."""
    if "distributed" not in sys.modules:
        return None
    import dask.base
    from distributed import Client

    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    return owner if isinstance(owner, Client) else None


def sketch_localities_dask(
    matrix,
    membership: sp.csc_matrix,
    options: SketchOptions,
    *,
    covariates: np.ndarray | None = None,
    random_state: int = 0,
    localities_per_task: int = LOCALITIES_PER_TASK,
    progress: Callable[[], object] | None = None,
    floor: np.ndarray | None = None,
) -> list[LocalitySketch]:
    """Sketches of every locality of a lazy cells x genes dask array, computed as dask tasks.

    Same result as :func:`~lava_sc._core.correlations.sketch_localities` on the materialised matrix.
    Runs on dask's default scheduler, or on the active ``distributed.Client`` when there is one.

    Parameters
    ----------
    matrix
        Dask array, cells x tested genes (dense or scipy-sparse chunks); best chunked along cells only.
    membership
        Cells x localities membership (CSC).
    localities_per_task
        Localities sketched by one task; each task reads the union of its localities' cells. Tasks take
        the localities in order of their median row (:func:`locality_batches`), so on a store written in
        :func:`lava_sc.io.embedding_order` a task reads a few contiguous runs of rows.
    progress
        Called once per sketched locality.
    floor
        Each column's minimum, when the caller has it (``tl.correlations`` takes it from the pass it
        shares with the finite check and the variances); computed from ``matrix`` otherwise.
    """
    import dask

    if localities_per_task < 1:
        raise ValueError(f"`localities_per_task` must be >= 1, got {localities_per_task}.")
    if matrix.shape[0] != membership.shape[0]:
        raise ValueError(f"matrix has {matrix.shape[0]} cells but the membership {membership.shape[0]}.")
    membership = sp.csc_matrix(membership)
    floor = column_floor(matrix) if floor is None else np.asarray(floor, dtype=matrix.dtype)
    n_loc = membership.shape[1]
    tasks, task_locs = [], []
    for locs in locality_batches(membership, localities_per_task):
        cells = [locality_cells(membership, loc) for loc in locs]
        rows = np.unique(np.concatenate(cells)) if len(cells) else np.zeros(0, dtype=np.int64)
        local = [np.searchsorted(rows, c) for c in cells]
        cov = None if covariates is None else np.ascontiguousarray(covariates[rows])
        task = dask.delayed(_sketch_task, pure=True)(matrix[rows], floor, local, locs, options, cov, random_state)
        tasks.append(task)
        task_locs.append(locs)
    client = _active_client()
    if client is None:
        from dask.callbacks import Callback

        size_of = {t.key: len(locs) for t, locs in zip(tasks, task_locs, strict=True)}

        def tick(key, *_):
            for _ in range(size_of.get(key, 0) if progress is not None else 0):
                progress()

        with Callback(posttask=tick):  # local schedulers: tick as each task finishes
            results = dask.compute(*tasks)
    else:
        from distributed import as_completed

        futures = client.compute(tasks)
        size_of = {f.key: len(locs) for f, locs in zip(futures, task_locs, strict=True)}
        for done in as_completed(futures):
            if progress is not None:
                for _ in range(size_of[done.key]):
                    progress()
        results = client.gather(futures)
    sketches: list = [None] * n_loc
    for locs, task in zip(task_locs, results, strict=True):
        for loc, sketch in zip(locs, task, strict=True):
            sketches[loc] = sketch
    return pool_localities(sketches, options)
