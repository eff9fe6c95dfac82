"""Files in and out: gene sets (GMT files, for :func:`lava_sc.tl.enrich` and :func:`lava_sc.tl.score`),
the HTML report of a run (:func:`write_report`), and the row order to write a store in for a lazy,
out-of-core run (:func:`embedding_order`).

A GMT file has one gene set per line, tab-separated: the set's name, a description, then its genes.
In memory a collection of gene sets is a ``dict`` name -> list of genes, or a decoupler-style "net"
:class:`~pandas.DataFrame` with one row per (set, gene): columns ``source`` (set name), ``target``
(gene) and optionally ``weight``.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ._files import atomic_write
from ._report import write_report
from ._store import embedding_order

__all__ = ["read_gmt", "write_gmt", "write_report", "embedding_order"]


def read_gmt(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read gene sets from a GMT file (plain or ``.gz``).

    Parameters
    ----------
    path
        The GMT file: one set per line, ``name<TAB>description<TAB>gene1<TAB>gene2...``. Blank lines
        are skipped; a gene listed twice in a set is kept once.

    Returns
    -------
    ``dict`` set name -> list of genes, in file order.

    Examples
    --------
    >>> import lava_sc as lv
    >>> sets = lv.io.read_gmt("h.all.v2024.1.Hs.symbols.gmt")  # doctest: +SKIP
    """
    path = _check_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GMT file {str(path)!r} does not exist; check the path.")
    opener = gzip.open if path.suffix == ".gz" else open
    sets: dict[str, list[str]] = {}
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            name = fields[0].strip()
            genes = [g.strip() for g in fields[2:] if g.strip()]
            where = f"{str(path)!r}, line {number}"
            if len(fields) < 2 or not name:
                raise ValueError(
                    f"Malformed GMT line ({where}): expected 'name<TAB>description<TAB>gene...' with tab "
                    f"separators, got {line[:80]!r}. Fix the file (spaces are not separators)."
                )
            if not genes:
                raise ValueError(f"Gene set {name!r} ({where}) lists no genes; remove the line or add its genes.")
            if name in sets:
                raise ValueError(f"Gene set {name!r} appears twice ({where}); give each set a unique name.")
            sets[name] = list(dict.fromkeys(genes))
    if not sets:
        raise ValueError(f"GMT file {str(path)!r} contains no gene sets.")
    return sets


def write_gmt(gene_sets, path: str | os.PathLike, *, description: str = "lava_sc") -> None:
    """Write gene sets to a GMT file (gzip-compressed when ``path`` ends in ``.gz``).

    Parameters
    ----------
    gene_sets
        ``dict`` set name -> genes, or a decoupler-style net DataFrame with columns ``source`` and
        ``target`` (a ``weight`` column is allowed but not written: GMT has no weights). LAVA modules
        come as such a net from :func:`lava_sc.get.gene_sets`.
    path
        File to write (overwritten if it exists).
    description
        Text of every set's description field.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.io.write_gmt(lv.get.gene_sets(adata), "lava_modules.gmt")  # doctest: +SKIP
    """
    path = _check_path(path)
    if not isinstance(description, str) or any(c in description for c in "\t\r\n"):
        raise TypeError(f"`description` must be a string without tabs or newlines, got {description!r}.")
    sets = as_gene_sets(gene_sets, allow_path=False)
    lines = [("\t".join([name, description, *genes]) + "\n") for name, genes in sets.items()]
    opener = gzip.open if path.suffix == ".gz" else open
    with atomic_write(path) as partial, opener(partial, "wt", encoding="utf-8") as handle:
        handle.writelines(lines)


def as_gene_sets(gene_sets, *, allow_path: bool = True, what: str = "gene_sets") -> dict[str, list[str]]:
    """Normalise a dict, a net DataFrame (or, with ``allow_path``, a GMT path) into ``{name: [genes]}``.

    Set names and genes must be non-empty strings without tabs or newlines; each set keeps its genes
    once, in their first order.
    """
    if allow_path and isinstance(gene_sets, (str, os.PathLike)):
        return read_gmt(gene_sets)
    if isinstance(gene_sets, pd.DataFrame):
        sets = _net_to_dict(gene_sets, what)
    elif isinstance(gene_sets, Mapping):
        sets = dict(gene_sets)
    else:
        accepted = "a dict name -> genes, a GMT file path" if allow_path else "a dict name -> genes"
        raise TypeError(
            f"`{what}` must be {accepted} or a DataFrame with columns 'source' and 'target', "
            f"got {type(gene_sets).__name__}."
        )
    if not sets:
        raise ValueError(f"`{what}` is empty; pass at least one gene set.")
    out = {}
    for name, genes in sets.items():
        _check_name(name, "set name", what)
        if isinstance(genes, str) or not isinstance(genes, (list, tuple, set, frozenset, np.ndarray, pd.Index)):
            raise TypeError(
                f"Gene set {name!r} in `{what}` must be a list of gene names, got {type(genes).__name__}"
                f"{' (a single string)' if isinstance(genes, str) else ''}; wrap single genes in a list."
            )
        genes = list(genes)
        for gene in genes:
            _check_name(gene, f"gene in set {name!r}", what)
        if not genes:
            raise ValueError(f"Gene set {name!r} in `{what}` has no genes; remove it or add its genes.")
        out[str(name)] = [str(g) for g in dict.fromkeys(genes)]
    return out


def _net_to_dict(net: pd.DataFrame, what: str) -> dict[str, list]:
    missing = [c for c in ("source", "target") if c not in net.columns]
    if missing:
        raise KeyError(
            f"The DataFrame passed as `{what}` lacks column(s) {missing} (has {list(net.columns)}); a net needs "
            "'source' (set name) and 'target' (gene), e.g. net.rename(columns={'set': 'source', 'gene': 'target'})."
        )
    if net["source"].isna().any() or net["target"].isna().any():
        raise ValueError(f"`{what}` has missing values in 'source' or 'target'; drop those rows (net.dropna()).")
    sets: dict[str, list] = {}
    for source, target in zip(net["source"].tolist(), net["target"].tolist(), strict=True):
        sets.setdefault(source, []).append(target)
    return sets


def _check_name(value, what: str, where: str) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"Every {what} in `{where}` must be a string, got {value!r} ({type(value).__name__}); convert the "
            "names with str() first."
        )
    if not value.strip() or any(c in value for c in "\t\r\n"):
        raise ValueError(f"Invalid {what} {value!r} in `{where}`: it must be non-empty, without tabs or newlines.")


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path (str or pathlib.Path), got {type(path).__name__}.")
    return Path(path)
