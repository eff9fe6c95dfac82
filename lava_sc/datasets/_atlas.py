"""A SIMULATED atlas with the nuisance structure of real tissue, to judge recovered modules.

:func:`~lava_sc.datasets.simulate_planted` is the easy case: synthetic coordinates, blobs far
apart, nothing in the data but the planted programs. This simulator adds what real tissue has and
what the easy case lacks:

* a **dense within-type state**: in every cell type a rank-``n_state`` latent moves every gene a
  little (random loadings of sd ``state_strength`` on the log scale). It is what a UMAP lays out
  inside a type, and inside a locality it makes many weak, significant, recurring pairs;
* **touching populations**: two pairs of types differ in a few markers only, so the UMAP places
  them side by side and localities straddle the border;
* **donors** (mean offsets, program strength) nested in two **conditions**;
* an **embedding computed by scanpy** from the simulated counts (HVG, PCA, kNN, UMAP), as a user
  would compute it, not synthetic coordinates;
* **programs of varied size, strength and sign**, planted as correlation (or, for ``response``, as
  a within-type condition difference).
"""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd

from ._kidney import _counts, cell_table  # NB counts, background library, log-normalised X (the kidney atlas's recipe)
from ._simulate import _check_int

__all__ = ["simulate_atlas", "PROGRAMS"]

CELL_TYPES = ("A1", "A2", "B", "C1", "C2", "D")
CONDITIONS = ("control", "disease")
#: touching pairs: the second type differs from the first in a few markers only
_TOUCHING = {"A2": "A1", "C2": "C1"}

#: planted programs: size, relative strength, where active, and how they are carried
PROGRAMS = {
    "recurring": {"size": 12, "strength": 1.0, "types": ("A1", "D"), "conditions": CONDITIONS},
    "signed": {"size": 14, "strength": 1.0, "types": ("B",), "conditions": CONDITIONS, "signed": True},
    "straddle": {"size": 16, "strength": 0.8, "types": ("A1", "A2"), "conditions": CONDITIONS},
    "condition": {"size": 8, "strength": 1.0, "types": ("C1",), "conditions": ("disease",)},
    "small": {"size": 6, "strength": 1.2, "types": ("C2",), "conditions": CONDITIONS},
    "gradient": {"size": 10, "strength": 1.0, "types": ("D",), "conditions": CONDITIONS, "gradient": True},
    "response": {"size": 20, "strength": 1.0, "types": ("B",), "conditions": ("disease",), "response": True},
}

_N_MARKERS = 12  # markers per (non-touching) type
_TOUCHING_MARKERS = 4  # markers that tell a touching type from its neighbour
_MARKER_SHIFT = 1.5  # log-mean shift of a marker in its type
_TOUCHING_SHIFT = 0.8  # log-mean shift of a touching type's own markers
_TYPE_PROFILE_FRACTION = 0.15  # genes with a type-specific mean offset
_TYPE_PROFILE_SD = 0.4
_PROGRAM_S = 0.9  # sd of a program gene's shared latent term at program_strength=1
_GRADIENT_SLOPE = 1.5  # log-mean slope of gradient genes along the type's standardised axis
_RESPONSE_SHIFT = 1.0  # log-mean shift of response genes in disease cells of their type
_DONOR_STRENGTH_SD = 0.15
_DONOR_OFFSET_SD = 0.15
_DONOR_OFFSET_FRACTION = 0.2
_LOG_MEAN_RANGE = (-3.0, 1.5)  # background genes: log-mean uniform here (detection ~3% to ~100%)
_COMPOSITION = (0.22, 0.13, 0.2, 0.17, 0.1, 0.18)
_N_PCS = 30
_N_NEIGHBORS = 15
_MIN_CELLS = 1000


