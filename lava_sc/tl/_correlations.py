"""``tl.correlations``: the gene-gene correlations of each locality, tested against a permutation null
after removing each locality's dense low-rank structure; the significant pairs form the sketch."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._adata import column_variance, gene_positions, highly_variable, invalidate, warn_if_counts, writable
from .._adata import covariates as covariate_rows
from .._core import distributed
from .._core.correlations import (
    LocalitySketch,
    SketchOptions,
    resolve_n_jobs,
    sketch_localities,
)
from .._core.expression import gene_matrix
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._params import CorrelationsSettings, upstream_of
from .._utils import explained_memory_error, log_added, progress, store
from .._validate import (
    check_adata,
    check_choice,
    check_float,
    check_int,
    check_key,
    check_localities,
    expression,
    require,
)

#: without ``highly_variable`` and ``genes=``, at most this many of the most variable genes are tested
MAX_DEFAULT_GENES = 2000

#: the advice of a MemoryError: the working set grows with the square of the number of genes tested
FEWER_GENES = "pass fewer genes with `genes=` (e.g. adata.var['highly_variable'])."

#: localities with fewer cells (left after subsetting adata) have no correlations and are skipped
MIN_LOCALITY_CELLS = 3


@explained_memory_error("tl.correlations", FEWER_GENES)
@doc()
@distributed.one_statistics_pass()  # a lazy X: finite check, variances and floors in one pass
def correlations(
    adata: AnnData,
    *,
    layer: str | None = None,
    genes=None,
    key: str = DEFAULT_KEY,
    fdr: float = 0.05,
    alternative: Literal["greater", "two-sided"] = "greater",
    min_detected: float = 0.1,
    min_abs_r: float = 0.1,
    max_partners: int | None = 10,
    remove_dense: bool = True,
    robust: bool = True,
    fdr_scope: Literal["all", "locality"] = "all",
    n_null: int | Literal["auto"] = 1,
    partial_out: str | list[str] | None = None,
    n_partial_components: int = 5,
    random_state: int = 0,
    n_jobs: int | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Per-locality gene-gene correlations, kept as a sketch of significant associations (LAVA step 2).

    For every locality the correlation of every pair of tested genes is computed with one BLAS
    rank-k update, and compared with the correlations of the same genes after shuffling their values
    across the locality's cells (one random permutation of the cells, then a different cyclic shift
    for each gene, so every pair of genes is paired through a random derangement of the cells).
    This null has each pair's own locality size, sparsity and skew, so sparse co-detection does not
    pass for association. Pairs are grouped by detection class
    (below 25%, 25-60%, above 60% of the locality's cells) and, in each class, the threshold is the
    smallest |r| whose estimated false discovery proportion ``(1 + null exceedances) / observed
    exceedances`` is at most ``fdr`` (knockoff+), counted over all localities (``fdr_scope="all"``) or
    in each locality. Before the test, each locality's dense low-rank structure is removed
    (``remove_dense``), and a pair's statistic is its correlation once the one cell that carries it
    most is left out (``robust``). Only the significant pairs are kept.

    Parameters
    ----------
    adata
        Annotated data with localities (``tl.localities``). Expression should be log-normalised
        (scaled data also works: correlations are invariant to per-gene scaling).
    {layer}
    genes
        Genes to test (names or a boolean mask over ``var_names``). Default: ``var["highly_variable"]``
        when present, else all non-constant genes, or the 2,000 most variable if there are more.
    key
        Key used by ``tl.localities``; results are stored in ``uns[key]``.
    fdr
        Target false discovery rate in each locality.
    alternative
        ``"greater"`` (positive associations, default) or ``"two-sided"`` (anti-correlated pairs
        too). A programme whose genes move in opposite directions (one set up, one set down) is
        found whole only two-sided: ``tl.modules`` then keeps it as one module and
        ``get.module_genes`` gives each gene its side (``sign``); with ``"greater"`` each side is
        its own module. Measured on ``simulate_atlas`` (seeds 0-2): the signed programme's Jaccard
        0.50 -> 0.86-1.00, mean over programmes 0.76 -> 0.80; on image data (negatively correlated
        pixels abound) two-sided gives coarser modules and takes up to twice as long.
    min_detected
        A gene is tested in a locality only if detected (above its minimum value over all cells) in
        at least this fraction of the locality's cells.
    min_abs_r
        Smallest absolute correlation kept, however significant.
    max_partners
        In each locality keep a significant pair only if it is among the ``max_partners``
        strongest associations of one of its two genes; ``None`` keeps every significant pair.
        Where correlation is dense (images: every inked pixel correlates with every other) this
        turns the sketch into each gene's closest associates and keeps modules readable; sparse
        programs smaller than ``max_partners`` genes are unaffected.
    remove_dense
        Remove each locality's dense low-rank structure before testing (default). Principal components
        of the locality's standardised expression whose eigenvalue exceeds 1.1 times the null's top
        eigenvalue and whose gene loadings spread over many genes (participation ratio
        ``1 / sum_j v_j^4`` above 10% of the tested genes and above 50) are projected out of every gene;
        the cell scores of sparse significant components (programmes) are protected, and the null is
        projected into the same subspace. Dense components are continuous states that move every gene a
        little (what a UMAP lays out inside a cell type) and the many-gene differences of a locality
        straddling two populations: without removal each makes thousands of weak, recurring pairs that
        merge programmes into large modules of state genes. What it costs: a programme that lives only
        where a strong dense component is removed can lose pairs there (on pbmc68k_reduced a plasma-cell
        ER module is found only with ``remove_dense=False``). Stored values are the correlations after the
        removal; ``uns[key]["correlations"]["n_dense_removed"]`` counts the components per locality.
    robust
        Test each pair on its leave-one-out correlation (default): ``min(r, min_c r_(-c))``, the
        correlation after removing the cell whose removal lowers it most (two-sided: the same on
        ``|r|``), for the observed and the null pairs alike, so the test stays calibrated. One cell
        high in both genes (a doublet, an outlier) can make ``r`` 0.5-0.8 in a 100-cell locality: on
        pbmc68k_reduced a single cell labelled CD8+ T expressing monocyte genes made AIF1, LST1, FTL
        and CTSS a "module" of the T/NK localities (their r without it: -0.1 to 0.05). Associations
        spread over many cells keep nearly all of ``r`` (median 0.95 of it for the planted programmes
        of ``simulate_atlas``). Stored values are the plain correlations. ``False`` tests ``r`` itself.
    fdr_scope
        ``"all"`` (default): the knockoff+ threshold of each pair stratum is set over the observed and null
        statistics of all localities together, controlling the false discovery rate over all (locality,
        pair) discoveries; a programme with fewer pairs than ``1 / fdr`` (a 6-gene programme has 15) is
        found where it recurs. ``"locality"``: one threshold per locality and stratum (each locality
        controls its own FDR, and needs at least ``1 / fdr`` discoveries in a stratum to report any).
    n_null
        Independent permutations per locality behind the null (``fdr_scope="all"``); the estimated
        false discovery proportion is then ``(1 + #null) / n_null / #observed`` (permutation p-values
        with ``n_null`` draws per test, Phipson & Smyth 2010; knockoff+ for 1). One permutation
        is an unbiased null but a noisy one where the data are small: the threshold of a stratum then
        rests on tens of null exceedances, and which pairs pass changes with ``random_state`` (on
        pbmc68k_reduced, 21 localities, the thresholds moved by up to 0.07 in r between seeds and a
        whole stratum of 70-90 pairs passed or not). ``"auto"`` uses as many as bring the
        null to about 40 million pair tests (``n_null x localities x genes^2 / 2``), at most 8: 1 on
        atlases, where one is plenty and each costs one more rank-k update and null scan per
        locality; 8 on pbmc68k_reduced, 4 on 6,000 cells x 500 genes. The extra work is therefore
        bounded (about 4e7 pair tests: 0.35 s on 6,000 x 500 on this VM, 0.53 -> 0.88 s for the
        stage). ``fdr_scope="locality"`` uses 1. Default 1: on pbmc68k_reduced ``"auto"`` steadied
        the null (correlation-stage seed stability 0.60 -> 0.84, whole pipeline 0.53 -> 0.57) but made
        the small T-cell module's activity read wrong without the ``mixed`` flag, and on 6,000 x 500
        it doubled the stage's time; it stays a choice until the module step is as steady.
    partial_out
        Control for between-population mixing inside a locality: an ``obsm`` key (its first
        ``n_partial_components`` columns, e.g. ``"X_pca"``) or one or more ``obs`` columns (numeric,
        or categorical, one-hot encoded). Correlations become partial correlations given these
        covariates within each locality. Use it when localities straddle cell types and marker genes
        "correlate" through mean differences; note that it also removes smooth within-type gradients
        aligned with the covariates, which are real local covariation.
    n_partial_components
        Columns of the ``obsm`` covariate used by ``partial_out``.
    random_state
        Seed of the permutations.
    n_jobs
        Localities processed in parallel threads, each with single-threaded BLAS. ``None`` follows
        the BLAS thread setting (``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits``); ``-1``
        uses every core. The result does not depend on it.
    {copy}

    Notes
    -----
    **Dask and clusters.** ``X`` (or ``layer``) may be a dask array, dense or with scipy-sparse
    chunks, for data that do not fit in memory. Read it lazily, e.g.
    ``adata.X = anndata.experimental.read_elem_lazy(h5py.File("data.h5ad")["X"])`` (also for a zarr
    group; ``anndata.experimental.read_lazy`` reads the whole object lazily, with xarray installed),
    or wrap an array with ``adata.X = dask.array.from_array(x, chunks=(10_000, -1))``; chunk along
    cells. Gene variances and floors are dask reductions, and the localities are sketched as dask
    tasks (64 localities each; a task gathers only the rows of its localities' cells). They run on
    dask's default scheduler or, when a ``distributed.Client`` is active, on its cluster: create or
    attach the client before the call, e.g. ``from distributed import Client;
    client = Client("tcp://scheduler:8786")`` (or ``Client(LocalCluster(n_workers=4))``), then call
    ``lava_sc.tl.correlations(adata)`` (or ``tl.modules``) as usual. The workers need ``lava_sc``
    installed and access to the file (an array wrapped from memory is shipped with every
    computation: ``adata.X = adata.X.persist()`` first). Every locality runs with one BLAS thread, in
    memory and on dask workers alike, so results are identical to the in-memory run.

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key]["sketch"]`` (sparse localities x pairs, the correlation of
    each significant pair), ``uns[key]["pairs"]`` (``gene_a``, ``gene_b``, ``support`` = number of
    localities, ``mean_r``), ``uns[key]["genes"]``, ``uns[key]["correlations"]`` (diagnostics per
    locality: ``n_tests``, ``n_discoveries``, ``n_null_exceedances``, ``n_dense_removed``) and
    ``uns[key]["params"]["correlations"]``. Modules found from an earlier sketch under the same key
    (and their ``module_stats`` and ``locality_composition``) are removed.
    """
    check_adata(adata)
    key = check_key(key)
    require(adata, key, "localities", "localities")
    check_localities(adata, key)
    fdr = check_float("fdr", fdr, low=0.0, high=1.0, open_low=True)
    check_choice("alternative", alternative, ("greater", "two-sided"))
    check_choice("fdr_scope", fdr_scope, ("all", "locality"))
    for name, flag in (("remove_dense", remove_dense), ("robust", robust)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"`{name}` must be True or False, got {type(flag).__name__}; pass {name}=True.")
    min_detected = check_float("min_detected", min_detected, low=0.0, high=1.0)
    min_abs_r = check_float("min_abs_r", min_abs_r, low=0.0, high=1.0)
    if max_partners is not None:
        max_partners = check_int("max_partners", max_partners, low=1)
    n_partial_components = check_int("n_partial_components", n_partial_components, low=1)
    random_state = check_int("random_state", random_state, low=0)
    if isinstance(n_null, str) and n_null != "auto":
        raise TypeError(f"`n_null` must be 'auto' or an integer from 1 to {MAX_NULL_COPIES}, got {n_null!r}.")
    if n_null != "auto":
        n_null = check_int("n_null", n_null, low=1, high=MAX_NULL_COPIES)
        if n_null > 1 and fdr_scope != "all":
            raise ValueError(
                f"n_null={n_null} averages permutations in the pooled threshold; with fdr_scope='locality' "
                "each locality is tested on its own permutation. Pass n_null=1 (or 'auto'), or fdr_scope='all'."
            )
    if n_jobs is not None and n_jobs != -1:
        n_jobs = check_int("n_jobs", n_jobs, low=1)
    n_threads = resolve_n_jobs(n_jobs)
    keys = Keys(key)
    membership = sp.csc_matrix(adata.obsm[keys.obsm_localities])
    if membership.shape[0] != adata.n_obs:
        raise ValueError(f"obsm[{keys.obsm_localities!r}] does not match the cells; rerun lava_sc.tl.localities.")

    values = expression(adata, layer)
    warn_if_counts(adata, values, layer, "tl.correlations")
    gene_idx, gene_source = select_genes(adata, values, genes)
    lazy = distributed.is_dask(values)
    matrix = values[:, gene_idx].astype(np.float32) if lazy else gene_matrix(values, gene_idx)
    covariates = covariate_rows(adata, partial_out, n_partial_components)

    n_loc, n_genes = membership.shape[1], len(gene_idx)
    n_threads = check_memory(int(np.diff(membership.indptr).max(initial=0)), n_genes, 1 if lazy else n_threads)
    adata = writable(adata, copy)
    copies = null_copies(n_null, n_loc, n_genes, fdr_scope == "all")
    start = logg.info(
        f"correlating {n_genes} genes in {n_loc} localities ({copies} null permutation{'s' if copies > 1 else ''} each)"
    )
    per_task = distributed.LOCALITIES_PER_TASK
    if lazy:
        logg.info(f"    dask array: {distributed.n_tasks(n_loc, per_task)} tasks of up to {per_task} localities")
    options = SketchOptions(
        fdr=fdr,
        min_detected=min_detected,
        min_abs_r=min_abs_r,
        two_sided=alternative == "two-sided",
        max_partners=max_partners,
        remove_dense=bool(remove_dense),
        pooled=fdr_scope == "all",
        robust=bool(robust),
        n_null=copies,
    )
    kept = shrunk_localities(adata, key, membership)
    with progress(len(kept), "locality correlations") as bar:
        if lazy:
            per_locality = distributed.sketch_localities_dask(
                matrix,
                membership if len(kept) == n_loc else membership[:, kept],
                options,
                covariates=covariates,
                random_state=random_state,
                localities_per_task=per_task,
                progress=bar.update,
                floor=distributed.column_summary(values).floor[gene_idx].astype(np.float32),
            )
        else:
            per_locality = sketch_localities(
                matrix,
                membership if len(kept) == n_loc else membership[:, kept],
                options,
                covariates=covariates,
                random_state=random_state,
                progress=bar.update,
                n_jobs=n_threads,
            )
    if len(kept) < n_loc:  # skipped localities: no tests, no associations
        found = dict(zip(kept.tolist(), per_locality, strict=True))
        none = np.zeros(0, dtype=np.int64)
        empty = LocalitySketch(none, none, np.zeros(0, dtype=np.float32), 0, 0)
        per_locality = [found.get(loc, empty) for loc in range(n_loc)]
    sketch, pairs = assemble_sketch(per_locality, n_genes)
    gene_names = adata.var_names[gene_idx].to_numpy().astype(str)
    pairs.insert(0, "gene_b", gene_names[pairs.pop("b").to_numpy()].tolist())
    pairs.insert(0, "gene_a", gene_names[pairs.pop("a").to_numpy()].tolist())
    n_tests = np.array([s.n_tests for s in per_locality], dtype=np.int64)
    n_found = np.array([len(s.r) for s in per_locality], dtype=np.int64)
    store(
        adata,
        key,
        sketch=sketch,
        pairs=pairs,
        genes=gene_names,
        correlations={
            "n_tests": n_tests,
            "n_discoveries": n_found,
            "n_null_exceedances": np.array([s.n_null_exceed for s in per_locality], dtype=np.int64),
            "n_dense_removed": np.array([s.n_dense for s in per_locality], dtype=np.int64),
        },
    )
    invalidate(adata, key, "correlations")
    CorrelationsSettings(
        layer=layer,
        genes=gene_source,
        fdr=fdr,
        alternative=alternative,
        min_detected=min_detected,
        min_abs_r=min_abs_r,
        max_partners=max_partners,
        remove_dense=bool(remove_dense),
        robust=bool(robust),
        fdr_scope=fdr_scope,
        n_null=n_null,
        n_null_used=copies,
        partial_out=partial_out,
        n_partial_components=n_partial_components,
        random_state=random_state,
    ).store(adata, key, upstream=upstream_of(adata, key, "localities"), result=(sketch, pairs))
    log_added(
        f"{int(n_found.sum())} significant associations ({sketch.shape[1]} distinct pairs) "
        f"from {int(n_tests.sum())} tests",
        start,
        [f"'{key}': 'sketch', 'pairs', 'genes', 'correlations', params (adata.uns)"],
    )
    return adata if copy else None


