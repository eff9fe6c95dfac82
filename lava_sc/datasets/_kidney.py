"""A SIMULATED kidney-like disease atlas (cell types, donors, conditions, planted programs).

Nothing here is real data: the gene names are kidney-flavoured for readability only. Programs are
planted as correlation through a shared per-cell latent, not as mean shifts, in the same way as
:func:`~lava_sc.datasets.simulate_planted`.
"""

from __future__ import annotations

import json
from importlib import resources

import anndata
import numpy as np
import pandas as pd
from scipy import sparse

from ._simulate import _check_int

__all__ = ["simulate_kidney"]

CELL_TYPES = ("PT", "TAL", "DCT", "CD", "EC", "Immune", "Fib")
CONDITIONS = ("reference", "AKI", "CKD")
_DONOR_PREFIX = {"reference": "ref", "AKI": "AKI", "CKD": "CKD"}

# cell-type composition per condition (PT the most abundant; disease loses PT, gains immune/fibroblast)
_COMPOSITION = {
    "reference": (0.52, 0.15, 0.08, 0.10, 0.07, 0.04, 0.04),
    "AKI": (0.45, 0.15, 0.08, 0.10, 0.07, 0.08, 0.07),
    "CKD": (0.40, 0.14, 0.07, 0.09, 0.07, 0.09, 0.14),
}

_TABLES = json.loads(resources.files(__package__).joinpath("kidney_genes.json").read_text())


def _frozen(value):
    """Lists of the JSON file as tuples (the tables are constants)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


#: cell-type markers and condition markers (a modest mean shift in every cell of the condition, which
#: places disease cells in an adjacent sub-cluster of their type)
_MARKERS = _frozen(_TABLES["markers"])
_CONDITION_MARKERS = _frozen(_TABLES["condition_markers"])
#: planted programs (illustrative names, padded with <prefix>_<i> beyond the list): the cell types and
#: conditions where each is active, and for the gradients the latent axis and its slope
_PROGRAMS = _frozen(_TABLES["programs"])
PROGRAMS = tuple(_PROGRAMS)
#: gene-set names of the offline collection (kidney_gene_sets), and the members of a real collection
#: that the simulation does not measure (two per program set)
_SET_NAMES = _TABLES["gene_set_names"]
_UNMEASURED = _frozen(_TABLES["unmeasured"])

_MARKER_SHIFT = 2.0  # log-mean shift of a cell-type marker in its own type
_CONDITION_SHIFT = 1.5  # log-mean shift of a condition marker in cells of its condition
_MODULE_S = 0.9  # sd of a program gene's log-mean: shared latent where active, independent noise elsewhere
_DONOR_STRENGTH_SD = 0.15  # program strength in a donor: s * lognormal(0, this)
_DONOR_OFFSET_SD = 0.15  # donor mean offset (log scale) on a random subset of genes
_DONOR_OFFSET_FRACTION = 0.2  # fraction of genes with donor mean offsets
_DONOR_WEIGHT_CONC = 10.0  # Dirichlet concentration of cells over the donors of a condition
_MU_RANGE = 1.0  # log-means of markers and program genes are uniform in [-_MU_RANGE, _MU_RANGE]
_THETA = 7.0  # negative binomial size
_DEPTH_SD = 0.4  # sd of the log library-size factor
_NOISE_MEAN_RANGE = (0.02, 10.0)  # noise genes: mean counts log-uniform in this range
_BACKGROUND_COUNTS = 4000.0  # counts per cell from the unsimulated rest of the transcriptome
_TARGET_SUM = 1e4
_HVG_MIN_DETECTION = 0.05  # noise genes detected in at least this fraction of cells are highly variable
_N_PCS = 50
_N_NEIGHBORS = 15
# synthetic layout (umap=False): type centres on a circle, disease sub-clusters adjacent
_CIRCLE_RADIUS = 15.0
_BLOB_SD = 1.2
_CONDITION_OFFSET = 3.0
_GRADIENT_AXIS_SD = 3.0
_LAYOUT_ORDER = ("PT", "EC", "Fib", "TAL", "DCT", "CD", "Immune")  # PT and TAL on opposite sides
_MIN_CELLS = 500
_MIN_CELLS_PER_DONOR = 50
_MIN_MODULE_SIZE = 3
_ATLAS_FILE = "kidney_atlas.h5ad"


def _program_genes(program: str, module_size: int) -> list[str]:
    spec = _PROGRAMS[program]
    names = list(spec["genes"][:module_size])
    names += [f"{spec['prefix']}_{i}" for i in range(len(names), module_size)]
    return names


def _gene_blocks(module_size: int, n_noise_genes: int) -> dict[str, list[str]]:
    """Gene names in column order: markers, condition markers, one block per program, noise."""
    blocks = {"markers": [g for t in CELL_TYPES for g in _MARKERS[t]]}
    blocks["condition_markers"] = [g for c in ("AKI", "CKD") for g in _CONDITION_MARKERS[c]]
    for p in PROGRAMS:
        blocks[p] = _program_genes(p, module_size)
    blocks["noise"] = [f"gene_{i}" for i in range(n_noise_genes)]
    return blocks


def _assign_cells(rng: np.random.Generator, n_cells: int, n_donors: int):
    """Condition, donor and cell type of every cell (donors nested in conditions)."""
    cond_idx = rng.permutation(np.arange(n_cells) % len(CONDITIONS))
    donor_idx = np.empty(n_cells, dtype=np.int64)
    type_idx = np.empty(n_cells, dtype=np.int64)
    for c, cond in enumerate(CONDITIONS):
        cells = np.flatnonzero(cond_idx == c)
        weights = rng.dirichlet(np.full(n_donors, _DONOR_WEIGHT_CONC))
        weights = 0.5 / n_donors + 0.5 * weights  # every donor keeps at least half its fair share
        donor_idx[cells] = c * n_donors + rng.choice(n_donors, size=len(cells), p=weights)
        type_idx[cells] = rng.choice(len(CELL_TYPES), size=len(cells), p=np.asarray(_COMPOSITION[cond]))
    return cond_idx, donor_idx, type_idx


def _active_masks(type_idx: np.ndarray, cond_idx: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for p, spec in _PROGRAMS.items():
        types = [CELL_TYPES.index(t) for t in spec["cell_types"]]
        conds = [CONDITIONS.index(c) for c in spec["conditions"]]
        out[p] = np.isin(type_idx, types) & np.isin(cond_idx, conds)
    return out


def _axes(rng: np.random.Generator, type_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Standardised within-type positions of the gradient programs (uniform in their type, 0 elsewhere).

    ``cd_axis``: corticomedullary position of CD cells; ``pt_axis``: S1 -> S3 segment position of PT cells.
    """
    axes = {}
    for spec in _PROGRAMS.values():
        if "axis" not in spec:
            continue
        inside = np.isin(type_idx, [CELL_TYPES.index(t) for t in spec["cell_types"]])
        t = np.zeros(type_idx.size)
        raw = rng.uniform(-1.0, 1.0, int(inside.sum()))
        t[inside] = (raw - raw.mean()) / raw.std()
        axes[spec["axis"]] = t
    return axes


