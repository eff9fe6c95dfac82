"""Small statistical helpers shared by the tools (no AnnData)."""

from __future__ import annotations

import numpy as np
from scipy import special, stats


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (step-up, monotone, capped at 1) over the finite p-values; NaN elsewhere."""
    pvalues = np.asarray(pvalues, dtype=np.float64)
    q = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        q[finite] = stats.false_discovery_control(pvalues[finite], method="bh")
    return q


def variance_priors(variances: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A prior ``(s0^2, d0)`` for each sample variance from the other variances of its row (Smyth 2004).

    ``variances`` and ``df`` are ``groups x members``: ``s_ij^2`` on ``d_ij`` degrees of freedom, with
    the members of a group expected to share a variance (e.g. one module in one cell type, under each
    condition). Each is modelled as ``s_ij^2 ~ sigma_ij^2 chi^2_{d_ij} / d_ij`` with
    ``1 / sigma_ij^2 ~ chi^2_{d0} / (d0 sigma_i^2)``: the members' true variances scatter around their
    group's with ``d0`` degrees of freedom. By moments of ``e_ij = log s_ij^2 - digamma(d_ij / 2) +
    log(d_ij / 2)`` (limma's ``fitFDist``, Smyth 2004, SAGMB 3:3, on the spread within groups),
    ``trigamma(d0 / 2) = sum_ij (e_ij - ebar_i)^2 / (N - G) - mean_ij trigamma(d_ij / 2)``, over the
    ``N`` usable variances (finite, above 0, ``d > 0``) of the ``G`` groups with any; ``d0 = inf`` when
    the members spread no more than sampling explains.

    Member ``ij``'s prior leaves it out: ``log s0_ij^2 = mean_{k != j} e_ik + digamma(d0 / 2) -
    log(d0 / 2)``, and its weight ``min(d0, sum_{k != j} d_ik)`` is capped at what its group's other
    usable members know, so a member with none gets ``d0 = 0`` (no moderation) and the prior never
    outweighs the data it comes from.
    """
    variances, df = np.asarray(variances, dtype=np.float64), np.asarray(df, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        usable = np.isfinite(variances) & (variances > 0) & np.isfinite(df) & (df > 0)
        half = np.where(usable, df, 1.0) / 2
        e = np.where(usable, np.log(np.where(usable, variances, 1.0)) - special.digamma(half) + np.log(half), 0.0)
        count = usable.sum(axis=1, keepdims=True)
        d0 = _pooled_prior_df(e, half, usable, count)
        others = count - usable
        loo_mean = (e.sum(axis=1, keepdims=True) - e) / np.where(others > 0, others, 1)
        shift = 0.0 if np.isinf(d0) or d0 == 0 else special.digamma(d0 / 2) - np.log(d0 / 2)
        s0 = np.where(others > 0, np.exp(np.where(others > 0, loo_mean + shift, 0.0)), np.nan)
        known = (np.where(usable, df, 0.0)).sum(axis=1, keepdims=True) - np.where(usable, df, 0.0)
        weight = np.where(others > 0, np.minimum(d0, known), 0.0)
    return s0, weight


def _pooled_prior_df(e: np.ndarray, half: np.ndarray, usable: np.ndarray, count: np.ndarray) -> float:
    """``d0`` from the spread of the ``e`` within their groups beyond sampling's (0 when nothing to fit)."""
    n, g = int(usable.sum()), int((count > 0).sum())
    if n - g < 2:
        return 0.0
    centre = e.sum(axis=1, keepdims=True) / np.where(count > 0, count, 1)
    spread = float((np.where(usable, e - centre, 0.0) ** 2).sum() / (n - g))
    excess = spread - float(special.polygamma(1, half[usable]).mean())
    return float("inf") if excess <= 0 else 2 * _trigamma_inverse(excess)


def _trigamma_inverse(x: float) -> float:
    """``y`` with ``trigamma(y) = x`` (Newton's method from ``0.5 + 1/x``, as limma's ``trigammaInverse``)."""
    if x > 1e7:
        return 1 / np.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        step = tri * (1 - tri / x) / special.polygamma(2, y)
        y += step
        if -step / y < 1e-8:
            break
    return float(y)


def moderated(variance: np.ndarray, df: float, prior) -> tuple[np.ndarray, np.ndarray | float]:
    """Posterior variances and their degrees of freedom: ``(d0 s0^2 + d s^2) / (d0 + d)`` on ``d0 + d``.

    ``prior = (s0^2, d0)``, scalars or one per variance; ``d0 = 0`` leaves a variance as it is and
    ``d0 = inf`` gives ``s0^2`` on infinite degrees of freedom (Smyth 2004). ``prior=None``: unchanged."""
    if prior is None:
        return variance, df
    s0, d0 = (np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(variance)) for v in prior)
    with np.errstate(invalid="ignore"):
        mixed = np.where(d0 > 0, (d0 * np.where(d0 > 0, s0, 0.0) + df * variance) / (d0 + df), variance)
    return np.where(np.isinf(d0), s0, mixed), df + d0


