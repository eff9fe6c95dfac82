"""Path attributions of a differentiable target: integrated gradients and gradient x input.

One kernel for every explainer (COCOA, label-free importance, DAC). For a target ``f``, a query ``x``
and a baseline ``x'``:

* integrated gradients: ``a_i = (x_i - x'_i) * mean_k df/dx_i(x' + t_k (x - x'))``, with the
  midpoint nodes ``t_k = (k + 1/2) / n_steps`` (exact for a target linear in ``x``);
* gradient x input: ``a_i = (x_i - x'_i) * df/dx_i(x)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np

Method = Literal["integrated_gradients", "gradient_x_input"]
METHODS = get_args(Method)


def midpoints(n_steps: int) -> np.ndarray:
    """The ``n_steps`` midpoint-rule nodes of [0, 1]: ``(k + 0.5) / n_steps``."""
    return (np.arange(n_steps) + 0.5) / n_steps


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")


def path_attribution(
    gradient: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    baseline: np.ndarray,
    *,
    method: str = "integrated_gradients",
    n_steps: int = 32,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """Attributions of each row of ``x`` against ``baseline`` (one row, or one per row of ``x``).

    ``gradient(points)`` returns the target's partial derivatives at each row of ``points``, for the
    features ``columns`` (all features when None); the path moves every feature.
    """
    check_method(method)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    baseline = np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    delta = x - baseline
    moved = delta if columns is None else delta[:, np.asarray(columns)]
    if method == "gradient_x_input":
        return moved * gradient(x)
    total = np.zeros_like(moved)
    for t in midpoints(n_steps):
        total += gradient(baseline + t * delta)
    return moved * (total / n_steps)
