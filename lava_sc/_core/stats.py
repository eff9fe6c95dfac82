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


def welch_treat(
    x: np.ndarray,
    y: np.ndarray,
    min_effect: float = 0.0,
    *,
    n_eff: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Welch's t statistic and the two-sided p-value of H0: |mean(x) - mean(y)| <= ``min_effect``, per column.

    With ``min_effect = 0`` this is Welch's t-test. Above 0 it is TREAT (McCarthy & Smyth 2009,
    Bioinformatics 25:765) with Welch's standard error and degrees of freedom:
    ``p = P(T > (|d| - min_effect) / se) + P(T > (|d| + min_effect) / se)``, so an effect is significant
    only when it is credibly larger than ``min_effect``. Columns without variance on both sides get
    NaN (scipy would give t = inf, p = 0). ``x`` and ``y`` need at least 2 rows each.

    ``n_eff = (n_x, n_y)`` gives the effective number of independent units on each side when the rows
    are not independent (e.g. cells whose values are means over shared localities), ``1 < n <= rows``.
    With ``B`` the variance of a side's rows (``ddof=0``), its variance is then estimated as
    ``s^2 = B n / (n - 1)`` (``ddof=1`` on ``n`` units), its squared standard error as ``V = s^2 / n =
    B / (n - 1)``, ``se = sqrt(V_x + V_y)`` and the Welch–Satterthwaite degrees of freedom as
    ``(V_x + V_y)^2 / (V_x^2 / (n_x - 1) + V_y^2 / (n_y - 1))``. ``n_eff=None`` uses the numbers of rows:
    plain Welch. A side with ``n <= 1`` gives NaN.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n_x, n_y = (len(x), len(y)) if n_eff is None else (float(n_eff[0]), float(n_eff[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        b_x, b_y = x.var(axis=0), y.var(axis=0)
        v_x = b_x / (n_x - 1) if n_x > 1 else np.full(b_x.shape, np.nan)
        v_y = b_y / (n_y - 1) if n_y > 1 else np.full(b_y.shape, np.nan)
        se = np.sqrt(v_x + v_y)
        df = (v_x + v_y) ** 2 / (v_x**2 / (n_x - 1) + v_y**2 / (n_y - 1))
        d = x.mean(axis=0) - y.mean(axis=0)
        statistic = d / se
        pvalue = np.minimum(
            stats.t.sf((np.abs(d) - min_effect) / se, df) + stats.t.sf((np.abs(d) + min_effect) / se, df), 1.0
        )
    flat = (b_x == 0) & (b_y == 0)
    statistic[flat], pvalue[flat] = np.nan, np.nan
    return statistic, pvalue
