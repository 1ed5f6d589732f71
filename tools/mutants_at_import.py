"""Run mutants of code that runs at import time (the option tables, the kind registry, the
activations' table) in a fresh interpreter each.

mutmut forks every mutant from a process that has already imported cnncalc, so a mutant of
a function called at import (``Amount.__init__``, ``Layer.__init_subclass__``) never takes
effect there and is reported as surviving, untested. Here each named mutant runs in a new
Python that imports the mutated package under that mutant, on the tests and options that
mutmut uses (pyproject's [tool.mutmut], fastest tests first: tests/conftest.py), and its
verdict is written back where ``mutmut results`` reads it.

    .venv/bin/python tools/mutants_at_import.py NAME [NAME ...]   (after 'make mutate')
    .venv/bin/python tools/mutants_at_import.py --survivors   (those that ran at import)
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"


def meta_path(name: str) -> Path:
    """cnncalc.layers.base.xǁAmountǁ__init____mutmut_3 -> mutants/cnncalc/layers/base.py.meta"""
    module = name.split(".x")[0] if ".xǁ" in name else name.split(".x_")[0]
    return MUTANTS / (module.replace(".", "/") + ".py.meta")


# run in a fresh Python: every cnncalc function that importing the package calls
_TRACE = """
import json, sys
calls = set()
def seen(frame, event, arg):
    name = frame.f_globals.get("__name__", "")
    if event == "call" and name.startswith("cnncalc"):
        calls.add((name, getattr(frame.f_code, "co_qualname", frame.f_code.co_name)))
sys.setprofile(seen)
import cnncalc, cnncalc.layers, cnncalc.api
sys.setprofile(None)
print(json.dumps(sorted(calls)))
"""


def at_import() -> set:
    """mutmut's names of the functions that run while cnncalc is imported:
    'cnncalc.layers.base.xǁAmountǁ__init__', 'cnncalc.layers.activations.x_option'."""
    out = subprocess.run([sys.executable, "-c", _TRACE], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for module, qualname in json.loads(out):
        parts = qualname.split(".")
        if "<locals>" in parts or "<" in parts[-1]:
            continue  # comprehensions and inner functions are mutated with their owner
        names.add(f"{module}.xǁ{'ǁ'.join(parts)}" if len(parts) > 1 else f"{module}.x_{qualname}")
    return names


def survivors() -> list:
    """The mutants that mutmut reports surviving in functions that run at import."""
    listing = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "results"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    functions = at_import()
    names = [line.split(":")[0].strip() for line in listing.splitlines()
             if line.rstrip().endswith(": survived")]
    return [n for n in names if n.rsplit("__mutmut_", 1)[0] in functions]


def run(name: str, config) -> int:
    """pytest's exit code under the mutant: 0 when every test passed (it survived)."""
    env = {**os.environ, "MUTANT_UNDER_TEST": name, "PYTHONPATH": str(MUTANTS)}
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
            "--rootdir=.", *config.pytest_add_cli_args_test_selection,
            *config.pytest_add_cli_args]
    try:
        return subprocess.run(args, cwd=MUTANTS, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=1800).returncode
    except subprocess.TimeoutExpired:
        return 1  # mutmut counts a mutant that hangs as caught


def main(names):
    if not MUTANTS.is_dir():
        sys.exit("no mutants/ here: run 'make mutate' first")
    if names == ["--survivors"]:
        names = survivors()
        print(f"{len(names)} surviving mutants of code that runs at import")
    if not names:
        return
    os.chdir(ROOT)  # mutmut reads its settings from pyproject.toml here
    from mutmut.configuration import config as mutmut_config
    config = mutmut_config()
    shutil.copytree(ROOT / "tests", MUTANTS / "tests", dirs_exist_ok=True)  # the newest tests
    clean = run("", config)  # the same command without a mutant must pass, or no verdict holds
    if clean != 0:
        sys.exit(f"the tests fail without a mutant (pytest exit {clean}): no verdicts written")
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        codes = dict(zip(names, pool.map(lambda n: run(n, config), names)))
    for name, code in codes.items():
        path = meta_path(name)
        meta = json.loads(path.read_text())
        if name not in meta["exit_code_by_key"]:
            sys.exit(f"{name}: not a mutant of {path.name}")
        meta["exit_code_by_key"][name] = 0 if code == 0 else 1
        path.write_text(json.dumps(meta, indent=4))
        print(f"{name}: {'survived' if code == 0 else 'killed'} (pytest exit {code})")


if __name__ == "__main__":
    main(sys.argv[1:])