def _log_means(rng, blocks, type_idx, cond_idx, donor_idx, n_donor_total, active, axes) -> np.ndarray:
    """Cells x genes log-means: markers, condition markers, planted programs, noise, donor offsets."""
    n_cells = type_idx.size
    sizes = [len(v) for v in blocks.values()]
    log_mean = np.empty((n_cells, sum(sizes)))
    col = 0

    n_mk = len(blocks["markers"])
    owner = np.repeat(np.arange(len(CELL_TYPES)), [len(_MARKERS[t]) for t in CELL_TYPES])
    mu = rng.uniform(-_MU_RANGE, _MU_RANGE, n_mk)
    log_mean[:, :n_mk] = mu + _MARKER_SHIFT * (type_idx[:, None] == owner[None, :])
    col += n_mk

    n_cm = len(blocks["condition_markers"])
    owner = np.repeat([CONDITIONS.index("AKI"), CONDITIONS.index("CKD")], [len(v) for v in _CONDITION_MARKERS.values()])
    mu = rng.uniform(-_MU_RANGE, _MU_RANGE, n_cm)
    log_mean[:, col : col + n_cm] = mu + _CONDITION_SHIFT * (cond_idx[:, None] == owner[None, :])
    col += n_cm

    for p in PROGRAMS:
        k = len(blocks[p])
        strength = _MODULE_S * np.exp(rng.normal(0.0, _DONOR_STRENGTH_SD, n_donor_total))[donor_idx]
        mu = rng.uniform(-_MU_RANGE, _MU_RANGE, k)
        block = mu + strength[:, None] * rng.standard_normal((n_cells, k))
        act = active[p]
        spec = _PROGRAMS[p]
        if "axis" in spec:  # a smooth gradient: the mean moves along the type's axis
            block[act] = mu + (spec["slope"] * strength[act] / _MODULE_S * axes[spec["axis"]][act])[:, None]
        else:
            latent = rng.standard_normal(n_cells)
            block[act] = mu + (strength[act] * latent[act])[:, None]
        log_mean[:, col : col + k] = block
        col += k

    n_noise = len(blocks["noise"])
    lo, hi = np.log(_NOISE_MEAN_RANGE[0]), np.log(_NOISE_MEAN_RANGE[1])
    log_mean[:, col:] = rng.uniform(lo, hi, n_noise)

    n_genes = log_mean.shape[1]
    shifted = rng.random(n_genes) < _DONOR_OFFSET_FRACTION
    offsets = rng.normal(0.0, _DONOR_OFFSET_SD, (n_donor_total, n_genes)) * shifted
    log_mean += offsets[donor_idx]
    return log_mean


