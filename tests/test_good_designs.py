"""Every valid design renders (issue 11): random specs from the property generators (all
kinds, ranks 1 to 3, branches) go through every format, all columns, explain, draw and
sizes with exit code 0, and the JSON validates against 'cnncalc schema'."""

import json
import os

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from cnncalc import SpecDesignError, analyse, parse
from cnncalc.cli import main
from test_property import graph, sequential

EXAMPLES = int(os.environ.get("CNNCALC_DESIGN_EXAMPLES", "0")) or 40  # make fuzz: 2,000
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
_SCHEMA = {}


def _schema():
    if not _SCHEMA:
        res = CliRunner().invoke(main, ["schema"])
        _SCHEMA.update(json.loads(res.output))
    return _SCHEMA


def _renders(text, tmp):
    try:
        analyse(parse(text))
    except SpecDesignError:
        return  # not a valid design; the property tests check refusals
    import jsonschema
    run = CliRunner().invoke
    for fmt in ("table", "json", "markdown", "csv", "html"):
        for columns in ("default", "all"):
            res = run(main, ["summary", "-e", text, "--format", fmt, "--columns", columns])
            assert res.exit_code == 0, (fmt, columns, res.output)
            if fmt == "json":
                jsonschema.validate(json.loads(res.stdout), _schema())
    for args in (["explain", "-e", text], ["draw", "-e", text, "-o", str(tmp / "n.svg")]):
        res = run(main, args)
        assert res.exit_code == 0, (args[0], res.output)
    res = run(main, ["sizes", "-e", text, "--open", "--range", "1:64"])
    assert res.exit_code == 0, res.output


@pytest.mark.slow
@SETTINGS
@given(sequential())
def test_every_valid_chain_renders(tmp_path_factory, text):
    _renders(text, tmp_path_factory.mktemp("d"))


@pytest.mark.slow
@SETTINGS
@given(graph())
def test_every_valid_graph_renders(tmp_path_factory, text):
    _renders(text, tmp_path_factory.mktemp("d"))
