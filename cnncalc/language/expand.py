"""Statements → the network: expands ``def``, calls and ``repeat``, evaluates values,
names layers (scoped by the names of the calls and repeats they come from, as PyTorch's
module paths are), and lets each kind read its own words."""

from __future__ import annotations

from .. import layers as L
from ..errors import (
    LimitError,
    SpecDesignError,
    SpecSyntaxError,
    context_line,
    paused_gc,
)
from . import expr
from .checks import Limits, check_text, decode, normalise, unknown_kind
from .header import input_statement, set_knobs
from .parser import parse
from .records import Block, Call, Def, Knob, Named, Stmt, Value, Word

STATEMENTS = ("network", "input", "repeat", "branch", "def")


class _Scope:
    """Where a statement is expanded: parameter values, the name prefix (('layer1', '0')),
    whether a part of it came from name=, and the label and call line shown beside layers
    that came from a def or repeat."""
    __slots__ = ("env", "prefix", "named", "origin", "called")

    def __init__(self, env, prefix=(), named=False, origin=None, called=None):
        self.env, self.prefix, self.named = env, prefix, named
        self.origin, self.called = origin, called


class _State:
    """The expansion so far: the rank of the current tensor (0: a vector, as kinds say),
    the defs, every full name and its line, the layer count, the calls being expanded."""

    def __init__(self, text, file, limits):
        self.text, self.file, self.limits = text, file, limits
        self.rank = self.input_rank = 0
        self.defs, self.names, self.counters = {}, {}, {}
        self.count = 0
        self.calls = []
        self.reserved = set()  # names the spec gives: automatic names keep clear of them
        self.aliases = {}  # a named call's or repeat's name -> the name of its last layer
        self.knobs = {}  # 'param width = 64': name -> value (an int, or a Fraction)

    def syntax(self, message, where=None):
        return self.error(message, where, SpecSyntaxError)

    def error(self, message, where=None, cls=SpecDesignError):
        line, column = getattr(where, "line", None), getattr(where, "column", None)
        return cls(message, file=self.file, line=line, column=column,
                   context=context_line(self.text, line, column) if line else None)

    def evaluate(self, value, env: dict):
        """A value's numbers; a word (or a parameter holding one) as a WordValue."""
        if isinstance(value, Word):
            return expr.WordValue(value.text)
        passed = expr.word(value.dims, env)  # '$act' handed on to another call
        if passed is not None:
            return passed
        try:
            return expr.evaluate(value.dims, env)
        except expr.ExprError as e:
            raise self.error(e.message, e if e.line else value) from None


def load(text, file: str | None = None, limits: Limits | None = None,
         knobs: dict | None = None) -> L.Network:
    """Parse and expand: the one entry point from text to the network. ``knobs`` sets the
    spec's 'param' values ({"width": 48}) in place of those it declares."""
    limits = limits or Limits()
    if isinstance(text, bytes):
        text = decode(text, file)
    text = normalise(text)
    check_text(text, file, limits)
    with paused_gc():
        return expand(parse(text, file), text, file, limits, knobs)


def expand(statements: list, text: str = "", file: str | None = None,
           limits: Limits | None = None, knobs: dict | None = None) -> L.Network:
    st = _State(text, file, limits or Limits())
    name = "network"
    body = []
    set_knobs(st, [s for s in statements if isinstance(s, Knob)], knobs or {})
    for s in statements:
        if isinstance(s, Knob):
            continue
        if isinstance(s, Def):
            if s.name in st.defs:
                raise st.error(f"block {s.name!r} is defined twice (first on line "
                               f"{st.defs[s.name].line})", s)
            if s.name in L.KINDS or s.name in STATEMENTS:
                raise st.error(f"{s.name!r} is a layer kind or statement; give the block "
                               "another name", s)
            st.defs[s.name] = s
        else:
            body.append(s)
    if body and isinstance(body[0], Stmt) and body[0].head == "network":
        s = body.pop(0)
        if len(s.items) != 1 or not hasattr(s.items[0], "text"):
            raise st.error("network needs one name, e.g. 'network vgg16'", s)
        name = s.items[0].text
    if not body or not (isinstance(body[0], Stmt) and body[0].head == "input"):
        raise st.error("the spec must start with an 'input' line such as 'input 224x224x3'"
                       " (after an optional 'network NAME')", body[0] if body else None)
    inp, warnings = input_statement(st, body.pop(0))
    st.rank = st.input_rank = inp.rank
    st.reserved = _explicit_names(statements)
    layers = tuple(_expand(st, body, _Scope(dict(st.knobs)), 0))
    return L.Network(name, inp, layers, warnings, text, file)


