"""The records the parser makes: statements and the words inside them. Kinds read these
(``layers.base``) without needing the parser itself. Plain slotted classes: a dataclass
decorator costs an exec at import, which a shape query pays for every record type."""

from __future__ import annotations


class _Record:
    __slots__ = ()

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


class Value(_Record):
    """A size or a number: one expression per axis (plain ints in the common case)."""
    __slots__ = ("dims", "text", "line", "column")

    def __init__(self, dims, text, line, column):
        self.dims, self.text, self.line, self.column = dims, text, line, column


class Word(_Record):
    __slots__ = ("text", "line", "column")

    def __init__(self, text, line, column):
        self.text, self.line, self.column = text, line, column


class Float(_Record):
    __slots__ = ("value", "text", "line", "column")

    def __init__(self, value, text, line, column):
        self.value, self.text, self.line, self.column = value, text, line, column


class Named(_Record):
    """``name=ID``."""
    __slots__ = ("text", "line", "column")

    def __init__(self, text, line, column):
        self.text, self.line, self.column = text, line, column


class Kernel(_Record):
    """``kernel=[[...]]``: inline weights."""
    __slots__ = ("array", "line", "column")

    def __init__(self, array, line, column):
        self.array, self.line, self.column = array, line, column


class Stmt(_Record):
    __slots__ = ("head", "items", "line", "column")

    def __init__(self, head, items, line, column):
        self.head, self.items, self.line, self.column = head, items, line, column


class Block(_Record):
    __slots__ = ("head", "items", "body", "line", "column")

    def __init__(self, head, items, body, line, column):
        self.head, self.items, self.body, self.line, self.column = head, items, body, line, column


class Arg(_Record):
    __slots__ = ("key", "value")

    def __init__(self, key, value):
        self.key, self.value = key, value


class Call(_Record):
    __slots__ = ("name", "args", "items", "line", "column")

    def __init__(self, name, args, items, line, column):
        self.name, self.args, self.items, self.line, self.column = name, args, items, line, column


class Param(_Record):
    __slots__ = ("name", "default", "line", "column")

    def __init__(self, name, default, line, column):
        self.name, self.default, self.line, self.column = name, default, line, column


class Def(_Record):
    __slots__ = ("name", "params", "body", "line", "column")

    def __init__(self, name, params, body, line, column):
        self.name, self.params, self.body, self.line, self.column = name, params, body, line, column


class Knob(_Record):
    """``param width = 64``: a top-level number the spec can be swept over (``$width``)."""
    __slots__ = ("name", "value", "line", "column")

    def __init__(self, name, value, line, column):
        self.name, self.value, self.line, self.column = name, value, line, column
