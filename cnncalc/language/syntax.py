"""Syntax errors a person can act on: where, what was found, what was expected, and a
hint for the usual slips (``stride=2``, ``activation=relu``). Only a spec with a mistake
imports this."""

from __future__ import annotations

import difflib

from ..errors import SpecSyntaxError, context_line
from . import _lark

_TERMINALS = {"SIZE": "a number or size such as 3x3x64", "WORD": "a word", "FLOAT": "a number",
"OP": "an operator", "_SEP": "a new line or '|'",
              "$END": "the end of the spec", "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('",
              "RPAR": "')'", "COMMA": "','", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='",
              "NAME": "'name='", "KERNEL": "'kernel='", "DEF": "'def'"}


def _line(text, line):
    lines = text.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


def syntax_error(e, text: str, file: str | None) -> SpecSyntaxError:
    line, column = getattr(e, "line", None), getattr(e, "column", None)
    token = getattr(e, "token", None)
    at_end = isinstance(e, _lark.UnexpectedEOF) or (token is not None and token.type == "$END")
    if at_end or line is None or line < 1:
        lines = text.rstrip().split("\n") or [""]
        line, column = len(lines), len(lines[-1].split("#")[0].rstrip()) + 1
    src = _line(text, line)
    expected = set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    if at_end:
        got = "the end of the spec"
    elif token is not None:
        got = repr(str(token)) if token.type != "_SEP" else (
            "'|'" if str(token).lstrip().startswith("|") else "the end of the line")
    else:
        got = repr(src[column - 1]) if 0 < column <= len(src) else "the end of the line"
    message = f"unexpected {got}"
    readable = sorted({_TERMINALS.get(t, t.lower()) for t in expected if t != "COMMENT"})
    if readable and len(readable) <= 6:
        message += f"; expected {', '.join(readable)}"
    hint = _hint(src, column, got)
    return SpecSyntaxError(message, file=file, line=line, column=column,
                           context=context_line(text, line, column), hint=hint)


def _hint(src: str, column: int, got: str):
    """The usual slips, said in words."""
    import re
    before = src[:column - 1]
    m = re.search(r"([A-Za-z_]\w*)\s*$", before)
    word = m.group(1) if m else ""
    after = src[column - 1:]
    if got == "'='" and word and re.match(r"=\s*[\w.]+\(", after):
        return ("this looks like Python (a Keras or PyTorch model): a spec is one layer a line, "
                "e.g. 'conv 3x3x32 relu'; 'cnncalc import keras' or 'cnncalc import torch' "
                "read a model you already have")
    if got in ("'×'", "','", "'*'") and re.search(r"\d\s*$", before) and \
            re.match(r".\s*\d", after):
        start = re.search(r"[\d ×,*]*$", before).start()  # the run of sizes the slip is in
        sizes = re.match(r"[\d ×,*]+", src[start:]).group(0).strip()
        return "sizes are joined with x: " + re.sub(r"\s*[×,*]\s*", "x", sizes)
    if got == "'='" and word:
        value = re.match(r"=\s*([^\s|]*)", after)
        value = value.group(1) if value else "..."
        if word in ("activation", "act"):
            return f"write the activation as a word: '{value}'"
        if word == "padding":
            return f"write '{value}' ('same', 'valid', 'half') or 'pad N'"
        return f"options take no '=': write '{word} {value}'"
    pasted = python_hint(before)
    if pasted:
        return pasted
    braced = re.match(r"\$\{([^}]*[-+*/ ][^}]*)\}", after)
    if braced:  # ${k} names a parameter; arithmetic goes in parentheses
        expr = re.sub(r"(?<![\w$])([A-Za-z_]\w*)", r"$\1", braced.group(1).strip())
        return f"an expression goes in parentheses: '({expr})'"
    if got.startswith("'") and got[1:-1] in "<>!@%^&;:" and got[1:-1]:
        return "sizes are written 3x3x64; arithmetic uses + - * // / and ( )"
    if re.match(r"\s*[A-Za-z_]", after):
        w = re.match(r"\s*([A-Za-z_][\w.-]*)", after).group(1)
        from ..layers import KINDS
        close = difflib.get_close_matches(w, list(KINDS), n=1, cutoff=0.6)
        if close:
            return f"did you mean {close[0]!r}?"
    return None


def python_hint(before: str):
    """Python pasted in ('Conv2D(32, (3, 3), activation="relu")'): the kind it stands for."""
    import re
    from ..layers import known_as
    for called in reversed(re.findall(r"([A-Za-z_][\w.]*)\s*\(", before.split("|")[-1])):
        known = known_as(called)
        if known is not None:
            return (f"this looks like Python; {called} is cnncalc's '{known.keyword}', written "
                    f"without parentheses: e.g. '{known.example}'")
    return None
