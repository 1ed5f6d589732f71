import json
import os
import sys
import types
from pathlib import Path

import pytest

from cnncalc import analyse, parse as load

# torchvision's compiled operators (torchvision::nms) are built for another torch than this
# project's CPU torch 2.13.0 and do not load here; its models are pure Python, and a stand-in
# for the module that registers those operators' meta kernels lets them import.
sys.modules.setdefault("torchvision._meta_registrations",
                       types.ModuleType("torchvision._meta_registrations"))

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def pytest_collection_modifyitems(config, items):
    """Under a mutant of `make mutate`, the fastest tests first: mutmut 3 hands its tests
    over unordered, and a mutant that a quick test kills should not wait for slow ones."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    try:  # the run's own timings, written by mutmut beside the copied tests (mutants/)
        took = json.loads((ROOT / "mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda item: took.get(item.nodeid, 0.0))


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current output (review the diff!)")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def summarize(text: str):
    return analyse(load(text))


def spec_text(name: str) -> str:
    return (SPECS / name).read_text()
