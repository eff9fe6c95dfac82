"""Seed stability: the same input under several ``random_state``s, modules matched to seed 0.

Every seed changes the probe placement, the permutation null and Leiden. For each dataset the modules
of seeds 1..S-1 are matched one-to-one to those of seed 0 (Hungarian algorithm on gene-set Jaccard,
an unmatched module counting 0; :func:`lava_sc._core.stability.match_modules`), and the matched
Jaccard is reported per seed and on average.

    python benchmarks/seeds.py                  # pbmc68k_reduced and simulate_atlas, 5 seeds
    python benchmarks/seeds.py --quick          # pbmc68k_reduced, 2 seeds (CI smoke run)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="random_states 0..N-1 (default 5)")
    parser.add_argument("--datasets", default="pbmc68k_reduced,atlas", help="comma-separated: pbmc68k_reduced, atlas")
    parser.add_argument("--quick", action="store_true", help="pbmc68k_reduced with 2 seeds")
    parser.add_argument("--out", type=Path, default=RESULTS / "seeds.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.datasets = 2, "pbmc68k_reduced"
    return args


def load(name: str):
    import scanpy as sc

    import lava_sc as lv

    if name == "pbmc68k_reduced":
        return sc.datasets.pbmc68k_reduced()
    if name == "atlas":
        return lv.datasets.simulate_atlas(random_state=0)
    raise ValueError(f"unknown dataset {name!r}; use pbmc68k_reduced or atlas")


def module_sets(adata) -> dict[str, list[str]]:
    genes = adata.uns["lava"]["module_genes"]
    return {str(m): g["gene"].astype(str).tolist() for m, g in genes.groupby("module", observed=True)}


def run_dataset(name: str, n_seeds: int) -> dict:
    import lava_sc as lv
    from lava_sc._core.stability import match_modules

    data = load(name)
    runs, seconds = [], []
    for seed in range(n_seeds):
        adata = data.copy()
        start = time.perf_counter()
        lv.tl.modules(adata, random_state=seed)
        seconds.append(time.perf_counter() - start)
        runs.append(module_sets(adata))
    matches = [match_modules(runs[0], other) for other in runs[1:]]
    return {
        "dataset": name,
        "n_modules": [len(r) for r in runs],
        "matched_jaccard": [m.mean_jaccard for m in matches],
        "mean_matched_jaccard": float(np.mean([m.mean_jaccard for m in matches])) if matches else 1.0,
        "seconds": seconds,
        "modules_seed0": runs[0],
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| data | seeds | modules per seed | matched Jaccard to seed 0 (per seed) | mean |",
        "|---|---:|---|---|---:|",
    ]
    for r in results:
        per = ", ".join(f"{j:.2f}" for j in r["matched_jaccard"])
        lines.append(
            f"| {r['dataset']} | {len(r['n_modules'])} | {', '.join(map(str, r['n_modules']))} | {per} | "
            f"{r['mean_matched_jaccard']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    import scanpy as sc

    sc.settings.verbosity = 0
    args = parse_args(argv)
    results = [run_dataset(name.strip(), args.seeds) for name in args.datasets.split(",") if name.strip()]
    write_json_atomic(args.out, {"machine": machine_info(), "seeds": args.seeds, "results": results})
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
