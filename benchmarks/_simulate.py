"""A chunked version of ``lava_sc.datasets.simulate_planted`` for the scaling benchmark (up to 1M cells).

``simulate_planted`` builds dense cells x genes float64 matrices (log-means, means, counts): 24 GB at
1M cells x 1,000 genes. This simulator draws the same design -- five cell types x two conditions on a
synthetic 2-d "UMAP", 5 markers per type, the four correlation-only planted modules (``shared``,
``typeB``, ``gradient``, ``disease_T4``), log-uniform noise genes, negative binomial counts with
log-normal depth and ~4,000 background counts -- in chunks of cells, writing the log-normalised
values straight into a float32 CSR matrix. Peak memory is the final CSR plus one chunk.

The constants mirror ``lava_sc/datasets/_simulate.py``; the random stream differs (chunked), so the
data are statistically, not bitwise, identical to ``simulate_planted`` with the same arguments.
"""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

N_TYPES = 5
CIRCLE_RADIUS = 15.0
BLOB_SD = 1.5
DISEASE_OFFSET = 3.0
GRADIENT_AXIS_SD = 4.0
N_MARKERS = 5
MARKER_SHIFT = 1.5
MODULE_S = 0.9
GRADIENT_S = 2.0
MU_RANGE = 1.0
THETA = 7.0
DEPTH_SD = 0.4
NOISE_MEAN_RANGE = (0.02, 10.0)
TARGET_SUM = 1e4
BACKGROUND_COUNTS = 4000.0
MODULES = ("shared", "typeB", "gradient", "disease_T4")


