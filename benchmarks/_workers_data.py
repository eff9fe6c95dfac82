"""Data builders of the benchmark workers (``_workers.py``): the planted simulation sized to a gene count,
its chunked variant for the scaling part, the fidelity part's embeddings, and a digest of the input.
"""

from __future__ import annotations

import hashlib

PLANTED_MODULE_SIZE = 15


def planted_data(n_cells: int, n_genes: int, random_state: int = 0):
    """``simulate_planted`` sized to ``n_genes`` genes; genes constant in the counts are dropped.

    Every gene is flagged ``highly_variable`` so LAVA tests exactly the genes Hotspot gets.
    """
    from lava_sc.datasets import simulate_planted

    n_fixed = 25 + 4 * PLANTED_MODULE_SIZE
    adata = simulate_planted(
        n_cells=n_cells,
        n_noise_genes=max(0, n_genes - n_fixed),
        module_size=PLANTED_MODULE_SIZE,
        random_state=random_state,
    )
    counts = adata.layers["counts"].tocsc()
    nonconstant = counts.max(axis=0).toarray().ravel() != counts.min(axis=0).toarray().ravel()
    if not nonconstant.all():
        adata = adata[:, nonconstant].copy()
    adata.var["highly_variable"] = True
    return adata


def fingerprint(adata) -> str:
    """A digest of the counts, genes and embedding: equal digests mean identical input."""
    h = hashlib.sha1()
    counts = adata.layers["counts"] if "counts" in adata.layers else adata.X
    for arr in (counts.indptr, counts.indices, counts.data, adata.obsm["X_umap"]):
        h.update(memoryview(arr).cast("B"))
    h.update("\n".join(adata.var_names).encode())
    return h.hexdigest()[:16]


#: values (cells x genes) simulated at a time for the scaling part: ~160 MB of float64 per chunk
SIMULATION_CHUNK_VALUES = 2e7


def chunked_planted_data(n_cells: int, n_genes: int, random_state: int = 0):
    """``simulate_planted`` with ``n_genes`` genes, drawn in chunks of cells, without a counts layer:
    at a million cells only X (float32 CSR) is held. Every gene is flagged ``highly_variable``."""
    from lava_sc.datasets import simulate_planted

    module_size = max(3, min(PLANTED_MODULE_SIZE, (n_genes - 25) // 4))
    adata = simulate_planted(
        n_cells=n_cells,
        n_noise_genes=n_genes - 25 - 4 * module_size,
        module_size=module_size,
        random_state=random_state,
        chunk_size=int(max(256, SIMULATION_CHUNK_VALUES // n_genes)),
        counts_layer=False,
    )
    adata.var["highly_variable"] = True
    return adata


def fidelity_embedding(geometry: str, n_cells: int, seed: int):
    """The 2-d embedding (float32) of the fidelity part.

    ``planted``: the planted simulator's embedding (five types x two conditions on a circle, one
    type stretched along a gradient; it does not depend on the genes, so few are simulated). ``blobs``: 12 anisotropic
    Gaussian blobs of Dirichlet-distributed sizes and random spreads, plus 5% uniform background.
    """
    import numpy as np

    if geometry == "planted":
        from lava_sc.datasets import simulate_planted

        small = simulate_planted(n_cells=n_cells, n_noise_genes=0, module_size=3, random_state=seed, counts_layer=False)
        return small.obsm["X_umap"]
    if geometry != "blobs":
        raise ValueError(f"unknown geometry {geometry!r}; use 'planted' or 'blobs'")
    rng = np.random.default_rng(seed)
    n_background = int(round(0.05 * n_cells))
    n_blobs = n_cells - n_background
    centres = rng.uniform(-20, 20, (12, 2))
    sizes = np.floor(rng.dirichlet(np.ones(12) * 2) * n_blobs).astype(int)
    sizes[: n_blobs - sizes.sum()] += 1  # the rounding remainder, one cell each to the first blobs
    parts = [
        centres[k] + rng.normal(0, rng.uniform(0.5, 3), (size, 2)) * rng.uniform(0.5, 2, 2)
        for k, size in enumerate(sizes)
    ]
    parts.append(rng.uniform(-25, 25, (n_background, 2)))
    points = np.concatenate(parts)
    return points[rng.permutation(n_cells)].astype(np.float32)