def shrunk_localities(adata: AnnData, key: str, membership: sp.csc_matrix) -> np.ndarray:
    """Indices of the localities to correlate, warning about localities that lost cells.

    After ``adata[mask]`` the membership keeps, for each locality, only its cells that are left:
    localities with fewer than :data:`MIN_LOCALITY_CELLS` cells are skipped (a warning says how many),
    and an error is raised when none is left.
    """
    sizes = np.diff(membership.indptr)
    recorded = adata.uns[key].get("params", {}).get("localities", {}).get("n_cells")
    kept = np.flatnonzero(sizes >= MIN_LOCALITY_CELLS)
    hint = f"rerun lava_sc.tl.localities(adata, key_added={key!r}) to place localities on these cells"
    if len(kept) == 0:
        raise ValueError(
            f"Every locality under key {key!r} has fewer than {MIN_LOCALITY_CELLS} cells (was adata subset after "
            f"lava_sc.tl.localities?); {hint}."
        )
    if recorded is not None and sizes.min() < int(recorded):
        logg.warning(
            f"{int((sizes < int(recorded)).sum())} of {len(sizes)} localities have fewer than the {int(recorded)} "
            f"cells they were placed with (was adata subset after lava_sc.tl.localities?); "
            f"{len(sizes) - len(kept)} with fewer than {MIN_LOCALITY_CELLS} cells are skipped. To correlate "
            f"localities of full size, {hint}."
        )
    return kept