def design_for(n_genes: int, module_size: int = 15) -> tuple[int, int]:
    """(module_size, n_noise_genes) so that markers + 4 modules + noise = ``n_genes``."""
    n_fixed = N_TYPES * N_MARKERS
    module_size = max(3, min(module_size, (n_genes - n_fixed) // len(MODULES)))
    n_noise = n_genes - n_fixed - len(MODULES) * module_size
    if n_noise < 0:
        raise ValueError(f"n_genes={n_genes} is too small for the planted design (at least {n_fixed + 12}).")
    return module_size, n_noise


def _cells(n_cells: int, rng: np.random.Generator):
    """Cell types, conditions, gradient position and 2-d embedding: the first draws of ``rng``.

    Shared by :func:`simulate_chunked` and :func:`planted_embedding`, so both place cells identically.
    """
    n_groups = N_TYPES * 2
    group = rng.permutation(np.arange(n_cells) % n_groups)
    type_idx = group // 2
    disease = (group % 2) == 1
    angles = 2.0 * np.pi * np.arange(N_TYPES) / N_TYPES
    radial = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    tangent = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
    noise_r = rng.standard_normal(n_cells) * BLOB_SD
    noise_t = rng.standard_normal(n_cells) * BLOB_SD
    in_t3 = type_idx == 3
    t_raw = rng.standard_normal(int(in_t3.sum()))
    t_grad_t3 = (t_raw - t_raw.mean()) / t_raw.std()
    noise_t[in_t3] = GRADIENT_AXIS_SD * t_grad_t3
    t_grad = np.zeros(n_cells)
    t_grad[in_t3] = t_grad_t3
    emb = (
        CIRCLE_RADIUS * radial[type_idx]
        + radial[type_idx] * (noise_r + DISEASE_OFFSET * disease)[:, None]
        + tangent[type_idx] * noise_t[:, None]
    )
    return type_idx, disease, t_grad, emb


def planted_embedding(n_cells: int, random_state: int = 0) -> np.ndarray:
    """The 2-d embedding (float32, ``(n_cells, 2)``) that :func:`simulate_chunked` gives ``n_cells`` cells
    with the same ``random_state``, without simulating any counts."""
    rng = np.random.default_rng(np.random.SeedSequence(random_state).spawn(1)[0])
    return _cells(n_cells, rng)[3].astype(np.float32)


def simulate_chunked(
    n_cells: int,
    n_genes: int,
    *,
    module_size: int = 15,
    random_state: int = 0,
    chunk_values: float = 2e7,
) -> anndata.AnnData:
    """Planted-module data (``X`` log-normalised float32 CSR, ``obsm["X_umap"]``, ``uns["planted"]``).

    ``var["highly_variable"]`` is True for every gene, so LAVA tests all ``n_genes`` genes.
    """
    module_size, n_noise = design_for(n_genes, module_size)
    seeds = np.random.SeedSequence(random_state)
    rng = np.random.default_rng(seeds.spawn(1)[0])

    # --- cells (O(n_cells) arrays) ---------------------------------------------------------
    type_idx, disease, t_grad, emb = _cells(n_cells, rng)
    in_t3 = type_idx == 3
    active = {
        "shared": disease & ((type_idx == 0) | (type_idx == 2)),
        "typeB": type_idx == 1,
        "gradient": in_t3,
        "disease_T4": disease & (type_idx == 4),
    }
    latent = {m: rng.standard_normal(n_cells) for m in MODULES}
    depth = np.exp(rng.normal(0.0, DEPTH_SD, n_cells))
    background = rng.poisson(depth * BACKGROUND_COUNTS)

    # --- genes ----------------------------------------------------------------------------
    n_markers = N_TYPES * N_MARKERS
    mu_mk = rng.uniform(-MU_RANGE, MU_RANGE, n_markers)
    owner = np.repeat(np.arange(N_TYPES), N_MARKERS)
    mu_mod = {m: rng.uniform(-MU_RANGE, MU_RANGE, module_size) for m in MODULES}
    lo, hi = np.log(NOISE_MEAN_RANGE[0]), np.log(NOISE_MEAN_RANGE[1])
    mu_noise = rng.uniform(lo, hi, n_noise)

    # --- counts, chunk by chunk, straight into CSR ------------------------------------------
    chunk = int(max(256, chunk_values // n_genes))
    starts = range(0, n_cells, chunk)
    chunk_seeds = seeds.spawn(len(starts) + 1)[1:]
    parts = []
    for start, seed in zip(starts, chunk_seeds, strict=True):
        crng = np.random.default_rng(seed)
        rows = slice(start, min(start + chunk, n_cells))
        c = rows.stop - rows.start
        t = type_idx[rows]
        log_mean = np.empty((c, n_genes))
        log_mean[:, :n_markers] = mu_mk + MARKER_SHIFT * (t[:, None] == owner[None, :])
        col = n_markers
        for m in MODULES:
            act = active[m][rows]
            block = mu_mod[m] + MODULE_S * crng.standard_normal((c, module_size))
            if m == "gradient":
                block[act] = mu_mod[m] + GRADIENT_S * t_grad[rows][act, None]
            else:
                block[act] = mu_mod[m] + MODULE_S * latent[m][rows][act, None]
            log_mean[:, col : col + module_size] = block
            col += module_size
        log_mean[:, col:] = mu_noise
        np.exp(log_mean, out=log_mean)
        log_mean *= depth[rows, None]
        counts = crng.negative_binomial(THETA, THETA / (THETA + log_mean)).astype(np.int32)
        del log_mean
        nz_rows, nz_cols = np.nonzero(counts)
        values = counts[nz_rows, nz_cols].astype(np.float64)
        del counts
        row_nnz = np.bincount(nz_rows, minlength=c)
        totals = np.bincount(nz_rows, weights=values, minlength=c) + background[rows]
        scale = np.where(totals > 0, TARGET_SUM / np.maximum(totals, 1.0), 0.0)
        values *= scale[nz_rows]
        np.log1p(values, out=values)
        parts.append((row_nnz, nz_cols.astype(np.int32), values.astype(np.float32)))
        del nz_rows, nz_cols, values

    nnz = int(sum(len(p[1]) for p in parts))
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_cells + 1, dtype=index_dtype)
    np.cumsum(np.concatenate([p[0] for p in parts]), out=indptr[1:])
    indices = np.empty(nnz, dtype=index_dtype)
    data = np.empty(nnz, dtype=np.float32)
    pos = 0
    while parts:  # copy and free one chunk at a time: peak = final arrays + one chunk
        _, idx, val = parts.pop(0)
        indices[pos : pos + len(idx)] = idx
        data[pos : pos + len(val)] = val
        pos += len(idx)
    x = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))

    marker_names = [f"mk_T{k}_{i}" for k in range(N_TYPES) for i in range(N_MARKERS)]
    module_names = {m: [f"{m}_{i}" for i in range(module_size)] for m in MODULES}
    gene_names = marker_names + [g for m in MODULES for g in module_names[m]] + [f"noise_{i}" for i in range(n_noise)]
    planted_col = ["none"] * n_markers + [m for m in MODULES for _ in range(module_size)] + ["none"] * n_noise
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes(type_idx, categories=[f"T{k}" for k in range(N_TYPES)]),
            "condition": pd.Categorical.from_codes(disease.astype(int), categories=["control", "disease"]),
        },
        index=pd.RangeIndex(n_cells).astype(str),
    )
    var = pd.DataFrame(
        {"planted_module": planted_col, "highly_variable": np.ones(n_genes, dtype=bool)},
        index=pd.Index(gene_names),
    )
    adata = anndata.AnnData(X=x, obs=obs, var=var)
    adata.obsm["X_umap"] = emb.astype(np.float32)
    adata.uns["planted"] = {m: np.asarray(module_names[m], dtype=str) for m in MODULES}
    return adata
