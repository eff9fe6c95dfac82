"""Seed stability: the same input under several ``random_state``s, modules matched to seed 0.

Every seed changes the probe placement, the permutation null and Leiden. For each dataset the modules
of seeds 1..S-1 are matched one-to-one to those of seed 0 (Hungarian algorithm on gene-set Jaccard,
an unmatched module counting 0; :func:`lava_sc._core.stability.match_modules`), and the matched
Jaccard is reported per seed and on average; so is the mean over every two seeds (a steadier estimate:
S(S-1)/2 comparisons instead of S-1).

    python -m benchmarks.run --only seeds             # pbmc68k_reduced and simulate_atlas, 5 seeds
    python -m benchmarks.run --only seeds --quick     # pbmc68k_reduced, 2 seeds (CI smoke run)

Results go to ``seeds.json`` in ``--out`` (default ``benchmarks/results``; ``seeds_quick.json`` with
``--quick``) and the table to stdout (``--render``: the table from that JSON, nothing run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np

from ._common import fill_defaults, machine_info, names, write_json_atomic

FULL = {"seeds_count": 5, "seeds_datasets": ["pbmc68k_reduced", "atlas"]}
QUICK = {"seeds_count": 2, "seeds_datasets": ["pbmc68k_reduced"]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("seeds", "--quick: pbmc68k_reduced with 2 seeds")
    g.add_argument("--seeds-count", type=int, help="random_states 0..N-1 (5)")
    g.add_argument("--seeds-datasets", type=names, help="comma-separated: pbmc68k_reduced, atlas (both)")


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    fill_defaults(args, FULL, QUICK)
    for name in args.seeds_datasets:
        if name not in ("pbmc68k_reduced", "atlas"):
            parser.error(f"--seeds-datasets: unknown dataset {name!r}; use pbmc68k_reduced or atlas")


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
    every_two = [match_modules(runs[i], runs[j]).mean_jaccard for i, j in itertools.combinations(range(n_seeds), 2)]
    return {
        "dataset": name,
        "n_modules": [len(r) for r in runs],
        "matched_jaccard": [m.mean_jaccard for m in matches],
        "mean_matched_jaccard": float(np.mean([m.mean_jaccard for m in matches])) if matches else 1.0,
        "all_pairs_matched_jaccard": float(np.mean(every_two)) if every_two else 1.0,
        "seconds": seconds,
        "modules_seed0": runs[0],
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| data | seeds | modules per seed | matched Jaccard to seed 0 (per seed) | mean | mean over every two seeds |",
        "|---|---:|---|---|---:|---:|",
    ]
    for r in results:
        per = ", ".join(f"{j:.2f}" for j in r["matched_jaccard"])
        every = r.get("all_pairs_matched_jaccard")  # absent in results written before it was measured
        all_pairs = "n/a" if every is None else f"{every:.2f}"
        lines.append(
            f"| {r['dataset']} | {len(r['n_modules'])} | {', '.join(map(str, r['n_modules']))} | {per} | "
            f"{r['mean_matched_jaccard']:.2f} | {all_pairs} |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    out = args.out / ("seeds_quick.json" if args.quick else "seeds.json")
    if args.render:
        print(markdown(json.loads(out.read_text())["results"]))
        return 0
    import scanpy as sc

    sc.settings.verbosity = 0
    results = [run_dataset(name, args.seeds_count) for name in args.seeds_datasets]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, {"machine": machine_info(), "seeds": args.seeds_count, "results": results})
    print(markdown(results))
    return 0
