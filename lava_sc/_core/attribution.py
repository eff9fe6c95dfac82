"""Gradient attribution of a representation to its input genes (no AnnData in here).

Two explanation targets, both scalar functions of a cell's representation ``z = f(x)``:

* :class:`CorpusSimilarity` (COCOA, Lin et al., ICLR 2023): the contrastive corpus similarity
  ``t(z) = mean_c cos(z, f(c)) - mean_k cos(z, f(k))`` over a corpus ``c`` and a foil ``k``. Because
  ``cos(z, r) = z . (r / |r|) / |z|``, it equals ``z . v / |z|`` with ``v`` the mean unit corpus
  representation minus the mean unit foil representation, so value and gradient cost ``O(d)``.
* :class:`SelfInnerProduct` (label-free feature importance, Crabbé & van der Schaar, ICML 2022):
  ``g_x(z) = <f(x), z>`` with ``f(x)`` of the explained cell held fixed.

Attribution methods: integrated gradients (straight path from a baseline, midpoint Riemann sum;
completeness: attributions sum to ``target(x) - target(baseline)`` up to the quadrature error) and
gradient x input (``(x - baseline) * grad target(x)``).

Gradients are exact for a :class:`LinearEncoder` (``f(x) = (x - centre) @ W``, e.g. a PCA): the
gradient with respect to ``x`` is ``W @ grad_z t``, and along the integrated-gradients path
``z`` moves on a straight line from ``f(baseline)`` to ``f(x)``, so the whole path is computed in
representation space. Any other encoder (a callable) is differentiated by central finite
differences, two encoder evaluations per (point, gene): see :func:`fd_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .gradients import check_method, midpoints, path_attribution

#: norms below this count as zero when normalising (as torch's ``cosine_similarity`` eps)
EPS = 1e-8

#: elements (float64) of one batch of perturbed inputs in :func:`fd_gradient` (32 MiB)
MAX_ELEMENTS = 2**22


# --------------------------------------------------------------------------------------------
# encoders


class LinearEncoder:
    """``f(X) = (X[:, genes] - centre) @ weights``: a PCA projection (or any linear map).

    Parameters
    ----------
    weights
        ``genes x d`` loadings of the genes the encoder reads (``varm["PCs"]`` rows).
    centre
        ``genes`` values subtracted first (the gene means of a centred PCA; zeros otherwise).
    genes
        Column indices (into the full expression matrix) of the genes the encoder reads; ``None``:
        all columns, in order.
    n_features
        Number of columns of the full expression matrix.
    """

    linear = True

    def __init__(self, weights: np.ndarray, centre: np.ndarray, genes: np.ndarray | None = None, n_features=None):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.centre = np.asarray(centre, dtype=np.float64).ravel()
        if self.weights.ndim != 2 or self.centre.shape[0] != self.weights.shape[0]:
            raise ValueError(
                f"weights must be genes x d and centre one value per gene; got {self.weights.shape}, {self.centre.shape}."
            )
        n = self.weights.shape[0]
        self.genes = np.arange(n) if genes is None else np.asarray(genes, dtype=np.int64)
        self.n_features = n if n_features is None else int(n_features)
        full = np.zeros((self.n_features, self.weights.shape[1]))
        full[self.genes] = self.weights
        self.full_weights = full  # n_features x d, zero rows for genes the encoder does not read

    @property
    def n_components(self) -> int:
        return self.weights.shape[1]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return (X[:, self.genes] - self.centre) @ self.weights


class CallableEncoder:
    """A user function ``cells x genes -> cells x d``, called on float64 arrays and checked."""

    linear = False

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], n_features: int):
        if not callable(function):
            raise TypeError(f"`encoder` must be 'pca' or a callable, got {function!r}.")
        self.function = function
        self.n_features = int(n_features)
        self.name = getattr(function, "__name__", type(function).__name__)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        out = self.function(X)
        out = np.asarray(out, dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != X.shape[0]:
            raise ValueError(
                f"`encoder` must map a cells x genes array to a cells x dimensions array; for {X.shape[0]} cells "
                f"it returned shape {out.shape}."
            )
        if not np.isfinite(out).all():
            raise ValueError(
                "`encoder` returned NaN or inf (possibly at the perturbed or baseline inputs of the attribution); "
                "make it finite on the whole path from the baseline to the cells."
            )
        return out


def encode(encoder, X: np.ndarray, *, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """``encoder(X)`` in row batches of at most ``max_elements`` input values."""
    X = np.atleast_2d(X)
    step = max(1, max_elements // max(1, X.shape[1]))
    if X.shape[0] <= step:
        return encoder(X)
    return np.vstack([encoder(X[s : s + step]) for s in range(0, X.shape[0], step)])


# --------------------------------------------------------------------------------------------
# targets


def unit_rows(Z: np.ndarray) -> np.ndarray:
    """Rows divided by their norms (rows of norm below :data:`EPS` become ``row / EPS``)."""
    Z = np.asarray(Z, dtype=np.float64)
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), EPS)


class CorpusSimilarity:
    """Contrastive corpus similarity ``t(z) = mean cos(z, corpus) - mean cos(z, foil)``.

    ``corpus`` and ``foil`` are the representations (``n x d``) of the corpus and foil cells, fixed.
    The same target serves every explained cell (``rows`` are ignored).
    """

    linear = False

    def __init__(self, corpus: np.ndarray, foil: np.ndarray):
        corpus = np.atleast_2d(np.asarray(corpus, dtype=np.float64))
        foil = np.atleast_2d(np.asarray(foil, dtype=np.float64))
        if corpus.shape[0] == 0 or foil.shape[0] == 0:
            raise ValueError("The corpus and the foil must each have at least one representation.")
        self.direction = unit_rows(corpus).mean(axis=0) - unit_rows(foil).mean(axis=0)

    def value(self, Z: np.ndarray, rows=None) -> np.ndarray:
        Z = np.atleast_2d(Z)
        return (Z @ self.direction) / np.maximum(np.linalg.norm(Z, axis=1), EPS)

    def grad(self, Z: np.ndarray, rows=None) -> np.ndarray:
        """``(v - (z . v) z / |z|^2) / |z|``, one row per row of ``Z``."""
        Z = np.atleast_2d(Z)
        norm = np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), EPS)
        proj = (Z @ self.direction)[:, None] / norm**2
        return (self.direction[None, :] - proj * Z) / norm


class SelfInnerProduct:
    """Label-free target of explained cell ``i``: ``g_i(z) = <anchors[i], z>`` (anchors = ``f(x_i)``, fixed)."""

    linear = True

    def __init__(self, anchors: np.ndarray):
        self.anchors = np.atleast_2d(np.asarray(anchors, dtype=np.float64))

    def value(self, Z: np.ndarray, rows) -> np.ndarray:
        return np.einsum("ij,ij->i", self.anchors[np.asarray(rows)], np.atleast_2d(Z))

    def grad(self, Z: np.ndarray, rows) -> np.ndarray:
        return self.anchors[np.asarray(rows)].copy()


# --------------------------------------------------------------------------------------------
# gradients


def linear_gradient(encoder: LinearEncoder, target, points: np.ndarray, rows, genes: np.ndarray) -> np.ndarray:
    """Exact gradient of ``target(encoder(x))`` at each row of ``points`` for the columns ``genes``."""
    gz = target.grad(encoder(points), rows)
    return gz @ encoder.full_weights[np.asarray(genes)].T


def fd_gradient(
    encoder,
    target,
    points: np.ndarray,
    rows,
    genes: np.ndarray,
    *,
    step: float = 1e-4,
    max_elements: int = MAX_ELEMENTS,
) -> np.ndarray:
    """Central finite-difference gradient of ``target(encoder(x))`` at each row of ``points``.

    For every point and every gene ``j`` of ``genes`` the encoder is evaluated at
    ``x +/- h e_j`` with ``h = step * (1 + |x_j|)``: ``2 * len(points) * len(genes)`` encoder rows in
    all, batched so that one batch holds at most ``max_elements`` input values. The error is
    ``O(h^2)`` plus the encoder's rounding error divided by ``h`` (so the encoder should compute
    in float64).
    """
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    genes = np.asarray(genes, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64) if rows is not None else np.zeros(len(points), np.int64)
    n, n_features = points.shape
    g = len(genes)
    out = np.empty((n, g))
    units = n * g  # one unit = (point, gene): two perturbed inputs
    per_batch = max(1, max_elements // (2 * n_features))
    for s in range(0, units, per_batch):
        u = np.arange(s, min(units, s + per_batch))
        p, j = np.divmod(u, g)
        base = points[p]
        col = genes[j]
        x0 = base[np.arange(len(u)), col]
        h = step * (1.0 + np.abs(x0))
        plus, minus = base.copy(), base
        plus[np.arange(len(u)), col] = x0 + h
        minus[np.arange(len(u)), col] = x0 - h
        width = (x0 + h) - (x0 - h)  # the step actually taken in floating point
        z = encoder(np.vstack([plus, minus]))
        v = target.value(z, np.concatenate([rows[p], rows[p]]))
        out[p, j] = (v[: len(u)] - v[len(u) :]) / width
    return out


# --------------------------------------------------------------------------------------------
# attribution methods


def attribute(
    encoder,
    target,
    X: np.ndarray,
    baseline: np.ndarray,
    rows,
    genes: np.ndarray,
    *,
    method: str = "integrated_gradients",
    n_steps: int = 32,
    step: float = 1e-4,
    max_elements: int = MAX_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attributions of ``target(encoder(.))`` for each row of ``X`` (cells x all genes) to ``genes``.

    Parameters
    ----------
    encoder
        A :class:`LinearEncoder` (exact gradients) or a :class:`CallableEncoder` (finite differences).
    target
        A target with ``value(Z, rows)`` and ``grad(Z, rows)`` (:class:`CorpusSimilarity`,
        :class:`SelfInnerProduct`).
    X
        Explained cells x all genes (float64).
    baseline
        One value per gene (all genes).
    rows
        Index of each explained cell into the target's per-cell parameters.
    genes
        Column indices of the genes to attribute. With integrated gradients the path still moves
        every gene from the baseline to ``x``; only these genes' partial derivatives are computed.
    method
        ``"integrated_gradients"`` or ``"gradient_x_input"``.
    n_steps
        Midpoint-rule steps of the integrated-gradients path.

    Returns
    -------
    ``(attributions, target(x), target(baseline))``: cells x genes, and one value per cell each.
    """
    check_method(method)
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    baseline = np.asarray(baseline, dtype=np.float64).ravel()
    genes = np.asarray(genes, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    delta = X[:, genes] - baseline[genes]
    zx = encode(encoder, X, max_elements=max_elements)
    zb = encoder(baseline[None, :])
    t_x = target.value(zx, rows)
    t_b = target.value(np.repeat(zb, len(X), axis=0), rows)

    if encoder.linear:  # exact: the path is a straight line in representation space too
        if method == "gradient_x_input" or target.linear:
            gz = target.grad(zx, rows)
        else:
            gz = np.zeros_like(zx)
            for a in midpoints(n_steps):
                gz += target.grad(zb + a * (zx - zb), rows)
            gz /= n_steps
        return delta * (gz @ encoder.full_weights[genes].T), t_x, t_b

    def grad(points):
        return fd_gradient(encoder, target, points, rows, genes, step=step, max_elements=max_elements)

    return path_attribution(grad, X, baseline, method=method, n_steps=n_steps, columns=genes), t_x, t_b
