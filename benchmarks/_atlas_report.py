"""Report of the atlas part (``atlas.py``): the grid summary over seeds, the headline sentences and the
markdown tables computed from it, and the definitions they rest on (the methods, the planted programs, and
which grid points count as detectable).
"""

from __future__ import annotations

from ._common import fmt, mean, sd

METHODS = ("LAVA", "Hotspot")
PROGRAMS = ("recurring", "signed", "straddle", "condition", "small", "gradient", "response")

#: Decided before any run, not tuned to the results: program_strength 1.0 is the simulator's nominal
#: strength (its default); weaker settings are in the grid to show how recovery degrades.
DETECTABLE_MIN_PROGRAM_STRENGTH = 1.0


def detectable(program_strength: float) -> bool:
    return program_strength >= DETECTABLE_MIN_PROGRAM_STRENGTH


# ------------------------------------------------------------------------------------------- summary


def grid_summary(runs: list[dict]) -> list[dict]:
    """Per (program_strength, state_strength, method): means (and sd of the mean Jaccard) over seeds."""
    points = list(dict.fromkeys((r["program_strength"], r["state_strength"]) for r in runs))
    out = []
    for ps, ss in points:
        for method in METHODS:
            key = method.lower()
            done = [r[key] for r in runs if (r["program_strength"], r["state_strength"]) == (ps, ss)]
            done = [d for d in done if d and d.get("status") == "done"]
            entry = {
                "program_strength": ps,
                "state_strength": ss,
                "detectable": detectable(ps),
                "method": method,
                "n_seeds": len(done),
            }
            if not done:
                out.append(entry)
                continue
            mj = [d["summary"]["mean_jaccard"] for d in done]
            entry["mean_jaccard"] = round(mean(mj), 4)
            entry["mean_jaccard_sd"] = None if sd(mj) is None else round(sd(mj), 4)
            wo = [d["mean_jaccard_without_gradient"] for d in done]
            entry["mean_jaccard_without_gradient"] = round(mean(wo), 4)
            entry["mean_jaccard_without_gradient_sd"] = None if sd(wo) is None else round(sd(wo), 4)
            for k in ("n_modules", "n_unmatched", "median_module_size", "max_module_size", "mean_auroc"):
                m = mean([d["summary"][k] for d in done])
                entry[k] = None if m is None else round(m, 4)
            entry["seconds"] = round(mean([d["seconds"] for d in done]), 3)
            per_program = {}
            for p in PROGRAMS:
                js = [row["jaccard"] for d in done for row in d["programs"] if row["program"] == p]
                au = [row["auroc"] for d in done for row in d["programs"] if row["program"] == p]
                if js:
                    per_program[p] = {
                        "jaccard": round(mean(js), 4),
                        "jaccard_sd": None if sd(js) is None else round(sd(js), 4),
                        "auroc": None if mean(au) is None else round(mean(au), 4),
                    }
            entry["programs"] = per_program
            halves = [d["signed_halves"] for d in done if d.get("signed_halves")]
            if halves:
                entry["signed_halves"] = {
                    "positive_jaccard": round(mean([h["positive"]["jaccard"] for h in halves]), 4),
                    "negative_jaccard": round(mean([h["negative"]["jaccard"] for h in halves]), 4),
                    "same_module": sum(bool(h["same_module"]) for h in halves),
                }
            out.append(entry)
    return out


