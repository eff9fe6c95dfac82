"""``get.gene_sets``: the modules as gene sets (one row per module and gene), ready for GMT export."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_float, check_key


@doc()
def gene_sets(adata: AnnData, key: str = DEFAULT_KEY, *, min_score: float | None = None) -> pd.DataFrame:
    """The modules' genes as a decoupler-style net: ``source`` (module), ``target`` (gene), ``weight``.

    ``weight`` is the gene's score in its module (1 = the module's most connected gene) times its
    ``sign``: negative for the genes on the anti-correlated side of a signed module (see
    :func:`lava_sc.get.module_genes`), so a signed module scores as one programme. The net feeds
    decoupler (``dc.mt.ulm(data, net)``), :func:`lava_sc.io.write_gmt`, :func:`lava_sc.tl.enrich` and
    :func:`lava_sc.tl.score` (to score the modules on another dataset).

    Parameters
    ----------
    {adata_modules}
    {key}
    min_score
        Keep only genes scoring at least this much in their module, ``|weight| >= min_score``
        (``None``: all genes).

    Examples
    --------
    >>> import lava_sc as lv
    >>> net = lv.get.gene_sets(adata, min_score=0.5)  # doctest: +SKIP
    """
    check_adata(adata)
    key = check_key(key)
    if min_score is not None:
        min_score = check_float("min_score", min_score)
    if key not in adata.uns or Keys.module_genes not in adata.uns[key]:
        raise KeyError(f"No LAVA modules under key {key!r}; run lava_sc.tl.modules(adata, key={key!r}) first.")
    table = adata.uns[key][Keys.module_genes]
    net = pd.DataFrame(
        {
            "source": table["module"].astype(str).to_numpy(dtype=object),
            "target": table["gene"].astype(str).to_numpy(dtype=object),
            "weight": table["score"].to_numpy(dtype=float) * signs(table),
        }
    )
    if min_score is not None:
        net = net.loc[net["weight"].abs() >= min_score]
    return net.reset_index(drop=True)


def signs(table: pd.DataFrame) -> np.ndarray:
    """Each gene's side in its module, -1 or +1 by the sign of ``table["sign"]``; +1 throughout without
    that column (results stored before modules had a ``sign``, or gene sets that never had one)."""
    if "sign" not in table.columns:
        return np.ones(len(table))
    values = pd.to_numeric(table["sign"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("Column 'sign' of the module genes must be numbers (-1 or +1); fill or drop the bad rows.")
    return np.where(values < 0, -1.0, 1.0)
