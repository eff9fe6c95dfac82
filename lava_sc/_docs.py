"""Docstring pieces shared by the public functions, written once.

A docstring names a piece by a line that holds only ``{name}`` (at the parameter's indentation);
:func:`doc` replaces it with the piece, re-indented to that column. Pieces may take values given
to the decorator (``@doc(figure="lava_activity.png")`` for the ``save`` piece). Other braces in a
docstring (``{"resolution": [0.5, 2]}``) are left alone.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

PIECES = {
    "adata_modules": """
        adata
            Annotated data matrix with results of :func:`lava_sc.tl.modules`.
        """,
    "adata_encoder": """
        adata
            Annotated data matrix (log-normalised expression; with ``encoder="pca"`` the result of
            ``sc.pp.pca(adata)``).
        """,
    "key": """
        key
            Key of the LAVA results: ``uns[key]`` and ``obsm[f"{key}_..."]``, as written by
            :func:`lava_sc.tl.localities` (its ``key_added``) and the steps after it.
        """,
    "layer": """
        layer
            Layer with the expression; ``None`` uses ``X``.
        """,
    "copy": """
        copy
            Return a modified copy instead of writing into ``adata``.
        """,
    "ax": """
        ax
            Draw into this Axes.
        """,
    "show": """
        show
            Show the figure. Default: show unless ``ax`` was given.
        """,
    "save": """
        save
            Write the figure to this path (PNG at 150 dpi when the path has no other suffix); ``True``
            writes ``%(figure)s`` into ``scanpy.settings.figdir``.
        """,
    "returns_axes": """
        The Axes with ``show=False`` (or with ``ax``), otherwise ``None``.
        """,
}

PLACEHOLDER = re.compile(r"^(?P<indent>[ ]*)\{(?P<name>[a-z_]+)\}[ ]*$", re.MULTILINE)


def piece(name: str, **values) -> str:
    """The piece ``name`` with its values filled in, without indentation."""
    if name not in PIECES:
        raise KeyError(f"No shared docstring piece {name!r}; known: {sorted(PIECES)}.")
    return textwrap.dedent(PIECES[name]).strip("\n") % values


def fill(docstring: str, **values) -> str:
    """Replace each placeholder line ``{name}`` of ``docstring`` by its piece, at the line's indentation."""

    def replace(match: re.Match) -> str:
        return textwrap.indent(piece(match["name"], **values), match["indent"])

    return PLACEHOLDER.sub(replace, docstring)


def doc(**values) -> Callable[[Callable], Callable]:
    """Decorator: fill the shared pieces of a function's docstring (see the module docstring)."""

    def decorate(function: Callable) -> Callable:
        function.__doc__ = fill(function.__doc__ or "", **values)
        return function

    return decorate