def simulate_atlas(
    *,
    n_cells: int = 6000,
    n_genes: int = 1000,
    program_strength: float = 1.0,
    state_strength: float = 0.25,
    n_state: int = 3,
    n_donors: int = 4,
    umap: bool = True,
    random_state: int = 0,
) -> anndata.AnnData:
    """Simulate an atlas with realistic nuisance structure and planted programs (SIMULATED data).

    Six cell types (``A1``, ``A2``, ``B``, ``C1``, ``C2``, ``D``; ``A2`` touches ``A1`` and ``C2``
    touches ``C1``: each differs from its neighbour in 4 markers raised by 0.8, where other types have
    12 markers raised by 1.5 and type-specific offsets on 15 % of genes), two conditions (``control``,
    ``disease``) with ``n_donors`` donors each.

    Log-mean of gene ``g`` in cell ``c`` of type ``t``, donor ``d``:

    ``mu_g + type_t,g + donor_d,g + sum_k s_c,k L_t,k,g + program terms``,

    where the dense state ``s_c ~ N(0, I_n_state)`` is drawn per cell and its loadings
    ``L_t,k,g ~ N(0, state_strength^2)`` per type and gene: every gene moves a little with the state,
    and the UMAP lays the state out inside each type. Program terms, with ``a = 0.9 *
    program_strength * strength_p * f_d`` (``f_d`` a donor factor, lognormal sd 0.15):

    * correlation programs: ``a * sign_g * z_c,p`` in active cells, with one latent ``z_c,p ~ N(0, 1)``
      per cell, and ``a * e_c,g`` (independent noise) elsewhere, so mean and variance do not change
      and only the correlation does;
    * ``gradient``: ``1.5 * program_strength * t_c`` along a within-type axis ``t_c`` of ``D`` (it moves
      the means, as any gradient does, and the UMAP lays it out);
    * ``response``: ``1.0 * program_strength`` added in disease cells of ``B`` (a condition difference
      within one cell type).

    The programs (``uns["planted"]``): ``recurring`` (12 genes, in ``A1`` and ``D``, far apart),
    ``signed`` (14 genes in ``B``, half of them with ``sign_g = -1``: two anti-correlated halves),
    ``straddle`` (16 genes, strength 0.8, in both touching types ``A1`` and ``A2``), ``condition`` (8
    genes, disease cells of ``C1``), ``small`` (6 genes, strength 1.2, in ``C2``), ``gradient`` (10 genes
    along ``D``'s axis), ``response`` (20 genes raised in disease cells of ``B``). Background genes
    (``gene_<i>``) fill up to ``n_genes``. Counts are negative binomial (size 7) with a lognormal
    library size (sd 0.4) and ~4,000 counts from unsimulated genes.

    The embedding is computed with scanpy from the counts as a user would: ``normalize_total`` and
    ``log1p`` (``X``), ``highly_variable_genes`` (Seurat flavour, at most 2,000), PCA of the scaled
    HVGs (30 components), a 15-nearest-neighbour graph (sklearn) and ``sc.tl.umap``.

    Parameters
    ----------
    n_cells
        Number of cells, at least 1,000.
    n_genes
        Number of genes, at least the planted programs, markers and 100 background genes.
    program_strength
        Multiplier of every program's strength (0 plants nothing).
    state_strength
        sd of the dense state's loadings (0: no within-type state).
    n_state
        Rank of the within-type state.
    n_donors
        Donors per condition.
    umap
        ``False`` skips neighbours and UMAP (``X_umap`` is then the first two PCs).
    random_state
        Seed of everything (simulation, PCA, UMAP).

    Returns
    -------
    :class:`~anndata.AnnData` with log-normalised float32 CSR ``X``, ``layers["counts"]``, ``obs``
    (``cell_type``, ``condition``, ``donor``, ``depth``, ``axis`` (``D``'s gradient position, 0
    elsewhere), and ``active_<program>`` booleans), ``var`` (``planted_module``: program name, or
    ``"none"`` for markers and background genes; ``highly_variable`` and scanpy's HVG columns),
    ``obsm["X_pca"]``, ``obsm["X_umap"]``, ``uns["planted"]`` (program -> genes) and
    ``uns["simulation"]`` (the parameters).
    """
    n_cells = _check_int("n_cells", n_cells, _MIN_CELLS, "6000")
    n_fixed = sum(p["size"] for p in PROGRAMS.values()) + _marker_count()
    n_genes = _check_int("n_genes", n_genes, n_fixed + 100, "1000")
    n_state = _check_int("n_state", n_state, 1, "3")
    n_donors = _check_int("n_donors", n_donors, 1, "4")
    random_state = _check_int("random_state", random_state, 0, "0")
    program_strength = _check_nonnegative("program_strength", program_strength)
    state_strength = _check_nonnegative("state_strength", state_strength)

    rng = np.random.default_rng(random_state)
    type_idx, cond_idx, donor_idx = _assign_cells(rng, n_cells, n_donors)
    axis = _gradient_axis(rng, type_idx)
    names, owner = _gene_names(n_genes)
    log_mean = _base_log_means(rng, n_genes, owner, type_idx, donor_idx, 2 * n_donors)
    log_mean += _dense_state(rng, n_cells, n_genes, type_idx, n_state, state_strength)
    active = _active_masks(type_idx, cond_idx)
    strength = np.exp(rng.normal(0.0, _DONOR_STRENGTH_SD, (2 * n_donors, len(PROGRAMS))))[donor_idx]
    for p, (name, spec) in enumerate(PROGRAMS.items()):
        cols = np.flatnonzero(owner == f"program:{name}")
        log_mean[:, cols] += _program_term(rng, spec, active[name], axis, program_strength * strength[:, p], len(cols))
    counts, x, depth, totals = _counts(rng, log_mean)

    planted_col = [o.split(":")[1] if o.startswith("program:") else "none" for o in owner]  # markers: "none"
    adata = anndata.AnnData(
        X=x,
        obs=_obs(type_idx, cond_idx, donor_idx, n_donors, depth, totals, axis, active),
        var=pd.DataFrame({"planted_module": planted_col}, index=names),
    )
    adata.layers["counts"] = counts
    adata.uns["planted"] = {p: np.asarray(names[owner == f"program:{p}"], dtype=str) for p in PROGRAMS}
    adata.uns["simulation"] = {
        "description": "SIMULATED atlas (lava_sc.datasets.simulate_atlas): not real data",
        "n_cells": n_cells,
        "n_genes": n_genes,
        "program_strength": program_strength,
        "state_strength": state_strength,
        "n_state": n_state,
        "n_donors": n_donors,
        "umap": bool(umap),
        "random_state": random_state,
    }
    _embed(adata, umap=bool(umap), random_state=random_state)
    return adata


