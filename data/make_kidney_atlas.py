"""Regenerate ``data/kidney_atlas.h5ad``, the shipped copy of the SIMULATED kidney-like atlas.

Run from anywhere: ``python data/make_kidney_atlas.py``. It writes
``lava_sc.datasets.simulate_kidney()`` at its defaults (6,000 cells, real scanpy UMAP) next to this
script. The kNN graph (``obsp`` and ``uns["neighbors"]``) is dropped to keep the file small (about
6 MB at most); everything else is as the simulator returns it. The file holds no LAVA results.
Installed wheels carry it as ``lava_sc/_data/kidney_atlas.h5ad`` (see ``pyproject.toml``), and
``lava_sc.datasets.kidney()`` loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from lava_sc.datasets import simulate_kidney  # noqa: E402

OUT = Path(__file__).resolve().parent / "kidney_atlas.h5ad"
MAX_BYTES = 6 * 1024 * 1024


def main() -> None:
    adata = simulate_kidney()
    for key in list(adata.obsp):
        del adata.obsp[key]
    adata.uns.pop("neighbors", None)
    adata.write_h5ad(OUT, compression="gzip", compression_opts=9)
    size = OUT.stat().st_size
    print(f"wrote {OUT} ({adata.n_obs} cells x {adata.n_vars} genes, {size / 1e6:.2f} MB)")
    if size > MAX_BYTES:
        raise SystemExit(f"{OUT.name} is {size / 1e6:.2f} MB, over the 6 MiB budget for a shipped file.")


if __name__ == "__main__":
    main()