def _expand(st: _State, stmts: list, scope: _Scope, depth: int) -> list:
    if depth > st.limits.max_depth:
        raise st.error(f"blocks nest deeper than {st.limits.max_depth} levels (raise it with "
                       "--max-depth)", stmts[0] if stmts else None, LimitError)
    out = []
    for s in stmts:
        if isinstance(s, Def):
            raise st.error("'def' must stand at the top level of the spec", s)
        if isinstance(s, Call):
            out.extend(_call(st, s, scope, depth))
        elif isinstance(s, Block) and s.head == "repeat":
            out.extend(_repeat(st, s, scope, depth))
        elif isinstance(s, Block):
            out.append(_count(st, _merge_block(st, s, scope, depth), s))
        elif s.head in ("input", "network"):
            raise st.error(f"'{s.head}' may only appear once, at the start of the spec", s)
        else:
            out.append(_count(st, _layer(st, s, scope, out[-1] if out else None), s))
    return out


def _explicit_names(statements) -> set:
    """Every name= in the spec, as written (a later 'relu name=relu_1' keeps 'relu_1' from
    an unnamed relu before it)."""
    out = set()
    for s in statements:
        for item in getattr(s, "items", ()):
            if isinstance(item, Named):
                out.add(item.text)
        for body in ([s.body] if isinstance(s, (Block, Def)) else []):
            out |= _explicit_names(body)
    return out


def _too_many(st, s):
    raise st.error(f"the spec expands to more than {st.limits.max_layers:,} layers (raise it "
                   "with --max-layers)", s, LimitError)


def _count(st: _State, layer, s):
    st.count += 1
    if st.count > st.limits.max_layers:
        _too_many(st, s)
    return layer


def _split_name(st, items):
    """The ``name=`` of a statement, and its other words."""
    names = [i for i in items if isinstance(i, Named)]
    if len(names) > 1:
        raise st.error("name= is given twice; a layer has one name", names[1])
    return (names[0] if names else None), [i for i in items if not isinstance(i, Named)]


def _repeat(st, s: Block, scope: _Scope, depth):
    """``repeat N [from K] [name=ID] { ... }``: each pass adds its index (K, K+1, ...) to the
    names of the layers it names, as PyTorch's Sequential does (layer1.0.conv1)."""
    named, items = _split_name(st, s.items)
    start = 0
    if len(items) == 3 and getattr(items[1], "text", None) == "from" and \
            isinstance(items[2], Value):
        start = _count_value(st, items[2], scope, "repeat ... from")
        items = items[:1]
    if len(items) != 1 or not isinstance(items[0], Value):
        raise st.syntax("repeat needs a count and a block, e.g. 'repeat 3 { ... }' (or "
                        "'repeat 3 from 1 { ... }' to number the passes from 1)",
                        items[1] if len(items) > 1 else s)
    n = _count_value(st, items[0], scope, "repeat")
    if n * max(len(s.body), 1) + st.count > st.limits.max_layers * 2:
        _too_many(st, s)
    prefix = scope.prefix + ((named.text,) if named else ())
    origin = scope.origin or f"repeat {n}"
    out = []
    for i in range(start, start + n):
        inner = _Scope(scope.env, prefix + (str(i),), scope.named or bool(named), origin,
                       scope.called or s.line)
        out.extend(_expand(st, s.body, inner, depth + 1))
    return _named_output(st, named, prefix, out)


def _named_output(st, named, prefix, layers: list) -> list:
    """``double(64) name=e1``: 'e1' stands for the call's output (its last layer) wherever a
    name is referred to, as a module's name stands for its output in PyTorch."""
    if named is not None and layers:
        st.aliases.setdefault(".".join(prefix), layers[-1].name)
    return layers