def headline(summary: list[dict]) -> list[str]:
    """Sentences computed from the numbers: mean Jaccard over detectable and other grid points."""
    lines = []
    for method in METHODS:
        es = [e for e in summary if e["method"] == method and e.get("n_seeds")]
        if not es:
            continue
        parts = []
        for label, sel in (
            (
                f"detectable points (program_strength ≥ {DETECTABLE_MIN_PROGRAM_STRENGTH:g})",
                [e for e in es if e["detectable"]],
            ),
            ("the other points", [e for e in es if not e["detectable"]]),
        ):
            if sel:
                parts.append(
                    f"{label}: mean Jaccard {mean([e['mean_jaccard'] for e in sel]):.2f}"
                    f" (range {min(e['mean_jaccard'] for e in sel):.2f}–{max(e['mean_jaccard'] for e in sel):.2f}),"
                    f" `gradient` {mean([e['programs']['gradient']['jaccard'] for e in sel]):.2f},"
                    f" {mean([e['n_unmatched'] for e in sel]):.1f} unmatched modules"
                    f" over {len(sel)} point(s)"
                )
        det = [e for e in es if e["detectable"] and e.get("signed_halves")]
        if det:
            n_runs = sum(e["n_seeds"] for e in det)
            parts.append(
                f"`signed` at the detectable points: whole program {mean([e['programs']['signed']['jaccard'] for e in det]):.2f},"
                f" its halves apart + {mean([e['signed_halves']['positive_jaccard'] for e in det]):.2f} /"
                f" − {mean([e['signed_halves']['negative_jaccard'] for e in det]):.2f}, both halves in one module in"
                f" {sum(e['signed_halves']['same_module'] for e in det)}/{n_runs} runs"
            )
        lines.append(f"**{method}** — " + "; ".join(parts) + ".")
    return lines


# ------------------------------------------------------------------------------------------- markdown


def _grid_label(e: dict) -> str:
    return f"{e['program_strength']:g} | {e['state_strength']:g} | {'yes' if e['detectable'] else 'no'}"