def _check_nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__} ({value!r}); pass e.g. {name}=1.0.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be finite and >= 0, got {value}; pass e.g. {name}=1.0.")
    return value


def _marker_count() -> int:
    return sum(_TOUCHING_MARKERS if t in _TOUCHING else _N_MARKERS for t in CELL_TYPES)


def _gene_names(n_genes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gene names and what each gene is (``marker:<type>``, ``program:<name>`` or ``background``)."""
    owner = []
    for t in CELL_TYPES:
        owner += [f"marker:{t}"] * (_TOUCHING_MARKERS if t in _TOUCHING else _N_MARKERS)
    for p, spec in PROGRAMS.items():
        owner += [f"program:{p}"] * spec["size"]
    owner += ["background"] * (n_genes - len(owner))
    owner = np.asarray(owner)
    names, count = [], {}
    for o in owner:
        stem = "gene" if o == "background" else o.split(":")[1]
        stem = f"mk_{stem}" if o.startswith("marker") else stem
        names.append(f"{stem}_{count.get(stem, 0)}")
        count[stem] = count.get(stem, 0) + 1
    return np.asarray(names), owner


def _assign_cells(rng, n_cells: int, n_donors: int):
    cond_idx = rng.permutation(np.arange(n_cells) % len(CONDITIONS))
    type_idx = rng.choice(len(CELL_TYPES), size=n_cells, p=np.asarray(_COMPOSITION) / sum(_COMPOSITION))
    donor_idx = cond_idx * n_donors + rng.integers(0, n_donors, n_cells)
    return type_idx, cond_idx, donor_idx


def _gradient_axis(rng, type_idx: np.ndarray) -> np.ndarray:
    """Standardised position along ``D``'s within-type axis (0 in other types)."""
    inside = type_idx == CELL_TYPES.index("D")
    t = np.zeros(type_idx.size)
    raw = rng.uniform(-1.0, 1.0, int(inside.sum()))
    t[inside] = (raw - raw.mean()) / raw.std()
    return t


def _base_log_means(rng, n_genes, owner, type_idx, donor_idx, n_donor_total) -> np.ndarray:
    """Gene means, type profiles and markers (touching types share their neighbour's profile), donor offsets."""
    n_types = len(CELL_TYPES)
    mu = rng.uniform(*_LOG_MEAN_RANGE, n_genes)
    profile = rng.normal(0.0, _TYPE_PROFILE_SD, (n_types, n_genes)) * (
        rng.random((n_types, n_genes)) < _TYPE_PROFILE_FRACTION
    )
    for t, neighbour in _TOUCHING.items():
        profile[CELL_TYPES.index(t)] = profile[CELL_TYPES.index(neighbour)]
    for k, t in enumerate(CELL_TYPES):
        mine = owner == f"marker:{t}"
        profile[k, mine] += _TOUCHING_SHIFT if t in _TOUCHING else _MARKER_SHIFT
        if t in _TOUCHING:  # the neighbour's markers are shared
            profile[k, owner == f"marker:{_TOUCHING[t]}"] += _MARKER_SHIFT
    offsets = rng.normal(0.0, _DONOR_OFFSET_SD, (n_donor_total, n_genes))
    offsets *= rng.random(n_genes) < _DONOR_OFFSET_FRACTION
    return mu + profile[type_idx] + offsets[donor_idx]


def _dense_state(rng, n_cells, n_genes, type_idx, n_state, strength) -> np.ndarray:
    """``s_c . L_type(c)``: a rank-``n_state`` latent per cell, loadings on every gene per type."""
    state = rng.standard_normal((n_cells, n_state))
    loadings = rng.normal(0.0, 1.0, (len(CELL_TYPES), n_state, n_genes)) * strength
    out = np.empty((n_cells, n_genes))
    for k in range(len(CELL_TYPES)):
        cells = type_idx == k
        out[cells] = state[cells] @ loadings[k]
    return out


def _active_masks(type_idx, cond_idx) -> dict[str, np.ndarray]:
    return {
        p: np.isin(type_idx, [CELL_TYPES.index(t) for t in spec["types"]])
        & np.isin(cond_idx, [CONDITIONS.index(c) for c in spec["conditions"]])
        for p, spec in PROGRAMS.items()
    }


def _program_term(rng, spec, active, axis, strength, size) -> np.ndarray:
    """The program's contribution to its genes' log-means (cells x size)."""
    n_cells = active.size
    if spec.get("gradient"):
        return (_GRADIENT_SLOPE * strength * axis)[:, None] * np.ones(size)
    if spec.get("response"):
        return (_RESPONSE_SHIFT * strength * active)[:, None] * np.ones(size)
    a = _PROGRAM_S * spec["strength"] * strength
    sign = np.where(np.arange(size) < size // 2, 1.0, -1.0) if spec.get("signed") else np.ones(size)
    term = a[:, None] * rng.standard_normal((n_cells, size))
    latent = rng.standard_normal(n_cells)
    term[active] = (a[active] * latent[active])[:, None] * sign
    return term


def _obs(type_idx, cond_idx, donor_idx, n_donors, depth, totals, axis, active) -> pd.DataFrame:
    donors = [f"{c}_{i + 1}" for c in CONDITIONS for i in range(n_donors)]
    design = {"cell_type": (type_idx, CELL_TYPES), "condition": (cond_idx, CONDITIONS), "donor": (donor_idx, donors)}
    return cell_table(design, {"depth": depth, "total_counts": totals, "axis": axis}, active)


def _embed(adata: anndata.AnnData, *, umap: bool, random_state: int) -> None:
    import scanpy as sc
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the PCA's last bits depend on the thread count and UMAP amplifies them
    with threadpool_limits(limits=1, user_api="blas"):
        sc.pp.highly_variable_genes(adata, n_top_genes=min(2000, adata.n_vars))
        hvg = adata[:, adata.var["highly_variable"].to_numpy()].copy()
        hvg.X = hvg.X.toarray()  # scaling centres the genes: dense anyway
        sc.pp.scale(hvg, max_value=10)
        sc.pp.pca(hvg, n_comps=min(_N_PCS, hvg.n_vars - 1), random_state=random_state)
        adata.obsm["X_pca"] = np.asarray(hvg.obsm["X_pca"], dtype=np.float32)
        if umap:
            sc.pp.neighbors(adata, n_neighbors=_N_NEIGHBORS, random_state=random_state, transformer="sklearn")
            sc.tl.umap(adata, random_state=random_state)
            adata.obsm["X_umap"] = np.asarray(adata.obsm["X_umap"], dtype=np.float32)
        else:
            adata.obsm["X_umap"] = adata.obsm["X_pca"][:, :2].copy()
