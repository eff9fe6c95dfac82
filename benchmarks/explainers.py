"""Planted-program recovery and localisation: LAVA modules vs Hotspot vs COCOA vs label-free vs DAC.

One command (about 5 minutes on 2 cores at the defaults):

    python -m benchmarks.run --only explainers [--quick] [--explainers-seeds 0,1,2] [--explainers-cells 4000]
                             [--out benchmarks/results] [--write-readme] [--no-hotspot]

(``--quick``: 800 cells, seed 0, what tests/test_explainers_benchmark.py runs; ``--render``: run nothing,
rebuild the markdown and the README section from ``--out``'s JSON.)

Data: ``lava_sc.datasets.simulate_planted(n_cells, random_state=seed)`` (25 markers, 4 planted 15-gene
programs, 200 noise genes = 285 genes) and ``sc.pp.pca(adata, mask_var=None)`` (the simulator's
``highly_variable`` flags are all False, so the PCA, the encoder of COCOA and label-free importance,
is fitted on all genes). For every planted program ``p`` with genes ``G_p`` and active cells ``A_p``
(``obs["active_<p>"]``), each method gets one gene score and one localisation score:

* LAVA (``tl.modules(adata)``, defaults) and Hotspot (``_workers.hotspot_pipeline``: danb on
  ``layers["counts"]``, ``X_umap``, 30 neighbours, local correlations of all genes, modules of >= 10
  genes, module scores): the found module with the largest gene Jaccard with ``G_p``; localisation =
  AUROC of that module's per-cell activity / score against ``A_p`` over all cells.
* COCOA (``explain.corpus_attribution``, corpus = ``A_p``, foil = all other cells, PCA encoder, integrated
  gradients): precision of the top-``|G_p|`` genes by mean attribution over the corpus (the tool's
  ranking); localisation = AUROC of the explanation target ``obs["<key>_target"]`` (contrastive corpus
  similarity) over all cells -- circular, since the corpus *is* ``A_p``.
* Label-free importance (``explain.label_free_importance(groupby="cell_type")``): top-``|G_p|`` genes of the
  mean group attribution over the cell type(s) containing ``A_p``; no program-specific per-cell output,
  so localisation is n/a (the AUROC of its per-cell target ``|f(x)|^2``, the same for every program, is
  kept in the JSON as ``target_auroc``).
* DAC (``explain.counterfactual_attribution``): group A = ``A_p``; group B = the other cells of the same cell
  type(s) when ``p`` is active in part of a type (``shared``, ``disease_T4``: disease vs control), else
  the cells of the other types (``typeB``, ``gradient``); top-``|G_p|`` genes by mean attribution ->
  precision. Its held-out classifier accuracy, DAC AUC and random-mask AUC are reported; localisation is
  n/a (the classifier is trained on ``A_p`` itself and sees only part of the cells).

Outputs ``explainers.json`` / ``explainers.md`` (``explainers_quick.*`` with ``--quick``) in ``--out``;
``--write-readme`` also rewrites the part of ``benchmarks/README.md`` between
``<!-- explainers:start -->`` and ``<!-- explainers:end -->`` (appended when missing).

This module holds the options, the data, the method runners and the run; the summary over seeds and the
markdown are in ``_explainers_report.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

from ._common import (
    best_match,
    fill_defaults,
    fmt,
    git_revision,
    ints,
    jaccard,
    load_average,
    machine_info,
    now,
    quiet,
    rewrite_section,
    write_json_atomic,
    write_text_atomic,
)
from ._explainers_report import METHODS, RECOVERED, markdown, summarise, summary_table

START = "<!-- explainers:start -->"
END = "<!-- explainers:end -->"
#: Hotspot settings, as in the speed suite's comparison (``speed.py``; see README §1)
HOTSPOT_PARAMS = {"jobs": 1, "genes": "all", "min_gene_threshold": 10, "approx_neighbors": False}
FULL = {"explainers_seeds": [0, 1, 2], "explainers_cells": 4000}
QUICK = {"explainers_seeds": [0], "explainers_cells": 800}


# ------------------------------------------------------------------------------------------- helpers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("explainers", "--quick: 800 cells, seed 0 (smoke test)")
    g.add_argument("--explainers-seeds", type=ints, help="random_state of each simulation (0,1,2)")
    g.add_argument("--explainers-cells", type=int, help="cells per simulation (4,000)")


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    fill_defaults(args, FULL, QUICK)


def auroc(score, truth) -> float | None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    ok = np.isfinite(score)
    if ok.sum() < len(score):
        score = np.where(ok, score, np.nanmin(score[ok]) if ok.any() else 0.0)
    if truth.all() or not truth.any():
        return None
    return round(float(roc_auc_score(truth, score)), 4)


def top_gene_scores(ranked, program: str, programs: dict) -> dict:
    """Precision and Jaccard of the top-|G_p| genes of a ranking against the planted genes of ``program``.

    Also counts the top genes that belong to *other* planted programs and the cell-type markers: a
    ranking that lists planted genes of every program is picking genes that are variable everywhere
    (the planted genes' log-means vary with sd 0.9 in every cell), not the program.
    """
    truth = programs[program][0]
    top = [str(g) for g in list(ranked)[: len(truth)]]
    hits = len(set(top) & set(map(str, truth)))
    others = {str(g) for q, (genes, _) in programs.items() if q != program for g in genes}
    return {
        "precision": round(hits / len(truth), 4),
        "jaccard": round(jaccard(top, truth), 4),
        "hits": hits,
        "other_program_hits": len(set(top) & others),
        "marker_hits": sum(g.startswith("mk_") for g in top),
        "top_genes": top,
    }


def hits_text(s: dict, n: int) -> str:
    return (
        f"top {n}: {s['hits']} planted genes of this program, {s['other_program_hits']} of other programs, "
        f"{s['marker_hits']} markers"
    )


def make_data(n_cells: int, seed: int):
    import scanpy as sc

    from lava_sc.datasets import simulate_planted

    adata = simulate_planted(n_cells=n_cells, random_state=seed)
    sc.pp.pca(adata, mask_var=None)  # highly_variable is all False: fit the encoder on every gene
    return adata


def warm_up(with_hotspot: bool) -> None:
    """Every method once on a small data set, so JIT compilation and first-call costs are not timed."""
    import lava_sc as lv

    from ._workers import hotspot_pipeline, warm_up_lava

    warm_up_lava()
    small = make_data(600, 1000)
    lv.explain.corpus_attribution(small, "active_typeB")
    lv.explain.label_free_importance(small, groupby="cell_type")
    small.obs["_dac"] = small.obs["cell_type"].astype(str)
    lv.explain.counterfactual_attribution(small, "_dac", group_a="T1", group_b="T0", max_cells=50)
    if with_hotspot:
        with quiet():
            hotspot_pipeline(small, HOTSPOT_PARAMS, None)


def row(method, program, seed, score, score_kind, jac, loc, seconds, notes, **extra) -> dict:
    return {
        "method": method,
        "program": program,
        "seed": seed,
        "gene_jaccard_or_precision": None if score is None else round(float(score), 4),
        "gene_metric": score_kind,
        "gene_jaccard": None if jac is None else round(float(jac), 4),
        "localisation_auroc": loc,
        "seconds": None if seconds is None else round(float(seconds), 3),
        "notes": notes,
        **extra,
    }


# ------------------------------------------------------------------------------------------- methods


def module_rows(method: str, modules: dict, programs: dict, seed: int, seconds: float, localise) -> list[dict]:
    """Rows of a module-finding method: each program's best-matching module (Jaccard) and the AUROC of
    ``localise(module, active)``, that module's per-cell score against the program's active cells."""
    rows = []
    for p, (genes, active) in programs.items():
        name, j = best_match(genes, modules)
        loc = localise(name, active) if name is not None else None
        rows.append(
            row(
                method,
                p,
                seed,
                j,
                "jaccard",
                j,
                loc,
                seconds,
                f"{len(modules)} modules; "
                + (f"best {name} ({len(modules[name])} genes)" if name else "no module shares a planted gene")
                + "; one run per seed",
                match=name,
                n_found=len(modules),
            )
        )
    return rows


def run_lava(adata, programs: dict, seed: int) -> list[dict]:
    import lava_sc as lv

    work = adata.copy()
    t0 = time.perf_counter()
    lv.tl.modules(work)
    seconds = time.perf_counter() - t0
    table = lv.get.module_genes(work)
    modules = {str(m): list(g["gene"].astype(str)) for m, g in table.groupby("module", observed=True)}
    activity = lv.get.activity(work)
    return module_rows(
        "LAVA", modules, programs, seed, seconds, lambda name, active: auroc(activity[name].to_numpy(), active)
    )


def run_hotspot(adata, programs: dict, seed: int) -> list[dict]:
    from ._workers import hotspot_pipeline

    t0 = time.perf_counter()
    with quiet():
        hs = hotspot_pipeline(adata, HOTSPOT_PARAMS, None)
    seconds = time.perf_counter() - t0
    mods = hs.modules
    modules = {f"H{m}": list(mods.index[mods == m].astype(str)) for m in sorted(set(mods)) if m != -1}
    scores = hs.module_scores

    def localise(name, active):
        col = int(name[1:])
        series = scores[col] if col in scores.columns else scores[str(col)]
        return auroc(series.reindex(adata.obs_names).to_numpy(), active)

    return module_rows("Hotspot", modules, programs, seed, seconds, localise)


def run_cocoa(adata, programs: dict, seed: int) -> list[dict]:
    import numpy as np

    import lava_sc as lv

    rows = []
    for p, (genes, active) in programs.items():
        work = adata.copy()
        t0 = time.perf_counter()
        # the tool's default: explain the corpus; its gene ranking is the mean over the corpus
        lv.explain.corpus_attribution(work, active, key_added="cocoa")
        seconds_rank = time.perf_counter() - t0
        ranked = lv.get.attribution(work, "cocoa")["gene"].astype(str)
        # the explanation target t(x) over all cells (the tool writes it only for explained cells)
        t0 = time.perf_counter()
        lv.explain.corpus_attribution(work, active, cells=np.ones(work.n_obs, dtype=bool), key_added="cocoa_all")
        seconds_all = time.perf_counter() - t0
        target = work.obs["cocoa_all_target"].to_numpy()
        s = top_gene_scores(ranked, p, programs)
        rows.append(
            row(
                "COCOA",
                p,
                seed,
                s["precision"],
                "precision@|G|",
                s["jaccard"],
                auroc(target, active),
                seconds_rank + seconds_all,
                f"corpus = A_p ({int(active.sum())} cells), foil = the rest; {hits_text(s, len(genes))}; "
                "AUROC of target t(x) (circular: the corpus is A_p)",
                seconds_corpus_only=round(seconds_rank, 3),
                other_program_hits=s["other_program_hits"],
                marker_hits=s["marker_hits"],
                top_genes=s["top_genes"],
            )
        )
    return rows


def run_label_free(adata, programs: dict, seed: int) -> list[dict]:
    import lava_sc as lv

    work = adata.copy()
    t0 = time.perf_counter()
    lv.explain.label_free_importance(work, groupby="cell_type")
    seconds = time.perf_counter() - t0
    groups = lv.get.attribution(work, "label_free", level="groups")
    groups.index = groups.index.astype(str)
    target = work.obs["label_free_target"].to_numpy()
    rows = []
    for p, (genes, active) in programs.items():
        types = sorted(set(work.obs.loc[active, "cell_type"].astype(str)))
        ranked = groups.loc[types].mean(axis=0).sort_values(ascending=False).index.astype(str)
        s = top_gene_scores(ranked, p, programs)
        rows.append(
            row(
                "label-free",
                p,
                seed,
                s["precision"],
                "precision@|G|",
                s["jaccard"],
                None,
                seconds,
                f"groups {'+'.join(types)}; {hits_text(s, len(genes))}; localisation n/a: "
                "no program-specific per-cell output (target |f(x)|^2 is the same for every program)",
                target_auroc=auroc(target, active),
                other_program_hits=s["other_program_hits"],
                marker_hits=s["marker_hits"],
                top_genes=s["top_genes"],
            )
        )
    return rows


def run_dac(adata, programs: dict, seed: int) -> list[dict]:
    import numpy as np

    import lava_sc as lv

    rows = []
    cell_type = adata.obs["cell_type"].astype(str).to_numpy()
    for p, (genes, active) in programs.items():
        types = sorted(set(cell_type[active]))
        in_types = np.isin(cell_type, types)
        partial = bool((in_types & ~active).any())  # planted in a subset of its type(s)
        b = in_types & ~active if partial else ~in_types
        work = adata.copy()
        work.obs["_dac_group"] = np.where(active, "A", np.where(b, "B", "other"))
        t0 = time.perf_counter()
        lv.explain.counterfactual_attribution(
            work, "_dac_group", group_a="A", group_b="B", cells=active | b, random_state=seed
        )
        seconds = time.perf_counter() - t0
        res = work.uns["dac"]
        ranked = lv.get.counterfactual(work)["gene"].astype(str)
        s = top_gene_scores(ranked, p, programs)
        acc, dac_auc, rnd = (float(res[k]) for k in ("classifier_accuracy", "dac_auc", "random_auc"))
        b_desc = f"other cells of {'+'.join(types)}" if partial else "other cell types"
        rows.append(
            row(
                "DAC",
                p,
                seed,
                s["precision"],
                "precision@|G|",
                s["jaccard"],
                None,
                seconds,
                f"A = A_p ({int(active.sum())}), B = {b_desc} ({int(b.sum())}); {hits_text(s, len(genes))}; "
                f"held-out acc {acc:.2f}, DAC AUC {dac_auc:.2f} vs random {rnd:.2f}; "
                "localisation n/a (classifier trained on A_p)",
                other_program_hits=s["other_program_hits"],
                marker_hits=s["marker_hits"],
                classifier_accuracy=round(acc, 4),
                dac_auc=round(dac_auc, 4),
                random_auc=round(rnd, 4),
                n_pairs=int(res["n_pairs"]),
                group_b=b_desc,
                top_genes=s["top_genes"],
            )
        )
    return rows


RUNNERS = {
    "LAVA": run_lava,
    "Hotspot": run_hotspot,
    "COCOA": run_cocoa,
    "label-free": run_label_free,
    "DAC": run_dac,
}


# ---------------------------------------------------------------------------------------------- main


def main(args: argparse.Namespace) -> int:
    """Run the comparison (or, with ``--render``, rebuild its markdown and README section from the JSON)."""
    import importlib.util

    stem = "explainers_quick" if args.quick else "explainers"
    if args.render:
        write(args, json.loads((args.out / f"{stem}.json").read_text()), stem)
        return 0

    import numpy as np
    import scanpy as sc

    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore")
    sc.settings.verbosity = 0
    with_hotspot = not args.no_hotspot and importlib.util.find_spec("hotspot") is not None
    skipped = None
    if not with_hotspot:
        skipped = "Hotspot (" + ("--no-hotspot" if args.no_hotspot else "hotspotsc not installed") + ")"
    started = now()
    load_start = load_average()
    print(f"explainers: {args.explainers_cells} cells, seeds {args.explainers_seeds}, load {load_start}", flush=True)
    t0 = time.perf_counter()
    warm_up(with_hotspot)
    print(f"  warm-up {time.perf_counter() - t0:.1f} s", flush=True)
    rows: list[dict] = []
    for seed in args.explainers_seeds:
        adata = make_data(args.explainers_cells, seed)
        programs = {
            str(p): ([str(g) for g in genes], adata.obs[f"active_{p}"].to_numpy().astype(bool))
            for p, genes in adata.uns["planted"].items()
        }
        for method in METHODS:
            load_before = load_average()
            if method == "Hotspot" and not with_hotspot:
                new = [
                    row("Hotspot", p, seed, None, "jaccard", None, None, None, f"skipped: {skipped}", status="skipped")
                    for p in programs
                ]
            else:
                new = RUNNERS[method](adata, programs, seed)
            for r in new:
                r.setdefault("status", "done")
                r["load_average_before"] = load_before
            rows += new
            line = ", ".join(
                f"{r['program']} {fmt(r['gene_jaccard_or_precision'])}/{fmt(r['localisation_auroc'])}" for r in new
            )
            print(f"  seed {seed} {method:<10} {new[0]['seconds'] or 0:7.2f} s  {line}", flush=True)
        del adata
    result = {
        "meta": {
            "command": args.command,
            "started": started,
            "finished": now(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "lava_sc_revision": git_revision(),
            "machine": machine_info(),
            "config": {
                "n_cells": args.explainers_cells,
                "seeds": args.explainers_seeds,
                "quick": args.quick,
                "hotspot": HOTSPOT_PARAMS if with_hotspot else None,
                "recovered_threshold": RECOVERED,
                "numpy": np.__version__,
            },
        },
        "columns": {
            "gene_jaccard_or_precision": "LAVA/Hotspot: Jaccard of the best-matching module with the planted "
            "genes; COCOA/label-free/DAC: precision of the top-|G_p| genes",
            "gene_jaccard": "Jaccard of the best module (LAVA/Hotspot) or of the top-|G_p| genes with G_p",
            "localisation_auroc": "AUROC over all cells of a per-cell score against obs['active_<program>']; "
            "None = not applicable",
            "seconds": "wall seconds of the call(s) that produced the row (shared runs repeat in each row)",
        },
        "skipped": skipped,
        "rows": rows,
    }
    result["summary"] = summarise(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{stem}.json", result)
    write(args, result, stem)
    return 0


def write(args: argparse.Namespace, result: dict, stem: str) -> None:
    """``<stem>.md`` in ``--out`` (every run) and, with ``--write-readme``, the README section."""
    write_text_atomic(args.out / f"{stem}.md", markdown(result, for_readme=False))
    print(summary_table(result["summary"]))
    if args.write_readme:
        rewrite_section(args.readme, markdown(result, for_readme=True), START, END)
    print(f"wrote {args.out / stem}.json/.md" + (f" and {args.readme}" if args.write_readme else ""))
