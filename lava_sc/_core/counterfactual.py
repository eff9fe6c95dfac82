"""Discriminative attribution from counterfactuals (DAC) for a linear classifier; no AnnData in here.

Eckstein et al., "Discriminative attribution from counterfactuals" (2021): a query ``x`` of class A
is explained against a counterfactual ``x'`` of class B (here a real, matched cell of the other
group). Attributions use ``x'`` as the baseline; a mask of the ``k`` most attributed features is
copied from ``x`` into ``x'`` (the *hybrid*), and the fraction of the classifier's change in
membership that the hybrid restores,

    restored = (p_A(hybrid) - p_A(x')) / (p_A(x) - p_A(x')),

traced over mask sizes gives the DAC curve; its area is the DAC score.

The classifier is a logistic regression on standardised features, ``logit(x) = w . (x - mu) / s + b``.
Everything is written in its terms, which makes the hybrids cheap: copying the genes ``S`` of ``x``
into ``x'`` moves the logit by exactly ``sum_{i in S} (x_i - x'_i) w_i / s_i``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import expit

from .gradients import path_attribution

#: attribution methods (see :func:`attribute`)

#: what is attributed: the classifier's logit for group A, or its probability
Target = Literal["logit", "probability"]
TARGETS = get_args(Target)


@dataclass(frozen=True)
class LinearClassifier:
    """A fitted logistic regression on standardised features: ``logit(x) = coef . (x - mean) / scale + intercept``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @property
    def weights(self) -> np.ndarray:
        """The gradient of the logit with respect to the raw (unstandardised) features."""
        return self.coef / self.scale

    def logit(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.weights + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of group A (class 1)."""
        return expit(self.logit(x))

    def gradient(self, x: np.ndarray, target: str = "logit") -> np.ndarray:
        """Gradient of the target with respect to the raw features, one row per row of ``x``."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        grad = np.broadcast_to(self.weights, x.shape)
        if target == "logit":
            return np.array(grad)
        p = self.proba(x)
        return (p * (1.0 - p))[:, None] * grad


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (1 for constant features, which then stay at 0)."""
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    return mean, np.where(sd > 0, sd, 1.0)


def fit_classifier(x: np.ndarray, y: np.ndarray, *, C: float = 1.0, random_state: int = 0) -> LinearClassifier:
    """L2-regularised logistic regression of ``y`` (1 = group A) on the standardised columns of ``x``.

    lbfgs runs for up to 2,000 iterations; a ``ConvergenceWarning`` is silenced and the solution used as is.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    mean, scale = standardisation(x)
    model = LogisticRegression(C=C, max_iter=2000, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the solution is still a usable classifier
        model.fit((x - mean) / scale, np.asarray(y, dtype=np.int64))
    return LinearClassifier(mean, scale, model.coef_.ravel().astype(np.float64), float(model.intercept_[0]))


def heldout_accuracy(
    x: np.ndarray, y: np.ndarray, *, C: float = 1.0, random_state: int = 0, n_splits: int = 5
) -> tuple[float, int]:
    """Stratified cross-validated accuracy (standardisation fitted inside each fold) and the folds used.

    The number of folds is ``min(n_splits, smallest class size)`` (at least 2).
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype=np.int64)
    folds = int(min(n_splits, np.bincount(y, minlength=2).min()))
    if folds < 2:
        raise ValueError("Held-out accuracy needs at least 2 cells in each group.")
    correct = 0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    for train, test in splitter.split(x, y):
        model = fit_classifier(x[train], y[train], C=C, random_state=random_state)
        correct += int(((model.logit(x[test]) > 0).astype(np.int64) == y[test]).sum())
    return correct / len(y), folds


def nearest_counterfactuals(query: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``query`` the index of its nearest row of ``pool`` (Euclidean) and the distance."""
    distance, index = cKDTree(np.asarray(pool, dtype=np.float64)).query(np.asarray(query, dtype=np.float64), k=1)
    return np.asarray(index, dtype=np.int64), np.asarray(distance, dtype=np.float64)


def attribute(
    model: LinearClassifier,
    x: np.ndarray,
    baseline: np.ndarray,
    *,
    method: str = "integrated_gradients",
    target: str = "logit",
    n_steps: int = 32,
) -> np.ndarray:
    """Per-feature attributions of ``target`` for each query row against its baseline row."""

    def grad(z):
        return model.gradient(z, target)

    return path_attribution(grad, x, baseline, method=method, n_steps=n_steps)


def hybrid(x: np.ndarray, baseline: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The counterfactual ``baseline`` with the masked features copied from the query ``x``."""
    return np.where(mask, x, baseline)


def restored(p_hybrid: np.ndarray, p_query: np.ndarray, p_counterfactual: np.ndarray) -> np.ndarray:
    """``(p(hybrid) - p(x')) / (p(x) - p(x'))``, broadcasting the per-pair ``p`` over trailing axes."""
    p_query = np.asarray(p_query, dtype=np.float64)
    p_cf = np.asarray(p_counterfactual, dtype=np.float64)
    shape = p_query.shape + (1,) * (np.ndim(p_hybrid) - p_query.ndim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_hybrid - p_cf.reshape(shape)) / (p_query - p_cf).reshape(shape)


def mask_sizes(n_features: int, n_masks: int) -> np.ndarray:
    """0, then up to ``n_masks`` distinct sizes log-spaced from 1 to ``n_features`` (both included)."""
    sizes = np.unique(np.round(np.geomspace(1, n_features, max(n_masks, 2))).astype(np.int64))
    return np.r_[0, sizes]


def mask_curve(model: LinearClassifier, x: np.ndarray, baseline: np.ndarray, order: np.ndarray, sizes: np.ndarray):
    """Restored membership of the hybrids made with the first ``k`` features of each row's ``order``.

    Returns a (pairs x len(sizes)) array. Uses the linearity of the logit: the hybrid with mask ``S``
    has ``logit(x') + sum_{i in S} (x_i - x'_i) w_i``, identical to evaluating
    ``model.proba(hybrid(x, baseline, mask))``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    baseline = np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    contrib = (x - baseline) * model.weights
    ordered = np.take_along_axis(contrib, order, axis=1)
    cum = np.concatenate([np.zeros((len(x), 1)), np.cumsum(ordered, axis=1)], axis=1)
    base_logit = model.logit(baseline)
    p_hybrid = expit(base_logit[:, None] + cum[:, sizes])
    return restored(p_hybrid, model.proba(x), model.proba(baseline))


def set_restored(model: LinearClassifier, x: np.ndarray, baseline: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Restored membership when the features of each set are copied into the counterfactual.

    ``sets`` is a boolean (features x sets) indicator; returns (pairs x sets).
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    baseline = np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    contrib = (x - baseline) * model.weights
    shift = contrib @ np.asarray(sets, dtype=np.float64)
    p_hybrid = expit(model.logit(baseline)[:, None] + shift)
    return restored(p_hybrid, model.proba(x), model.proba(baseline))


def area_under_curve(fraction: np.ndarray, value: np.ndarray) -> float:
    """Trapezoid area under ``value`` over ``fraction`` (the mask fraction, from 0 to 1)."""
    fraction = np.asarray(fraction, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    return float(np.sum(np.diff(fraction) * (value[1:] + value[:-1]) / 2.0))


def random_orders(n_rows: int, n_features: int, rng: np.random.Generator) -> np.ndarray:
    """An independent random ordering of the features for each row."""
    return np.argsort(rng.random((n_rows, n_features)), axis=1, kind="stable")


def attribution_order(attributions: np.ndarray) -> np.ndarray:
    """Features of each row from the most to the least attributed (signed; ties by feature index)."""
    return np.argsort(-np.asarray(attributions, dtype=np.float64), axis=1, kind="stable")
