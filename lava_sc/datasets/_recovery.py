"""How well LAVA modules recover the programs planted by the simulators (known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys

__all__ = ["recovery"]

#: a module whose best Jaccard with every planted program is below this matches nothing
UNMATCHED_BELOW = 0.2


@doc()
def recovery(adata: AnnData, *, key: str = DEFAULT_KEY) -> tuple[pd.DataFrame, dict]:
    """Match LAVA modules to the planted programs of a simulation.

    For each planted program ``P`` (``uns["planted"]``) the best module is the one with the largest
    gene-set Jaccard ``|P ∩ M| / |P ∪ M|``; its localisation AUROC is the AUROC of the module's cell
    activity (``obsm[f"{key}_activity"]``) for the program's active cells (``obs[f"active_{P}"]``).
    A module is *unmatched* when its best Jaccard with every program is below 0.2; a program whose best
    module is below 0.2 is *missed* (``module`` None, AUROC NaN, so ``mean_auroc`` is over found programs).

    Parameters
    ----------
    adata
        A simulation from :mod:`lava_sc.datasets` with LAVA modules under ``key``.
    {key}

    Returns
    -------
    A table with one row per program (``program``, ``size``, ``module``, ``module_size``,
    ``jaccard``, ``auroc``) and a summary dict: ``mean_jaccard``, ``n_modules``, ``n_unmatched``,
    ``median_module_size``, ``max_module_size``, ``mean_auroc``.
    """
    if "planted" not in adata.uns:
        raise KeyError("adata.uns['planted'] is missing: `recovery` scores a lava_sc.datasets simulation.")
    if key not in adata.uns or "module_genes" not in adata.uns[key]:
        raise KeyError(f"No LAVA modules under key {key!r}; run lava_sc.tl.modules(adata, key={key!r}) first.")
    genes = adata.uns[key]["module_genes"]
    modules = {str(m): set(g["gene"].astype(str)) for m, g in genes.groupby("module", observed=True)}
    planted = {str(p): set(_genes(v)) for p, v in adata.uns["planted"].items()}
    activity = adata.obsm.get(Keys(key).obsm_activity)
    rows, best_of_module = [], dict.fromkeys(modules, 0.0)
    for program, truth in planted.items():
        scores = {m: len(truth & g) / len(truth | g) for m, g in modules.items()}
        for m, j in scores.items():
            best_of_module[m] = max(best_of_module[m], j)
        best = max(scores, key=scores.get) if scores else None
        jaccard = scores[best] if best is not None else 0.0
        if jaccard < UNMATCHED_BELOW:  # missed: no module is this programme
            best = None
        column = f"active_{program}"
        auroc = np.nan
        if best is not None and activity is not None and column in adata.obs:
            auroc = _auroc(np.asarray(activity[best], dtype=float), adata.obs[column].to_numpy(dtype=bool))
        rows.append(
            {
                "program": program,
                "size": len(truth),
                "module": best,
                "module_size": len(modules[best]) if best is not None else 0,
                "jaccard": jaccard,
                "auroc": auroc,
            }
        )
    table = pd.DataFrame(rows)
    sizes = np.array([len(g) for g in modules.values()])
    summary = {
        "mean_jaccard": float(table["jaccard"].mean()),
        "n_modules": len(modules),
        "n_unmatched": int(sum(j < UNMATCHED_BELOW for j in best_of_module.values())),
        "median_module_size": float(np.median(sizes)) if len(sizes) else 0.0,
        "max_module_size": int(sizes.max(initial=0)),
        "mean_auroc": float(np.nanmean(table["auroc"])) if table["auroc"].notna().any() else float("nan"),
    }
    return table, summary


def _genes(entry) -> list[str]:
    """A planted program's genes: an array of names, or a dict with ``"genes"`` (simulate_kidney)."""
    if isinstance(entry, dict):
        entry = entry["genes"]
    return [str(g) for g in np.asarray(entry).ravel()]


def _auroc(score: np.ndarray, truth: np.ndarray) -> float:
    """Mann-Whitney AUROC of ``score`` for ``truth`` (ties count one half)."""
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