def _counts(rng, log_mean: np.ndarray):
    """NB counts (CSR int32), library sizes including unsimulated background, log-normalised X."""
    n_cells = log_mean.shape[0]
    depth = np.exp(rng.normal(0.0, _DEPTH_SD, n_cells))
    mean = depth[:, None] * np.exp(log_mean)
    counts = sparse.csr_matrix(rng.negative_binomial(_THETA, _THETA / (_THETA + mean)).astype(np.int32))
    counts.eliminate_zeros()
    background = rng.poisson(depth * _BACKGROUND_COUNTS)
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel() + background
    scale = np.where(totals > 0, _TARGET_SUM / np.maximum(totals, 1.0), 0.0)
    x = counts.astype(np.float64)
    x.data *= np.repeat(scale, np.diff(x.indptr))
    np.log1p(x.data, out=x.data)
    return counts, x.astype(np.float32), depth, totals


def _synthetic_layout(rng, type_idx, cond_idx, axes) -> np.ndarray:
    """A UMAP-like 2-d layout: type blobs on a circle, AKI/CKD sub-clusters beside the reference."""
    pos = np.array([_LAYOUT_ORDER.index(t) for t in CELL_TYPES])
    angles = 2.0 * np.pi * pos / len(CELL_TYPES)
    radial = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    tangent = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
    r_dir, t_dir = radial[type_idx], tangent[type_idx]
    # reference at the blob centre, AKI and CKD outward at +-60 degrees
    cond_r = np.array([0.0, 0.5, 0.5])[cond_idx] * _CONDITION_OFFSET
    cond_t = np.array([0.0, 0.866, -0.866])[cond_idx] * _CONDITION_OFFSET
    noise_r = rng.standard_normal(type_idx.size) * _BLOB_SD
    noise_t = rng.standard_normal(type_idx.size) * _BLOB_SD
    for axis in axes.values():  # CD and PT stretched radially along their gradients
        inside = axis != 0
        noise_r[inside] = _GRADIENT_AXIS_SD * axis[inside]
    emb = _CIRCLE_RADIUS * r_dir + r_dir * (noise_r + cond_r)[:, None] + t_dir * (noise_t + cond_t)[:, None]
    return emb.astype(np.float32)


def _embed(adata: anndata.AnnData, *, umap: bool, random_state: int, layout: np.ndarray) -> None:
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the PCA's last bits depend on the thread count and UMAP amplifies them
    with threadpool_limits(limits=1, user_api="blas"):
        _embed_single_threaded(adata, umap=umap, random_state=random_state, layout=layout)


def _embed_single_threaded(adata: anndata.AnnData, *, umap: bool, random_state: int, layout: np.ndarray) -> None:
    import scanpy as sc

    # the usual recipe: highly variable genes scaled to unit variance, then PCA (centred implicitly by
    # scanpy, so X stays sparse)
    x = adata.X[:, adata.var["highly_variable"].to_numpy()]
    mean = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
    sd = np.sqrt(np.maximum(np.asarray(x.multiply(x).mean(axis=0), dtype=np.float64).ravel() - mean**2, 0.0))
    hvg = anndata.AnnData(X=(x @ sparse.diags(1.0 / np.where(sd > 0, sd, 1.0))).astype(np.float32).tocsr())
    n_comps = min(_N_PCS, hvg.n_vars - 1, adata.n_obs - 1)
    sc.pp.pca(hvg, n_comps=n_comps, random_state=random_state)
    adata.obsm["X_pca"] = np.asarray(hvg.obsm["X_pca"], dtype=np.float32)
    if umap:
        sc.pp.neighbors(adata, n_neighbors=_N_NEIGHBORS, random_state=random_state, transformer="sklearn")
        sc.tl.umap(adata, random_state=random_state)
        adata.obsm["X_umap"] = np.asarray(adata.obsm["X_umap"], dtype=np.float32)
    else:
        adata.obsm["X_umap"] = layout


