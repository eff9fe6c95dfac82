"""Defaults and ``Literal`` choices of a tool's parameters, read from its source without importing it.

The command line takes its defaults from the tools' signatures, so that the two cannot drift apart,
but importing a tool loads numba, scanpy and pandas (seconds): ``lava-sc --help`` must answer before
that. The signature is parsed with :mod:`ast`; a default may be a literal or a module-level constant
(of the tool's module or of a ``lava_sc`` module it imports the name from).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def _tree(module: str) -> ast.Module:
    """The parsed source of ``lava_sc.<module>`` (``module`` like ``"tl._modules"``)."""
    path = _PACKAGE.joinpath(*module.split(".")).with_suffix(".py")
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _function(module: str, name: str) -> ast.FunctionDef:
    for node in _tree(module).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"no function {name!r} in lava_sc.{module}")


def _parameter(module: str, function: str, name: str) -> tuple[ast.arg, ast.expr | None]:
    args = _function(module, function).args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    for arg, default in pairs:
        if arg.arg == name:
            return arg, default
    raise LookupError(f"lava_sc.{module}.{function} has no parameter {name!r}")


def _constant(module: str, name: str):
    """The value of a module-level ``name = <literal>`` in ``lava_sc.<module>``, following relative imports."""
    for node in _tree(module).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return ast.literal_eval(node.value)
        if (
            isinstance(node, ast.ImportFrom)
            and node.level
            and any(a.name == name and a.asname is None for a in node.names)
        ):
            package = module.split(".")[: -node.level]
            return _constant(".".join([*package, *(node.module or "").split(".")]).strip("."), name)
    raise LookupError(f"no constant {name!r} in lava_sc.{module}")


def default(module: str, function: str, name: str):
    """The default of parameter ``name`` of ``lava_sc.<module>.<function>``."""
    _, node = _parameter(module, function, name)
    if node is None:
        raise LookupError(f"lava_sc.{module}.{function}: {name!r} has no default")
    if isinstance(node, ast.Name):
        return _constant(module, node.id)
    return ast.literal_eval(node)


def choices(module: str, function: str, name: str) -> tuple:
    """The values of the ``Literal[...]`` in the annotation of parameter ``name``."""
    arg, _ = _parameter(module, function, name)
    for node in ast.walk(arg.annotation) if arg.annotation is not None else ():
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
            inner = node.slice
            values = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return tuple(ast.literal_eval(v) for v in values)
    raise LookupError(f"lava_sc.{module}.{function}: {name!r} is not annotated with a Literal")
