"""``io.write_report``: one self-contained HTML file with a run's settings, modules, figures and tests.

The page is built from the public readers and plots (:func:`lava_sc.get.summary`,
:func:`lava_sc.pl.activity`, :func:`lava_sc.pl.module_network`, :func:`lava_sc.pl.localities`, and
the differential and enrichment results when they are stored), so it shows what a notebook would.
Figures are embedded as PNG data URIs; the HTML itself is in :mod:`lava_sc._report_html`.
"""

from __future__ import annotations

import base64
import datetime
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from . import _logging as logg
from . import _report_html as h
from ._files import atomic_write
from ._keys import DEFAULT_KEY, Keys
from ._params import decode

#: resolution of the embedded figures (lower than ``save=``'s 150: a report holds many)
DPI = 110
#: the order of the pipeline's steps in the parameter tables (other steps follow in stored order)
STEP_ORDER = ("localities", "correlations", "modules", "differential", "enrich", "score")
#: provenance entries of a parameter record, shown apart from the settings
PROVENANCE = ("run_id", "upstream")
#: columns of a module's differential rows, when present (the reference and the unit are in the overview)
DIFFERENTIAL_COLUMNS = (
    "condition",
    "n_condition",
    "n_reference",
    "mean_condition",
    "mean_reference",
    "effect",
    "qvalue",
    "note",
)
#: columns of a module's enrichment rows, when present
ENRICHMENT_COLUMNS = ("gene_set", "overlap", "set_size", "odds_ratio", "pvalue", "qvalue", "genes")
ACTIVITY_CAPTION = (
    "Activity per cell: the weighted mean correlation of the module's pairs in the localities that contain the cell."
)
NETWORK_CAPTION = (
    "Nodes: the module's genes, sized and coloured by score (1: its hub); edges: its associations, wider for a "
    "higher mean correlation, darker where found in more localities."
)
#: enrichment rows listed per module
N_ENRICHMENT_ROWS = 10
#: q-value under which a differential or enrichment row is shown in bold
Q_SIGNIFICANT = 0.05