def welch_treat(
    x: np.ndarray,
    y: np.ndarray,
    min_effect: float = 0.0,
    *,
    n_eff: tuple[float, float] | None = None,
    prior: tuple | None = None,
    max_df: np.ndarray | float | None = None,
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
    ``s^2 = B n / (n - 1)`` (``ddof=1`` on ``n`` units, ``d = n - 1`` degrees of freedom), its squared
    standard error as ``V = s^2 / n``, ``se = sqrt(V_x + V_y)`` and the Welch–Satterthwaite degrees of
    freedom as ``(V_x + V_y)^2 / (V_x^2 / d_x + V_y^2 / d_y)``. ``n_eff=None`` uses the numbers of rows:
    plain Welch. A side with ``n <= 1`` gives NaN.

    ``prior = ((s0_x^2, d0_x), (s0_y^2, d0_y))`` (scalars or one per column, e.g. from
    :func:`variance_priors`) moderates each side's variance first: ``s^2 -> (d0 s0^2 + d s^2) / (d0 + d)``
    on ``d -> d + d0`` degrees of freedom, the moderated Welch test (Smyth 2004's moderated t with a
    variance per side). A side with few units then cannot claim a tiny variance it estimated from one
    or two degrees of freedom. When the two sides' priors share data (each borrowed from the other),
    their variances are not independent and Welch–Satterthwaite would count that data twice: ``max_df``
    (scalar or one per column) caps the test's degrees of freedom at what all the data behind both
    variances hold, e.g. ``sum d`` over the conditions pooled, as a pooled-variance t-test has.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n_x, n_y = (len(x), len(y)) if n_eff is None else (float(n_eff[0]), float(n_eff[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        b_x, b_y = x.var(axis=0), y.var(axis=0)
        prior_x, prior_y = (None, None) if prior is None else prior
        v_x, d_x = _squared_error(b_x, n_x, prior_x)
        v_y, d_y = _squared_error(b_y, n_y, prior_y)
        se = np.sqrt(v_x + v_y)
        df = (v_x + v_y) ** 2 / (v_x**2 / d_x + v_y**2 / d_y)
        if max_df is not None:
            df = np.minimum(df, max_df)
        d = x.mean(axis=0) - y.mean(axis=0)
        statistic = d / se
        pvalue = np.minimum(
            stats.t.sf((np.abs(d) - min_effect) / se, df) + stats.t.sf((np.abs(d) + min_effect) / se, df), 1.0
        )
    flat = (b_x == 0) & (b_y == 0)
    statistic[flat], pvalue[flat] = np.nan, np.nan
    return statistic, pvalue


def _squared_error(spread: np.ndarray, n: float, prior) -> tuple[np.ndarray, float]:
    """A side's squared standard error ``s^2 / n`` and the degrees of freedom of ``s^2`` (NaN for ``n <= 1``)."""
    if n <= 1:
        return np.full(spread.shape, np.nan), float("nan")
    variance, df = moderated(spread * n / (n - 1), n - 1, prior)
    return variance / n, df
