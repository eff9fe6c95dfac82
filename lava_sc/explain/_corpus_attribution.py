"""``explain.corpus_attribution``: contrastive corpus attribution (COCOA; Lin et al., ICLR 2023)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._adata import writable
from .._core.attribution import EPS, CorpusSimilarity
from .._core.gradients import METHODS, Method
from .._docs import doc
from .._params import store_params
from .._utils import log_added
from .._validate import (
    check_adata,
    check_bool,
    check_choice,
    check_int,
    check_key,
    check_not_lava_slot,
)
from ._attribute import added_lines, cell_mask, run_attribution, write_results
from ._encoder import prepare, represent


@doc()
def corpus_attribution(
    adata: AnnData,
    corpus,
    foil=None,
    *,
    encoder: Literal["pca"] | Callable[[np.ndarray], np.ndarray] = "pca",
    method: Method = "integrated_gradients",
    n_steps: int = 32,
    baseline: Literal["zero", "mean"] | np.ndarray = "zero",
    cells=None,
    n_foil: int | None = None,
    genes=None,
    layer: str | None = None,
    key_added: str = "cocoa",
    store_cells: bool = False,
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Contrastive corpus attribution (COCOA; Lin et al., ICLR 2023): which genes make cells look like a corpus.

    COCOA explains an unsupervised representation ``f`` (here a PCA, or any encoder you pass)
    relative to a *corpus* of cells (e.g. the cells where a LAVA module is active) and a *foil*
    (cells it is contrasted with). The explanation target of a cell ``x`` is its contrastive
    corpus similarity

    ``t(x) = mean_{c in corpus} cos(f(x), f(c)) - mean_{k in foil} cos(f(x), f(k))``,

    with the corpus and foil representations fixed. Each gene's attribution is its share of
    ``t(x) - t(baseline)`` by integrated gradients (or its gradient x input); positive values
    move a cell towards the corpus and away from the foil. The per-gene summary (mean over the
    explained cells) answers "which genes define this group in the representation", to set next
    to the gene–gene associations of a LAVA module.

    Parameters
    ----------
    {adata_encoder}
    corpus
        The corpus cells, one of

        * a boolean mask over cells (array or Series of length ``n_obs``), integer positions, or
          obs names;
        * the name of a boolean ``obs`` column, e.g. ``"active_typeB"``;
        * a tuple ``(obs_column, level)`` or ``(obs_column, [level, ...])``: the cells in those
          level(s), e.g. ``("cell_type", "PT")``;
        * a LAVA module's active region ``{"module": "M1", "key": "lava", "quantile": 0.9}``: the
          cells whose activity ``obsm[f"{key}_activity"][module]`` is above that quantile of the
          module's activity over all cells (``key`` defaults to ``"lava"``, ``quantile`` to 0.9).
    foil
        The cells the corpus is contrasted with, in any form accepted for ``corpus``; must not
        overlap the corpus. Default: **all cells not in the corpus** (deterministic; the paper
        draws a random foil set from the training data, which may include corpus-like samples —
        pass ``n_foil`` for a random subsample of the foil).
    encoder
        ``"pca"``: ``f(x) = (x - mean) @ varm["PCs"]`` as ``sc.pp.pca`` fits it (its gene means over
        all cells as centre when ``zero_center``; only the genes of its ``mask_var``, e.g.
        ``var["highly_variable"]``, are read, so only they are attributed). Gradients are exact
        (closed form through the cosine similarities) and cost about as much as one projection.
        A callable ``encoder(X) -> Z`` mapping a float64 ``cells x genes`` array (all
        ``adata.var_names``, in order) to ``cells x d``: gradients by central finite differences,
        **two encoder evaluations per explained cell, path step and attributed gene**
        (``2 * n_cells * n_steps * n_genes`` rows for integrated gradients, ``2 * n_cells * n_genes``
        for gradient x input); restrict ``cells`` and ``genes`` to keep that affordable.
    method
        ``"integrated_gradients"`` (straight path from ``baseline`` to ``x``, ``n_steps`` midpoint
        steps; attributions sum to ``t(x) - t(baseline)``) or ``"gradient_x_input"``
        (``(x - baseline) * grad t(x)``; no completeness).
    n_steps
        Riemann (midpoint) steps of integrated gradients.
    baseline
        The reference input: ``"zero"`` (no expression), ``"mean"`` (mean expression over all
        cells) or one value per gene. Cosine similarity is undefined at the zero representation,
        so a baseline that the encoder maps to (near) zero — ``"mean"`` with a centred PCA —
        cannot be used with integrated gradients (an error says so); with gradient x input it
        gives attributions that sum to 0 (the target is scale invariant in ``f(x)``).
    cells
        The cells to explain (mask, positions or obs names, or any form accepted for
        ``corpus``). Default: the corpus, as COCOA explains corpus members.
    n_foil
        Use a random subsample of this many foil cells (drawn with ``random_state``); ``None``
        uses the whole foil.
    genes
        Attribute only these genes (names or a boolean mask over ``var``). Default: the PCA's
        genes with ``encoder="pca"``, all genes with a callable. With integrated gradients the
        path still moves every gene from the baseline, so completeness holds over all genes, not
        over this subset.
    layer
        Layer with the expression; ``None`` uses ``X`` (or, with ``encoder="pca"``, the layer
        ``sc.pp.pca`` recorded in ``uns["pca"]["params"]``).
    key_added
        Where the results are written (must not hold LAVA results).
    store_cells
        Also store every explained cell's attributions in ``layers[key_added]``: a dense float32
        ``n_obs x n_vars`` array (4 bytes per cell and gene, e.g. 1.2 GB for 10,000 cells x
        30,000 genes), zero for cells not explained and genes not attributed.
    random_state
        Seed of the foil subsample (``n_foil``).
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes

    ``uns[key_added]["genes"]``
        DataFrame, one row per attributed gene sorted by rank: ``gene``, ``mean_attribution``
        (mean over the explained cells), ``mean_abs_attribution`` (mean of ``|attribution|``),
        ``rank`` (1 = largest mean attribution, i.e. the gene that most moves cells towards the
        corpus). Read it with :func:`lava_sc.get.attribution`.
    ``uns[key_added]["completeness"]``
        Means over explained cells of ``t(x)``, ``t(baseline)`` and the attribution sum, and the
        largest ``|sum - (t(x) - t(baseline))|`` (the integrated-gradients quadrature error when
        every gene is attributed).
    ``uns[key_added]["params"]["corpus_attribution"]``
        The options, the corpus / foil descriptions and their sizes.
    ``var[f"{key_added}_attribution"]``
        Mean attribution per gene (NaN for genes not attributed).
    ``obs[f"{key_added}_target"]``
        ``t(x)`` of the explained cells (NaN for the others).
    ``obs[f"{key_added}_set"]``
        Categorical: ``corpus``, ``foil`` or ``none``.
    ``layers[key_added]``
        With ``store_cells=True`` (see above).

    Examples
    --------
    >>> import scanpy as sc, lava_sc as lv
    >>> sc.pp.pca(adata)  # doctest: +SKIP
    >>> lv.explain.corpus_attribution(adata, ("cell_type", "PT"))  # doctest: +SKIP
    >>> lv.explain.corpus_attribution(adata, {"module": "M1"}, key_added="cocoa_M1")  # doctest: +SKIP
    >>> lv.get.attribution(adata, "cocoa_M1").head(10)  # doctest: +SKIP
    """
    check_adata(adata)
    key_added = check_key(key_added)
    check_not_lava_slot(adata, key_added)
    method = check_choice("method", method, METHODS)
    n_steps = check_int("n_steps", n_steps, low=1)
    random_state = check_int("random_state", random_state, low=0)
    store_cells = check_bool("store_cells", store_cells)

    corpus_mask, corpus_desc = cell_mask(adata, corpus, "corpus")
    if not corpus_mask.any():
        raise ValueError(
            f"The corpus ({corpus_desc}) is empty: no cell selected. Choose another group or a lower module quantile."
        )
    if foil is None:
        foil_mask, foil_desc = ~corpus_mask, "all cells not in the corpus"
    else:
        foil_mask, foil_desc = cell_mask(adata, foil, "foil")
        both = int((foil_mask & corpus_mask).sum())
        if both:
            raise ValueError(
                f"{both} cells are both in the corpus ({corpus_desc}) and in the foil ({foil_desc}); COCOA contrasts "
                "disjoint sets: remove them from the foil (e.g. foil = foil_mask & ~corpus_mask) or pass foil=None."
            )
    if not foil_mask.any():
        raise ValueError(
            f"The foil ({foil_desc}) is empty: COCOA needs cells to contrast the corpus with; pass `foil=` with "
            "at least one cell outside the corpus."
        )
    if n_foil is not None:
        n_foil = check_int("n_foil", n_foil, low=1)
        idx = np.flatnonzero(foil_mask)
        if n_foil < len(idx):
            keep = np.random.default_rng(random_state).choice(idx, size=n_foil, replace=False)
            foil_mask = np.zeros(adata.n_obs, dtype=bool)
            foil_mask[keep] = True
            foil_desc = f"{foil_desc} (random {n_foil})"
    if cells is None:
        explained_mask, cells_desc = corpus_mask, "the corpus"
    else:
        explained_mask, cells_desc = cell_mask(adata, cells, "cells")
        if not explained_mask.any():
            raise ValueError("`cells` selects no cell; pass a non-empty mask, positions or obs names.")

    setup = prepare(adata, encoder=encoder, baseline=baseline, layer=layer, genes=genes)
    corpus_z = represent(setup, np.flatnonzero(corpus_mask))
    foil_z = represent(setup, np.flatnonzero(foil_mask))
    target = CorpusSimilarity(corpus_z, foil_z)
    zb = setup.encoder(setup.baseline[None, :])[0]
    typical = float(np.median(np.linalg.norm(corpus_z, axis=1)))
    if method == "integrated_gradients" and np.linalg.norm(zb) <= max(EPS, 1e-6 * typical):
        raise ValueError(
            f"The baseline ({setup.baseline_desc!r}) maps to the zero representation, where cosine similarity "
            "(COCOA's target) is undefined and integrated gradients diverge (with encoder='pca' the 'mean' "
            "baseline is the PCA centre). Use baseline='zero' (or another baseline), or "
            "method='gradient_x_input'."
        )

    explained = np.flatnonzero(explained_mask)
    start = logg.info(
        f"COCOA attribution of {len(explained)} cells to {len(setup.genes)} genes "
        f"(corpus {int(corpus_mask.sum())} cells, foil {int(foil_mask.sum())} cells, {method})"
    )
    result = run_attribution(
        setup,
        explained,
        lambda X: (target, np.zeros(len(X), dtype=np.int64)),
        method=method,
        n_steps=n_steps,
        store_cells=store_cells,
    )

    adata = writable(adata, copy)
    roles = np.full(adata.n_obs, "none", dtype=object)
    roles[foil_mask] = "foil"
    roles[corpus_mask] = "corpus"
    write_results(adata, key_added, setup, explained, result, store_cells=store_cells)
    adata.obs[f"{key_added}_set"] = pd.Categorical(roles, categories=["corpus", "foil", "none"])
    store_params(
        adata,
        key_added,
        "corpus_attribution",
        dict(
            corpus=corpus_desc,
            foil=foil_desc,
            cells=cells_desc,
            n_corpus=int(corpus_mask.sum()),
            n_foil=int(foil_mask.sum()),
            n_cells=len(explained),
            target="mean cosine similarity to corpus - mean cosine similarity to foil",
            random_state=random_state,
            **setup.params(method, n_steps),
        ),
    )
    log_added(
        f"COCOA attribution of {len(explained)} cells",
        start,
        added_lines(key_added, store_cells) + [f"'{key_added}_set', corpus / foil / none (adata.obs)"],
    )
    return adata if copy else None
