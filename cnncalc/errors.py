"""One error root. Inner code raises short messages; the public entry points
attach the file, line, column and layer, so the user sees context, not a chain."""

from __future__ import annotations

import gc
from contextlib import contextmanager


class CnnCalcError(Exception):
    """Anything wrong with what the user gave us. The CLI maps it to exit code 2."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, context: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.context = context
        self.hint = hint

    def where(self) -> str:
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        text = self.message if self.file is None and self.line is None else \
            f"{self.where()}: {self.message}"
        if self.context:
            text += "\n" + self.context.rstrip("\n")
        if self.hint:
            text += "\n" + self.hint
        return text


class SpecSyntaxError(CnnCalcError):
    """The text does not follow the grammar."""


class SpecDesignError(CnnCalcError):
    """The text parses, but the network it describes cannot be built.

    ``rows`` holds the layers computed before the failing one, so that a
    summary can show where it went wrong; ``index`` and ``layer`` name it."""

    def __init__(self, message: str, *, index: int | None = None, layer: str | None = None,
                 rows: list | None = None, **kw):
        super().__init__(message, **kw)
        self.index = index
        self.layer = layer
        self.rows = rows or []

    def __str__(self) -> str:
        text = super().__str__()
        if self.layer is not None:
            head, _, rest = text.partition(": ")
            text = f"{head}: layer {self.index} '{self.layer}': {rest}"
        return text


class LimitError(CnnCalcError):
    """A spec goes past a configured limit (size, depth, layer count, number)."""


def context_line(text: str, line: int, column: int) -> str:
    """The source line with a caret under ``column`` (both 1-based)."""
    lines = text.split("\n") or [""]
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    src = src.rstrip("\r").replace("\t", " ")
    if len(src) > 120:  # keep very long lines readable around the caret
        start = max(0, column - 60)
        src = src[start:start + 120]
        column -= start
    return f"    {src}\n    {' ' * max(column - 1, 0)}^"


@contextmanager
def paused_gc():
    """Building a network makes many small objects and no cycles worth collecting;
    the cyclic collector's passes would make large specs superlinear."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