def _count_value(st, value, scope, what) -> int:
    v = st.evaluate(value, scope.env)
    if len(v) == 1 and hasattr(v[0], "dtype"):  # a sweep's lanes: the count shapes the network
        raise expr.Structural(f"{what}: {value.text}")
    if len(v) != 1 or not isinstance(v[0], int) or v[0] < 0:
        shown = "x".join(map(str, v))
        raise st.error(f"{what}: expected a count of 0 or more, received {value.text}"
                       + (f" = {shown}" if shown != value.text else ""), value)
    return v[0]


def _merge_block(st, s: Block, scope: _Scope, depth):
    cls = L.KINDS.get(s.head)
    if cls is None or not getattr(cls, "block", False):
        if s.head == "branch":
            raise st.error("'branch' stands only inside add, concat or multiply { ... }", s)
        blocks = sorted(k for k, c in L.KINDS.items() if getattr(c, "block", False))
        what = "an unknown word" if cls is None and s.head not in STATEMENTS else "no block"
        raise st.error(f"{s.head!r} takes {what}: blocks are repeat N {{ ... }} and "
                       f"{', '.join(blocks)} {{ branch {{ ... }} ... }}", s)
    named, items = _split_name(st, s.items)
    branches, before, after = [], st.rank, None
    fields = _read(st, cls, s.head, items, scope, s, block=True)
    if getattr(cls, "bare", False):  # 'output { ... }': one body, the flow goes on after it
        branches = [tuple(_expand(st, s.body, scope, depth + 1))]
        st.rank = before
        fields["branches"] = tuple(branches)
        return _make(st, cls, s.head, fields, named, scope, s)
    for b in s.body:
        if not (isinstance(b, Block) and b.head == "branch"):
            raise st.error(f"inside {s.head} {{ ... }}, write each path as 'branch {{ ... }}'", b)
        if b.items:
            raise st.error("branch takes no words, only { ... }", b.items[0])
        st.rank = before
        branches.append(tuple(_expand(st, b.body, scope, depth + 1)))
        after = st.rank if after is None else after
    if not branches:
        raise st.error(f"'{s.head}' needs at least one branch {{ ... }}", s)
    fields["branches"] = tuple(branches)
    st.rank = after
    return _make(st, cls, s.head, fields, named, scope, s)


def _layer(st, s: Stmt, scope: _Scope, before=None):
    if s.head.startswith("$"):  # '| $act': a parameter that holds a layer's word
        v = scope.env.get(s.head.strip("${}"))
        if not isinstance(v, expr.WordValue):
            raise st.error(f"{s.head} stands for a layer only when it holds a word such as "
                           "relu" + ("" if v is None else f"; it holds {_show(v)}"), s)
        s = Stmt(str(v), s.items, s.line, s.column)
    elif not s.head[:1].isalpha() and s.head[:1] != "_":
        raise st.syntax(f"a statement starts with a layer kind, received {s.head!r}", s)
    cls = L.KINDS.get(s.head)
    if cls is None:
        raise st.syntax(*unknown_kind(st, s))
    named, items = _split_name(st, s.items)
    fields = _read(st, cls, s.head, items, scope, s)
    if cls.keyword == "output" and fields.get("ref") is None and before is not None:
        fields["ref"] = before.name  # a bare 'output' marks the layer before it
    elif fields.get("ref") is not None:
        fields["ref"] = _resolve_ref(st, fields["ref"], scope, s)
    if fields.get("shares") is not None:
        fields["shares"] = _resolve_ref(st, fields["shares"], scope, s)
    st.rank = cls.rank_after(fields, st.rank)
    return _make(st, cls, s.head, fields, named, scope, s)


def _words(items, env):
    """Items with each lone parameter that holds a word replaced by that word."""
    out = []
    for item in items:
        w = expr.word(item.dims, env) if isinstance(item, Value) else None
        out.append(Word(w, item.line, item.column) if w is not None else item)
    return out


def _read(st, cls, word, items, scope, s, block=False) -> dict:
    def error(message, item):
        return st.error(message, item if item is not None and getattr(item, "line", None)
                        else s)
    def syntax(message, item):
        return st.syntax(message, item if item is not None and getattr(item, "line", None)
                         else s)
    # on a vector, a kind reads its sizes for the input's rank; its rule then says it needs a map
    reader = L.base.Reader(st.rank or st.input_rank or 1, lambda v: st.evaluate(v, scope.env),
                           error, word, block, syntax)
    return cls.read(word, _words(items, scope.env), reader)