def write_report(
    adata,
    path: str | os.PathLike,
    *,
    key: str = DEFAULT_KEY,
    groupby: str | None = None,
    basis: str | None = None,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML report of the LAVA results under ``key``.

    The file holds the settings of every step (``uns[key]["params"]``) and which genes were tested,
    a sortable table of the modules (:func:`lava_sc.get.summary`; click a column header to sort), the
    localities on the embedding (:func:`lava_sc.pl.localities`) and, for each module, its genes, its
    activity on the embedding (:func:`lava_sc.pl.activity`), its gene network
    (:func:`lava_sc.pl.module_network`) and, when :func:`lava_sc.tl.differential` or
    :func:`lava_sc.tl.enrich` were run, its differential activity and gene-set enrichment. Figures
    are embedded as PNG images and the style and the sorting script are inline: the file can be
    mailed, published by a pipeline or opened offline, and refers to nothing else. A figure that
    cannot be drawn is replaced by a note (and a warning is logged); the rest is still written.

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.modules`.
    path
        The HTML file to write (overwritten if it exists; written atomically).
    key
        Key of the LAVA results: ``uns[key]`` and ``obsm[f"{key}_..."]``, as written by
        :func:`lava_sc.tl.localities` (its ``key_added``) and the steps after it.
    groupby
        Column of ``adata.obs`` (e.g. ``"condition"``) to split each module's activity panels by, as
        :func:`lava_sc.pl.activity` does. Default: one panel per module.
    basis
        Embedding to draw on. Default: the one the localities were built in.
    title
        Title of the page. Default: ``"LAVA report"``.

    Returns
    -------
    The path written.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.tl.modules(adata)  # doctest: +SKIP
    >>> lv.io.write_report(adata, "lava_report.html")  # doctest: +SKIP
    """
    from . import get
    from ._params import recorded
    from ._validate import check_obs_column, resolve_basis
    from .pl._utils import available_modules, check_results

    key = check_results(adata, key)
    path = _check_path(path)
    if groupby is not None:
        check_obs_column(adata, groupby, "groupby", optional=True)
    if basis is not None:
        resolve_basis(adata, basis)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"`title` must be a string or None, got {type(title).__name__}.")
    start = logg.info(f"writing the LAVA report of key {key!r}")
    basis = basis or recorded(adata, key, "localities", "basis")
    summary = get.summary(adata, key=key)
    names = [str(m) for m in available_modules(adata, key)]
    anchors = {name: f"module-{i + 1}" for i, name in enumerate(names)}
    slot = adata.uns[key]
    has_differential = Keys.differential in slot
    has_enrichment = Keys.enrichment in slot
    params = decode(dict(slot.get(Keys.params, {})))
    title = title or "LAVA report"

    sections = [
        _tested(adata, key, summary, params),
        _modules_table(summary, anchors),
        _localities(adata, key, basis),
    ]
    nav = [("tested", "What was tested"), ("modules", "Modules"), ("localities", "Localities")]
    if has_differential:
        sections.append(_differential_overview(adata, key, params.get("differential", {})))
        nav.append(("differential", "Differential activity"))
    genes = get.module_genes(adata, key)
    limits = _activity_limits(get.activity(adata, key=key))
    for name in _progress(names, "report"):
        sections.append(
            _module(
                adata,
                key,
                name,
                anchors[name],
                summary,
                genes,
                basis,
                groupby,
                limits,
                has_differential,
                has_enrichment,
            )
        )
    nav += [(anchors[name], name) for name in names]
    sections.append(_parameters(params))
    nav.append(("parameters", "Parameters"))

    from . import __version__

    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    subtitle = (
        f"{adata.n_obs:,} cells × {adata.n_vars:,} genes · results under key <code>{h.esc(key)}</code> · "
        f"{len(names)} module{'s' if len(names) != 1 else ''}"
    )
    footer = f"Written {h.esc(when)} by lava_sc {h.esc(__version__)} (lava_sc.io.write_report)."
    text = h.page(title, subtitle, nav, sections, footer)
    with atomic_write(path) as partial:
        partial.write_text(text, encoding="utf-8")
    size = path.stat().st_size
    logg.info(f"    wrote {path} ({size / 1024:,.0f} KiB, {len(names)} modules)", time=start)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# sections


def _tested(adata, key: str, summary: pd.DataFrame, params: dict) -> str:
    attrs = summary.attrs
    loc = params.get("localities", {})
    slot = adata.uns[key]
    diagnostics = decode(dict(slot.get(Keys.localities, {})))
    n_loc = diagnostics.get("n_localities", len(slot[Keys.probes]))
    where = (
        f"{n_loc:,} localities of {h.esc(loc.get('n_cells', '?'))} cells on <code>{h.esc(loc.get('basis', '?'))}</code>"
    )
    if "overlap" in loc:
        where += f", each cell in about {h.esc(h.setting(loc['overlap']))} of them"
    if diagnostics.get("n_uncovered"):
        where += f"; {int(diagnostics['n_uncovered']):,} cells in no locality take their nearest probe's values"
    groupby = attrs.get("groupby")
    population = (
        f"<code>{h.esc(groupby)}</code>: each module's activity was checked against differences between its groups"
        if groupby is not None
        else "none (no cell-type column was found or given): top groups are not reported"
    )
    items = [
        (
            "Genes tested",
            f"{attrs.get('n_genes_tested', 0):,} of {adata.n_vars:,}: {h.esc(attrs.get('gene_source', 'not recorded'))}. "
            "Genes that were not tested cannot be in a module.",
        ),
        ("Localities", where),
        ("Populations", population),
        ("Active", f"a module is active in a cell with {h.esc(_active_rule(attrs))}"),
    ]
    return f'<section id="tested"><h2>What was tested</h2>{h.facts(items)}</section>'


def _modules_table(summary: pd.DataFrame, anchors: dict[str, str]) -> str:
    from .tl._populations import MIXED_SHARE_FLAG

    if not len(summary):
        body = (
            '<p class="missing">LAVA found no modules. Rerun lava_sc.tl.modules with a lower <code>min_support</code> '
            "or <code>min_genes</code>, or test more genes (<code>genes=</code>).</p>"
        )
    else:
        flag = {"mixed_share": MIXED_SHARE_FLAG} if "mixed_share" in summary.columns else None
        body = '<p class="note">Click a column header to sort; click a module to go to its figures.'
        if flag:
            body += (
                f" * mixed: at least {MIXED_SHARE_FLAG:.0%} of the module's activity comes from localities where no "
                "group holds 80% of the cells; read its top group with care."
            )
        body += "</p>" + h.table(summary, links=anchors, flag=flag, table_id="module-table")
    return f'<section id="modules"><h2>Modules</h2>{body}</section>'


def _localities(adata, key: str, basis) -> str:
    from . import pl

    png, error = _png(lambda: pl.localities(adata, basis=basis, key=key, show=False))
    caption = (
        "Each numbered circle is a probe; its locality is the cells nearest to it. Cells are coloured by how "
        "many localities contain them."
    )
    return f'<section id="localities"><h2>Localities</h2>{h.figure(png, "Localities", caption, error)}</section>'


def _differential_overview(adata, key: str, record: dict) -> str:
    from . import pl

    png, error = _png(lambda: pl.differential(adata, key=key, show=False))
    replicate = record.get("replicate")
    unit = (
        f"donors (<code>{h.esc(replicate)}</code>)" if replicate else "cells (no replicate column: anti-conservative)"
    )
    items = [
        (
            "Condition",
            f"<code>{h.esc(record.get('groupby', '?'))}</code>, against <b>{h.esc(record.get('reference', '?'))}</b>",
        ),
        ("Within", f"<code>{h.esc(record.get('within', '?'))}</code>" if record.get("within") else "all cells"),
        ("Unit of replication", unit),
    ]
    caption = "Dot colour: effect on activity; dot size: −log10(q); ringed dots: q < 0.05."
    return (
        f'<section id="differential"><h2>Differential activity</h2>{h.facts(items)}'
        f"{h.figure(png, 'Differential activity', caption, error)}</section>"
    )


def _activity_limits(activity) -> tuple[float | None, float | None]:
    """One colour scale for every module's panel (the range of all modules' activity), so that colours
    compare between modules."""
    every = activity.to_numpy(dtype=float)
    return (float(np.nanmin(every)), float(np.nanmax(every))) if np.isfinite(every).any() else (None, None)


def _module(adata, key, name, anchor, summary, genes, basis, groupby, limits, has_differential, has_enrichment) -> str:
    from . import get, pl
    from .tl._populations import MIXED_SHARE_FLAG as mixed_flag

    row = summary.loc[summary["module"].astype(str) == name]
    size = ""
    if len(row):
        size = f"{int(row['n_genes'].iloc[0])} genes, {int(row['n_pairs'].iloc[0])} pairs"
        if "where_active" in row.columns and not h.is_missing(row["where_active"].iloc[0]):
            size += f"; active mostly in {row['where_active'].iloc[0] or 'no cell'}"
            if "mixed_share" in row.columns and float(row["mixed_share"].iloc[0]) >= mixed_flag:
                size += " (mixed localities: read where it is active with care)"
    mine = genes.loc[genes["module"].astype(str) == name].sort_values("score", ascending=False, kind="stable")
    chips = "".join(
        f'<span title="score {h.esc(f"{s:.2f}")}">{h.esc(g)}</span>'
        for g, s in zip(mine["gene"].astype(str), mine["score"].astype(float), strict=True)
    )
    labels = summary.attrs.get("groupby") or "auto"  # named explicitly: pl.activity logs its 'auto' choice
    lo, hi = limits
    activity, a_error = _png(
        lambda: pl.activity(
            adata, name, basis=basis, key=key, groupby=groupby, labels=labels, vmin=lo, vmax=hi, show=False
        )
    )
    network, n_error = _png(lambda: pl.module_network(adata, name, key=key, show=False))
    parts = [
        f'<section class="module" id="{h.esc(anchor)}"><h2>{h.esc(name)} <small class="muted">{h.esc(size)}</small></h2>',
        f'<p class="genes">{chips}</p>',
        h.figure_row(
            [activity, network],
            [
                h.figure(activity, f"Activity of {name}", ACTIVITY_CAPTION, a_error),
                h.figure(network, f"Gene network of {name}", NETWORK_CAPTION, n_error),
            ],
        ),
    ]
    if has_differential:
        parts.append(_module_differential(get, adata, key, name))
    if has_enrichment:
        parts.append(_module_enrichment(get, adata, key, name))
    parts.append("</section>")
    return "\n".join(parts)


def _module_differential(get, adata, key: str, name: str) -> str:
    try:
        table = get.differential(adata, key, module=name)
    except KeyError:  # the module was not in the differential test (found after it, or not testable)
        return '<h3>Differential activity</h3><p class="note">Not tested for this module.</p>'
    within = [str(c) for c in table.columns[1:2] if str(c) not in DIFFERENTIAL_COLUMNS]
    columns = within + [c for c in DIFFERENTIAL_COLUMNS if c in table.columns]
    table = table.sort_values("qvalue", kind="stable", na_position="last")[columns]
    n_sig = int((table["qvalue"] < Q_SIGNIFICANT).sum())
    rows = h.table(table, row_class=_significant)
    opened = " open" if n_sig or len(table) <= 12 else ""
    return (
        f"<h3>Differential activity</h3><details{opened}><summary>{n_sig} of {len(table)} tests with "
        f"q &lt; {Q_SIGNIFICANT}</summary>{rows}</details>"
    )


def _module_enrichment(get, adata, key: str, name: str) -> str:
    try:
        table = get.enrichment(adata, key, module=name)
    except KeyError:
        return '<h3>Gene-set enrichment</h3><p class="note">Not tested for this module.</p>'
    if not len(table):
        return '<h3>Gene-set enrichment</h3><p class="note">No gene set overlaps this module.</p>'
    n_sets = len(table)
    table = table[[c for c in ENRICHMENT_COLUMNS if c in table.columns]].head(N_ENRICHMENT_ROWS)
    if "genes" in table.columns:
        table["genes"] = table["genes"].astype(str).str.replace(";", ", ")
    best = table.iloc[0]
    shown = f"all {n_sets} sets tested" if n_sets <= N_ENRICHMENT_ROWS else f"the {N_ENRICHMENT_ROWS} best of {n_sets}"
    return (
        f'<h3>Gene-set enrichment</h3><p class="note">Best set: <b>{h.esc(best["gene_set"])}</b> '
        f"(q = {h.esc(h.cell(best['qvalue'], 'qvalue')[0])}); {shown}, by p-value:</p>"
        + h.table(table, row_class=_significant)
    )


def _parameters(params: dict) -> str:
    steps = [s for s in STEP_ORDER if s in params] + [s for s in params if s not in STEP_ORDER]
    blocks = []
    for step in steps:
        record = params[step] if isinstance(params[step], dict) else {}
        settings = {k: v for k, v in record.items() if k not in PROVENANCE}
        frame = pd.DataFrame({"setting": list(settings), "value": [h.setting(v) for v in settings.values()]})
        run_id = f' <small class="muted">run {h.esc(record["run_id"])}</small>' if "run_id" in record else ""
        blocks.append(f"<div><h3>{h.esc(step)}{run_id}</h3>{h.table(frame, sortable=False)}</div>")
    body = "".join(blocks) or '<p class="note">No parameters are recorded.</p>'
    note = '<p class="note">What each step was run with, from <code>adata.uns[key]["params"]</code>.</p>'
    return f'<section id="parameters"><h2>Parameters</h2>{note}<div class="params">{body}</div></section>'


# ----------------------------------------------------------------------------------------------------------------------
# helpers


def _active_rule(attrs: dict) -> str:
    """How ``get.summary`` decided that a module is active in a cell, in words."""
    if attrs.get("active"):
        return str(attrs["active"])
    if attrs.get("active_above") is not None:
        return (
            f"activity above {attrs['active_above']:g} (activity: the mean correlation of the module's pairs in "
            "the localities that contain the cell)"
        )
    return "not recorded"


def _significant(row: dict) -> str | None:
    q = row.get("qvalue")
    return "significant" if q is not None and not h.is_missing(q) and float(q) < Q_SIGNIFICANT else None


def _png(draw: Callable) -> tuple[str | None, str | None]:
    """Draw with a plot function; (base64 PNG, None), or (None, the error) when it failed.

    Only the figures the plot opened are closed: a notebook's own figures stay.
    """
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        figure = _figure_of(draw())
        if figure is None:
            raise RuntimeError("the plot returned no axes")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        return base64.b64encode(buffer.getvalue()).decode("ascii"), None
    except Exception as err:  # a figure must never cost the user the rest of the report
        logg.warning(f"the report could not draw a figure: {type(err).__name__}: {err}")
        return None, f"{type(err).__name__}: {err}"
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def _progress(names: list[str], desc: str):
    """Iterate with a bar for long reports (as the tools' bars: quiet below 20 steps or scanpy's 'info')."""
    from scanpy import settings
    from tqdm import tqdm

    return tqdm(names, desc=desc, disable=len(names) < 20 or settings.verbosity < 2, leave=False)


def _figure_of(result):
    """The Figure behind what a plot returned: an Axes or a list of Axes (split panels)."""
    if isinstance(result, list | tuple):
        return _figure_of(result[0]) if result else None
    figure = getattr(result, "figure", None)
    return getattr(figure, "figure", figure)  # a subfigure's root figure, for matplotlib >= 3.8


def _check_path(path) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a file path (str or pathlib.Path), got {type(path).__name__}.")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"`path` {str(path)!r} is a folder; give the report's file name, e.g. report.html.")
    return path
