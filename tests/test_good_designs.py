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


def _open(text: str) -> str:
    """The same design with every spatial size of its input open: input 8x12x3 → ?x?x3."""
    import re
    return re.sub(r"^input ((?:\d+x)+)(\d+)$", lambda m: "input " + "?x" * m[1].count("x")
                  + m[2], text, count=1, flags=re.M)


def _renders_open(text):
    """At open sizes every command and text format answers, or refuses in one line with
    exit 2 (JSON needs numbers): never a traceback. A U-Net's crop at open sizes once
    ended in a TypeError in the table, CSV and Markdown alike."""
    try:
        analyse(parse(text))
    except SpecDesignError:
        return
    text = _open(text)
    run = CliRunner().invoke
    for fmt in ("table", "markdown", "csv", "html", "json"):
        res = run(main, ["summary", "-e", text, "--format", fmt, "--columns", "all"])
        assert res.exit_code in (0, 2) and res.exception is None or \
            isinstance(res.exception, SystemExit), (fmt, text, res.output)
        if res.exit_code == 2:  # (the table shows the rows up to the failing layer first)
            assert "error: " in res.output and "Traceback" not in res.output
    res = run(main, ["explain", "-e", text])
    assert res.exit_code in (0, 2) and "Traceback" not in res.output, res.output


@pytest.mark.slow
@SETTINGS
@given(graph())
def test_every_valid_graph_renders_at_open_sizes(text):
    _renders_open(text)


@pytest.mark.parametrize("spec", ["unet", "fpn", "densenet_block", "inception3a",
                                  "efficientnet_b0", "espcn", "dcgan_generator"])
def test_zoo_designs_render_at_open_sizes(spec):
    from conftest import SPECS
    _renders_open((SPECS / f"{spec}.cnn").read_text())
