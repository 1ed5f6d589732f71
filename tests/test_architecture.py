"""The data flows one way: the importers and exporters (interop/), the calculator, the
renderers, the backends, the kinds and the language never import the API, which imports
them (an AST check of every import, at any depth of a function)."""

import ast

import pytest

from conftest import ROOT

BELOW_THE_API = ("interop", "analysis", "render", "backends", "layers", "language")


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            dots = "." * node.level
            yield f"{dots}{node.module or ''}", [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


@pytest.mark.parametrize("package", BELOW_THE_API)
def test_nothing_below_the_api_imports_it(package):
    found = []
    for path in sorted((ROOT / "cnncalc" / package).glob("*.py")):
        for module, names in _imports(path):
            bare = module.lstrip(".")
            if bare in ("api", "cnncalc.api") or (bare in ("", "cnncalc") and "api" in names) \
                    or bare == "cnncalc" and module == "cnncalc":
                found.append(f"{path.relative_to(ROOT)}: {module} {names}")
    assert not found, found
