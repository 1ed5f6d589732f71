"""The generated parser is the grammar's: it records the grammar's hash, and it parses
every spec as a Lark parser built from the grammar itself does."""

import importlib.util
import sys

import pytest

from conftest import ROOT, SPECS

sys.path.insert(0, str(ROOT / "tools"))
make_grammar = importlib.import_module("make_grammar")


def test_generated_parser_records_this_grammar():
    first = (ROOT / "cnncalc" / "language" / "_lark.py").read_text().split("\n", 1)[0]
    assert first.endswith(make_grammar.digest()), "run 'make grammar' after changing the grammar"


TEXTS = [p.read_text() for p in sorted(SPECS.glob("*.cnn"))] + [
    "def f(k, c, n=2) {\n repeat $n - 1 { conv ${k}x${k}x$c pad $k // 2 }\n}\ninput 8x8x3\n"
    "f(3, 8) name=layer1\nf(c=3, k=1)",
    "input 8x8x3 | conv 1x1x($c * 6) groups $w // 16 | conv ($k)x($k)x$c | dense max($a, 2)",
    "input 8x8x3 | conv 3x3x3 kernel=[[1,-2,3],[4,5,6],[7,8,9]] | dropout 0.5 | add b1",
    "input HxWx3 | add { branch { conv 3x3x3 same } branch { } } relu",
]


def _plain(tree):
    """A tree as nested tuples: rule names and (type, text) of tokens."""
    if hasattr(tree, "children"):
        return (str(tree.data), tuple(_plain(c) for c in tree.children))
    return None if tree is None else (tree.type, str(tree))


@pytest.mark.parametrize("text", TEXTS)
def test_generated_parser_parses_as_lark_does(text):
    from lark import Lark
    from cnncalc.language import _lark
    reference = Lark(make_grammar.GRAMMAR.read_text(), parser="lalr", lexer="basic",
                     maybe_placeholders=True)
    generated = _lark.Lark_StandAlone()
    assert _plain(generated.parse(text)) == _plain(reference.parse(text))


def _dump(o):
    """Records and expressions as nested tuples of their slots (they have no __eq__ of
    their own), so two parses compare field by field, positions included."""
    if isinstance(o, (list, tuple)):
        return tuple(_dump(x) for x in o)
    slots = getattr(type(o), "__slots__", None)
    if not slots:
        return o
    return (type(o).__name__,) + tuple((k, _dump(getattr(o, k))) for k in slots)


FLAT = [
    # the zoo's specs without blocks, and mixed lines: expressions, '|' joins, comments,
    # calls, knobs, arrays, blank lines (each made long enough to take the line-by-line path)
    *[t for t in TEXTS if "{" not in t],
    "param w = 16\ninput 32x32x3 # rgb\n\n" + "conv 3x3x$w same | relu\n" * 150 +
    "  conv 1x1x($w * 2) pad 1 // 1 | dense max($w, 2)\n# end\n" * 60 +
    "conv 3x3x3 kernel=[[1,-2,3],[4,5,6],[7,8,9]] | dropout 0.5\n",
    # blocks one brace a line and names at the lines' ends, as an importer writes them:
    # the names are read apart so that the lines share a parse
    "network r\ninput 64x64x3\n" + "add {\n  branch {\n    conv 1x1x8 nobias name=4.body.0\n"
    "    relu name=layer1_relu\n    conv 3x3x8 pad half name=7\n  }\n  branch { }\n}\n"
    "relu name=H\nrepeat 2 {\n  conv 3x3x8 same | relu name=b-2.x\n}\n" * 40 +
    "conv 3 # name=in_a_comment\nconcat name=c {\n  branch {\n    conv 1x1x4\n  }\n}\n",
    # calls named at their lines' ends (a def's calls: parsing does not look the def up)
    "input 8x8x3\n" + "f(4) name=s1\nf(8, c=2) name=s2.b | relu\nf(1) name=3\n" * 80,
]

# texts the line-by-line reading leaves to the whole parse, which reads them as always
NOT_BY_LINE = [
    "input 8x8x3\nH {\n  conv 3\n}\n",  # 'H' is a size to the lexer, not a block's word
    "input 8x8x3\nadd { branch { conv 3 }\n} relu\n",
    "input 8x8x3\nadd {\n  conv 3\n",
    "input 8x8x3\ndef f(c) {\n  conv 3x3x$c\n}\nf(4)\n",
    "input 8x8x3\nconv 3 name=1.5\n",
]


@pytest.mark.parametrize("text", FLAT)
def test_long_specs_parse_line_by_line_as_whole(text):
    from cnncalc.language import parser
    text = text if text.count("\n") >= parser.FLAT_LINES else text + "\n" * parser.FLAT_LINES
    assert _dump(parser._by_line(text)) == _dump(parser._parser().parse(text))
    assert _dump(parser.parse(text)) == _dump(parser._parser().parse(text))


@pytest.mark.parametrize("text", NOT_BY_LINE)
def test_what_the_lines_cannot_say_alone_is_parsed_whole(text):
    from cnncalc.errors import SpecSyntaxError
    from cnncalc.language import parser
    text += "\n" * parser.FLAT_LINES
    assert parser._by_line(text) is None
    try:
        whole = _dump(parser._parser().parse(text))
    except Exception:
        with pytest.raises(SpecSyntaxError):
            parser.parse(text)
    else:
        assert _dump(parser.parse(text)) == whole


def test_a_long_flat_spec_with_a_mistake_reports_it_as_always():
    from cnncalc.errors import SpecSyntaxError
    from cnncalc.language import parser
    text = "input 8x8x3\n" + "conv 3x3x4 same\n" * 300 + "conv 3x3x4 same, relu\n"
    assert parser._by_line(text) is None
    with pytest.raises(SpecSyntaxError) as e:
        parser.parse(text)
    assert e.value.line == 302 and e.value.column == 16
