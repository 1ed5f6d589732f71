"""The grammar ships inside the wheel, so `pip install .` works from any directory."""

import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_holds_the_grammar(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("cnncalc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "cnncalc/grammar/cnncalc.lark" in names
    assert "cnncalc/cli.py" in names
