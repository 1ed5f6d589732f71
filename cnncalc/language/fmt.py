"""'cnncalc fmt': a spec's canonical layout. Blocks indent two spaces a level; runs of
spaces become one (after a comma they stay: columns of arguments keep their alignment);
' | ' separates chained layers; comments and blank lines (one at most)
stay where they are. Only layout changes: the formatted spec must read as the same
network, or the file is left alone."""

from __future__ import annotations

import re

from ..errors import CnnCalcError


def _split_comment(line: str) -> tuple[str, str]:
    i = line.find("#")
    return (line, "") if i < 0 else (line[:i], line[i:])


_PARAM = re.compile(r"(\$\{\w+\})")  # ${k}: a parameter, not a block


def _tidy(code: str) -> str:
    # runs of spaces become one, except after a comma: argument columns stay aligned
    parts = _PARAM.split(re.sub(r"(?<!,)\s+", " ", code.replace("\t", " ")).strip())
    for i in range(0, len(parts), 2):  # the text between ${...} parameters
        p = re.sub(r"\s*\|\s*", " | ", parts[i])
        p = re.sub(r"(?<=[^\s$])\{", " {", p)
        p = re.sub(r"\{(?=\S)", "{ ", p)
        p = re.sub(r"(?<=\S)\}", " }", p)
        parts[i] = re.sub(r"\}(?=\S)", "} ", p)
    return "".join(parts)


def _braces(code: str) -> int:
    code = _PARAM.sub("", code)
    return code.count("{") - code.count("}")


def format_spec(text: str) -> str:
    """The spec laid out canonically (idempotent: formatting it again changes nothing)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    out, depth, blank = [], 0, False
    for raw in text.split("\n"):
        code, comment = _split_comment(raw)
        code = _tidy(code)
        if not code and not comment.strip():
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        level = depth - (1 if code.startswith("}") else 0)
        line = "  " * max(level, 0) + code
        if comment:
            line = (line + "  " if code else line) + comment.rstrip()
        out.append(line.rstrip())
        depth += _braces(code)
    return "\n".join(out) + "\n" if out else ""


def check_same(before: str, after: str, file: str) -> None:
    """Refuse a layout that would change the network (a safety net: it never should)."""
    from ..specs import parse

    def key(text):
        net = parse(text, file)
        return [(layer.name, layer.describe()) for layer in _walk(net.layers)]
    if key(before) != key(after):
        raise CnnCalcError(f"{file}: formatting would change the network; left as it is "
                           "(please report this spec)")


def _walk(layers):
    for layer in layers:
        yield layer
        for branch in layer.branches or ():
            yield from _walk(branch)
