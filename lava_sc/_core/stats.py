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


def welch_treat(x: np.ndarray, y: np.ndarray, min_effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Welch's t statistic and the two-sided p-value of H0: |mean(x) - mean(y)| <= ``min_effect``, per column.

    With ``min_effect = 0`` this is Welch's t-test. Above 0 it is TREAT (McCarthy & Smyth 2009,
    Bioinformatics 25:765) with Welch's standard error and degrees of freedom:
    ``p = P(T > (|d| - min_effect) / se) + P(T > (|d| + min_effect) / se)``, so an effect is significant
    only when it is credibly larger than ``min_effect``. Columns without variance on both sides get
    NaN (scipy would give t = inf, p = 0). ``x`` and ``y`` need at least 2 rows each.
    """
    res = stats.ttest_ind(x, y, axis=0, equal_var=False)
    statistic, pvalue = np.asarray(res.statistic, float), np.asarray(res.pvalue, float)
    if min_effect > 0:
        vx, vy = x.var(axis=0, ddof=1) / len(x), y.var(axis=0, ddof=1) / len(y)
        se = np.sqrt(vx + vy)
        df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
        d = np.abs(x.mean(axis=0) - y.mean(axis=0))
        pvalue = np.minimum(stats.t.sf((d - min_effect) / se, df) + stats.t.sf((d + min_effect) / se, df), 1.0)
    flat = (x.var(axis=0) == 0) & (y.var(axis=0) == 0)
    statistic[flat], pvalue[flat] = np.nan, np.nan
    return statistic, pvalue