def simulate_kidney(
    *,
    n_cells: int = 6000,
    n_donors: int = 6,
    n_noise_genes: int = 300,
    module_size: int = 15,
    umap: bool = True,
    random_state: int = 0,
) -> anndata.AnnData:
    """Simulate a kidney-like disease atlas (SIMULATED data, not real kidney).

    Cells come from ``3 * n_donors`` donors, ``n_donors`` in each condition (``"reference"``,
    ``"AKI"``, ``"CKD"``; every donor belongs to one condition), and seven cell types: proximal tubule
    ``PT`` (the most abundant, as in real kidney), thick ascending limb ``TAL``, distal convoluted
    tubule ``DCT``, collecting duct ``CD``, endothelium ``EC``, ``Immune`` and fibroblasts ``Fib``.
    Disease shifts the composition (fewer PT, more immune cells and, in CKD, fibroblasts).

    Genes (names are kidney-flavoured but **illustrative**; the biology is not real):

    * **cell-type markers** (6 per type, e.g. ``LRP2``/``CUBN`` for PT, ``UMOD`` for TAL, ``AQP2``
      for CD, ``PECAM1`` for EC, ``PTPRC`` for Immune, ``COL1A1`` for Fib): log-mean raised by 2.0 in
      their type, so types form separate clusters;
    * **condition markers** (7 per disease: ``FOS``, ``JUN``, ``EGR1``, ``ATF3``, ... in AKI; ``CD44``,
      ``ITGB6``, ``KRT7``, ``MMP7``, ... in CKD): log-mean raised by 1.5 in every cell of the
      condition, so disease cells sit in a sub-cluster next to the reference cells of their type;
    * **planted programs**, ``module_size`` genes each, carried by *correlation*: in active cells a
      program gene's log-mean is ``mu_g + s_d * z_c`` with one latent ``z_c ~ N(0, 1)`` per cell shared
      by the program's genes; elsewhere ``mu_g + s_d * e_cg`` with independent noise, so mean and
      variance are unchanged and only the correlation differs. ``s_d = 0.9 * f_d`` with a donor factor
      ``f_d ~ lognormal(0, 0.15)`` per donor and program. The programs are

      - ``injury`` (``HAVCR1``, ``LCN2``, ``VCAM1``, ``SPP1``, ...): AKI and CKD cells of PT and TAL
        (one program recurring in two distant epithelial types under disease; absent in reference);
      - ``homeostatic`` (``ACSM2A``, ``GATM``, ``PCK1``, ...): reference PT cells only (lost in disease);
      - ``fibrosis`` (``POSTN``, ``FN1``, ``TGFB1``, ...): CKD fibroblasts only;
      - ``gradient`` (``AKR1B1``, ``SLC6A6``, ...): in CD of every condition the log-mean is
        ``mu_g + 2.0 f_d t_c``, with ``t_c`` the cell's standardised corticomedullary position
        (``obs["cd_axis"]``; a smooth within-type gradient: unlike the latent programs it shifts means
        along CD, as any gradient does);
      - ``pt_segment`` (``SLC5A2``, ``SLC22A7``, ...): the same kind of gradient along PT's S1 -> S3
        segment axis (``obs["pt_axis"]``, slope 1.5) in every condition. Real PT is such a continuum;
        it also makes the segment axis, not one program's latent, the main direction of PT in a UMAP
        computed from the data, so that localities cut across the injury and homeostatic programs;
      - ``interferon`` (``ISG15``, ``IFI6``, ``MX1``, ...): Immune cells of every condition (a control
        program that does not change with disease).

      Names beyond the built-in lists are padded as ``INJ_<i>``, ``HOM_<i>``, ``FIB_<i>``, ``CMG_<i>``,
      ``SEG_<i>``, ``IFN_<i>``;
    * **noise** ``gene_<i>``: ``n_noise_genes`` independent genes, mean counts log-uniform in
      [0.02, 10].

    Donor effects: besides the program-strength factor, each donor has small mean offsets
    (sd 0.15 on the log scale) on a random 20 % of genes, so cells of one donor are not independent
    replicates. Counts are negative binomial (size 7) with mean ``depth_c * exp(log-mean)`` and a
    log-normal library-size factor (sd 0.4); the library size includes ~4,000 counts per cell from
    unsimulated genes, as a real transcriptome would.

    Parameters
    ----------
    n_cells
        Number of cells, at least 500 and at least 50 per donor (``150 * n_donors``).
    n_donors
        Donors per condition, at least 1.
    n_noise_genes
        Number of unstructured noise genes, at least 0.
    module_size
        Genes per planted program, at least 3.
    umap
        ``True``: ``obsm["X_umap"]`` is a real UMAP computed with scanpy as a user would (PCA of the
        highly variable genes scaled to unit variance, 15-nearest-neighbour graph, ``sc.tl.umap``);
        about 10 s at 6,000 cells. ``False``: a synthetic UMAP-like layout (type blobs on a circle, PT
        and TAL on opposite sides, AKI and CKD sub-clusters beside the reference cells of each type, CD
        and PT stretched along their gradients), fast for large simulations. ``X_pca`` is computed
        either way.
    random_state
        Seed for :func:`numpy.random.default_rng` (and PCA/UMAP); the result is identical for the
        same arguments.

    Returns
    -------
    :class:`~anndata.AnnData` with

    ``X``
        log-normalised expression (total 1e4 per cell, then ``log1p``), float32 CSR.
    ``layers["counts"]``
        raw counts, int32 CSR.
    ``obs``
        ``cell_type``, ``condition``, ``donor`` (categorical), ``depth`` (library-size factor),
        ``total_counts`` (library size, including the unsimulated background), ``cd_axis`` and
        ``pt_axis`` (standardised position along the CD and PT gradients, 0 in other types) and one
        boolean ``active_<program>`` column per planted program.
    ``var``
        ``gene_group`` (``"marker"``, ``"condition_marker"``, a program name, or ``"noise"``),
        ``planted_module`` (program name or ``"none"``) and ``highly_variable`` (every simulated signal
        gene and the noise genes detected in at least 5 % of cells).
    ``obsm``
        ``X_pca`` (50 components of the scaled highly variable genes) and ``X_umap``; with
        ``umap=True`` also scanpy's kNN graph (``obsp["distances"]``, ``obsp["connectivities"]``,
        ``uns["neighbors"]``) and ``uns["umap"]``.
    ``uns["planted"]``
        program -> ``{"genes", "cell_types", "conditions"}`` (string arrays).
    ``uns["simulation"]``
        ``description`` (states that the data are simulated) and the parameters used.

    Examples
    --------
    >>> from lava_sc.datasets import simulate_kidney
    >>> adata = simulate_kidney(n_cells=1200, umap=False, random_state=1)
    >>> list(adata.obs["cell_type"].cat.categories)
    ['PT', 'TAL', 'DCT', 'CD', 'EC', 'Immune', 'Fib']
    """
    n_donors = _check_int("n_donors", n_donors, 1, "6")
    n_cells = _check_int("n_cells", n_cells, max(_MIN_CELLS, _MIN_CELLS_PER_DONOR * len(CONDITIONS) * n_donors), "6000")
    n_noise_genes = _check_int("n_noise_genes", n_noise_genes, 0, "300")
    module_size = _check_int("module_size", module_size, _MIN_MODULE_SIZE, "15")
    random_state = _check_int("random_state", random_state, 0, "0")
    if not isinstance(umap, bool | np.bool_):
        raise TypeError(f"`umap` must be True or False, got {type(umap).__name__} ({umap!r}); pass umap=True.")

    rng = np.random.default_rng(random_state)
    cond_idx, donor_idx, type_idx = _assign_cells(rng, n_cells, n_donors)
    active = _active_masks(type_idx, cond_idx)
    axes = _axes(rng, type_idx)
    blocks = _gene_blocks(module_size, n_noise_genes)
    log_mean = _log_means(rng, blocks, type_idx, cond_idx, donor_idx, len(CONDITIONS) * n_donors, active, axes)
    counts, x, depth, totals = _counts(rng, log_mean)
    layout = _synthetic_layout(rng, type_idx, cond_idx, axes)

    adata = anndata.AnnData(
        X=x,
        obs=_obs(type_idx, cond_idx, donor_idx, n_donors, depth, totals, axes, active),
        var=_var(blocks, counts),
    )
    adata.layers["counts"] = counts
    adata.uns["planted"] = {
        p: {
            "genes": np.asarray(blocks[p], dtype=str),
            "cell_types": np.asarray(spec["cell_types"], dtype=str),
            "conditions": np.asarray(spec["conditions"], dtype=str),
        }
        for p, spec in _PROGRAMS.items()
    }
    adata.uns["simulation"] = _simulation_params(n_cells, n_donors, n_noise_genes, module_size, umap, random_state)
    _embed(adata, umap=umap, random_state=random_state, layout=layout)
    return adata


