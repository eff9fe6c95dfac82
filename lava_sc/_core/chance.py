"""How often a gene pair recurs across localities by chance: the ``min_support="auto"`` threshold.

A pair found significant in ``s`` localities (its support) is a candidate module pair only if
chance alone gives few of the pairs kept that much support. Chance discoveries
are not spread evenly over the pairs, and they are not independent across localities:

* **genes differ**: a well-expressed gene is tested with power in every locality, a gene detected
  in 2% of cells almost never; the pairs of two well-expressed genes collect chance discoveries
  several times as often as the average pair;
* **localities overlap**: a cell lies in about ``overlap`` localities (and in more with several
  placements), so a chance correlation among some cells shows in neighbouring localities together.

So the chance support of pair ``(a, b)`` is modelled as negative binomial with mean
``mu_ab = c * w_a * w_b`` and size ``k``:

    P(S_ab = s) = Gamma(s + k) / (Gamma(k) s!) * (k / (k + mu_ab))^k * (mu_ab / (k + mu_ab))^s,

where ``w_g`` is the total support of gene ``g``'s chance pairs (those below the current
threshold: programme pairs recur far above it, so they do not inflate their genes' rate). ``c``
and ``k`` are fitted so that the model reproduces the number of tested pairs found in no locality
and in exactly one, among the pairs below the threshold (``k -> infinity`` is the Poisson limit;
``k >= 1``, see :data:`SIZE_GRID`).
The threshold is the smallest ``s >= 2`` at which the expected number of chance pairs with support
``>= s``, ``sum_ab P(S_ab >= s)``, is at most :data:`RECURRENCE_FDR` of the pairs kept there (an
FDR on recurrence: at a few hundred localities the real pairs far outnumber the chance ones and 2
stays; at tens of thousands the chance tail is long). Threshold and fit are iterated until the
threshold stops rising, starting from the uniform Poisson rate (every pair at the rate of single
discoveries, :func:`uniform_chance_support`, the rule before this model), and stop early when a
refit predicts more chance pairs above the threshold than there are pairs: then the pairs below
it were not mostly chance (dense co-variation recurring at every support) and the fit is not
trusted further.

On a million simulated cells (``simulate_planted``, 15,000 localities, 1,000 genes) the uniform rule
gave 4, which 142 pairs outside any planted programme reached; this model predicts 1,138 / 190 / 31
/ 5.0 / 0.8 such pairs at support >= 3 / 4 / 5 / 6 / 7 where 1,035 / 142 / 24 / 2 / 0 were seen, and
gives 6.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.stats import nbinom, poisson

#: the negative binomial sizes tried when fitting (log-spaced; the largest is all but Poisson). Sizes
#: below 1 (variance above mu + mu^2: mostly zero, rarely large) are what regional co-variation
#: looks like, not overlapping localities sharing chance; fitted to it, the tail would swallow the
#: programmes (measured: 1M cells fit k 10, 75,000 stacked localities 6, MNIST 0.4-0.7)
SIZE_GRID = np.geomspace(1.0, 1e4, 60)
#: gene rates, and products of them, closer than this (relative) share one term of the fit
RATE_BIN = 0.005
#: the expected share of chance pairs among the pairs kept, at most
RECURRENCE_FDR = 0.05
#: rounds of refitting the rates below the threshold found (it settles in two or three)
MAX_ROUNDS = 10
#: thresholds are not searched past this support
MAX_SUPPORT = 100_000


def chance_support(support: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, n_genes: int) -> int:
    """The smallest support ``s >= 2`` at which chance pairs (of the ``G (G - 1) / 2`` tested) are
    expected to be at most :data:`RECURRENCE_FDR` of the pairs kept, under the negative binomial
    model of this module's docstring.

    Parameters
    ----------
    support
        Support of each pair in the sketch (localities in which it is significant; 0 for a pair that
        is kept in the table but does not count, such as one outside the placement majority).
    gene_a, gene_b
        The pairs' gene indices, in ``[0, n_genes)``.
    n_genes
        Number of tested genes ``G``.
    """
    support = np.asarray(support, dtype=np.int64)
    gene_a, gene_b = np.asarray(gene_a, dtype=np.int64), np.asarray(gene_b, dtype=np.int64)
    n_pairs = n_genes * (n_genes - 1) / 2.0
    n_once = float(np.sum(support == 1))
    n_never = n_pairs - float(np.sum(support >= 1))
    if n_once == 0 or n_pairs < 2:
        return 2
    kept_at = np.bincount(support, minlength=2)[::-1].cumsum()[::-1]  # pairs with support >= s, by s
    threshold = uniform_chance_support(n_once, n_pairs)
    for _ in range(MAX_ROUNDS):
        kept = float(kept_at[threshold]) if threshold < len(kept_at) else 0.0
        rates, counts = pair_rate_groups(support, gene_a, gene_b, n_genes, below=threshold)
        counts *= (n_pairs - kept) / n_pairs  # the pairs kept are not modelled as chance
        scale, size = fit_rate_scale_and_size(rates, counts, n_never, n_once)
        means = scale * rates
        if expected_from(threshold, means, counts, size) > kept:
            break  # more chance pairs predicted than seen: the fit took in real recurrence; stop here
        new = smallest_rare_support(means, counts, size, kept_at)
        if new <= threshold:
            break
        threshold = new
    return threshold


def uniform_chance_support(n_once: float, n_pairs: float) -> int:
    """Smallest ``s >= 2`` with ``N P(Poisson(lam) >= s) < 1``, ``lam = n_once / N``: every pair at the
    rate of single discoveries (the starting point of :func:`chance_support`)."""
    lam = n_once / n_pairs
    s = 2
    while n_pairs * poisson.sf(s - 1, lam) >= 1.0 and s < MAX_SUPPORT:
        s += 1
    return s


def pair_rate_groups(support, gene_a, gene_b, n_genes: int, *, below: int) -> tuple[np.ndarray, np.ndarray]:
    """Products ``w_a w_b`` over all gene pairs, grouped: (products, number of pairs each).

    ``w_g`` sums the support of gene ``g``'s pairs with support under ``below``. Genes with ``w``
    within :data:`RATE_BIN` of each other form one group (at their mean ``w``), and products within
    :data:`RATE_BIN` are pooled, so the fit costs a few thousand terms however many genes there are.
    """
    chance = (support > 0) & (support < below)
    w = np.bincount(gene_a[chance], support[chance], minlength=n_genes)
    w = (w + np.bincount(gene_b[chance], support[chance], minlength=n_genes)).astype(np.float64)
    values, genes_with = pooled(w, np.ones(n_genes))
    products = np.outer(values, values)
    n_with = np.outer(genes_with, genes_with)
    np.fill_diagonal(n_with, genes_with * (genes_with - 1) / 2.0)  # pairs within one group
    upper = np.triu_indices(len(values))
    return pooled(products[upper], n_with[upper])


def pooled(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values within :data:`RATE_BIN` (relative) of each other merged: (weighted means, total weights).
    Zeros stay apart; empty bins are dropped."""
    zero = values <= 0
    bins = np.zeros(len(values), dtype=np.int64)  # bin 0: the zeros
    if (~zero).any():
        log_bin = np.floor(np.log(values[~zero]) / np.log1p(RATE_BIN)).astype(np.int64)
        bins[~zero] = 1 + log_bin - log_bin.min()
    total_weight = np.bincount(bins, weights)
    total = np.bincount(bins, weights * values)
    used = total_weight > 0
    return total[used] / total_weight[used], total_weight[used]


