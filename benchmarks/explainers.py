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
    mean,
    now,
    quiet,
    rewrite_section,
    sd,
    write_json_atomic,
    write_text_atomic,
)

METHODS = ("LAVA", "Hotspot", "COCOA", "label-free", "DAC")
START = "<!-- explainers:start -->"
END = "<!-- explainers:end -->"
#: Hotspot settings, as in the speed suite's comparison (``speed.py``; see README §1)
HOTSPOT_PARAMS = {"jobs": 1, "genes": "all", "min_gene_threshold": 10, "approx_neighbors": False}
#: a planted program counts as recovered when the gene score is at least this
RECOVERED = 0.5
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


# ------------------------------------------------------------------------------------------- report


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    programs = list(dict.fromkeys(r["program"] for r in rows))
    for method in METHODS:
        for p in programs:
            sel = [r for r in rows if r["method"] == method and r["program"] == p]
            if not sel:
                continue
            entry = {
                "method": method,
                "program": p,
                "n_seeds": len(sel),
                "gene_metric": sel[0]["gene_metric"],
                "status": sel[0].get("status", "done"),
            }
            for k in ("gene_jaccard_or_precision", "gene_jaccard", "localisation_auroc", "seconds"):
                vals = [r[k] for r in sel]
                m, s = mean(vals), sd(vals)
                entry[k] = None if m is None else round(m, 4)
                entry[k + "_sd"] = None if s is None else round(s, 4)
            for k in (
                "classifier_accuracy",
                "dac_auc",
                "random_auc",
                "target_auroc",
                "other_program_hits",
                "marker_hits",
            ):
                vals = [r.get(k) for r in sel]
                if any(v is not None for v in vals):
                    entry[k] = round(mean(vals), 4)
            entry["n_matched"] = sum(1 for r in sel if r["localisation_auroc"] is not None)
            entry["n_recovered"] = sum(
                1 for r in sel if (r["gene_jaccard_or_precision"] or 0) >= RECOVERED and r.get("status") != "skipped"
            )
            out.append(entry)
    return out


def _summary_note(e: dict) -> str:
    if e.get("status") == "skipped":
        return "skipped (hotspotsc not installed or --no-hotspot)"
    m = e["method"]
    if m in ("LAVA", "Hotspot"):
        text = f"recovered (J ≥ {RECOVERED}) in {e['n_recovered']}/{e['n_seeds']} seeds"
        if e["n_matched"] < e["n_seeds"]:
            text += f"; no module shares a planted gene in {e['n_seeds'] - e['n_matched']} seed(s)"
            if e["n_matched"]:
                text += f" (AUROC over the {e['n_matched']} with one)"
        return text
    top = f"top 15 also hold {fmt(e.get('other_program_hits'), 1)} genes of other programs, {fmt(e.get('marker_hits'), 1)} markers"
    if m == "COCOA":
        return f"{top}; AUROC circular (corpus = A_p)"
    if m == "label-free":
        return f"{top}; AUROC n/a: no per-program cell output (its target's AUROC {fmt(e.get('target_auroc'))})"
    return (
        f"{top}; held-out acc {fmt(e.get('classifier_accuracy'))}, DAC AUC {fmt(e.get('dac_auc'))} "
        f"(random {fmt(e.get('random_auc'))})"
    )


