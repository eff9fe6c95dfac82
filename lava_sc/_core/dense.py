"""Remove a locality's dense low-rank structure before its gene pairs are tested.

Real tissue has continuous within-type states that move every gene a little (cell cycle, stress,
metabolic gradients, what a UMAP lays out inside a cell type), and localities that straddle two
populations see their many marker differences as one shared direction. Either way, inside a
locality the standardised expression ``Z`` (n cells x p genes, centred, unit-norm columns) has a
few strong principal components whose gene loadings are spread over hundreds of genes. Each makes
thousands of weak, significant, recurring pairs, and the module step merges sparse programs into
modules of state genes. A gene program of tens of genes is sparse: its component loads on few genes.

The split, per locality:

1. **Significant components.** The eigenpairs ``(lambda_k, u_k)`` of ``K = Z Z^T`` above 1.1 times
   the top eigenvalue of the null's ``K_0 = Z_0 Z_0^T`` (the same genes shuffled across cells: the
   Marchenko-Pastur edge of this locality's own marginals; the margin keeps the bulk's fluctuations
   out).
2. **Program genes set aside.** Gene loadings ``v_k = Z^T u_k / sqrt(lambda_k)``; a gene whose
   leverage ``sum_k v_kj^2`` exceeds :data:`LEVERAGE_FACTOR` times the mean is concentrated in a
   few components (a program gene, or a strong marker), and is left out of step 3, so that a program
   mixed into a state component by a near-tie of eigenvalues does not make it look dense.
3. **Dense components.** The significant components of the remaining genes whose loadings have
   participation ratio ``1 / sum_j v_kj^4`` above :data:`DENSE_FRACTION` of those genes and above
   :data:`MIN_DENSE_GENES` (a component spread evenly over m genes has ratio m; a 20-gene program
   about 20).
4. **Removal.** The cell scores of the sparse significant components of step 1 are projected out of
   the dense ones (``U_d``, re-orthonormalised), so no programme direction is removed, and every gene
   (program genes too) is projected off ``U_d`` and rescaled: ``Z <- (I - U_d U_d^T) Z``. Programs independent of the state keep
   their correlation; the state's and the straddle's pairs are gone.

The null is built from the residualised ``Z`` (a permutation per locality, as before) and projected
off ``U_d`` too, so observed and null columns live in the same (n - 1 - d)-dimensional space and
the null keeps the observed statistics' spread (``1 / sqrt(n - 1 - d)``, not ``1 / sqrt(n)``).
"""

from __future__ import annotations

import numba
import numpy as np

#: a gene whose leverage in the significant components exceeds this many times the mean is set aside
LEVERAGE_FACTOR = 4.0
#: a component is dense when its participation ratio exceeds this fraction of the genes ...
DENSE_FRACTION = 0.1
#: ... and this many genes (a program of tens of genes is never dense, however few genes are tested)
MIN_DENSE_GENES = 50
#: at most this many components are examined (and removed) per locality
MAX_COMPONENTS = 10
#: a component is significant when its eigenvalue exceeds the null's top eigenvalue by this factor
EDGE_MARGIN = 1.1
#: subspace iterations of the eigen-solver (components above the edge converge in a few)
N_ITERATIONS = 5


def top_eigenpairs(k: np.ndarray, n_components: int, rng: np.random.Generator, n_iter: int = N_ITERATIONS):
    """The ``n_components`` largest eigenpairs of the symmetric PSD ``k`` by block subspace iteration.

    Returns eigenvalues (descending, float64) and orthonormal eigenvectors (columns). Exact for
    components well separated from the rest; used only for components above the null edge.
    """
    n = k.shape[0]
    b = min(n, n_components + 5)
    q = rng.standard_normal((n, b))
    return _subspace_eigenpairs(k, q, n_iter, n_components)


def top_eigenvalue(k: np.ndarray, rng: np.random.Generator, n_iter: int = 3 * N_ITERATIONS) -> float:
    """The largest eigenvalue of the symmetric PSD ``k`` by power iteration (its Rayleigh quotient)."""
    v = rng.standard_normal(k.shape[0])
    for _ in range(n_iter):
        v = k @ v
        v /= max(np.linalg.norm(v), 1e-300)
    return float(v @ k @ v)