def check_memory(n_cells: int, n_genes: int, n_threads: int = 1) -> int:
    """Threads whose working sets fit in free memory; refuse before the heavy stage when not even one does.

    Per thread: the dense block and its standardised and null copies (n x G float32), the observed
    and null G x G Gram matrices (float32) and the candidate pairs (up to G^2 / 2 of 16 bytes).
    Nothing grows with the number of localities. Fewer threads than asked are used (and logged) when
    only those fit.
    """
    per_thread = n_cells * n_genes * 3 * 4 + 2 * n_genes * n_genes * 4 + n_genes * n_genes * 8
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        return n_threads
    fits = int(0.8 * free // max(per_thread, 1))
    if fits < 1:
        raise MemoryError(
            f"Correlating {n_genes} genes needs about {per_thread / 2**30:.1f} GiB per thread but only "
            f"{free / 2**30:.1f} GiB is free; {FEWER_GENES}"
        )
    if fits < n_threads:
        logg.warning(f"memory for {fits} of {n_threads} threads: correlating localities in {fits} thread(s)")
        return fits
    return n_threads


def select_genes(adata: AnnData, values, genes) -> tuple[np.ndarray, str]:
    """Indices of the genes to test and a word saying how they were chosen."""
    var_names = adata.var_names
    if not var_names.is_unique:
        raise ValueError("adata.var_names has duplicates; run adata.var_names_make_unique() first.")
    if genes is not None:
        if isinstance(genes, str):  # pairs need two genes: one string is a column name or a slip
            raise TypeError("`genes` must be a list of gene names or a boolean mask, not a single string.")
        idx = gene_positions(adata, genes)
        variance = column_variance(values, idx)
        constant = var_names[idx][variance <= 0]
        if len(constant):
            raise ValueError(
                f"{len(constant)} of the requested genes are constant across cells (e.g. {list(constant[:5])}); "
                "remove them from `genes`."
            )
        source = "custom"
    elif (hv := highly_variable(adata, min_genes=2)) is not None:
        idx = hv[column_variance(values, hv) > 0]
        source = "highly_variable"
    else:
        all_idx = np.arange(adata.n_vars)
        variance = column_variance(values, all_idx)
        idx = all_idx[variance > 0]
        if len(idx) > MAX_DEFAULT_GENES:
            idx = np.sort(idx[np.argsort(-variance[idx], kind="stable")[:MAX_DEFAULT_GENES]])
        source = "all_variable" if len(idx) < MAX_DEFAULT_GENES else f"top_{MAX_DEFAULT_GENES}_variance"
    if len(idx) < 2:
        raise ValueError(
            f"Only {len(idx)} non-constant gene(s) to test; pass at least two varying genes with `genes=`."
        )
    return idx, source


def assemble_sketch(per_locality, n_genes: int) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """Stack the per-locality discoveries into a localities x distinct-pairs sparse matrix and a pair table."""
    loc = np.concatenate(
        [np.full(len(s.r), i, dtype=np.int64) for i, s in enumerate(per_locality)] or [np.zeros(0, np.int64)]
    )
    code = np.concatenate(
        [s.gene_a.astype(np.int64) * n_genes + s.gene_b for s in per_locality] or [np.zeros(0, np.int64)]
    )
    r = np.concatenate([s.r for s in per_locality] or [np.zeros(0, np.float32)])
    pair_codes, column = np.unique(code, return_inverse=True)
    sketch = sp.csr_matrix((r, (loc, column)), shape=(len(per_locality), len(pair_codes)), dtype=np.float32)
    support = np.bincount(column, minlength=len(pair_codes))
    mean_r = np.bincount(column, weights=r, minlength=len(pair_codes)) / np.maximum(support, 1)
    pairs = pd.DataFrame(
        {"a": pair_codes // n_genes, "b": pair_codes % n_genes, "support": support.astype(np.int64), "mean_r": mean_r},
        index=[f"P{i}" for i in range(len(pair_codes))],
    )
    return sketch, pairs


#: n_null="auto": the permutation null holds about this many pair tests over all its copies ...
NULL_TESTS_TARGET = 4e7
#: ... with at most this many permutations per locality
MAX_NULL_COPIES = 8


def null_copies(n_null, n_localities: int, n_genes: int, pooled: bool) -> int:
    """Permutations per locality: ``n_null``, or for ``"auto"`` enough that ``copies x localities x
    genes^2 / 2`` reaches :data:`NULL_TESTS_TARGET` (1 to :data:`MAX_NULL_COPIES`; 1 unpooled)."""
    if n_null != "auto":
        return int(n_null)
    if not pooled:
        return 1
    per_copy = n_localities * n_genes * (n_genes - 1) / 2
    return int(np.clip(np.ceil(NULL_TESTS_TARGET / max(per_copy, 1.0)), 1, MAX_NULL_COPIES))
