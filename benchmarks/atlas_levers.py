"""Which lever does what on the realistic atlas: the defaults against each of their parts switched off,
and against the previous defaults with the usual per-dataset knobs (smaller localities, partial_out).

    python -m benchmarks.run --only atlas_levers                           # seeds 0-2 at programme 1.0, state 0.25
    python -m benchmarks.run --only atlas_levers --atlas-levers-seeds 0    # one seed

Rows go to ``atlas_levers.json`` in ``--out`` (default ``benchmarks/results``) and the table to stdout
(``--render``: the table from that JSON, nothing run). No ``--quick``: one seed is the short run.
"""

from __future__ import annotations

import argparse
import json
import time

from ._common import ints, write_json_atomic

OLD = {"remove_dense": False, "fdr_scope": "locality", "robust": False}
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
    "defaults without the leave-one-out statistic (robust=False)": ({}, {"robust": False}, {}),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("atlas_levers")
    g.add_argument("--atlas-levers-seeds", type=ints, default=[0, 1, 2], help="simulate_atlas random_states (0,1,2)")


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.quick and "atlas_levers" in args.parts:
        parser.error("--quick: atlas_levers has no smoke run; one seed (--atlas-levers-seeds 0) is the short run")


def markdown(rows: list[dict]) -> str:
    """Mean over seeds per variant (± the sd of the mean Jaccard)."""
    import pandas as pd

    lines = [
        "| lever | mean Jaccard | unmatched | modules | mean AUROC (found) | median / max size | s |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, g in pd.DataFrame(rows).groupby("variant", sort=False):
        lines.append(
            f"| {name} | {g.mean_jaccard.mean():.2f} ± {g.mean_jaccard.std():.2f} | {g.n_unmatched.mean():.1f} | "
            f"{g.n_modules.mean():.1f} | {g.mean_auroc.mean():.2f} | {g.median_module_size.mean():.0f} / "
            f"{g.max_module_size.mean():.0f} | {g.seconds.mean():.1f} |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    out = args.out / "atlas_levers.json"
    if args.render:
        print(markdown(json.loads(out.read_text())))
        return 0
    import scanpy as sc

    import lava_sc as lv

    sc.settings.verbosity = 0
    rows = []
    for seed in args.atlas_levers_seeds:
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
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, rows)
    print(markdown(rows))
    return 0
