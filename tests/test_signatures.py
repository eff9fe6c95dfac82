"""The scanpy conventions of the public API, checked on every function of tl, pl, get and explain."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import typing

import pytest

import lava_sc as lv
from lava_sc._docs import PLACEHOLDER

ROOMS = ("tl", "pl", "get", "explain")
#: each public function once, in its home room (``lv.tl`` re-exports the explainers)
PUBLIC = sorted(
    (room, name)
    for room in ROOMS
    for name in getattr(lv, room).__all__
    if getattr(getattr(lv, room), name).__module__.startswith(f"lava_sc.{room}.")
)
#: string parameters that name something of the user's (a key, a column, a layer), not a choice
FREE_TEXT = {
    "key",
    "key_added",
    "basis",
    "layer",
    "groupby",
    "reference",
    "replicate",
    "within",
    "condition",
    "cmap",
    "color",
}
MAX_POSITIONAL = 3


def function(room: str, name: str):
    return getattr(getattr(lv, room), name)


def parameters(room: str, name: str) -> list[inspect.Parameter]:
    return list(inspect.signature(function(room, name)).parameters.values())


def documented(docstring: str) -> set[str]:
    """Parameter names listed in the numpydoc ``Parameters`` section (``a, b`` lines give both)."""
    match = re.search(r"\n    Parameters\n    -+\n(.*?)(?:\n    [A-Z][a-z]+\n    -+\n|\Z)", docstring, re.S)
    if match is None:
        return set()
    names = set()
    for line in match.group(1).splitlines():
        if re.match(r"^    [*\w]", line):
            names.update(n.strip().lstrip("*") for n in line.split(","))
    return names


@pytest.mark.parametrize(("room", "name"), PUBLIC)
def test_adata_first_and_at_most_three_positional(room, name):
    params = parameters(room, name)
    assert params[0].name == "adata", f"{room}.{name}: the first parameter must be `adata`"
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= MAX_POSITIONAL, f"{room}.{name}: positional parameters {positional}"


@pytest.mark.parametrize(("room", "name"), PUBLIC)
def test_copy_is_keyword_only(room, name):
    params = {p.name: p for p in parameters(room, name)}
    if "copy" in params:
        assert params["copy"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["copy"].default is False


@pytest.mark.parametrize(("room", "name"), [(r, n) for r, n in PUBLIC if r in ("get", "pl")])
def test_readers_and_plots_read_key(room, name):
    names = [p.name for p in parameters(room, name)]
    assert "key_added" not in names, f"{room}.{name} reads results: it takes `key`, not `key_added`"
    assert "key" in names


@pytest.mark.parametrize("name", lv.pl.__all__)
def test_plots_take_ax_show_save_and_return_axes(name):
    params = {p.name: p for p in parameters("pl", name)}
    for option in ("ax", "show", "save"):
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY, f"pl.{name}: `{option}` keyword-only"
        assert params[option].default is None
    assert "Axes" in str(inspect.signature(function("pl", name)).return_annotation)


def offers_literal(hint) -> bool:
    """Whether a resolved annotation is a ``Literal`` or a union with one (``Literal["pca"] | Callable``)."""
    if typing.get_origin(hint) is typing.Literal:
        return True
    return any(offers_literal(arg) for arg in typing.get_args(hint))


@pytest.mark.parametrize(("room", "name"), PUBLIC)
def test_choices_are_literal(room, name):
    hints = typing.get_type_hints(inspect.unwrap(function(room, name)))
    for p in parameters(room, name):
        if isinstance(p.default, str) and p.name not in FREE_TEXT:
            assert offers_literal(hints.get(p.name)), f"{room}.{name}: `{p.name}` is a choice; annotate it Literal[...]"


@pytest.mark.parametrize(("room", "name"), PUBLIC)
def test_every_parameter_is_documented(room, name):
    docstring = function(room, name).__doc__ or ""
    assert not PLACEHOLDER.search(docstring), f"{room}.{name}: an unfilled docstring piece"
    names = {p.name for p in parameters(room, name)}
    missing = names - documented(docstring)
    assert not missing, f"{room}.{name}: parameters without documentation: {sorted(missing)}"


@pytest.mark.parametrize("room", ROOMS)
def test_every_module_has_a_docstring(room):
    package = getattr(lv, room)
    bare = [
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not (importlib.import_module(f"{package.__name__}.{info.name}").__doc__ or "").strip()
    ]
    assert not bare, f"lava_sc.{room}: modules without a docstring: {bare}"


def test_deprecated_spellings_still_work_with_a_warning(tmp_path):
    """The shims: readers' ``key_added=`` and DAC's positional groups."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    adata = ad.AnnData(np.zeros((2, 2)))
    adata.uns["stability"] = {"effects": pd.DataFrame({"a": [1]}), "noise_floor": pd.DataFrame({"b": [2]})}
    with pytest.warns(FutureWarning, match="`key_added=` is now `key=`"):
        old = lv.get.stability(adata, key_added="stability")
    pd.testing.assert_frame_equal(old, lv.get.stability(adata, key="stability"))