def _obs(type_idx, cond_idx, donor_idx, n_donors, depth, totals, axes, active) -> pd.DataFrame:
    donors = [f"{_DONOR_PREFIX[c]}{i + 1}" for c in CONDITIONS for i in range(n_donors)]
    design = {"cell_type": (type_idx, CELL_TYPES), "condition": (cond_idx, CONDITIONS), "donor": (donor_idx, donors)}
    return cell_table(design, {"depth": depth, "total_counts": totals, **axes}, {p: active[p] for p in PROGRAMS})


def cell_table(design: dict, values: dict, active: dict) -> pd.DataFrame:
    """``obs`` of a simulation: categorical design columns (name -> (codes, categories)), per-cell values,
    and one boolean ``active_<program>`` column per planted program; cells named ``cell_<i>``."""
    n_cells = len(next(iter(design.values()))[0])
    columns = {name: pd.Categorical.from_codes(codes, categories=list(cats)) for name, (codes, cats) in design.items()}
    columns.update(values)
    columns.update({f"active_{p}": mask for p, mask in active.items()})
    return pd.DataFrame(columns, index=pd.Index([f"cell_{i}" for i in range(n_cells)]))


def _var(blocks: dict[str, list[str]], counts: sparse.csr_matrix) -> pd.DataFrame:
    group = [("marker" if b == "markers" else "condition_marker" if b == "condition_markers" else b) for b in blocks]
    gene_group = np.repeat(group, [len(v) for v in blocks.values()])
    planted = np.where(np.isin(gene_group, PROGRAMS), gene_group, "none")
    detection = np.asarray((counts > 0).mean(axis=0)).ravel()
    hvg = (gene_group != "noise") | (detection >= _HVG_MIN_DETECTION)
    names = [g for v in blocks.values() for g in v]
    return pd.DataFrame(
        {"gene_group": gene_group, "planted_module": planted, "highly_variable": hvg},
        index=pd.Index(names),
    )


