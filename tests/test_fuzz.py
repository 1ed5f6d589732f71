"""No input ends in anything but a result or a CnnCalcError with a position.
`make fuzz` runs this with CNNCALC_FUZZ_EXAMPLES=100000; `make test` runs a short pass."""

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncalc import CnnCalcError, analyse, parse as load
from conftest import SPECS

N = int(os.environ.get("CNNCALC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck),
                database=None, derandomize="CNNCALC_FUZZ_EXAMPLES" not in os.environ)
SPEC_TEXTS = [p.read_text() for p in sorted(SPECS.glob("*.cnn"))]
TOKEN = re.compile(r"\s+|[^\s]+")
WORDS = ["conv", "deconv", "maxpool", "add", "concat", "branch", "{", "}", "|", "repeat", "def",
         "(", ")", "$f", "x", "same", "stride", "name=", "0", "-1", "10" * 9, "?", "\n", "#"]


def _run(text):
    try:
        analyse(load(text, file="fuzz.cnn"))
    except CnnCalcError as e:
        assert str(e)  # a message, and where possible a place
        if e.line is not None:
            assert e.line >= 1


@FUZZ
@given(st.lists(st.sampled_from(list("inputconv x0123456789|{}$#()=\n.-?") + WORDS), max_size=60))
def test_random_token_soup(parts):
    _run(" ".join(parts))


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text):
    _run(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data):
    _run(data)


@st.composite
def mutated(draw):
    tokens = TOKEN.findall(draw(st.sampled_from(SPEC_TEXTS)))
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "word", "sum"]))
        if op == "delete":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "number":
            new = draw(st.sampled_from(["0", "-1", str(10**18), str(10**19), "1", "9" * 5000,
                                        "(1" + "0" * 400 + "/7)", "1000000000", "(2**3)"]))
            tokens[i] = re.sub(r"\d+", new, tokens[i], count=1)
        elif op == "sum":  # a long expression where a number stood (RecursionError once)
            terms = draw(st.sampled_from([3, 300, 1000]))
            tokens[i] = re.sub(r"\d+", "(" + "+".join(["1"] * terms) + ")", tokens[i], count=1)
        else:
            tokens[i] = draw(st.sampled_from(WORDS))
    return "".join(tokens)


@FUZZ
@given(mutated())
def test_mutated_specs(text):
    _run(text)
