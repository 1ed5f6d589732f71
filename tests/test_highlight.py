"""The Pygments lexer (issue 15): found by its entry point, every layer kind a keyword, and
no spec in the zoo leaves an error token."""

from pygments import lex
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Number

from cnncalc.layers import KINDS
from conftest import SPECS


def test_the_lexer_is_registered_and_knows_every_kind():
    lexer = get_lexer_by_name("cnncalc")
    assert type(get_lexer_for_filename("net.cnn")) is type(lexer)
    for word in KINDS:
        tokens = [(t, v) for t, v in lex(f"{word} 3x3x8\n", lexer) if v.strip()]
        assert tokens[0] == (Keyword, word), word
        assert tokens[1] == (Number.Integer, "3") or tokens[1][0] in Number


def test_the_zoo_lexes_without_errors():
    lexer = get_lexer_by_name("cnncalc")
    for path in SPECS.glob("*.cnn"):
        assert not [v for t, v in lex(path.read_text(), lexer) if t in Error], path.name
