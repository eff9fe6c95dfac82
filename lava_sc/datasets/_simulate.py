"""Simulated single-cell data with gene modules planted as correlation, not mean shifts."""

from __future__ import annotations

import numbers

import anndata
import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["simulate_planted"]

# Fixed scenario constants (stored in ``uns["simulation"]``).
_N_TYPES = 5
_CONDITIONS = ("control", "disease")
_CIRCLE_RADIUS = 15.0  # blob centres lie on a circle of this radius
_BLOB_SD = 1.5  # isotropic sd of a cell-type blob
_DISEASE_OFFSET = 3.0  # disease cells sit this far radially outward of control cells
_GRADIENT_AXIS_SD = 4.0  # sd of T3 along its long (tangential) axis
_N_MARKERS = 5  # marker genes per cell type
_MARKER_SHIFT = 1.5  # log-mean shift of a marker gene in its own cell type
# sd of the module log-mean: shared latent in active cells, independent noise otherwise
_MODULE_S = 0.9
_GRADIENT_S = 2.0  # log-mean slope of gradient genes along T3's standardised long axis
_BASE = 1.0  # counts per cell of a gene with log-mean 0 at depth 1
_MU_RANGE = 1.0  # gene log-means are uniform in [-_MU_RANGE, _MU_RANGE]
_THETA = 7.0  # negative binomial size (inverse dispersion)
_DEPTH_SD = 0.4  # sd of log library size factor
_NOISE_MEAN_RANGE = (0.02, 10.0)  # noise genes: mean counts log-uniform in this range
_TARGET_SUM = 1e4
# counts per cell (at depth 1) from the genes not simulated; they enter the library size like the
# rest of a real transcriptome, so normalisation does not couple the few simulated genes
_BACKGROUND_COUNTS = 4000.0
_MIN_CELLS = 500
_MIN_MODULE_SIZE = 3

_MODULES = ("shared", "typeB", "gradient", "disease_T4")


def _check_int(name: str, value: object, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} ({value!r}); pass e.g. {name}={hint}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}; pass {name}>={minimum}.")
    return value


