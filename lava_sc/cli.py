"""The ``lava-sc`` command: run LAVA on an ``.h5ad`` file, or on a bundled demo dataset.

Examples
--------
::

    lava-sc demo --out lava_demo
    lava-sc run data.h5ad --out data_lava.h5ad --tables tables/ --figures figures/
    lava-sc run data.h5ad --out data_lava.h5ad --method nmf --rank 8 --partial-out X_pca

Progress and log messages go to stderr, the summary to stdout. Errors in the input (a missing
file, embedding, layer, ...) print ``lava-sc: error: <message>`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: modules listed in the summary
MAX_SUMMARY_MODULES = 20
#: top genes shown per module in the summary
N_TOP_GENES = 5


#: the command's name in its messages
PROG = "lava-sc"
#: help of --report (run and demo)
REPORT_HELP = "also write one self-contained HTML report (parameters, module table, figures) to this file"


class CLIError(Exception):
    """A problem with the user's input, reported as ``lava-sc: error: ...`` with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lava-sc`` and ``python -m lava_sc``; returns the exit status."""
    try:  # Ctrl-C is caught from the first import on, not only once the work has started
        return _run_command(argv)
    except KeyboardInterrupt:  # every output is written atomically: none is half-written
        return _interrupted()
    except Exception as err:
        if _caused_by_interrupt(err):  # numba, for one, wraps a Ctrl-C during its cache load in a SystemError
            return _interrupted()
        raise


def _interrupted() -> int:
    print(f"{PROG}: interrupted; files already written are complete, the others were not written.", file=sys.stderr)
    return 130


def _caused_by_interrupt(err: BaseException) -> bool:
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _run_command(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors (argparse already printed)
        return exit_.code if isinstance(exit_.code, int) else 2

    import scanpy as sc

    previous_verbosity = sc.settings.verbosity
    sc.settings.verbosity = 0 if args.quiet else 2
    try:
        return args.func(args)
    except (CLIError, ValueError, KeyError, TypeError, OSError, MemoryError) as err:
        print(f"{PROG}: error: {message(err)}", file=sys.stderr)
        return 2
    finally:
        sc.settings.verbosity = previous_verbosity


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._static import choices

    # the tools, named as (module, function): their defaults are read from the source, not imported
    localities, correlations, modules = (
        ("tl._localities", "localities"),
        ("tl._correlations", "correlations"),
        ("tl._modules", "modules"),
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="LAVA (Locality-Aware Variable Associations): explain an embedding through gene-gene "
        "association modules that recur across its localities.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or log messages (summary only)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,run}")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run LAVA on the bundled PBMC dataset (scanpy's pbmc68k_reduced) and write results and figures",
        description="Run LAVA with default settings on scanpy's bundled pbmc68k_reduced (700 cells, UMAP) "
        "and write the annotated h5ad, CSV tables and PNG figures to --out.",
    )
    demo.add_argument("--out", type=Path, default=Path("lava_demo"), help="output folder (default: %(default)s)")
    demo.add_argument(
        "--random-state", type=int, default=_default(modules, "random_state"), help="seed (default: %(default)s)"
    )
    demo.add_argument("--report", type=Path, default=None, metavar="PATH", help=REPORT_HELP)
    demo.set_defaults(func=run_demo)

    run = sub.add_parser(
        "run",
        parents=[common],
        help="run LAVA on an .h5ad file",
        description="Cut an embedding into localities (tl.localities), keep the significant gene-gene "
        "correlations in each (tl.correlations), find recurring modules (tl.modules), write OUT.h5ad.",
    )
    run.add_argument("input", type=Path, metavar="IN.h5ad", help="input AnnData (log-normalised X or --layer)")
    run.add_argument("--out", type=Path, required=True, metavar="OUT.h5ad", help="output AnnData with the results")
    loc = run.add_argument_group("localities")
    loc.add_argument(
        "--basis", default=_default(localities, "basis"), help="obsm embedding to cut (default: %(default)s)"
    )
    loc.add_argument(
        "--n-cells",
        type=at_least(3),
        default=None,
        help="cells per locality (default: n_obs / 7, clipped to [50, 200])",
    )
    loc.add_argument(
        "--overlap",
        type=above(0.0),
        default=_default(localities, "overlap"),
        help="average number of localities per cell (default: %(default)s)",
    )
    loc.add_argument(
        "--n-placements",
        type=placements,
        default=_default(localities, "n_placements"),
        help="independent probe placements, 'auto' or 1-5; pairs are kept if most placements find them "
        "(default: %(default)s, several only on small data)",
    )
    cor = run.add_argument_group("correlations")
    cor.add_argument(
        "--layer", default=_default(correlations, "layer"), help="layer with log-normalised expression (default: X)"
    )
    cor.add_argument(
        "--fdr",
        type=fraction,
        default=_default(correlations, "fdr"),
        help="false discovery rate per locality (default: %(default)s)",
    )
    cor.add_argument(
        "--max-partners",
        type=at_least(0),
        default=_default(correlations, "max_partners"),
        help="strongest significant partners kept per gene and locality; 0 keeps all (default: %(default)s)",
    )
    cor.add_argument(
        "--partial-out",
        action="append",
        default=None,
        metavar="COVARIATE",
        help="control for cell-type mixing inside localities: an obsm key (e.g. X_pca) or an obs "
        "column; repeat for several obs columns",
    )
    mod = run.add_argument_group("modules")
    mod.add_argument(
        "--method",
        choices=choices(*modules, "method"),
        default=_default(modules, "method"),
        help="module finder (default: %(default)s)",
    )
    mod.add_argument(
        "--resolution",
        type=above(0.0),
        default=_default(modules, "resolution"),
        help="Leiden resolution; higher gives more, smaller modules (default: %(default)s)",
    )
    mod.add_argument(
        "--rank",
        type=at_least(1),
        default=_default(modules, "rank"),
        help="NMF components (--method nmf) (default: %(default)s)",
    )
    out = run.add_argument_group("output")
    out.add_argument(
        "--key", default=_default(modules, "key"), help="key of the results in uns/obsm (default: %(default)s)"
    )
    out.add_argument(
        "--random-state", type=int, default=_default(modules, "random_state"), help="seed (default: %(default)s)"
    )
    out.add_argument(
        "--tables",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write modules.csv, module_genes.csv, activity.csv here",
    )
    out.add_argument(
        "--figures",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write activity.png, localities.png, network_M1.png here",
    )
    out.add_argument("--report", type=Path, default=None, metavar="PATH", help=REPORT_HELP)
    run.set_defaults(func=run_file)
    return parser


def run_demo(args: argparse.Namespace) -> int:
    import scanpy as sc

    from . import tl

    out: Path = args.out
    adata = sc.datasets.pbmc68k_reduced()
    tl.modules(adata, random_state=args.random_state)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_h5ad(adata, out / "pbmc68k_lava.h5ad")]
    written += write_tables(adata, out, key="lava")
    written += write_figures(adata, out, key="lava")
    if args.report is not None:
        from .io import write_report

        written.append(write_report(adata, args.report, key="lava", title="LAVA demo: scanpy pbmc68k_reduced"))
    print(summary(adata, key="lava", title="LAVA demo: scanpy pbmc68k_reduced (PBMC, UMAP)"))
    print(written_files(written))
    return 0