def _simulation_params(n_cells, n_donors, n_noise_genes, module_size, umap, random_state) -> dict:
    return {
        "description": (
            "SIMULATED kidney-like disease atlas from lava_sc.datasets.simulate_kidney; not real data. "
            "Gene names are illustrative; programs are planted as correlation through a shared per-cell latent."
        ),
        "n_cells": n_cells,
        "n_donors_per_condition": n_donors,
        "n_noise_genes": n_noise_genes,
        "module_size": module_size,
        "umap": bool(umap),
        "random_state": random_state,
        "cell_types": np.asarray(CELL_TYPES, dtype=str),
        "conditions": np.asarray(CONDITIONS, dtype=str),
        "marker_shift": _MARKER_SHIFT,
        "condition_shift": _CONDITION_SHIFT,
        "module_s": _MODULE_S,
        "gradient_slopes": {p: spec["slope"] for p, spec in _PROGRAMS.items() if "slope" in spec},
        "donor_strength_sd": _DONOR_STRENGTH_SD,
        "donor_offset_sd": _DONOR_OFFSET_SD,
        "donor_offset_fraction": _DONOR_OFFSET_FRACTION,
        "mu_range": _MU_RANGE,
        "nb_theta": _THETA,
        "depth_sd": _DEPTH_SD,
        "noise_mean_range": np.asarray(_NOISE_MEAN_RANGE, dtype=float),
        "background_counts": _BACKGROUND_COUNTS,
        "target_sum": _TARGET_SUM,
        "hvg_min_detection": _HVG_MIN_DETECTION,
    }