def summary_table(summary: list[dict]) -> str:
    lines = [
        "| method | program | genes: Jaccard (modules) / precision@15 (attributions) | genes: Jaccard | "
        "localisation AUROC | seconds | notes |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for e in summary:
        metric = "J" if e["gene_metric"] == "jaccard" else "P"
        lines.append(
            f"| {e['method']} | {e['program']} | {metric} {fmt(e['gene_jaccard_or_precision'], 2, e['gene_jaccard_or_precision_sd'])}"
            f" | {fmt(e['gene_jaccard'])} | {fmt(e['localisation_auroc'], 2, e['localisation_auroc_sd'])}"
            f" | {fmt(e['seconds'], 1)} | {_summary_note(e)} |"
        )
    return "\n".join(lines)


def tidy_table(rows: list[dict]) -> str:
    lines = [
        "| method | program | seed | gene_jaccard_or_precision | localisation_auroc | seconds | notes |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        score = fmt(r["gene_jaccard_or_precision"], 3)
        if r["gene_jaccard_or_precision"] is not None:
            score = ("J " if r["gene_metric"] == "jaccard" else "P ") + score
        lines.append(
            f"| {r['method']} | {r['program']} | {r['seed']} | {score} | {fmt(r['localisation_auroc'], 3)} | "
            f"{fmt(r['seconds'], 2)} | {r['notes']} |"
        )
    return "\n".join(lines)


def per_method_seconds(rows: list[dict]) -> dict:
    """Seconds per method and seed (LAVA, Hotspot, label-free: one run covers all programs)."""
    out = {}
    for method in METHODS:
        per_seed = {}
        for r in rows:
            if r["method"] != method or r["seconds"] is None:
                continue
            if method in ("LAVA", "Hotspot", "label-free"):
                per_seed[r["seed"]] = r["seconds"]
            else:
                per_seed[r["seed"]] = per_seed.get(r["seed"], 0.0) + r["seconds"]
        if per_seed:
            out[method] = round(mean(list(per_seed.values())), 3)
    return out


def interpretation(summary: list[dict]) -> list[str]:
    """Sentences computed from the numbers (no claim that the table does not show)."""
    by = {(e["method"], e["program"]): e for e in summary}
    programs = list(dict.fromkeys(e["program"] for e in summary))
    out = []
    for method in METHODS:
        es = [by[(method, p)] for p in programs if (method, p) in by]
        if not es or es[0].get("status") == "skipped":
            continue
        hit = [e["program"] for e in es if (e["gene_jaccard_or_precision"] or 0) >= RECOVERED]
        metric = "best-module Jaccard" if es[0]["gene_metric"] == "jaccard" else "top-15 precision"
        loc = [e["localisation_auroc"] for e in es if e["localisation_auroc"] is not None]
        text = f"**{method}**: mean {metric} ≥ {RECOVERED} for {len(hit)}/{len(es)} programs" + (
            f" ({', '.join(hit)})" if hit else ""
        )
        if loc:
            span = f"{min(loc):.2f}" if f"{min(loc):.2f}" == f"{max(loc):.2f}" else f"{min(loc):.2f}–{max(loc):.2f}"
            text += f"; localisation AUROC {span}"
            if method == "COCOA":
                text += " (circular: the corpus is A_p)"
            elif len(loc) < len(es):
                text += f" (for the {len(loc)} program(s) with a matching module)"
        out.append(text + ".")
    return out


def markdown(result: dict, *, for_readme: bool) -> str:
    meta = result["meta"]
    cfg = meta["config"]
    secs = per_method_seconds(result["rows"])
    lines = [
        "## Planted programs: LAVA vs Hotspot vs attribution methods",
        "",
        f"- **Run**: `{meta['command']}` — {meta['started']} → {meta['finished']}, lava_sc at "
        f"`{meta['lava_sc_revision']}`",
        f"- **Data**: `simulate_planted(n_cells={cfg['n_cells']}, random_state=seed)` for seeds "
        f"{', '.join(map(str, cfg['seeds']))} (285 genes: 25 markers, 4 planted 15-gene programs, 200 noise "
        "genes); `sc.pp.pca(adata, mask_var=None)` (all genes: the simulator flags none as highly variable).",
        f"- **Machine**: {meta['machine']['cpu_model']}, {meta['machine']['cores_usable']} usable cores; load "
        f"average {meta['load_average_start']} at start, {meta['load_average_end']} at end.",
        "- **Seconds per method and seed** (after a warm-up run of every method; LAVA, Hotspot and "
        "label-free run once per seed for all programs, COCOA and DAC once per program, summed here): "
        + ", ".join(f"{m} {s:.1f} s" if s >= 1 else f"{m} {s:.2f} s" for m, s in secs.items())
        + ".",
        "",
        "The planted programs change **only the correlation** of their genes in the active cells (same mean "
        "and variance in active and inactive cells; `gradient` alone also shifts means along T3). Methods "
        "that explain a representation built on means (COCOA and label-free on a PCA) or a mean-difference "
        "classifier (DAC) are therefore expected to miss them: their top genes are the cell-type markers "
        "and high-variance genes that the PCA / classifier is built on. The table shows that; it is a test "
        "of *what each method can see*, not a tuning contest.",
        "",
        "Why each method sees what it sees: LAVA correlates genes *within* the cells of a locality, which is "
        "where the planted latent factor lives. Hotspot's local correlation sums products of one gene in a "
        "cell and the other gene in its kNN neighbours; the planted latent factor is drawn independently "
        "per cell, so neighbours do not share it and only the `gradient` program (smooth along T3, so "
        "neighbours do share it) is visible to Hotspot; its best module there also holds T3 markers "
        "(4,000 cells, seed 0: the 15 `gradient` genes and the 5 T3 markers, Jaccard 0.75). The PCA fitted on all genes "
        "puts weight on every planted gene (their log-means vary with sd 0.9 in every cell; the noise genes "
        "have constant means), so label-free importance lists planted genes of *every* program for every "
        "program (the notes count the top genes that belong to other programs and the markers): its partial "
        "precision is not program detection. COCOA is contrastive (corpus against foil), so that shared "
        "variation cancels and its top genes are the markers of the corpus's cell type(s). `gradient` is "
        "the exception for both "
        "because it also shifts means along T3. DAC's classifier separates A_p from B by "
        "mean expression: markers when B is other cell types, noise when B is the same type (held-out "
        "accuracy ≈ 0.5; its DAC AUC is then high because the attributions explain a classifier fitted to "
        "noise on the cells it was trained on, as the tool's docstring warns).",
        "",
        "Columns: **genes** — LAVA / Hotspot (J): Jaccard index between the planted genes and the found "
        "module that matches them best; COCOA / label-free / DAC (P): precision of the method's top-15 genes "
        "(|G_p| = 15) against the planted genes; the next column is the Jaccard index for every method "
        "(for a top-15 list, J = hits / (30 − hits)). **localisation AUROC** — how well a per-cell score "
        "ranks the program's active cells A_p above all other cells: LAVA's module activity "
        "(`obsm['lava_activity']`) and Hotspot's module score for the best-matching module; COCOA's "
        "explanation target t(x) (contrastive corpus similarity) — circular, because COCOA was *given* "
        "A_p as its corpus, so a high value says the corpus is compact in PCA space, not that the genes "
        "were found; n/a where the method has no per-cell output specific to the program (label-free: its "
        "per-cell target |f(x)|² is the same for every program; DAC: its classifier is trained on the A_p "
        "labels; its held-out accuracy says whether A_p differs from B in mean expression at all — near 0.5 "
        "it does not, and the attributions explain a classifier that fits noise — and its DAC AUC can exceed "
        "1 when the first genes of a mask overshoot the query). Values are means ± sd over seeds; the "
        "**seconds** are per row (a run shared by all "
        "programs is counted in each of them). A program counts as recovered at a gene score ≥ "
        f"{RECOVERED}.",
        "",
        "Inputs given to each method: LAVA and Hotspot get only the expression and the embedding (no "
        "labels); COCOA gets A_p as corpus (foil: all other cells); label-free gets the cell types "
        "(`groupby='cell_type'`, ranking = mean group attribution over the type(s) containing A_p); DAC "
        "gets A_p as group A and as group B the other cells of the same type(s) for `shared` "
        "(disease vs control T0+T2) and `disease_T4` (disease vs control T4), the other cell types for "
        "`typeB` (all of T1) and `gradient` (all of T3). Hotspot: `_workers.hotspot_pipeline` "
        "(danb, `X_umap`, 30 neighbours, all genes, `min_gene_threshold=10`).",
        "",
        summary_table(result["summary"]),
        "",
        *[f"- {s}" for s in interpretation(result["summary"])],
    ]
    if result.get("skipped"):
        lines += ["", f"Skipped: {result['skipped']}."]
    if not for_readme:
        lines += ["", "### Every run", "", tidy_table(result["rows"])]
    else:
        lines += [
            "",
            "Per-seed rows, top genes and DAC diagnostics: `benchmarks/results/explainers.json` / "
            "`explainers.md`; rerun with `python -m benchmarks.run --only explainers --write-readme`.",
        ]
    return "\n".join(lines) + "\n"


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
