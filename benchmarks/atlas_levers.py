"""Which lever does what on the realistic atlas: the defaults against each of their parts switched off,
and against the previous defaults with the usual per-dataset knobs (smaller localities, partial_out).

    python benchmarks/atlas_levers.py                 # seeds 0-2 at programme 1.0, state 0.25
    python benchmarks/atlas_levers.py --seeds 0       # one seed
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
OLD = {"remove_dense": False, "fdr_scope": "locality"}
OLD_MODULES = {"max_genes": None, "groupby": None}
#: name -> (tl.localities, tl.correlations, tl.modules) keyword arguments
VARIANTS = {
    "defaults": ({}, {}, {}),
    "defaults without dense removal": ({}, {"remove_dense": False}, {}),
    "defaults with per-locality FDR": ({}, {"fdr_scope": "locality"}, {}),
    "previous defaults": ({}, OLD, OLD_MODULES),
    "previous defaults, 100-cell localities": ({"n_cells": 100}, OLD, OLD_MODULES),
    "previous defaults, partial_out='X_pca'": ({}, {**OLD, "partial_out": "X_pca"}, OLD_MODULES),
    "defaults, 100-cell localities": ({"n_cells": 100}, {}, {}),
    "defaults, alternative='two-sided'": ({}, {"alternative": "two-sided"}, {}),
}


def main(argv=None) -> int:
    import scanpy as sc

    import lava_sc as lv

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="simulate_atlas random_states, comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS / "atlas_levers.json")
    args = parser.parse_args(argv)
    sc.settings.verbosity = 0
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        data = lv.datasets.simulate_atlas(random_state=seed)
        for name, (loc_kw, corr_kw, mod_kw) in VARIANTS.items():
            adata = data.copy()
            start = time.perf_counter()
            lv.tl.localities(adata, random_state=0, **loc_kw)
            lv.tl.correlations(adata, **corr_kw)
            lv.tl.modules(adata, random_state=0, **mod_kw)
            table, summary = lv.datasets.recovery(adata)
            jaccard = {f"J_{p}": j for p, j in zip(table["program"], table["jaccard"], strict=True)}
            rows.append({"variant": name, "seed": seed, "seconds": time.perf_counter() - start, **summary, **jaccard})
            print(name, seed, {k: round(v, 2) for k, v in summary.items()}, flush=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(args.out)
    df = pd.DataFrame(rows).groupby("variant", sort=False)
    print("| lever | mean Jaccard | unmatched | modules | mean AUROC (found) | median / max size | s |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, g in df:
        print(
            f"| {name} | {g.mean_jaccard.mean():.2f} ± {g.mean_jaccard.std():.2f} | {g.n_unmatched.mean():.1f} | "
            f"{g.n_modules.mean():.1f} | {g.mean_auroc.mean():.2f} | {g.median_module_size.mean():.0f} / "
            f"{g.max_module_size.mean():.0f} | {g.seconds.mean():.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
