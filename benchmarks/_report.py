"""Markdown tables of the speed parts (``speed.py``) from their JSON; ``START`` / ``END`` mark their
section of ``benchmarks/README.md``."""

from __future__ import annotations

START = "<!-- results:start -->"
END = "<!-- results:end -->"

HOTSPOT_TARGET = 20.0
FLOOR_TARGET = 1.5
SCALING_TARGET_CELLS = 1_000_000
SCALING_TARGET_S = 600.0
SCALING_TARGET_GIB = 12.0
FIDELITY_TARGET = 1.05


def _s(x, digits=1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _timed(result: dict) -> str:
    """Seconds of a worker's measured part, '> X' when it was stopped at its limit."""
    status = result.get("status")
    if status == "done":
        return _s(result.get("timed_s"))
    if status == "timeout":
        return f"> {result.get('timeout_after_s'):.0f} (timeout)"
    if status == "setup_timeout":
        return f"setup timeout after {result.get('timeout_after_s'):.0f}"
    if status == "skipped":
        return "skipped"
    return f"error ({result.get('error') or 'rc=' + str(result.get('returncode'))})"[:80]


def _recovered(result: dict) -> str:
    rec = result.get("recovery")
    if not rec:
        return "–"
    return f"{rec['n_recovered']}/{rec['n_planted']} (mean J {rec['mean_jaccard']:.2f}, {rec['n_found']} found)"


def machine_markdown(meta: dict) -> str:
    m = meta["machine"]
    blas = m.get("blas", {})
    numpy_blas = blas.get("numpy_blas")
    if isinstance(numpy_blas, dict):
        numpy_blas = " ".join(str(v) for k, v in numpy_blas.items() if k in ("name", "version"))
    pools = blas.get("threadpools")
    if isinstance(pools, list):
        pools = "; ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, {p.get('num_threads')} threads,"
            f" {p.get('prefix')})"
            for p in pools
        )
    v = m.get("versions", {})
    lines = [
        f"- **Run**: `{meta.get('command')}` — {meta.get('started')} → {meta.get('finished')}"
        f" ({meta.get('mode')} mode), lava_sc {v.get('lava_sc')} at `{m.get('lava_sc_revision')}`",
        f"- **Machine**: {m.get('cpu_model')}, {m.get('cores')} cores ({m.get('cores_usable')} usable),"
        f" {m.get('memory_gib')} GiB RAM, {m.get('platform')}",
        f"- **BLAS**: numpy built with {numpy_blas}; thread pools: {pools}",
        f"- **Versions**: python {v.get('python')}, numpy {v.get('numpy')}, scipy {v.get('scipy')},"
        f" numba {v.get('numba')}, anndata {v.get('anndata')}, scanpy {v.get('scanpy')},"
        f" scikit-learn {v.get('scikit-learn')}, hotspotsc {v.get('hotspotsc')}",
        f"- **Load average** (1/5/15 min) at start {m.get('load_average')}, at end {meta.get('load_average_end')}"
        " — a load above the core count means other work shared the CPU and the seconds are inflated"
        " (ratios are measured back to back and suffer less).",
    ]
    return "\n".join(lines)


def hotspot_markdown(section: dict) -> str:
    cfg = section.get("config", {})
    out = [
        f"### 1. Against Hotspot (target: lava_sc ≥ {HOTSPOT_TARGET:g}× faster)",
        "",
        f"`simulate_planted` data, {cfg.get('n_genes')} genes, one AnnData object in one process (LAVA on a copy)."
        f" Hotspot: danb on `layers['counts']`, `X_umap`, 30 neighbours, local correlations on"
        f" {cfg.get('genes')} genes, `create_modules(min_gene_threshold={cfg.get('min_gene_threshold')})`,"
        f" module scores, jobs={cfg.get('jobs')}. lava_sc: `tl.modules(adata)`. Both after a warm-up run.",
        "",
        "| cells | genes | Hotspot (s) | lava_sc (s) | speed-up | planted modules recovered: Hotspot | lava_sc |"
        " same input |",
        "|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in section.get("rows", []):
        h, lv = row["hotspot"], row["lava"]
        out.append(
            f"| {row['n_cells']:,} | {row['n_genes']} | {_timed(h)} | {_timed(lv)} | {row.get('speedup_text', '–')}"
            f" | {_recovered(h)} | {_recovered(lv)} | {row.get('same_input')} |"
        )
    out += ["", "Stage seconds:", "", "| cells | method | stages |", "|---:|---|---|"]
    for row in section.get("rows", []):
        for name in ("hotspot", "lava"):
            stages = row[name].get("stages") or {}
            text = ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) or "–"
            if row[name].get("status") == "timeout":
                text += f" (stopped in {row[name].get('stage')})"
            out.append(f"| {row['n_cells']:,} | {'lava_sc' if name == 'lava' else 'Hotspot'} | {text} |")
    if section.get("note"):
        out += ["", section["note"]]
    return "\n".join(out)


