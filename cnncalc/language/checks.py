"""Checks on a spec's text before it is parsed (its encoding, line lengths, braces), and
the hint for a word that is no kind."""


from __future__ import annotations

from .. import layers as L
from ..errors import (
    CnnCalcError,
    LimitError,
    context_line,
)


class Limits:
    """How large a spec may be: layers after expansion, nesting, bytes, characters a line."""

    def __init__(self, max_layers=100_000, max_depth=64, max_bytes=1 << 20, max_line=10_000):
        self.max_layers, self.max_depth = max_layers, max_depth
        self.max_bytes, self.max_line = max_bytes, max_line


def decode(data: bytes, file):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CnnCalcError(f"the spec is not UTF-8 text (byte {e.start} is {data[e.start]:#04x})",
                           file=file) from None


def normalise(text: str) -> str:
    """A byte-order mark (Notepad) and old Mac line endings read as the text they are."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def check_text(text: str, file, limits: Limits):
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise CnnCalcError("the spec looks like a binary file (it holds a NUL byte)", file=file,
                           line=line)
    if len(text) > limits.max_bytes and len(text.encode("utf-8", "replace")) > limits.max_bytes:
        raise LimitError(f"the spec is larger than the limit of {limits.max_bytes:,} bytes "
                         "(raise it with --max-bytes)", file=file)
    lines = text.split("\n") if len(text) > limits.max_line else ()  # shorter: no line is long
    for i, src in enumerate(lines, 1):
        if len(src) > limits.max_line:
            raise LimitError(f"line {i} is {len(src):,} characters, over the limit of "
                             f"{limits.max_line:,}", file=file, line=i)
    _check_braces(text, file, limits)
    if not text.strip() or all(not s.split("#")[0].strip() for s in text.split("\n")):
        raise CnnCalcError("the spec is empty; it needs at least an 'input' line, "
                           "e.g. 'input 224x224x3'", file=file)


def _check_braces(text: str, file, limits: Limits):
    """Refuse deep nesting before parsing, so nothing recurses without bound; report a block
    that is never closed where it was opened."""
    if "{" not in text and "}" not in text:
        return
    opened = []
    for i, src in enumerate(text.split("\n"), 1):
        if "{" not in src and "}" not in src:
            continue
        code = src.split("#")[0]
        for j, ch in ((j, ch) for j, ch in enumerate(code, 1) if ch in "{}"):
            if ch == "{":
                opened.append((i, j))
                if len(opened) > limits.max_depth:
                    raise LimitError(f"blocks nest deeper than {limits.max_depth} levels (raise "
                                     "it with --max-depth)", file=file, line=i, column=j,
                                     context=context_line(text, i, j))
            elif ch == "}":
                if not opened:
                    from ..errors import SpecSyntaxError
                    raise SpecSyntaxError("'}' closes no block", file=file, line=i, column=j,
                                          context=context_line(text, i, j))
                opened.pop()
    if opened:
        from ..errors import SpecSyntaxError
        i, j = opened[-1]
        raise SpecSyntaxError("this block is never closed: add '}'", file=file, line=i,
                              column=j, context=context_line(text, i, j))


def unknown_kind(st, s):
    import difflib
    if s.head in ("repeat", "branch", "def") or s.head in st.defs:
        return (f"{s.head!r} needs {'a block { ... }' if s.head != 'def' else 'a name'}"
                + (f"; call a block with parentheses: {s.head}(...)" if s.head in st.defs
                   else ""), s)
    words = list(L.KINDS) + ["network", "input", "repeat"] + list(st.defs)
    folded = {w.lower(): w for w in words}
    close = [folded[c] for c in difflib.get_close_matches(s.head.lower(), folded, n=1, cutoff=0.8)]
    known = L.known_as(s.head)
    if known is not None:
        hint = f"cnncalc calls it '{known.keyword}', e.g. '{known.example}'"
    elif close:
        hint = f"did you mean {close[0]!r}?"
    else:
        hint = "'cnncalc layers' lists every kind with an example"
    return (f"unknown layer kind {s.head!r}; {hint}", s)

