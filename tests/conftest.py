from pathlib import Path

import pytest

from cnncalc import analyse, parse as load

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


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
