"""The encoder the attribution explainers explain, resolved once for COCOA and label-free importance.

An encoder ``f`` maps a cell's expression ``x`` (all ``var_names``) to a representation ``z = f(x)``:
either the linear map of ``sc.pp.pca`` (``f(x) = (x - mean) @ varm["PCs"]``, exact gradients) or any
callable (gradients by central finite differences; see :mod:`lava_sc._core.attribution`).
:func:`prepare` resolves it together with the expression, the path baseline and the genes to
attribute, into one :class:`Setup` that the tools and the chunked attribution loop share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._adata import column_means, dense_block, gene_positions
from .._core.attribution import EPS, MAX_ELEMENTS, CallableEncoder, LinearEncoder, encode
from .._params import decode
from .._validate import check_choice, expression

BASELINES = ("zero", "mean")
#: relative mismatch between ``obsm["X_pca"]`` and the PCA recomputed from the expression that triggers a warning
PCA_MISMATCH = 1e-2


@dataclass
class Setup:
    """What both tools need: expression, encoder, baseline and the genes to attribute."""

    values: object
    encoder: LinearEncoder | CallableEncoder
    baseline: np.ndarray
    baseline_desc: str
    genes: np.ndarray
    var_names: pd.Index
    layer: str | None
    encoder_desc: str
    gene_note: str

    def params(self, method: str, n_steps: int) -> dict:
        return dict(
            encoder=self.encoder_desc,
            method=method,
            n_steps=n_steps,
            baseline=self.baseline_desc,
            layer=self.layer,
            n_genes=len(self.genes),
            genes=self.gene_note,
        )


def prepare(adata: AnnData, *, encoder, baseline, layer, genes) -> Setup:
    """Resolve the encoder (PCA from ``sc.pp.pca`` or a callable), the expression, the baseline and the genes."""
    pca_params = {}
    if isinstance(encoder, str):
        check_choice("encoder", encoder, ("pca",))
        if "PCs" not in adata.varm or "pca" not in adata.uns:
            raise KeyError(
                "encoder='pca' needs a PCA of adata (varm['PCs'] and uns['pca']); run sc.pp.pca(adata) first, "
                "or pass a callable `encoder=`."
            )
        pca_params = dict(adata.uns["pca"].get("params", {}))
        pca_layer = pca_params.get("layer")
        if layer is None and isinstance(pca_layer, str):
            logg.info(f"    using layer {pca_layer!r}, on which sc.pp.pca was run")
            layer = pca_layer
        elif isinstance(pca_layer, str) and layer != pca_layer:
            logg.warning(f"sc.pp.pca was run on layer {pca_layer!r} but the attribution reads layer {layer!r}.")
    elif not callable(encoder):
        raise TypeError(f"`encoder` must be 'pca' or a callable mapping cells x genes to cells x d, got {encoder!r}.")
    values = expression(adata, layer)
    n_vars = adata.n_vars

    if isinstance(encoder, str):
        enc, gene_note = pca_encoder(adata, values, pca_params)
        default_genes = enc.genes
        encoder_desc = "pca"
    else:
        enc = CallableEncoder(encoder, n_vars)
        gene_note = "all genes"
        default_genes = np.arange(n_vars)
        encoder_desc = f"callable {enc.name}"

    if genes is None:
        gene_idx = default_genes
    else:
        gene_idx = gene_positions(adata, genes)
        if isinstance(encoder, str):
            outside = np.setdiff1d(gene_idx, enc.genes)
            if len(outside):
                raise ValueError(
                    f"{len(outside)} gene(s) of `genes` are not in the PCA (e.g. "
                    f"{adata.var_names[outside[:5]].tolist()}), so their attribution would be 0; pass genes of "
                    f"the PCA ({gene_note})."
                )
        gene_note = f"{len(gene_idx)} genes given"

    if isinstance(baseline, str):
        check_choice("baseline", baseline, BASELINES)
        base = np.zeros(n_vars) if baseline == "zero" else column_means(values)
        baseline_desc = baseline
    else:
        base = np.asarray(baseline, dtype=np.float64).ravel()
        if base.shape != (n_vars,):
            raise ValueError(
                f"`baseline` must be 'zero', 'mean' or one value per gene ({n_vars}), got shape {base.shape}."
            )
        if not np.isfinite(base).all():
            raise ValueError("`baseline` contains NaN or inf; pass finite values.")
        baseline_desc = "per-gene values"
    return Setup(values, enc, base, baseline_desc, gene_idx, adata.var_names, layer, encoder_desc, gene_note)


def pca_encoder(adata: AnnData, values, params: Mapping) -> tuple[LinearEncoder, str]:
    """The linear encoder of ``sc.pp.pca``: its loadings, centre (gene means) and genes (``mask_var``)."""
    loadings = np.asarray(adata.varm["PCs"], dtype=np.float64)
    if loadings.ndim != 2 or loadings.shape[0] != adata.n_vars or not np.isfinite(loadings).all():
        raise ValueError("adata.varm['PCs'] must be a finite genes x components array; rerun sc.pp.pca(adata).")
    mask_var = decode(params.get("mask_var"))  # an older h5ad stores scanpy's None as "None"
    if mask_var is None and bool(params.get("use_highly_variable", False)):
        mask_var = "highly_variable"
    if isinstance(mask_var, str):
        if mask_var not in adata.var.columns:
            raise KeyError(
                f"sc.pp.pca was run with mask_var={mask_var!r} but adata.var has no such column; rerun sc.pp.pca(adata)."
            )
        mask = adata.var[mask_var].to_numpy(dtype=bool)
        note = f"the {int(mask.sum())} genes of var[{mask_var!r}] used by sc.pp.pca"
    elif mask_var is not None and np.shape(mask_var) == (adata.n_vars,):
        mask = np.asarray(mask_var, dtype=bool)
        note = f"the {int(mask.sum())} genes of the mask_var used by sc.pp.pca"
    else:
        mask = np.ones(adata.n_vars, dtype=bool)
        note = "all genes"
    genes = np.flatnonzero(mask)
    if len(genes) == 0:
        raise ValueError("The PCA of adata uses no gene (empty mask_var); rerun sc.pp.pca(adata).")
    zero_center = bool(params.get("zero_center", True))
    centre = column_means(values, genes) if zero_center else np.zeros(len(genes))
    enc = LinearEncoder(loadings[genes], centre, genes, adata.n_vars)
    check_pca(adata, values, enc)
    return enc, note


def check_pca(adata: AnnData, values, enc: LinearEncoder) -> None:
    """Warn when ``obsm["X_pca"]`` is not reproduced from the expression (other layer, scaled data, subset)."""
    stored = adata.obsm.get("X_pca")
    if stored is None or np.shape(stored) != (adata.n_obs, enc.n_components):
        return
    idx = np.arange(min(200, adata.n_obs))
    ours = enc(dense_block(values, idx))
    ref = np.asarray(stored[idx], dtype=np.float64)
    gap = float(np.abs(ours - ref).max()) / max(float(np.abs(ref).max()), EPS)
    if gap > PCA_MISMATCH:
        logg.warning(
            f"obsm['X_pca'] differs from the PCA projection of the expression read here (relative gap {gap:.2g}): "
            "was sc.pp.pca run on another layer or on scaled data (sc.pp.scale), or was adata subset after it? "
            "Attributions explain the projection of the expression passed (`layer=`); rerun sc.pp.pca on it."
        )


def chunk_size(setup: Setup, method: str, n_steps: int) -> int:
    """Cells per chunk so that the dense rows (and, for callables, the path points) stay small."""
    per_cell = setup.values.shape[1]
    if not setup.encoder.linear and method == "integrated_gradients":
        per_cell *= 2
    return max(1, MAX_ELEMENTS // per_cell)


def represent(setup: Setup, idx: np.ndarray) -> np.ndarray:
    """Representations ``f(x)`` of the cells ``idx``."""
    size = chunk_size(setup, "gradient_x_input", 1)
    parts = [encode(setup.encoder, dense_block(setup.values, idx[s : s + size])) for s in range(0, len(idx), size)]
    return np.vstack(parts)
