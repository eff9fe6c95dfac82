"""What ships with the SIMULATED kidney atlas: its offline gene-set collection and the bundled file
(``simulate_kidney()`` at its defaults, with a real UMAP)."""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np

from ._kidney import (
    _ATLAS_FILE,
    _CONDITION_MARKERS,
    _MARKERS,
    _SET_NAMES,
    _UNMEASURED,
    CELL_TYPES,
    PROGRAMS,
    _gene_blocks,
)
from ._simulate import _check_int


def kidney_gene_sets(*, n_decoys: int = 40, random_state: int = 0) -> dict[str, list[str]]:
    """A small offline gene-set collection matching :func:`simulate_kidney` (SIMULATED, illustrative).

    For annotating LAVA modules found on the simulated kidney atlas without network access. It holds

    * one set per planted program (``INJURY_RESPONSE_SIM``, ``PT_HOMEOSTASIS_SIM``,
      ``FIBROSIS_ECM_SIM``, ``CD_CORTICOMEDULLARY_SIM``, ``INTERFERON_RESPONSE_SIM``): the program's
      genes at the default ``module_size=15`` with the last two replaced by two genes the simulation
      does not measure, as in a real collection (so a set is close to, not identical with, a program);
    * one marker set per cell type (``<TYPE>_MARKERS_SIM``) and per disease condition
      (``AKI_RESPONSE_SIM``, ``CKD_RESPONSE_SIM``);
    * ``n_decoys`` decoy sets ``DECOY_<i>_SIM`` of 10 to 20 genes drawn at random from the genes of
      ``simulate_kidney()`` at its defaults that belong to no program (markers and noise genes).

    Parameters
    ----------
    n_decoys
        Number of decoy sets, at least 0.
    random_state
        Seed for the decoys; the collection is identical for the same arguments.

    Returns
    -------
    dict mapping set name to a list of gene names.

    Examples
    --------
    >>> from lava_sc.datasets import kidney_gene_sets
    >>> sets = kidney_gene_sets(n_decoys=3)
    >>> sets["INJURY_RESPONSE_SIM"][:3]
    ['HAVCR1', 'LCN2', 'VCAM1']
    """
    n_decoys = _check_int("n_decoys", n_decoys, 0, "40")
    random_state = _check_int("random_state", random_state, 0, "0")
    blocks = _gene_blocks(15, 300)
    sets: dict[str, list[str]] = {}
    for p in PROGRAMS:
        sets[_SET_NAMES[p]] = blocks[p][:-2] + list(_UNMEASURED[p])
    for t in CELL_TYPES:
        sets[f"{t.upper()}_MARKERS_SIM"] = list(_MARKERS[t])
    for c, genes in _CONDITION_MARKERS.items():
        sets[f"{c}_RESPONSE_SIM"] = list(genes)
    pool = np.asarray(blocks["markers"] + blocks["condition_markers"] + blocks["noise"])
    rng = np.random.default_rng(random_state)
    for i in range(n_decoys):
        size = int(rng.integers(10, 21))
        sets[f"DECOY_{i + 1}_SIM"] = [str(g) for g in rng.choice(pool, size=size, replace=False)]
    return sets


def _atlas_candidates() -> list[Path]:
    package = Path(__file__).resolve().parent.parent  # lava_sc/
    return [package / "_data" / _ATLAS_FILE, package.parent / "data" / _ATLAS_FILE]


def kidney() -> anndata.AnnData:
    """Load the shipped SIMULATED kidney-like atlas: ``simulate_kidney()`` at its defaults, with a real UMAP.

    6,000 cells x 446 genes from 18 donors (6 per condition: reference, AKI, CKD), seven cell types and
    six planted programs (``injury``, ``homeostatic``, ``fibrosis``, ``gradient``, ``pt_segment``,
    ``interferon``); the layout is documented in :func:`simulate_kidney`. The file holds only the
    simulated data (no LAVA results), without scanpy's kNN graph (``obsp``, ``uns["neighbors"]``) to
    keep it small: run ``sc.pp.neighbors`` if you need it. It was written by
    ``data/make_kidney_atlas.py`` and is installed with the package
    (``lava_sc/_data/kidney_atlas.h5ad``); in a source checkout it is read from ``data/kidney_atlas.h5ad``.

    Examples
    --------
    >>> import lava_sc as lv
    >>> adata = lv.datasets.kidney()
    >>> adata.shape
    (6000, 446)

    Returns
    -------
    :class:`~anndata.AnnData`, a fresh copy read from disk on every call.

    Raises
    ------
    FileNotFoundError
        If the shipped file is missing (e.g. an installation without package data); call
        :func:`simulate_kidney` instead, which regenerates the same data.
    """
    for path in _atlas_candidates():
        if path.is_file():
            return anndata.read_h5ad(path)
    searched = ", ".join(str(p) for p in _atlas_candidates())
    raise FileNotFoundError(
        f"The shipped kidney atlas ({_ATLAS_FILE}) was not found (looked in {searched}). "
        "Regenerate the same data with lava_sc.datasets.simulate_kidney() "
        "(or run data/make_kidney_atlas.py in a source checkout)."
    )
