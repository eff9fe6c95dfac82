"""Tests for :mod:`lava_sc._static`: defaults and choices read from the source match the imported tools,
and ``lava-sc --help`` imports none of the heavy libraries."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing

import pytest

from lava_sc import _static
from lava_sc.tl import correlations, localities, modules

TOOLS = [("tl._localities", "localities", localities), ("tl._correlations", "correlations", correlations),
         ("tl._modules", "modules", modules)]  # fmt: skip


@pytest.mark.parametrize(("module", "name", "tool"), TOOLS)
def test_every_default_and_choice_matches_the_signature(module, name, tool):
    hints = typing.get_type_hints(inspect.unwrap(tool))
    for p in inspect.signature(tool).parameters.values():
        if p.default is inspect.Parameter.empty:
            with pytest.raises(LookupError):
                _static.default(module, name, p.name)
            continue
        assert _static.default(module, name, p.name) == p.default, p.name
        hint = hints.get(p.name)
        literal = [a for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is typing.Literal]
        if literal:
            assert _static.choices(module, name, p.name) == typing.get_args(literal[0]), p.name


def test_unknown_names_raise_lookup_error():
    with pytest.raises(LookupError, match="no parameter"):
        _static.default("tl._modules", "modules", "no_such_option")
    with pytest.raises(LookupError, match="no function"):
        _static.default("tl._modules", "no_such_tool", "key")
    with pytest.raises(LookupError, match="Literal"):
        _static.choices("tl._modules", "modules", "resolution")


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from lava_sc.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['demo', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('scanpy', 'anndata', 'numba', 'pandas', 'scipy', 'sklearn', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]
    assert "--out" in done.stdout and "--method {leiden,nmf}" in done.stdout
