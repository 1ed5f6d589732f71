"""The generated parser and the playground page ship inside the wheel, so `pip install .` works from any directory."""

import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_holds_the_parser_and_the_playground(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("cnncalc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    # the parser Lark generated from grammar/cnncalc.lark (no Lark at run time), the page
    assert "cnncalc/language/_lark.py" in names and "cnncalc/web/page.html" in names
    assert "cnncalc/cli/__init__.py" in names