def dense_components(z: np.ndarray, z_null: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cell scores (n x d, orthonormal) of the locality's dense significant components (d may be 0).

    ``z`` and ``z_null`` are the standardised observed and null matrices (n x p, float32). The cell
    scores of the *sparse* significant components of all genes (programmes) are projected out of the
    dense ones before they are returned, so that removing the dense part never removes a programme.
    """
    n, p = z.shape
    empty = np.zeros((n, 0))
    if n < 4 or p <= MIN_DENSE_GENES:
        return empty
    n_comp = min(MAX_COMPONENTS, n - 2)
    gram = (z @ z.T).astype(np.float64)
    edge = EDGE_MARGIN * top_eigenvalue((z_null @ z_null.T).astype(np.float64), rng)
    vals, vecs = top_eigenpairs(gram, n_comp, rng)
    significant = vals > edge
    if not significant.any():
        return empty
    vals, vecs = vals[significant], vecs[:, significant]
    loadings = _loadings(z, vecs, vals)
    sparse = vecs[:, participation(loadings) <= dense_limit(p)]
    leverage = (loadings**2).sum(axis=1)
    kept = leverage <= LEVERAGE_FACTOR * leverage.mean()
    if not kept.all():
        z_aside = z[:, ~kept]
        gram -= (z_aside @ z_aside.T).astype(np.float64)
        vals, vecs = top_eigenpairs(gram, n_comp, rng)
        significant = vals > edge * kept.mean()  # the null edge scales with the number of genes
        vals, vecs = vals[significant], vecs[:, significant]
    if not len(vals):
        return empty
    dense = vecs[:, participation(_loadings(z[:, kept], vecs, vals)) > dense_limit(int(kept.sum()))]
    if sparse.shape[1] and dense.shape[1]:
        dense = dense - sparse @ (sparse.T @ dense)
        norms = np.linalg.norm(dense, axis=0)
        dense = np.linalg.qr(dense[:, norms > 0.5])[0] if (norms > 0.5).any() else empty
    return dense


@numba.njit(cache=True, nogil=True)
def _subspace_eigenpairs(k, q, n_iter, n_components):
    """:func:`top_eigenpairs` from the start block ``q``: ``n_iter`` steps of ``q <- orth(k q)``
    (Householder QR), then Rayleigh-Ritz. Compiled: at n = 200 cells the NumPy calls' overhead was
    most of their cost."""
    for _ in range(n_iter):
        q, _ = np.linalg.qr(k @ np.ascontiguousarray(q))
    q = np.ascontiguousarray(q)
    vals, vecs = np.linalg.eigh(q.T @ (k @ q))
    order = np.argsort(vals)[::-1][:n_components]
    return vals[order], q @ np.ascontiguousarray(vecs[:, order])


def _loadings(z: np.ndarray, vecs: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Unit-norm gene loadings ``Z^T u_k / sqrt(lambda_k)`` (genes x components, float64)."""
    return (z.T @ vecs.astype(np.float32)).astype(np.float64) / np.sqrt(vals)


def participation(loadings: np.ndarray) -> np.ndarray:
    """Participation ratio ``1 / sum_j v_jk^4`` of each unit-norm column: about m for m equal loadings."""
    squared = loadings * loadings
    return 1.0 / np.maximum((squared * squared).sum(axis=0), 1e-300)


def dense_limit(n_genes: int) -> float:
    """Participation ratio above which a component over ``n_genes`` genes is dense."""
    return max(DENSE_FRACTION * n_genes, MIN_DENSE_GENES)


def _project_out(z: np.ndarray, u: np.ndarray) -> None:
    """In place: ``z <- (I - u u^T) z``, then each column rescaled to unit norm (zero if it vanishes)."""
    _project_columns(z, np.asarray(u, dtype=np.float32).ravel(order="F"))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _project_columns(z, u):
    """:func:`_project_out` one column at a time (``z`` Fortran-ordered, ``u`` its n x d basis raveled
    column after column, so every inner loop runs down a contiguous column; fastmath lets the sums
    vectorise). Sums in float64."""
    n = z.shape[0]
    d = len(u) // max(n, 1)
    for j in range(z.shape[1]):
        col = z[:, j]
        for t in range(d):
            basis = u[t * n : (t + 1) * n]
            c = 0.0
            for r in range(n):
                c += np.float64(basis[r]) * col[r]
            c32 = np.float32(c)
            for r in range(n):
                col[r] -= c32 * basis[r]
        ss = 0.0
        for r in range(n):
            ss += np.float64(col[r]) * col[r]
        norm = np.sqrt(ss)
        scale = np.float32(1.0 / norm) if norm > 1e-6 else np.float32(0.0)
        for r in range(n):
            col[r] *= scale


@numba.njit(cache=True, nogil=True)
def _permute_columns(z, pi2, z_null):
    """``z_null[:, k] = z[pi2[r + k mod n], k]``: the locality's permutation null (as in the scan)."""
    n = z.shape[0]
    for k in range(z.shape[1]):
        shift = k % n
        for r in range(n):
            z_null[r, k] = z[pi2[r + shift], k]


def remove_dense(z: np.ndarray, z_null: np.ndarray, pi2: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Project the dense components out of ``z`` and rebuild ``z_null`` from it, in place.

    ``pi2`` is the locality's permutation repeated twice (see ``_write_tested``). Returns the removed
    components' cell scores (n x d, float32, orthonormal; d = 0 when none), which every further null
    copy of the locality is projected off too (:func:`null_copy`).
    """
    u = dense_components(z, z_null, rng)
    if u.shape[1] == 0:
        return np.zeros((z.shape[0], 0), dtype=np.float32)
    u = np.asarray(u, dtype=np.float32)
    _project_out(z, u)
    null_copy(z, pi2, u, z_null)
    return u


def null_copy(z: np.ndarray, pi2: np.ndarray, u: np.ndarray, z_null: np.ndarray) -> None:
    """In place: ``z_null`` <- the permutation null of ``z`` under ``pi2``, projected off ``u`` (n x d)."""
    _permute_columns(z, pi2, z_null)
    if u.shape[1]:
        _project_out(z_null, u)