def run_file(args: argparse.Namespace) -> int:
    import anndata as ad

    from . import tl

    if not args.input.is_file():
        raise CLIError(f"input file {str(args.input)!r} not found.")
    try:
        adata = ad.read_h5ad(args.input)
    except OSError as err:
        raise CLIError(f"cannot read {str(args.input)!r} as an .h5ad file ({message(err)}).") from err
    partial_out = args.partial_out
    if partial_out is not None and len(partial_out) == 1:
        partial_out = partial_out[0]
    check_inputs(adata, args, partial_out)
    tl.localities(
        adata,
        args.basis,
        n_cells=args.n_cells,
        overlap=args.overlap,
        n_placements=args.n_placements,
        random_state=args.random_state,
        key_added=args.key,
    )
    tl.correlations(
        adata,
        layer=args.layer,
        key=args.key,
        fdr=args.fdr,
        max_partners=args.max_partners or None,
        partial_out=partial_out,
        random_state=args.random_state,
    )
    tl.modules(
        adata,
        key=args.key,
        method=args.method,
        resolution=args.resolution,
        rank=args.rank,
        random_state=args.random_state,
    )
    written = [write_h5ad(adata, args.out)]
    if args.tables is not None:
        args.tables.mkdir(parents=True, exist_ok=True)
        written += write_tables(adata, args.tables, key=args.key)
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        written += write_figures(adata, args.figures, key=args.key)
    if args.report is not None:
        from .io import write_report

        written.append(write_report(adata, args.report, key=args.key, title=f"LAVA on {args.input.name}"))
    print(summary(adata, key=args.key, title=f"LAVA on {args.input.name}"))
    print(written_files(written))
    return 0


