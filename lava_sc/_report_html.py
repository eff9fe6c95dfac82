"""The HTML of :func:`lava_sc.io.write_report`: escaping, tables, figures, the page with its CSS and JS.

Everything here returns strings; nothing reads an AnnData. Every piece of text that comes from the
data (gene, group, module, column names, parameter values) goes through :func:`esc`. The page is
self-contained: its style and its one script are inline, figures are ``data:image/png;base64`` URIs,
and nothing refers to the network.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

#: a list setting longer than this is shortened in the parameter tables
MAX_LISTED = 12

#: width of the page's content in CSS pixels (``main``'s max-width less its padding)
PAGE_WIDTH = 1124

#: columns shown as percentages (fractions in [0, 1])
PERCENT_COLUMNS = {"active_cells", "mixed_share"}

#: what the columns of get.summary, get.differential and get.enrichment mean (header tooltips)
COLUMN_HELP = {
    "module": "module name (M1 is the largest); click to go to its section",
    "n_genes": "genes in the module",
    "n_pairs": "gene-gene associations (pairs) in the module",
    "top_genes": "the module's most connected genes",
    "active_cells": "share of cells where the module is active (half its pair weight significant in most of the cell's localities)",
    "where_active": "groups holding most of the active cells (share of each group's cells active)",
    "mixed_share": "share of the activity from localities where no group holds 80% of the cells; "
    "high (≥ 50%): read where it is active with care",
    "effect": "mean activity in the condition minus the reference",
    "pvalue": "p-value",
    "qvalue": "Benjamini-Hochberg q-value",
    "odds_ratio": "odds ratio of the overlap",
    "overlap": "genes shared by the module and the set",
}

SCRIPT = """
(function () {
  "use strict";
  function value(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) return raw === "" ? null : raw;
    var x = parseFloat(raw);
    return isNaN(x) ? null : x;
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    var column = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[column], numeric), y = value(b.cells[column], numeric);
      if (x === null || y === null) return (x === null) - (y === null);  /* missing values last */
      var c = numeric ? x - y : x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});
      return ascending ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); } });
  });
  function ready() {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (im) { return im.complete && im.naturalWidth > 0; });
    document.body.setAttribute("data-images", String(images.length));
    document.body.setAttribute("data-images-loaded", String(loaded.length));
    document.body.setAttribute("data-ready", "1");
  }
  if (document.readyState === "complete") ready(); else window.addEventListener("load", ready);
})();
"""

STYLE = """
:root { --ink: #1d2430; --muted: #5b6472; --line: #d9dee5; --band: #f4f6f9; --accent: #2f5d9b; --warn: #9a5b00; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
a { color: var(--accent); }
.lede, .note, figcaption, .muted { color: var(--muted); }
.note { font-size: 0.92em; }
nav { margin: 14px 0 0; padding: 8px 12px; background: var(--band); border-radius: 6px; font-size: 0.95em; }
nav a { margin-right: 12px; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 6px 0 10px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: var(--band); position: sticky; top: 0; white-space: nowrap; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: " \\2195"; color: #a5adb8; font-size: 0.85em; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--ink); }
table.sortable thead th[aria-sort="descending"]::after { content: " \\2193"; color: var(--ink); }
tbody tr:nth-child(even) { background: #fafbfc; }
td.flag { color: var(--warn); font-weight: 600; }
tr.significant td { font-weight: 600; }
.wide { overflow-x: auto; max-width: 100%; }
.params { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.figures.row { display: grid; }
figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: 0.85em; max-width: 560px; }
section.module { border-top: 1px solid var(--line); margin-top: 28px; }
.genes span { display: inline-block; margin: 2px 4px 2px 0; padding: 1px 7px; background: var(--band);
              border: 1px solid var(--line); border-radius: 10px; font-size: 0.9em; }
.missing { color: var(--warn); }
details > summary { cursor: pointer; margin: 4px 0; }
footer { margin-top: 40px; font-size: 0.85em; color: var(--muted); }
"""


def esc(value) -> str:
    """``value`` as HTML text (``&``, ``<``, ``>`` and quotes escaped)."""
    return html.escape(str(value), quote=True)


def is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(float(value))


def cell(value, column: str) -> tuple[str, str | None]:
    """(shown text, sort value or None) of one table cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if is_missing(value):
        return "—", ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), None
    if isinstance(value, numbers.Integral):
        return f"{value:,}", str(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isinf(value):
            return ("∞" if value > 0 else "−∞"), ("1e308" if value > 0 else "-1e308")
        if column in PERCENT_COLUMNS or column.endswith("_share"):
            shown = f"{100 * value:.1f}%"
        elif column in ("pvalue", "qvalue") or column.endswith(("_pvalue", "_qvalue")):
            shown = f"{value:.2g}"
        else:
            shown = f"{value:.3g}"
        return shown, repr(value)
    return str(value), None


def numeric_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def table(
    frame: pd.DataFrame,
    *,
    sortable: bool = True,
    links: Mapping[str, str] | None = None,
    flag: Mapping[str, float] | None = None,
    row_class=None,
    table_id: str | None = None,
) -> str:
    """An HTML table of every column of ``frame`` (its index is not shown).

    ``links`` maps values of the ``module`` column to anchors; ``flag`` maps a column to a threshold at
    or above which its cells are marked; ``row_class(row)`` gives a class for a row (or None).
    """
    columns = [str(c) for c in frame.columns]
    numeric = {c: numeric_column(frame[c]) for c in frame.columns}
    head = []
    for c, name in zip(frame.columns, columns, strict=True):
        attrs = ' data-type="num" class="num"' if numeric[c] else ""
        tip = COLUMN_HELP.get(name)
        if tip:
            attrs += f' title="{esc(tip)}"'
        head.append(f"<th{attrs}>{esc(name)}</th>")
    body = []
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for c, name, value in zip(frame.columns, columns, row, strict=True):
            shown, sort = cell(value, name)
            text = esc(shown)
            if links is not None and name == "module" and str(value) in links:
                text = f'<a href="#{esc(links[str(value)])}">{text}</a>'
            classes = ["num"] if numeric[c] else []
            if flag and name in flag and not is_missing(value) and float(value) >= flag[name]:
                classes.append("flag")
                text += " *"
            attrs = f' class="{" ".join(classes)}"' if classes else ""
            if sort is not None:
                attrs += f' data-sort="{esc(sort)}"'
            cells.append(f"<td{attrs}>{text}</td>")
        extra = row_class(dict(zip(columns, row, strict=True))) if row_class else None
        body.append((f'<tr class="{esc(extra)}">' if extra else "<tr>") + "".join(cells) + "</tr>")
    classes = ' class="sortable"' if sortable else ""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return (
        f'<div class="wide"><table{ident}{classes}><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def setting(value) -> str:
    """A parameter value in words: lists shortened, mappings as ``name: value`` pairs."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {setting(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        shown = ", ".join(setting(v) for v in value[:MAX_LISTED])
        return shown + (f", … ({len(value):,} in all)" if len(value) > MAX_LISTED else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def facts(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; the values are HTML already (escape them first)."""
    rows = "".join(f"<dt>{esc(name)}</dt><dd>{value}</dd>" for name, value in items)
    return f'<dl class="facts">{rows}</dl>'


def png_size(png: str) -> tuple[int, int]:
    """(width, height) in pixels of base64 PNG data, read from its header."""
    header = base64.b64decode(png[:32])
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def figure(png: str | None, alt: str, caption: str, error: str | None = None) -> str:
    """A figure from base64 PNG data (shown at most at its own size), or a note saying why it is missing."""
    if png is None:
        return f'<p class="missing">{esc(alt)}: could not be drawn ({esc(error or "unknown error")}).</p>'
    width, height = png_size(png)
    return (
        f'<figure><img src="data:image/png;base64,{png}" width="{width}" height="{height}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def figure_row(pngs: list[str | None], figures: list[str]) -> str:
    """Figures side by side, each scaled in proportion to its width so that the row fits the page;
    figures too wide together (split activity panels) wrap onto rows of their own."""
    widths = [png_size(p)[0] if p is not None else 320 for p in pngs]
    if sum(widths) > 1.6 * PAGE_WIDTH:
        return f'<div class="figures">{"".join(figures)}</div>'
    columns = " ".join(f"minmax(0, {w}fr)" for w in widths)
    return f'<div class="figures row" style="grid-template-columns: {columns}">{"".join(figures)}</div>'


def page(title: str, subtitle: str, nav: list[tuple[str, str]], sections: list[str], footer: str) -> str:
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="lava_sc">\n<title>{esc(title)}</title>\n<style>{STYLE}</style>\n'
        f'</head>\n<body data-ready="0">\n<main>\n<header><h1>{esc(title)}</h1>'
        f'<p class="lede">{subtitle}</p><nav>{links}</nav></header>\n'
        + "\n".join(sections)
        + f"\n<footer>{footer}</footer>\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