def _resolve_ref(st, ref, scope: _Scope, s):
    """A name in the nearest scope that has it, innermost first."""
    for i in range(len(scope.prefix), -1, -1):
        full = ".".join(scope.prefix[:i] + (ref,))
        if full in st.names:
            return full
        if full in st.aliases:  # a named call or repeat: its output, its last layer's
            return st.aliases[full]
    return ref  # unknown: the walk says so, with the names it knows


def _make(st, cls, word, fields, named, scope: _Scope, s):
    if named is not None:
        name = ".".join(scope.prefix + (named.text,))
        if name in st.names:
            raise st.error(f"the name {name!r} is already used on line {st.names[name]}; names "
                           "must be unique", named)
    else:
        base = fields.get("activation") if cls.words else word
        if scope.named:
            stem = ".".join(scope.prefix) + "." + base
        else:
            stem = base
        n = st.counters.get(stem, 0)
        while True:
            n += 1
            name = f"{stem}_{n}"
            if name not in st.names and name not in st.reserved:
                break
        st.counters[stem] = n
    st.names[name] = s.line
    return cls(name, s.line, s.column, scope.origin, called=scope.called, **fields)


def _call(st: _State, c: Call, scope: _Scope, depth: int) -> list:
    d = st.defs.get(c.name)
    if d is None:
        import difflib
        close = difflib.get_close_matches(c.name, list(st.defs), n=1)
        known = L.known_as(c.name)
        hint = f"; did you mean {close[0]!r}?" if close else (
            f"; {c.name!r} is a layer kind: write '{c.name} ...' without parentheses"
            if c.name in L.KINDS else f"; this looks like Python: {c.name} is cnncalc's "
            f"'{known.keyword}', written without parentheses: e.g. '{known.example}'"
            if known is not None else "")
        raise st.error(f"unknown block {c.name!r}{hint}", c)
    if c.name in st.calls:
        chain = " -> ".join(st.calls + [c.name])
        raise st.error(f"block {c.name!r} calls itself ({chain}); recursion is not allowed", c)
    named, items = _split_name(st, c.items)
    if items:
        raise st.error(f"a call takes only name= after its arguments, received "
                       f"{getattr(items[0], 'text', '?')!r}", items[0])
    env = _bind(st, d, c, scope.env)
    st.calls.append(c.name)
    try:
        label = f"{c.name}({', '.join(_show(env[p.name]) for p in d.params)})"
        prefix = scope.prefix + ((named.text,) if named else ())
        inner = _Scope(env, prefix, scope.named or bool(named), scope.origin or label,
                       scope.called or c.line)
        return _named_output(st, named, prefix, _expand(st, d.body, inner, depth + 1))
    finally:
        st.calls.pop()


def _show(v) -> str:
    return v if isinstance(v, str) else "x".join(map(str, v))


def _bind(st, d: Def, c: Call, outer: dict) -> dict:
    """Parameter values: positional arguments, then keywords, then defaults."""
    names = [p.name for p in d.params]
    sig = ", ".join(p.name + (f"={p.default.text}" if p.default else "") for p in d.params)
    env = {}
    seen_key = False
    for i, a in enumerate(c.args):
        if a.key is None:
            if seen_key:
                raise st.error("a positional argument cannot follow a keyword argument",
                               a.value)
            if i >= len(names):
                raise st.error(f"block {c.name!r} takes {len(names)} argument(s) ({sig}), "
                               f"received {len(c.args)}", c)
            key = names[i]
        else:
            seen_key, key = True, a.key
            if key not in names:
                raise st.error(f"block {c.name!r} has no parameter {key!r}; its parameters: "
                               f"{sig or 'none'}", a.value)
        if key in env:
            raise st.error(f"{key!r} is given twice", a.value)
        env[key] = st.evaluate(a.value, outer)
    for p in d.params:
        if p.name not in env:
            if p.default is None:
                raise st.error(f"block {c.name!r} needs {p.name!r} ({sig})", c)
            env[p.name] = st.evaluate(p.default, {**st.knobs, **env})
    return {**st.knobs, **env}  # the spec's knobs are seen everywhere; a parameter hides one

