"""The records the parser makes: statements and the words inside them. Kinds read these
(``layers.base``) without needing the parser itself."""

from __future__ import annotations

from dataclasses import dataclass


# The records made for every token use slots: a parse makes many of them.
@dataclass(slots=True)
class Value:
    """A size or a number: one expression per axis (plain ints in the common case)."""
    dims: tuple
    text: str
    line: int
    column: int


@dataclass(slots=True)
class Word:
    text: str
    line: int
    column: int


@dataclass(slots=True)
class Float:
    value: float
    text: str
    line: int
    column: int


@dataclass(slots=True)
class Named:
    """``name=ID``."""
    text: str
    line: int
    column: int


@dataclass(slots=True)
class Kernel:
    """``kernel=[[...]]``: inline weights."""
    array: tuple
    line: int
    column: int


@dataclass(slots=True)
class Stmt:
    head: str
    items: list
    line: int
    column: int


@dataclass(slots=True)
class Block:
    head: str
    items: list
    body: list
    line: int
    column: int


@dataclass(slots=True)
class Arg:
    key: str | None
    value: Value


@dataclass(slots=True)
class Call:
    name: str
    args: list
    items: list
    line: int
    column: int


@dataclass(slots=True)
class Param:
    name: str
    default: Value | None
    line: int
    column: int


@dataclass(slots=True)
class Def:
    name: str
    params: list
    body: list
    line: int
    column: int