def simulate_planted(
    *,
    n_cells: int = 4000,
    n_noise_genes: int = 200,
    module_size: int = 15,
    random_state: int = 0,
    chunk_size: int | None = None,
    counts_layer: bool = True,
) -> anndata.AnnData:
    """Simulate single-cell counts with gene modules planted as local correlation.

    Cells belong to five cell types (``"T0"`` … ``"T4"``) and two conditions
    (``"control"``, ``"disease"``) in about equal numbers and carry a synthetic
    two-dimensional embedding that looks like a UMAP: each cell type is a blob whose
    centre lies on a circle of radius 15 (blob sd 1.5), disease cells form an adjacent
    sub-cluster 3 units radially outward of the control cells of the same type, and
    ``T3`` is elongated (sd 4 along the tangent of the circle) because it carries a
    gradient.

    Genes:

    * **markers** ``mk_T<k>_<i>``: 5 per cell type, log-mean raised by 1.5 in that type
      (ordinary between-type differences);
    * **planted modules**, ``module_size`` genes each, carried by correlation only. Every
      module gene ``g`` has a log-mean ``mu_g`` (uniform in [-1, 1]). In cells where the
      module is active its log-mean is ``mu_g + s * z_c`` with one latent ``z_c ~ N(0, 1)``
      per cell shared by all genes of the module; elsewhere it is ``mu_g + s * e_cg`` with
      independent ``e_cg ~ N(0, 1)``. Mean and variance are the same in active and
      inactive cells; only the correlation differs. ``s = 0.9``. The modules are

      - ``shared``: active in disease cells of ``T0`` and ``T2`` (non-adjacent blobs, far
        apart on the embedding) — one program recurring in two distant cell types;
      - ``typeB``: active in all ``T1`` cells;
      - ``gradient``: in ``T3`` the log-mean is ``mu_g + s_grad * t_c`` where ``t_c`` is the
        cell's standardised position along T3's long axis (the same ``t_c`` places the
        cell on the embedding), ``s_grad = 2.0`` (steep enough to show inside a locality that
        covers part of T3); outside ``T3`` independent noise. Unlike the others this module also
        shifts mean expression along T3, as any gradient does;
      - ``disease_T4``: active in disease cells of ``T4``;

    * **noise** ``noise_<i>``: ``n_noise_genes`` independent genes whose mean counts are
      log-uniform between 0.02 and 10 (detection from about 2 % to about 100 %).

    Counts are negative binomial (size 7) with mean ``depth_c * exp(log-mean)``,
    where the library size factor ``depth_c`` is log-normal (sd 0.4).

    Parameters
    ----------
    n_cells
        Number of cells, at least 500.
    n_noise_genes
        Number of unstructured noise genes, at least 0.
    module_size
        Number of genes in each planted module, at least 3.
    random_state
        Seed for :func:`numpy.random.default_rng`; the result is identical for the same
        arguments.
    chunk_size
        Simulate the counts this many cells at a time, so memory stays at the result plus one
        chunk (a million cells x 1,000 genes fit in a few GiB; without chunks the float64
        intermediates alone take 24 GB). ``None`` (default) draws all cells at once. The design
        and the embedding are the same either way; the expression values come from another
        random stream.
    counts_layer
        Store the raw counts in ``layers["counts"]`` (``False`` halves the memory of large data).

    Returns
    -------
    :class:`~anndata.AnnData` with

    ``X``
        log-normalised expression (total 1e4 per cell, then ``log1p``), float32 CSR. The library
        size ``obs["total_counts"]`` includes ~4,000 counts per cell from unsimulated genes, as a real
        transcriptome would, so that normalisation does not couple the few simulated genes.
    ``layers["counts"]``
        raw counts, int32 CSR (unless ``counts_layer=False``).
    ``obs``
        ``cell_type`` and ``condition`` (categorical), ``depth`` (library size factor) and
        one boolean ``active_<module>`` column per planted module.
    ``obsm["X_umap"]``
        the synthetic 2-d embedding.
    ``var``
        ``planted_module`` (module name, ``"none"`` for markers and noise genes) and
        ``highly_variable`` (all ``False``).
    ``uns["planted"]``
        module name -> array of its gene names.
    ``uns["simulation"]``
        the parameters used.

    Examples
    --------
    >>> from lava_sc.datasets import simulate_planted
    >>> adata = simulate_planted(n_cells=1000, random_state=1)
    >>> sorted(adata.uns["planted"])
    ['disease_T4', 'gradient', 'shared', 'typeB']
    """
    n_cells = _check_int("n_cells", n_cells, _MIN_CELLS, "4000")
    n_noise_genes = _check_int("n_noise_genes", n_noise_genes, 0, "200")
    module_size = _check_int("module_size", module_size, _MIN_MODULE_SIZE, "15")
    random_state = _check_int("random_state", random_state, 0, "0")
    if chunk_size is not None:
        chunk_size = _check_int("chunk_size", chunk_size, 1, "100_000")

    rng = np.random.default_rng(random_state)
    type_idx, disease, t_grad, emb, centres = _draw_cells(n_cells, rng)
    type_names = [f"T{k}" for k in range(_N_TYPES)]
    active = {
        "shared": disease & ((type_idx == 0) | (type_idx == 2)),
        "typeB": type_idx == 1,
        "gradient": type_idx == 3,
        "disease_T4": disease & (type_idx == 4),
    }
    marker_names = [f"mk_T{k}_{i}" for k in range(_N_TYPES) for i in range(_N_MARKERS)]
    module_names = {m: [f"{m}_{i}" for i in range(module_size)] for m in _MODULES}
    noise_names = [f"noise_{i}" for i in range(n_noise_genes)]
    n_markers = len(marker_names)
    n_genes = n_markers + len(_MODULES) * module_size + n_noise_genes

    # markers: ordinary mean shift in the owning type
    mu_mk = rng.uniform(-_MU_RANGE, _MU_RANGE, n_markers)
    owner = np.repeat(np.arange(_N_TYPES), _N_MARKERS)
    marker_log_mean = mu_mk + _MARKER_SHIFT * (type_idx[:, None] == owner[None, :])
    signal = {m: t_grad if m == "gradient" else None for m in _MODULES}
    if chunk_size is None:
        counts_csr, depth, background = _counts_at_once(
            rng, marker_log_mean, module_size, n_noise_genes, active, signal
        )
        x, totals = _log_normalise(counts_csr, background)
    else:
        x, totals, counts_csr, depth = _counts_in_chunks(
            rng, marker_log_mean, module_size, n_noise_genes, active, signal, chunk_size, random_state, counts_layer
        )

    # --- AnnData -----------------------------------------------------------------------
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes(type_idx, categories=type_names),
            "condition": pd.Categorical.from_codes(disease.astype(int), categories=list(_CONDITIONS)),
            "depth": depth,
            "total_counts": totals,
        },
        index=pd.Index([f"cell_{i}" for i in range(n_cells)]),
    )
    for m in _MODULES:
        obs[f"active_{m}"] = active[m]

    gene_names = marker_names + [g for m in _MODULES for g in module_names[m]] + noise_names
    planted_col = ["none"] * n_markers + [m for m in _MODULES for _ in range(module_size)] + ["none"] * n_noise_genes
    var = pd.DataFrame(
        {"planted_module": planted_col, "highly_variable": np.zeros(n_genes, dtype=bool)},
        index=pd.Index(gene_names),
    )

    adata = anndata.AnnData(X=x, obs=obs, var=var)
    if counts_layer:
        adata.layers["counts"] = counts_csr
    adata.obsm["X_umap"] = emb.astype(np.float32)
    adata.uns["planted"] = {m: np.asarray(module_names[m], dtype=str) for m in _MODULES}
    adata.uns["simulation"] = {
        "n_cells": n_cells,
        "n_noise_genes": n_noise_genes,
        "module_size": module_size,
        "random_state": random_state,
        "n_cell_types": _N_TYPES,
        "conditions": np.asarray(_CONDITIONS, dtype=str),
        "circle_radius": _CIRCLE_RADIUS,
        "blob_sd": _BLOB_SD,
        "disease_offset": _DISEASE_OFFSET,
        "gradient_axis_sd": _GRADIENT_AXIS_SD,
        "n_markers_per_type": _N_MARKERS,
        "marker_shift": _MARKER_SHIFT,
        "module_s": _MODULE_S,
        "gradient_s": _GRADIENT_S,
        "base": _BASE,
        "mu_range": _MU_RANGE,
        "nb_theta": _THETA,
        "depth_sd": _DEPTH_SD,
        "noise_mean_range": np.asarray(_NOISE_MEAN_RANGE, dtype=float),
        "target_sum": _TARGET_SUM,
        "background_counts": _BACKGROUND_COUNTS,
        "centres": centres,
    }
    if chunk_size is not None:
        adata.uns["simulation"]["chunk_size"] = chunk_size
    return adata


