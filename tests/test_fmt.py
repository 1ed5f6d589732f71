"""'cnncalc fmt' (issue 15): formatting is idempotent and never changes the network, for
the zoo and for random designs laid out carelessly; --check says which file would change."""

import re

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.cli import main
from cnncalc.language.fmt import format_spec
from conftest import SPECS
from test_property import graph, sequential

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


def _rows(text):
    s = cnncalc.summarize(text)
    return [(r.name, r.layer.describe(), r.output, r.params) for r in s.rows]


def _careless(text, draw):
    """The same spec as a hurried person types it: spaces and tabs added or dropped around
    '|', braces and words, lines indented at random."""
    out = []
    for line in text.split("\n"):
        line = re.sub(r" \| ", lambda m: draw(st.sampled_from(["|", " |", "|  ", "\t| "])), line)
        line = re.sub(r" \{", lambda m: draw(st.sampled_from(["{", " {", "   {"])), line)
        line = re.sub(r"(?<=\w) (?=\w)", lambda m: draw(st.sampled_from([" ", "  ", "\t"])),
                      line)
        out.append(" " * draw(st.integers(0, 5)) + line.strip() + " " * draw(st.integers(0, 2)))
    return "\n".join(out)


@st.composite
def careless(draw):
    text = draw(st.one_of(sequential(), graph()))
    return text, _careless(text, draw)


@SETTINGS
@given(careless())
def test_formatting_is_idempotent_and_keeps_the_network(pair):
    clean, messy = pair
    try:
        want = _rows(clean)
    except cnncalc.SpecDesignError:
        return  # not a valid design: the property tests check refusals
    once = format_spec(messy)
    assert format_spec(once) == once
    assert _rows(once) == want


def test_the_zoo_is_formatted():
    res = CliRunner().invoke(main, ["fmt", "--check", *map(str, sorted(SPECS.glob("*.cnn")))])
    assert res.exit_code == 0, res.output


def test_check_names_the_file_and_fmt_rewrites_it(tmp_path):
    path = tmp_path / "net.cnn"
    path.write_text("input 8x8x3|conv 3x3x4\nadd{branch{relu}branch{}}\n")
    res = CliRunner().invoke(main, ["fmt", "--check", str(path)])
    assert res.exit_code == 1 and f"would reformat {path}" in res.output
    res = CliRunner().invoke(main, ["fmt", str(path)])
    assert res.exit_code == 0
    assert path.read_text() == "input 8x8x3 | conv 3x3x4\nadd { branch { relu } branch { } }\n"


def test_a_block_parameter_is_not_a_block():
    text = "input 9x9x3\ndef c(k) {\nconv ${k}x${k}x4\n}\nc(3)\n"
    assert format_spec(text) == "input 9x9x3\ndef c(k) {\n  conv ${k}x${k}x4\n}\nc(3)\n"


def test_a_wrong_spec_is_refused_not_formatted():
    res = CliRunner().invoke(main, ["fmt", "-"], input="input 8x8x3 | convv 3x3x4\n")
    assert res.exit_code == 2 and "did you mean 'conv'" in res.output