def summary_table(summary: list[dict]) -> str:
    lines = [
        "| program strength | state strength | detectable | method | seeds | mean Jaccard | without `gradient`"
        " | unmatched modules | modules | mean AUROC | median module size | max module size | seconds |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in summary:
        if not e.get("n_seeds"):  # not run at this point (--no-hotspot, --hotspot-seeds): no row
            continue
        lines.append(
            f"| {_grid_label(e)} | {e['method']} | {e['n_seeds']} | {fmt(e['mean_jaccard'], 2, e['mean_jaccard_sd'])}"
            f" | {fmt(e['mean_jaccard_without_gradient'], 2, e['mean_jaccard_without_gradient_sd'])}"
            f" | {fmt(e['n_unmatched'], 1)} | {fmt(e['n_modules'], 1)} | {fmt(e['mean_auroc'])}"
            f" | {fmt(e['median_module_size'], 1)} | {fmt(e['max_module_size'], 1)} | {fmt(e['seconds'], 1)} |"
        )
    return "\n".join(lines)


def program_table(summary: list[dict]) -> str:
    lines = [
        "| program strength | state strength | detectable | method | "
        + " | ".join(f"`{p}`" for p in PROGRAMS)
        + " | `signed` halves (+ / −, same module) |",
        "|---:|---:|---|---|" + "---:|" * len(PROGRAMS) + "---|",
    ]
    for e in summary:
        if not e.get("n_seeds"):
            continue
        cells = [fmt(e["programs"][p]["jaccard"], 2, e["programs"][p]["jaccard_sd"]) for p in PROGRAMS]
        h = e.get("signed_halves")
        halves = (
            "–"
            if not h
            else f"{h['positive_jaccard']:.2f} / {h['negative_jaccard']:.2f}, {h['same_module']}/{e['n_seeds']}"
        )
        lines.append(f"| {_grid_label(e)} | {e['method']} | " + " | ".join(cells) + f" | {halves} |")
    return "\n".join(lines)


def head_to_head(runs: list[dict]) -> str | None:
    """Every run with Hotspot: LAVA and Hotspot on the same object in the same process."""
    lines = [
        "| program strength | state strength | seed | LAVA mean J | Hotspot mean J | LAVA modules (unmatched)"
        " | Hotspot modules (unmatched) | LAVA s | Hotspot s | Hotspot s / LAVA s | lava_sc |",
        "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|",
    ]
    n = 0
    for r in runs:
        h = r.get("hotspot") or {}
        if h.get("status") != "done":
            continue
        lava = h.get("lava_in_same_run") or r.get("lava") or {}
        if lava.get("status", "done") != "done" or not lava.get("summary"):
            continue
        a, b = lava["summary"], h["summary"]
        n += 1
        lines.append(
            f"| {r['program_strength']:g} | {r['state_strength']:g} | {r['seed']} | {a['mean_jaccard']:.2f}"
            f" | {b['mean_jaccard']:.2f} | {a['n_modules']} ({a['n_unmatched']}) | {b['n_modules']} ({b['n_unmatched']})"
            f" | {lava['seconds']:.1f} | {h['seconds']:.1f} | {h['seconds'] / max(lava['seconds'], 1e-9):.0f}×"
            f" | `{lava.get('lava_sc_revision') or r.get('lava_sc_revision')}` |"
        )
    return "\n".join(lines) if n else None


def runs_table(runs: list[dict]) -> str:
    lines = [
        "| program strength | state strength | seed | method | mean Jaccard | unmatched | modules | mean AUROC"
        " | median / max size | seconds | simulate (s) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in runs:
        for method in METHODS:
            d = r.get(method.lower()) or {}
            head = f"| {r['program_strength']:g} | {r['state_strength']:g} | {r['seed']} | {method}"
            if d.get("status") == "skipped":
                continue
            if d.get("status") != "done":
                lines.append(f"{head} | {d.get('status', '–')}: {d.get('error') or ''} |||||||")
                continue
            s = d["summary"]
            lines.append(
                f"{head} | {s['mean_jaccard']:.3f} | {s['n_unmatched']} | {s['n_modules']} | {fmt(s['mean_auroc'], 3)}"
                f" | {s['median_module_size']:g} / {s['max_module_size']} | {d['seconds']:.1f} | {r['simulate_s']:.1f} |"
            )
    return "\n".join(lines)


def code_versions(result: dict) -> str:
    """Which lava_sc each method's runs used: one revision, or per method and revision the run count."""
    counts: dict = {}
    for run in result["runs"]:
        for method in METHODS:
            d = run.get(method.lower()) or {}
            if d.get("status") == "done":
                rev = d.get("lava_sc_revision") or run.get("lava_sc_revision")
                counts.setdefault(method, {}).setdefault(rev, 0)
                counts[method][rev] += 1
    revs = {rev for per in counts.values() for rev in per}
    if len(revs) <= 1:
        return ", ".join(f"`{r}`" for r in (revs or result["meta"]["revisions"]))
    return "; ".join(
        f"{method} " + ", ".join(f"`{rev}` ({n} run{'s' if n > 1 else ''})" for rev, n in per.items())
        for method, per in counts.items()
    )


def hotspot_coverage(result: dict) -> str:
    """Where Hotspot ran: every run, or the (ps, ss, seed) it ran at."""
    done = [r for r in result["runs"] if (r.get("hotspot") or {}).get("status") == "done"]
    if not done:
        return "; **not run** here (`--no-hotspot`)"
    if len(done) == len(result["runs"]):
        return "; run on every grid point and seed"
    where = ", ".join(f"(ps {r['program_strength']:g}, ss {r['state_strength']:g}, seed {r['seed']})" for r in done)
    return f"; run only at {where} ({len(done)} of {len(result['runs'])} simulations)"


def markdown(result: dict, *, for_readme: bool) -> str:
    meta = result["meta"]
    cfg = meta["config"]
    summary = result["summary"]
    m = meta["machine"]
    ps = ", ".join(f"{x:g}" for x in cfg["program_strengths"])
    ss = ", ".join(f"{x:g}" for x in cfg["state_strengths"])
    det = [f"{x:g}" for x in cfg["program_strengths"] if detectable(x)]
    lines = [
        "## Module recovery on the simulated atlas (LAVA at defaults vs Hotspot)",
        "",
        *[f"- **Run**: `{c}`" for c in meta["commands"]],
        f"- **When / revision**: {meta['started']} → {meta['finished']}, lava_sc at "
        + code_versions(result)
        + " (`+dirty:<digest>`: the commit plus uncommitted changes in `lava_sc/`; the digest is of the"
        " files' content). The method may change: rerun before quoting these numbers.",
        f"- **Machine**: {m['cpu_model']}, {m['cores_usable']} usable cores; load average {meta['load_average_start']}"
        f" at start, {meta['load_average_end']} at end (other work shared the machine: seconds are indicative).",
        f"- **Data** (SIMULATED): `lava_sc.datasets.simulate_atlas(n_cells={cfg['cells']}, n_genes={cfg['genes']},"
        " program_strength=ps, state_strength=ss, n_state=3, n_donors=4, umap=True, random_state=seed)`"
        f" for ps ∈ {{{ps}}}, ss ∈ {{{ss}}}, seeds {', '.join(map(str, cfg['seeds']))}: six cell types (two touching"
        " pairs), a dense rank-3 within-type state moving every gene (loading sd = ss), donors in two conditions,"
        " a scanpy UMAP of the counts, seven planted programs (`recurring` 12 genes in A1 and D, `signed` 14,"
        " `straddle` 16, `condition` 8, `small` 6, `gradient` 10, `response` 20).",
        "- **LAVA**: `lv.tl.modules(adata, random_state=0)` — nothing else set — on a copy, timed after a warm-up"
        " run; scored with `lava_sc.datasets.recovery(adata, key='lava')`.",
        "- **Hotspot**: `_workers.hotspot_pipeline` with `explainers.HOTSPOT_PARAMS` (danb on `layers['counts']`,"
        " `X_umap`, 30 neighbours, local correlations of all genes, `min_gene_threshold=10`, module scores), on"
        " the same object; its modules and module scores are scored by the same `recovery` function"
        + hotspot_coverage(result)
        + ".",
        f"- **Detectable** (fixed before any run, not tuned to the results): grid points with program_strength ≥"
        f" {DETECTABLE_MIN_PROGRAM_STRENGTH:g}, the simulator's nominal strength — here ps ∈ {{{', '.join(det) or 'none'}}}."
        " Weaker points are there to show how recovery degrades.",
        "",
        "Columns: **mean Jaccard** — mean over the 7 programs of the Jaccard index between the program's genes and"
        " its best-matching module (mean ± sd over seeds); **without `gradient`** — the same over the other 6;"
        " **unmatched modules** — modules whose best Jaccard with every program is < 0.2; **mean AUROC** — mean"
        " over programs of the AUROC of the best module's per-cell activity (LAVA: `obsm['lava_activity']`,"
        " Hotspot: module score) for the program's active cells (a program whose best Jaccard is 0 still gets"
        " the AUROC of some module, as `recovery` defines it); module sizes and seconds are means over seeds.",
        "",
        summary_table(summary),
        "",
        "Per-program best-match Jaccard (mean ± sd over seeds). `gradient` moves its genes' *means* along a"
        " within-type axis of D (it is shown apart because it is a mean shift, not a planted correlation)."
        " `signed` has two anti-correlated halves of 7 genes: a module holding one half exactly scores"
        " Jaccard 0.5 with the whole program, so the last column scores each half apart (best Jaccard of the"
        " + half / the − half, and in how many seeds both halves' best modules are the same module).",
        "",
        program_table(summary),
        "",
        *[f"- {s}" for s in headline(summary)],
    ]
    pairs = head_to_head(result["runs"])
    if pairs:
        lines += [
            "",
            "Head to head: every run with Hotspot, with LAVA on the same object in the same process (after the"
            " warm-up of both; where results of several runs were merged, this LAVA row can come from other code"
            " than the grid's rows above: see the revision).",
            "",
            pairs,
        ]
    if for_readme:
        lines += [
            "",
            "Per-seed results (every program's module, size, Jaccard and AUROC): the run's JSON"
            f" (`{meta['out_name']}`); rerun with `python -m benchmarks.run --only atlas --write-readme` (LAVA and"
            " Hotspot on every point; `--no-hotspot`, `--atlas-hotspot-seeds 0` to shorten).",
        ]
    else:
        lines += ["", "### Every run", "", runs_table(result["runs"])]
    return "\n".join(lines) + "\n"
