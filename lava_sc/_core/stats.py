"""Small statistical helpers shared by the tools (no AnnData)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (step-up, monotone, capped at 1) over the finite p-values; NaN elsewhere."""
    pvalues = np.asarray(pvalues, dtype=np.float64)
    q = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        q[finite] = stats.false_discovery_control(pvalues[finite], method="bh")
    return q
