"""The example notebook runs top to bottom (its code cells, in order, in one namespace,
as a kernel would; the last expression of each cell is displayed through its reprs)."""

import ast
import json
import os

from conftest import ROOT


def test_tour_notebook_runs(monkeypatch):
    path = ROOT / "examples" / "tour.ipynb"
    monkeypatch.chdir(path.parent)
    namespace, shown = {}, []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, str(path), "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), str(path), "eval"), namespace)
            for method in ("_repr_html_", "_repr_svg_"):
                if hasattr(value, method):
                    shown.append(getattr(value, method)())
    assert any("<table>" in s and "138,357,544" in s for s in shown)
    assert any(s.startswith("<svg") for s in shown)
    assert namespace["logits"].tolist() == [[6, 15, 9], [14, -36, -4], [-4, 10, 7]]
    assert os.getcwd().endswith("examples")