def _draw_cells(n_cells: int, rng: np.random.Generator):
    """Balanced cell type x condition, the gradient position ``t`` (0 outside T3) and the embedding."""
    n_groups = _N_TYPES * len(_CONDITIONS)
    group = rng.permutation(np.arange(n_cells) % n_groups)
    type_idx = group // len(_CONDITIONS)
    disease = (group % len(_CONDITIONS)) == 1
    angles = 2.0 * np.pi * np.arange(_N_TYPES) / _N_TYPES
    radial = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # unit, outward
    tangent = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
    centres = _CIRCLE_RADIUS * radial
    noise_r = rng.standard_normal(n_cells) * _BLOB_SD
    noise_t = rng.standard_normal(n_cells) * _BLOB_SD
    in_t3 = type_idx == 3
    # T3: position along its long axis is the gradient variable t (standardised in T3).
    t_raw = rng.standard_normal(int(in_t3.sum()))
    t_grad = np.zeros(n_cells)
    t_grad[in_t3] = (t_raw - t_raw.mean()) / t_raw.std()
    noise_t[in_t3] = _GRADIENT_AXIS_SD * t_grad[in_t3]
    r_dir, t_dir = radial[type_idx], tangent[type_idx]
    emb = centres[type_idx] + r_dir * (noise_r + _DISEASE_OFFSET * disease)[:, None] + t_dir * noise_t[:, None]
    return type_idx, disease, t_grad, emb, centres


def _module_log_mean(mu, indep, act, signal, scale):
    """Independent noise around ``mu``; in active cells one shared ``signal`` per cell instead."""
    block = mu + _MODULE_S * indep
    block[act] = mu + scale * signal[act, None]
    return block


def _noise_log_mean(rng, n_noise_genes):
    lo, hi = np.log(_NOISE_MEAN_RANGE[0]), np.log(_NOISE_MEAN_RANGE[1])
    return rng.uniform(lo, hi, n_noise_genes) - np.log(_BASE)


def _scale(module):
    return _GRADIENT_S if module == "gradient" else _MODULE_S


def _negative_binomial(rng, depth, log_mean):
    mean = depth[:, None] * _BASE * np.exp(log_mean)
    counts = sparse.csr_matrix(rng.negative_binomial(_THETA, _THETA / (_THETA + mean)).astype(np.int32))
    counts.eliminate_zeros()
    return counts