def fit_rate_scale_and_size(rates, counts, n_never: float, n_once: float) -> tuple[float, float]:
    """``(c, k)``: for each size ``k`` of :data:`SIZE_GRID`, the ``c`` at which the expected number of
    pairs with support 0 is ``n_never``; then the ``k`` whose expected number with support 1 is
    nearest ``n_once`` (on a log scale). Sizes at which no ``c`` gives so few zeros are skipped."""
    c_max = 1e6 / max(float(rates.max()), 1.0)
    best = None
    for size in SIZE_GRID:
        if expected_at(0, c_max * rates, counts, size) > n_never:
            continue
        scale = brentq(lambda c, k=size: expected_at(0, c * rates, counts, k) - n_never, 0.0, c_max, rtol=1e-10)
        miss = abs(np.log(max(expected_at(1, scale * rates, counts, size), 1e-300) / n_once))
        if best is None or miss < best[0]:
            best = (miss, scale, size)
    if best is None:  # nothing fits so few unfound pairs: the most dispersed size, at the largest scale
        return c_max, float(SIZE_GRID[0])
    return best[1], float(best[2])


def expected_at(s: int, means: np.ndarray, counts: np.ndarray, size: float) -> float:
    """Expected number of pairs with support exactly ``s``: ``sum counts * NB(s; mean, size)``."""
    return float(np.sum(counts * nbinom.pmf(s, size, size / (size + means))))


def expected_from(s: int, means: np.ndarray, counts: np.ndarray, size: float) -> float:
    """Expected number of chance pairs with support ``>= s``: ``sum counts * P(NB(mean, size) >= s)``."""
    return float(np.sum(counts * nbinom.sf(s - 1, size, size / (size + means))))


def smallest_rare_support(means: np.ndarray, counts: np.ndarray, size: float, kept_at: np.ndarray) -> int:
    """Smallest ``s >= 2`` at which the expected number of chance pairs with support ``>= s``,
    ``sum counts * P(NB(mean, size) >= s)``, is at most :data:`RECURRENCE_FDR` of the pairs kept there
    (``kept_at[s]``, at least 1)."""
    s = 2
    while s < MAX_SUPPORT:
        kept = float(kept_at[s]) if s < len(kept_at) else 0.0
        if expected_from(s, means, counts, size) <= RECURRENCE_FDR * max(kept, 1.0):
            break
        s += 1
    return s
