"""A Pygments lexer for specs ('cnncalc' or '.cnn'), registered as an entry point, so that
Sphinx, MkDocs, nbconvert and 'pygmentize -l cnncalc' colour specs. Its words come from the
layer kinds' own definitions."""

from __future__ import annotations

from pygments.lexer import RegexLexer, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Text

from .layers import KINDS


def _option_words() -> list:
    found = set()
    for cls in KINDS.values():
        for option in cls.options:
            for w in getattr(option, "words", ()) or ():
                if isinstance(w, str) and w.isidentifier():
                    found.add(w)
    return sorted(found - set(KINDS))


class CnnCalcLexer(RegexLexer):
    name = "cnncalc"
    aliases = ["cnncalc", "cnn"]
    filenames = ["*.cnn"]
    mimetypes = ["text/x-cnncalc"]

    tokens = {
        "root": [
            (r"#.*$", Comment.Single),
            (r"\s+", Text),
            # 'from' is a kind ('from ID') as well as repeat's word: a keyword either way
            (words(("network", "input", "def", "repeat", "branch"), suffix=r"\b"),
             Keyword.Reserved),
            (words(tuple(sorted(KINDS, key=len, reverse=True)), suffix=r"\b"), Keyword),
            (words(tuple(_option_words()), suffix=r"\b"), Name.Attribute),
            (r"(name)(=)", Name.Attribute),
            (r"\$\{\w+\}|\$\w+", Name.Variable),
            (r"\d+(\.\d+)?([eE][-+]?\d+)?", Number),
            (r"[xX](?=\d|\$|\()", Operator),
            (r"[|]", Punctuation),
            (r"[{}(),=]", Punctuation),
            (r"[-+*/]", Operator),
            (r"[A-Za-z_][\w.\-]*", Name),
            (r".", Text),
        ],
    }