def check_inputs(adata, args: argparse.Namespace, partial_out) -> None:
    """Check what the flags name in the input before any work: --basis, --layer, --partial-out."""
    from ._adata import covariate_columns
    from ._validate import layer_values, resolve_basis

    checks = {  # the tools' own lookups, without reading the data (the tools check the values)
        "--basis": lambda: resolve_basis(adata, args.basis),
        "--layer": lambda: layer_values(adata, args.layer),
        "--partial-out": lambda: partial_out is None or covariate_columns(adata, partial_out),
    }
    for flag, check in checks.items():
        try:
            check()
        except (KeyError, ValueError, TypeError) as err:
            raise CLIError(f"{flag}: {as_flags(message(err))}") from err


#: the Python spellings in the tools' messages, and what a command-line user types instead
FLAG_SPELLINGS = {
    "pass `layer=None` for X": "omit --layer to read X",
    "pass `basis=`": "pass --basis",
    "`partial_out` ": "",
}


def as_flags(text: str) -> str:
    for python, flag in FLAG_SPELLINGS.items():
        text = text.replace(python, flag)
    return text


def at_least(low: int):
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def placements(text: str) -> int | str:
    """An argparse type for --n-placements: ``auto`` or an integer from 1 to ``tl.localities``' limit."""
    if text == "auto":
        return text
    from .tl._localities import MAX_PLACEMENTS

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PLACEMENTS:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer from 1 to {MAX_PLACEMENTS}, got {text}")
    return value


placements.__name__ = "placements"