def floor_markdown(section: dict) -> str:
    out = [
        f"### 2. Correlation stage against the BLAS floor (target: time / floor ≤ {FLOOR_TARGET:g})",
        "",
        "floor = ℓ·n·G² multiply-adds / this machine's best float32 GEMM rate ((G × n) @ (n × G), numpy,"
        " best of 7 with BLAS's default threads and with 1 thread, measured in the same process just before"
        " and after the stage). Replay = the same ℓ GEMMs run back to back in that process (the floor under"
        " the load of the moment). `tl.correlations` = best of 3 runs (all three are in the JSON). 1-thread = the"
        " stage again under `threadpool_limits(1)`.",
        "",
        "| cells × genes | localities × cells | multiply-adds | GEMM GMAC/s | floor (s) | replay (s)"
        " | `tl.correlations` (s) | **time / floor** | time / replay | 1-thread (s) | ssyrk GMAC/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in section.get("rows", []):
        if r.get("status") != "done":
            out.append(f"| {r['params']['n_cells']:,} × {r['params']['n_genes']} | {_timed(r)} |||||||||")
            continue
        out.append(
            f"| {r['n_cells']:,} × {r['n_genes']} | {r['n_localities']} × {r['cells_per_locality']}"
            f" | {r['multiply_adds']:.2e} | {r['gemm_gmacs']:.1f} | {r['floor_s']:.2f} | {_s(r.get('replay_floor_s'), 2)}"
            f" | {r['correlations_s']:.2f} | **{r['ratio']:.1f}** | {_s(r.get('ratio_vs_replay'))}"
            f" | {_s(r.get('correlations_1thread_s'), 2)} | {r['syrk_gmacs']:.1f} |"
        )
    for r in section.get("rows", []):
        prof = r.get("profile")
        if not prof:
            continue
        out += [
            "",
            f"Profile of `tl.correlations` at {r['n_cells']:,} × {r['n_genes']} (cProfile, {prof['total_s']:.1f} s"
            " under the profiler, one thread; cumulative time of LAVA's kernels, which may nest):",
            "",
            "| kernel | what | calls | seconds | share |",
            "|---|---|---:|---:|---:|",
        ]
        for name, e in sorted(prof["named"].items(), key=lambda kv: -kv[1]["cumtime_s"]):
            out.append(f"| `{name}` | {e['what']} | {e['ncalls']} | {e['cumtime_s']:.2f} | {e['share']:.0%} |")
        out += ["", "Top functions by own time:", "", "| function | calls | own s | share |", "|---|---:|---:|---:|"]
        for e in prof["top_by_own_time"][:10]:
            out.append(f"| `{e['function']}` | {e['ncalls']} | {e['tottime_s']:.2f} | {e['share_own']:.0%} |")
    return "\n".join(out)


def scaling_markdown(section: dict) -> str:
    out = [
        f"### 3. Scaling (target: {SCALING_TARGET_CELLS:,} cells × 1,000 genes end to end ≤ {SCALING_TARGET_S:.0f} s"
        f" and ≤ {SCALING_TARGET_GIB:g} GiB peak RSS)",
        "",
        "Each configuration in a fresh process (`simulate_planted(chunk_size=..., counts_layer=False)`, synthetic"
        f" 2-d embedding), `tl.modules(adata)` with defaults, time limit {section.get('timeout_s')} s on the"
        " pipeline. Peak RSS = `ru_maxrss` of that process (data included; the data's own size is listed);"
        " 'peak after' is `ru_maxrss` after data generation and after each stage, so the stage where it"
        " jumps is the one that needed the memory.",
    ]
    for axis, title in (("cells", "cells axis"), ("genes", "genes axis")):
        rows = [r for r in section.get("rows", []) if r.get("axis") == axis]
        if not rows:
            continue
        out += [
            "",
            f"**{title}**",
            "",
            "| cells | genes | density | data (GiB) | localities (s) | correlations (s) | modules (s) | total (s)"
            " | floor (s) | total / floor | peak RSS (GiB) | peak after data / loc / corr / mod | recovered | status |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
        ]
        for r in rows:
            p, st = r.get("params", {}), r.get("stages", {})
            status = r.get("status")
            if status == "timeout":
                status = f"timeout after {r.get('timeout_after_s'):.0f} s in {r.get('stage')}"
            elif status not in ("done", None):
                status = _timed(r)
            total = _s(r.get("timed_s")) if r.get("status") == "done" else _timed(r)
            peak = r.get("peak_rss_gib")
            if r.get("status") != "done":  # stopped: the parent's sampling may have seen a later peak
                peak = max(peak or 0.0, r.get("sampled_peak_rss_gib") or 0.0)
            out.append(
                f"| {p.get('n_cells', 0):,} | {p.get('n_genes')} | {_s(r.get('density'), 2)}"
                f" | {_s(r.get('data_nbytes_gib'), 2)} | {_s(st.get('localities'))} | {_s(st.get('correlations'))}"
                f" | {_s(st.get('modules'))} | {total} | {_s(r.get('floor_s'))} | {_s(r.get('total_over_floor'), 2)}"
                f" | {_s(peak, 2)} | {_stage_peaks(r)} | {_recovered(r)} | {status} |"
            )
    if section.get("note"):
        out += ["", section["note"]]
    target = section.get("target")
    if target:
        out += ["", f"Target check ({SCALING_TARGET_CELLS:,} × 1,000): {target}"]
    return "\n".join(out)


def fidelity_markdown(section: dict) -> str:
    cfg = section.get("config", {})
    out = [
        f"### 4. Probe placement: fast path against exact path (target: fast / exact coverage loss ≤ {FIDELITY_TARGET:g})",
        "",
        "`lava_sc._core.localities.find_localities(points, n_cells="
        f"{cfg.get('locality_cells', 200)}, overlap={cfg.get('overlap', 3)}, random_state=seed)` on the same"
        " 2-d embedding twice, in one process after a warm-up: **exact** = DIRECT over (α, β) with every"
        " evaluation on all cells (`max_exact_cells ≥ cells`); **fast** = DIRECT on a geometry-matched uniform"
        f" subsample of {cfg.get('search_cells', 'cells // 3')} cells, its 5 best (α, β) placed on all cells"
        " (`max_exact_cells = cells − 1`). Ratio = fast loss / exact loss (below 1: the fast path placed"
        " better). Embeddings: *planted* = `simulate_planted`'s; *blobs* ="
        " 12 anisotropic Gaussian blobs of random sizes and spreads + 5% uniform background.",
        "",
        "| geometry | cells | seed | exact loss | fast loss | **ratio** | exact s | fast s | fast / exact time"
        " | (α, β) exact → fast | uncovered exact / fast | evaluations exact / fast |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in section.get("rows", []):
        p = r.get("params", {})
        head = f"| {p.get('geometry')} | {p.get('n_cells', 0):,} | {p.get('seed')}"
        if r.get("status") != "done":
            e = r.get("exact") or {}
            out.append(f"{head} | {_s(e.get('coverage_loss'), 4)} | {_timed(r)} |||||||")
            continue
        e, f = r["exact"], r["fast"]
        ratio = "–" if r.get("ratio") is None else f"**{r['ratio']:.3f}**"
        out.append(
            f"{head} | {e['coverage_loss']:.4f} | {f['coverage_loss']:.4f} | {ratio} | {e['seconds']:.1f}"
            f" | {f['seconds']:.1f} | {r['time_ratio']:.2f} | ({e['alpha']:.2f}, {e['beta']:.2f}) →"
            f" ({f['alpha']:.2f}, {f['beta']:.2f}) | {e['uncovered_cells']} / {f['uncovered_cells']}"
            f" | {e['n_evaluations']} / {f['n_evaluations']} |"
        )
    summary = section.get("summary") or {}
    groups = summary.get("groups") or {}
    if groups:
        out += [
            "",
            "| geometry, cells | seeds | mean ratio | worst ratio |",
            "|---|---:|---:|---:|",
        ]
        for name, g in groups.items():
            geometry, cells = name.rsplit(" ", 1)
            out.append(
                f"| {geometry}, {int(cells):,} | {g['n_seeds']} | {g['mean_ratio']:.3f}"
                f" {'✓' if g['mean_met'] else '✗'} | {g['worst_ratio']:.3f} {'✓' if g['worst_met'] else '✗'} |"
            )
    if summary.get("text"):
        out += ["", f"Target check (fast / exact ≤ {FIDELITY_TARGET:g}): {summary['text']}"]
    return "\n".join(out)


def _stage_peaks(r: dict) -> str:
    after = r.get("peak_rss_after_stage_gib") or {}
    values = [r.get("peak_rss_before_timed_gib")] + [after.get(k) for k in ("localities", "correlations", "modules")]
    return " / ".join(_s(v, 1) for v in values)


def results_markdown(results: dict) -> str:
    parts = ["## Results", "", machine_markdown(results["meta"])]
    revisions = sorted(
        {
            str(row.get("lava_sc_revision"))
            for name in ("hotspot", "floor", "scaling", "fidelity")
            for row in results.get(name, {}).get("rows", [])
            if row.get("lava_sc_revision")
        }
    )
    if len(revisions) > 1:
        parts.append(
            f"- **Note**: the library changed during the run; workers measured lava_sc at {', '.join(revisions)}"
            " (each row's revision is in the JSON)."
        )
    sections = (
        ("hotspot", hotspot_markdown),
        ("floor", floor_markdown),
        ("scaling", scaling_markdown),
        ("fidelity", fidelity_markdown),
    )
    for name, fn in sections:
        if name in results:
            section = results[name]
            when = section.get("measured_at")
            parts += ["", fn(section)]
            if when and when != results["meta"].get("started"):
                parts.append(f"\n_(section measured {when}; see its JSON for that run's load average)_")
    return "\n".join(parts) + "\n"