def _counts_at_once(rng, marker_log_mean, module_size, n_noise_genes, active, signal):
    """All cells in one draw (the random stream of every earlier release)."""
    n_cells = len(marker_log_mean)
    blocks = [marker_log_mean]
    for m in _MODULES:
        mu = rng.uniform(-_MU_RANGE, _MU_RANGE, module_size)
        indep = rng.standard_normal((n_cells, module_size))
        latent = rng.standard_normal(n_cells)
        blocks.append(_module_log_mean(mu, indep, active[m], latent if signal[m] is None else signal[m], _scale(m)))
    blocks.append(np.broadcast_to(_noise_log_mean(rng, n_noise_genes), (n_cells, n_noise_genes)))
    depth = np.exp(rng.normal(0.0, _DEPTH_SD, n_cells))
    counts = _negative_binomial(rng, depth, np.hstack(blocks))
    return counts, depth, rng.poisson(depth * _BACKGROUND_COUNTS)


def _counts_in_chunks(
    rng, marker_log_mean, module_size, n_noise_genes, active, signal, chunk_size, random_state, keep_counts
):
    """Cells ``chunk_size`` at a time: per-gene and per-cell parameters from ``rng``, each chunk's
    independent noise and counts from its own stream, normalised chunk by chunk.

    Returns the log-normalised X, the library sizes, the counts (or None) and the depth factors.
    """
    n_cells = len(marker_log_mean)
    mu, latent = {}, {}
    for m in _MODULES:
        mu[m] = rng.uniform(-_MU_RANGE, _MU_RANGE, module_size)
        latent[m] = rng.standard_normal(n_cells) if signal[m] is None else signal[m]
    mu_noise = _noise_log_mean(rng, n_noise_genes)
    depth = np.exp(rng.normal(0.0, _DEPTH_SD, n_cells))
    background = rng.poisson(depth * _BACKGROUND_COUNTS)
    starts = range(0, n_cells, chunk_size)
    streams = np.random.SeedSequence(random_state).spawn(len(starts))
    x_parts, count_parts, totals = [], [], np.empty(n_cells)
    for start, stream in zip(starts, streams, strict=True):
        crng = np.random.default_rng(stream)
        rows = slice(start, min(start + chunk_size, n_cells))
        c = rows.stop - rows.start
        blocks = [marker_log_mean[rows]]
        for m in _MODULES:
            indep = crng.standard_normal((c, module_size))
            blocks.append(_module_log_mean(mu[m], indep, active[m][rows], latent[m][rows], _scale(m)))
        blocks.append(np.broadcast_to(mu_noise, (c, n_noise_genes)))
        counts = _negative_binomial(crng, depth[rows], np.hstack(blocks))
        x_part, totals[rows] = _log_normalise(counts, background[rows])
        x_parts.append(x_part)
        if keep_counts:
            count_parts.append(counts)
    return _stack_rows(x_parts), totals, _stack_rows(count_parts) if keep_counts else None, depth


def _stack_rows(parts: list[sparse.csr_matrix]) -> sparse.csr_matrix:
    """``sparse.vstack`` that frees each part once copied: peak memory is the result plus one part."""
    n_cols = parts[0].shape[1]
    nnz = sum(p.nnz for p in parts)
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(sum(p.shape[0] for p in parts) + 1, dtype=index_dtype)
    np.cumsum(np.concatenate([np.diff(p.indptr) for p in parts]), out=indptr[1:])
    indices = np.empty(nnz, dtype=index_dtype)
    data = np.empty(nnz, dtype=parts[0].dtype)
    pos = 0
    while parts:
        part = parts.pop(0)
        indices[pos : pos + part.nnz] = part.indices
        data[pos : pos + part.nnz] = part.data
        pos += part.nnz
        del part
    return sparse.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, n_cols))


def _log_normalise(counts: sparse.csr_matrix, background: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Total 1e4 per cell (library = simulated genes + background), then log1p; float32 CSR."""
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel() + background
    scale = np.where(totals > 0, _TARGET_SUM / np.maximum(totals, 1.0), 0.0)
    values = counts.data * np.repeat(scale, np.diff(counts.indptr))
    np.log1p(values, out=values)
    x = sparse.csr_matrix((values.astype(np.float32), counts.indices.copy(), counts.indptr.copy()), shape=counts.shape)
    return x, totals
