"""The package's structural rules (issue 11), checked on the source so they cannot quietly regress.

- no module over ``MAX_MODULE_LINES`` lines;
- no function body over ``MAX_FUNCTION_CODE_LINES`` code lines (docstring, comments and blank lines excluded);
- no module imports another module's private (underscore) names, or a private module;
- one registry of mask functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rim_monai"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_CODE_LINES = 80


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def function_code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """Lines of a function's body that hold code: its docstring, blank lines and comment lines are not counted."""
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body = body[1:]
    if not body:
        return 0
    text = lines[body[0].lineno - 1 : node.end_lineno]
    return sum(1 for line in text if line.strip() and not line.strip().startswith("#"))


def private_imports(tree: ast.Module) -> list[str]:
    """``from a import _b`` and ``from a._b import c`` statements (dunder names such as ``__version__`` are fine)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if any(_is_private(part) for part in module.split(".")):
                found.append(f"line {node.lineno}: from {module} import ...")
            found += [f"line {node.lineno}: from {module} import {a.name}" for a in node.names if _is_private(a.name)]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if any(_is_private(part) for part in a.name.split("."))]
    return found


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_module_size(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{_relative(path)} has {n} lines (at most {MAX_MODULE_LINES}): split it by concept"


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_function_size(path):
    source = path.read_text()
    lines = source.splitlines()
    long = [
        f"{node.name} (line {node.lineno}): {function_code_lines(node, lines)} code lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and function_code_lines(node, lines) > MAX_FUNCTION_CODE_LINES
    ]
    assert not long, f"{_relative(path)}: functions over {MAX_FUNCTION_CODE_LINES} code lines: {long}"


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_private_imports(path):
    found = private_imports(ast.parse(path.read_text()))
    assert not found, f"{_relative(path)} imports private names: {found}"


def test_one_mask_registry():
    """Exactly one module assigns the mask-function registry ``MASK_FUNCTIONS``."""
    owners = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id == "MASK_FUNCTIONS" for t in targets):
                owners.append(_relative(path))
    assert len(owners) == 1, f"MASK_FUNCTIONS is defined in {owners}: expected exactly one registry"


def test_checks_catch_violations():
    """The checks themselves find what they are meant to find (so a passing run means something)."""
    source = 'def f():\n    """doc\n\n    more"""\n    # comment\n\n    a = 1\n    return a\n'
    node = ast.parse(source).body[0]
    assert function_code_lines(node, source.splitlines()) == 2
    tree = ast.parse("from a._b import c\nfrom a import _d\nfrom a import __version__\nimport x._y\n")
    assert len(private_imports(tree)) == 3
