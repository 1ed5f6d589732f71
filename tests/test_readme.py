"""The README shows what the code does: its layer table is the kinds' own catalogue, and
its Python example runs as written."""

import re

from conftest import ROOT


def test_layer_table_is_generated_from_the_kinds():
    from cnncalc.layers.catalogue import catalogue
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- layers:begin -->\n")[1].split("<!-- layers:end -->")[0]
    assert table == catalogue("markdown"), "regenerate: cnncalc layers --format markdown"


def test_python_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    s = namespace["s"]
    assert s.totals.params == 25_610_152 and s.output == (1000,)  # torchvision + buffers
    assert namespace["s2"].output == (64, 64, 16)
