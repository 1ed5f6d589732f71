"""Every kind described from its own definition: ``cnncalc layers`` and the README's
layer table (a test keeps the README equal to ``catalogue('markdown')``)."""

from __future__ import annotations

from . import KINDS, kinds
from .activations import ACTIVATIONS
from ..errors import CnnCalcError


def _usage(cls) -> str:
    args = " ".join(a.example for a in cls.args)
    words = cls.words if cls.words else (cls.keyword,)
    head = " | ".join(words) if len(words) <= 3 else f"{words[0]}, {words[1]}, ..."
    return f"{head} {args}".strip()


def _options(cls, word=None) -> str:
    return ", ".join(o.help for o in cls.options if o.applies(word or cls.keyword)) or "--"


def catalogue(fmt: str = "table") -> str:
    rows = []
    for cls in kinds():
        if cls.words:  # a family: the activations
            for a in ACTIVATIONS.values():
                cost = "no FLOPs" if not a.ops else f"{a.ops} FLOP per value"
                rows.append((a.word, "", f"{a.doc}; {cost}", a.word))
            continue
        rows.append((cls.keyword, _usage(cls)[len(cls.keyword):].strip(), cls.doc, cls.example))
    if fmt == "markdown":
        lines = ["| kind | arguments | options | what it computes | example |",
                 "|---|---|---|---|---|"]
        for word, args, doc, example in rows:
            cls = KINDS[word]
            lines.append(f"| `{word}` | {args or '--'} | {_options(cls, word)} | {doc} | `{example}` |")
        return "\n".join(lines) + "\n"
    width = max(len(r[0]) for r in rows)
    out = []
    for word, args, doc, example in rows:
        cls = KINDS[word]
        out.append(f"{word.ljust(width)}  {doc}")
        if example == word:  # an activation: its word is the example
            continue
        opts = _options(cls, word)
        out.append(f"{' ' * width}  e.g. {example}" + (f"   options: {opts}" if opts != "--" else ""))
    out.append("")
    out.append("Every layer also takes name=ID. 'cnncalc layers KIND' shows one kind.")
    return "\n".join(out) + "\n"


def one(word: str) -> str:
    cls = KINDS.get(word)
    if cls is None:
        import difflib
        close = difflib.get_close_matches(word, list(KINDS), n=3)
        raise CnnCalcError(f"unknown layer kind {word!r}"
                           + (f"; did you mean {', '.join(close)}?" if close else
                              f"; the kinds are {', '.join(KINDS)}"))
    doc = ACTIVATIONS[word].doc if word in ACTIVATIONS else cls.doc
    lines = [f"{word}: {doc}", f"  usage:    {word} {' '.join(a.example for a in cls.args)}".rstrip()]
    opts = _options(cls, word)
    lines.append("  options:  " + ("" if opts == "--" else opts + ", ") + "name=ID")
    lines.append(f"  example:  {word if word in ACTIVATIONS else cls.example}")
    lines.append(f"  semantics as {cls.semantics}")
    return "\n".join(lines) + "\n"