def above(low: float):
    """An argparse type: a finite number > ``low``."""

    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or value <= low:
            raise argparse.ArgumentTypeError(f"must be a number > {low:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def fraction(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


# ----------------------------------------------------------------------------------------------------------------------
# outputs


def write_h5ad(adata, path: Path) -> Path:
    """Write atomically: ``--out IN.h5ad`` (in place) leaves the old file whole if interrupted."""
    from ._files import atomic_write

    with atomic_write(path) as partial:
        adata.write_h5ad(partial)
    return path


def write_tables(adata, folder: Path, *, key: str) -> list[Path]:
    from . import get
    from ._files import atomic_write

    tables = {
        "modules.csv": (get.modules(adata, key=key), False),
        "module_genes.csv": (get.module_genes(adata, key=key), False),
        "activity.csv": (get.activity(adata, key=key, level="cells"), True),
    }
    paths = []
    for name, (frame, index) in tables.items():
        path = folder / name
        with atomic_write(path) as partial:
            if index:
                frame.to_csv(partial, index_label="cell")
            else:
                frame.to_csv(partial, index=False)
        paths.append(path)
    return paths


def write_figures(adata, folder: Path, *, key: str) -> list[Path]:
    """Draw the standard figures with :mod:`lava_sc.pl`; a figure that cannot be drawn is skipped with a warning."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import pl
    from ._files import atomic_write

    names = module_list(adata, key)
    basis = str(adata.uns[key]["params"]["localities"]["basis"])
    basis = basis[2:] if basis.startswith("X_") else basis
    jobs = [
        ("localities", folder / "localities.png", lambda save: pl.localities(adata, key=key, show=False, save=save))
    ]
    if names:
        jobs.insert(
            0,
            (
                "activity",
                folder / "activity.png",
                lambda save: pl.activity(adata, None, basis=basis, key=key, show=False, save=save),
            ),
        )
        jobs.append(
            (
                "module_network",
                folder / f"network_{names[0]}.png",
                lambda save: pl.module_network(adata, names[0], key=key, show=False, save=save),
            )
        )
    else:
        warn("no modules found; skipped activity.png and the module network figure.")
    written = []
    for function, path, draw in jobs:
        if not callable(getattr(pl, function, None)):
            warn(f"lava_sc.pl.{function} is not available in this version; skipped {path.name}.")
            continue
        try:
            result = draw(str(path))
            if not path.is_file():  # the plot returned its axes without saving: save the figure ourselves
                figure = figure_of(result)
                if figure is None:
                    raise RuntimeError("the plot saved nothing and returned no axes")
                with atomic_write(path) as partial:
                    figure.savefig(partial, dpi=150, bbox_inches="tight")
        except Exception as err:  # a figure must never cost the user the results already written
            warn(f"could not draw {path.name} with lava_sc.pl.{function}: {message(err)}")
        else:
            written.append(path)
        finally:
            plt.close("all")
    return written


def figure_of(result):
    """The matplotlib Figure behind what a plot returned (Axes, list of Axes, Figure or None)."""
    from matplotlib.figure import Figure

    if isinstance(result, Figure):
        return result
    if isinstance(result, (list, tuple, np.ndarray)):
        items = list(np.ravel(np.asarray(result, dtype=object)))
        return figure_of(items[0]) if items else None
    return getattr(result, "figure", None)


# ----------------------------------------------------------------------------------------------------------------------
# summary


def module_list(adata, key: str) -> list[str]:
    from . import get

    return [str(c) for c in get.activity(adata, key=key, level="localities").columns]


def placements_note(diag) -> str:
    """``", 5 placements (pairs kept in 3+)"`` for several placements, else nothing."""
    k = int(diag.get("n_placements", 1) or 1)
    return f", {k} placements (pairs kept in {k // 2 + 1}+)" if k > 1 else ""


def summary(adata, *, key: str = "lava", title: str = "LAVA") -> str:
    """A one-screen text summary of the LAVA results stored under ``key`` (the rows of ``get.summary``)."""
    from . import get

    slot = adata.uns[key]
    params = slot["params"]
    diag = slot["localities"]
    n_loc = int(diag["n_localities"])
    n_found = int(np.asarray(slot["correlations"]["n_discoveries"]).sum())
    n_pairs = int(slot["sketch"].shape[1])
    table = get.summary(adata, key=key, n_top_genes=N_TOP_GENES)
    method = params["modules"]["method"]
    lines = [
        title,
        f"  cells                     {adata.n_obs}",
        f"  genes tested              {table.attrs['n_genes_tested']} ({table.attrs['gene_source']})",
        f"  localities                {n_loc} on {diag['basis']} ({int(params['localities']['n_cells'])} cells each, "
        f"overlap {float(params['localities']['overlap']):g}{placements_note(diag)}; "
        f"{int(diag['n_uncovered'])} cells in none)",
        f"  significant associations  {n_found} (locality, gene pair) at FDR {float(params['correlations']['fdr']):g}; "
        f"{n_pairs} distinct pairs",
        f"  modules                   {len(table)} ({method})",
    ]
    if not len(table):
        lines.append("")
        lines.append("No modules found. Try more cells per locality (--n-cells), a higher --fdr, or --method nmf.")
        return "\n".join(lines)
    groupby = table.attrs["groupby"]
    where = "where_active" in table
    lines += [
        "",
        "  active = % of cells where the module is active: at least half of its gene-pair weight is",
        "           significant (permutation test) in at least half of the cell's localities",
    ]
    if where:
        found = int(params["modules"].get("n_between_population", 0))
        fate = "dropped" if params["modules"].get("between_populations", "drop") == "drop" else "kept"
        lines += [
            f"  where active = the {groupby} groups holding most of its active cells (% of the group",
            f"           active); * = mostly supported by localities mixing {groupby} groups;",
            f"           {found} module(s) that were only a difference between group means were {fate}",
        ]
    place_of = {row.module: place(row, where) for row in table.itertuples(index=False)}
    width_place = max(len("where active"), *(len(p) for p in place_of.values())) + 2 if where else 0
    lines += [
        "",
        f"  {'module':<7} {'genes':>5} {'pairs':>6} {'active':>7}   "
        + ("where active".ljust(width_place) if where else "")
        + "top genes",
    ]
    shown = table.head(MAX_SUMMARY_MODULES)
    width = max(len(str(n)) for n in shown["module"])
    for row in shown.itertuples(index=False):
        top = row.top_genes + (", ..." if row.n_genes > N_TOP_GENES else "")
        lines.append(
            f"  {row.module:<{max(width, 7)}} {row.n_genes:>5} {row.n_pairs:>6} {row.active_cells:>7.0%}   "
            + place_of[row.module].ljust(width_place)
            + top
        )
    if len(table) > MAX_SUMMARY_MODULES:
        lines.append(f"  ... and {len(table) - MAX_SUMMARY_MODULES} more modules (see modules.csv / module_genes.csv)")
    return "\n".join(lines)


def place(row, where: bool) -> str:
    """A summary row's 'where active' cell: its groups, starred when mostly from mixed localities."""
    from .tl._populations import MIXED_SHARE_FLAG

    if not where:
        return ""
    mixed = getattr(row, "mixed_share", float("nan"))
    return (row.where_active or "-") + (" *" if mixed >= MIXED_SHARE_FLAG else "")


def written_files(paths: list[Path]) -> str:
    return "\nwritten:\n" + "\n".join(f"  {p}" for p in paths)


# ----------------------------------------------------------------------------------------------------------------------
# helpers


def message(err: BaseException) -> str:
    """The text of an exception (a KeyError's message without the quotes str() adds)."""
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        return err.args[0]
    return str(err) or type(err).__name__


def warn(text: str) -> None:
    print(f"lava-sc: warning: {text}", file=sys.stderr)


def _default(tool: tuple[str, str], name: str):
    """A tool's default for ``name``, so the command line and the Python API cannot drift apart."""
    from ._static import default

    return default(*tool, name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
