"""Statements → the frozen network model: expands ``def``, calls, ``repeat`` and
``$params``, normalises every option once (``stride 2`` → ``(2, 2)``), names
unnamed layers, and checks what can be checked without shapes."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from . import model as m
from .errors import CnnCalcError, LimitError, SpecDesignError, context_line, paused_gc
from .parser import OPTIONS as _OPTIONS, Block, Call, Def, Dims, Open, Param, Stmt, parse


@dataclass
class Limits:
    max_layers: int = 100_000
    max_depth: int = 64
    max_bytes: int = 1 << 20
    max_line: int = 10_000


_PADDING_WORDS = {"valid", "same", "pad"}


@dataclass
class _State:
    text: str
    file: str | None
    limits: Limits
    rank: int = 0
    defs: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)  # user name -> line
    count: int = 0
    calls: list = field(default_factory=list)

    def error(self, message, line, column, cls=SpecDesignError):
        return cls(message, file=self.file, line=line, column=column,
                   context=context_line(self.text, line, column) if line else None)


def load(text: str, file: str | None = None, limits: Limits | None = None) -> m.Network:
    """Parse and build: the one entry point from text to the network model."""
    limits = limits or Limits()
    if isinstance(text, bytes):
        text = _decode(text, file)
    _check_text(text, file, limits)
    with paused_gc():
        return build(parse(text, file), text, file, limits)


def _decode(data: bytes, file):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CnnCalcError(f"the spec is not UTF-8 text (byte {e.start} is {data[e.start]:#04x})",
                           file=file) from None


def _check_text(text: str, file, limits: Limits):
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise CnnCalcError("the spec looks like a binary file (it holds a NUL byte)", file=file, line=line)
    if len(text.encode("utf-8", "replace")) > limits.max_bytes:
        raise LimitError(f"the spec is larger than the limit of {limits.max_bytes:,} bytes "
                         "(raise it with --max-bytes)", file=file)
    lines = text.split("\n") if len(text) > limits.max_line else ()  # shorter: no line is long
    for i, src in enumerate(lines, 1):
        if len(src) > limits.max_line:
            raise LimitError(f"line {i} is {len(src):,} characters, over the limit of "
                             f"{limits.max_line:,}", file=file, line=i)
    _check_nesting(text, file, limits)
    if not text.strip() or all(not s.split("#")[0].strip() for s in text.split("\n")):
        raise CnnCalcError("the spec is empty; it needs at least an 'input' line, "
                           "e.g. 'input 224x224x3'", file=file)


def _check_nesting(text: str, file, limits: Limits):
    """Refuse deep nesting before parsing, so nothing recurses without bound."""
    if text.count("{") <= limits.max_depth:  # cannot nest deeper than it has braces
        return
    depth = 0
    for i, src in enumerate(text.split("\n"), 1):
        for j, ch in enumerate(src.split("#")[0], 1):
            depth += (ch == "{") - (ch == "}")
            if depth > limits.max_depth:
                raise LimitError(f"blocks nest deeper than {limits.max_depth} levels (raise it "
                                 "with --max-depth)", file=file, line=i, column=j,
                                 context=context_line(text, i, j))


def with_input(network: m.Network, shape: str) -> m.Network:
    """The same network on another input (``--input 512x512x3``); the rank must stay."""
    parts = shape.lower().replace("?", "0").split("x")
    if not all(p.isdigit() and 0 < int(p) <= m.MAX_NUMBER for p in parts):
        raise CnnCalcError(f"--input {shape}: expected sizes such as 512x512x3")
    if len(parts) != len(network.input.shape):
        raise CnnCalcError(f"--input {shape}: the spec's input "
                           f"is {'x'.join(map(str, network.input.shape))}; give as many sizes")
    new = m.Input(shape=tuple(int(p) for p in parts), line=network.input.line,
                  column=network.input.column)
    return network.model_copy(update={"input": new})


def build(statements: list, text: str = "", file: str | None = None,
          limits: Limits | None = None) -> m.Network:
    st = _State(text, file, limits or Limits())
    name = "network"
    body = []
    for s in statements:
        if isinstance(s, Def):
            if s.name in st.defs:
                raise st.error(f"block {s.name!r} is defined twice (first on line "
                               f"{st.defs[s.name].line})", s.line, s.column)
            st.defs[s.name] = s
        else:
            body.append(s)
    if body and isinstance(body[0], Stmt) and body[0].kind == "network":
        name = body.pop(0).args[0]
    if not body or not (isinstance(body[0], Stmt) and body[0].kind == "input"):
        where = body[0] if body else None
        raise st.error("the spec must start with an 'input' line such as 'input 224x224x3'"
                       " (after an optional 'network NAME')",
                       getattr(where, "line", 1), getattr(where, "column", 1))
    inp = _input(st, body.pop(0))
    st.rank = inp.rank
    raw = _expand(st, body, {}, 0, None)
    taken = set(st.names)
    counters: dict = {}
    layers = tuple(_construct(st, r, taken, counters) for r in raw)
    return m.Network.model_construct(name=name, input=inp, layers=layers)


def _input(st: _State, s: Stmt) -> m.Input:
    dims = s.args[0]
    shape = []
    for a in dims.atoms:
        if isinstance(a, Param):
            raise st.error(f"'${a.name}' can only stand inside a def", a.line, a.column)
        shape.append(a.name if isinstance(a, Open) else a)
    if len(shape) < 2 or len(shape) > 4:
        raise st.error(f"input {dims.text}: expected 1 to 3 spatial sizes then the channels "
                       "(e.g. 100x16, 224x224x3, 16x64x64x1)", dims.line, dims.column)
    if isinstance(shape[-1], str):
        raise st.error(f"input {dims.text}: the number of channels must be a number",
                       dims.line, dims.column)
    for v in shape:
        if isinstance(v, int) and not 1 <= v <= m.MAX_NUMBER:
            raise st.error(f"input {dims.text}: sizes must be between 1 and 10^18, received {v}",
                           dims.line, dims.column)
    return m.Input(shape=tuple(shape), line=s.line, column=s.column)


# --- expansion -------------------------------------------------------------------------

@dataclass
class _Raw:
    """A layer waiting for its name: the model class, its fields, and where it was written."""
    cls: type
    fields: dict
    line: int
    column: int
    branches: list | None = None


def _expand(st: _State, stmts: list, env: dict, depth: int, block: str | None) -> list:
    if depth > st.limits.max_depth:
        s = stmts[0] if stmts else None
        raise st.error(f"blocks nest deeper than {st.limits.max_depth} levels (raise it with "
                       "--max-depth)", getattr(s, "line", 0), getattr(s, "column", 0), LimitError)
    out = []
    for s in stmts:
        if isinstance(s, Def):
            raise st.error("'def' must stand at the top level of the spec", s.line, s.column)
        if isinstance(s, Call):
            out.extend(_call(st, s, env, depth))
        elif isinstance(s, Block) and s.kind == "repeat":
            n = _scalar(st, s.count, env, "repeat")
            if n * max(len(s.branches[0]), 1) + st.count > st.limits.max_layers * 2:
                _too_many(st, s)
            label = block or f"repeat {n}"
            for _ in range(n):
                out.extend(_expand(st, s.branches[0], env, depth + 1, label))
        elif isinstance(s, Block):
            branches = [_expand(st, b, env, depth + 1, block) for b in s.branches]
            if len(branches) < 1:
                raise st.error(f"'{s.kind}' needs at least one branch {{ ... }}", s.line, s.column)
            cls = m.Add if s.kind == "add" else m.Concat
            out.append(_count(st, _Raw(cls, {"block": block}, s.line, s.column, branches)))
        elif s.kind in ("input", "network"):
            raise st.error(f"'{s.kind}' may only appear once, at the start of the spec",
                           s.line, s.column)
        else:
            out.append(_count(st, _layer(st, s, env, block)))
    return out


def _too_many(st, s):
    raise st.error(f"the spec expands to more than {st.limits.max_layers:,} layers (raise it "
                   "with --max-layers)", s.line, s.column, LimitError)


def _count(st: _State, raw: _Raw) -> _Raw:
    st.count += 1
    if st.count > st.limits.max_layers:
        _too_many(st, raw)
    return raw


def _call(st: _State, c: Call, env: dict, depth: int) -> list:
    d = st.defs.get(c.name)
    if d is None:
        import difflib
        close = difflib.get_close_matches(c.name, list(st.defs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise st.error(f"unknown block {c.name!r}{hint}", c.line, c.column)
    if c.name in st.calls:
        chain = " -> ".join(st.calls + [c.name])
        raise st.error(f"block {c.name!r} calls itself ({chain}); recursion is not allowed",
                       c.line, c.column)
    if len(c.args) != len(d.params):
        raise st.error(f"block {c.name!r} takes {len(d.params)} argument(s) "
                       f"({', '.join(d.params)}), received {len(c.args)}", c.line, c.column)
    bound = {p: _resolve(st, a, env) for p, a in zip(d.params, c.args)}
    st.calls.append(c.name)
    try:
        label = f"{c.name}({', '.join('x'.join(map(str, bound[p])) for p in d.params)})"
        return _expand(st, d.body, bound, depth + 1, label)
    finally:
        st.calls.pop()


def _resolve(st: _State, dims: Dims, env: dict) -> tuple:
    """The atoms of a size with every ``$param`` replaced by its value."""
    out = []
    for a in dims.atoms:
        if isinstance(a, Param):
            if a.name not in env:
                known = ", ".join(f"${k}" for k in env) or "none here"
                raise st.error(f"unknown parameter '${a.name}' (parameters: {known})",
                               a.line, a.column)
            out.extend(env[a.name])
        elif isinstance(a, Open):
            raise st.error(f"open size {a.name!r} can only stand in the input", dims.line, dims.column)
        else:
            out.append(a)
    return tuple(out)


def _scalar(st, dims: Dims, env, what: str) -> int:
    v = _resolve(st, dims, env)
    if len(v) != 1:
        raise st.error(f"{what}: expected one number, received {dims.text}", dims.line, dims.column)
    return v[0]


def _per_axis(st, dims: Dims, env, what: str, rank: int) -> tuple:
    v = _resolve(st, dims, env)
    if len(v) == 1:
        return v * rank
    if len(v) != rank:
        raise st.error(f"{what} {dims.text}: expected one number or {rank} (one per spatial axis "
                       f"of the {rank}-D input)", dims.line, dims.column)
    return v


def _layer(st: _State, s: Stmt, env: dict, block) -> _Raw:
    allowed = _OPTIONS.get(s.kind, set())
    opts = {}
    for o in s.opts:
        key = "padding" if o.name in _PADDING_WORDS else o.name
        if o.name != "name" and o.name not in allowed:
            if o.name == "act" and s.kind not in allowed:
                what = f"activation {o.value!r}"
            else:
                what = f"option {o.name!r}"
            takes = ", ".join(sorted(w if w != "act" else "an activation" for w in allowed))
            raise st.error(f"{s.kind}: {what} does not apply here; {s.kind} takes "
                           f"{takes + ', ' if takes else ''}name=", o.line, o.column)
        if key in opts:
            prev = opts[key]
            raise st.error(f"{s.kind}: {_optword(prev)} and {_optword(o)} both set the "
                           f"{'padding' if key == 'padding' else key}; give it once",
                           o.line, o.column)
        opts[key] = o
    fields = {"block": block}
    if "name" in opts:
        name = opts["name"].value
        if name in st.names:
            raise st.error(f"the name {name!r} is already used on line {st.names[name]}; "
                           "names must be unique", opts["name"].line, opts["name"].column)
        st.names[name] = s.line
        fields["name"] = name
    fields.update(_FIELDS[s.kind](st, s, opts, env))
    return _Raw(_CLASSES[s.kind], fields, s.line, s.column)


def _optword(o) -> str:
    if o.name == "pad":
        return f"'pad {o.value.text}'"
    return f"'{o.value}'" if o.name == "act" else f"'{o.name}'"


def _padding(st, opts, env, rank):
    o = opts.get("padding")
    if o is None or o.name == "valid":
        return "valid"
    if o.name == "same":
        return "same"
    return _per_axis(st, o.value, env, "pad", rank)


def _kernel_and_filters(st, s, env):
    dims = s.args[0]
    v = _resolve(st, dims, env)
    if len(v) != st.rank + 1:
        raise st.error(f"{s.kind} {dims.text}: expected {st.rank} kernel size(s) then the number "
                       f"of filters for the {st.rank}-D input (e.g. "
                       f"{'x'.join(['3'] * st.rank)}x64)", dims.line, dims.column)
    return v[:-1], v[-1]


def _conv_fields(st, s, opts, env):
    kernel, filters = _kernel_and_filters(st, s, env)
    f = {"kernel": kernel, "filters": filters,
         "stride": _opt_axis(st, opts, "stride", env), "dilation": _opt_axis(st, opts, "dilation", env),
         "padding": _padding(st, opts, env, st.rank), "bias": "nobias" not in opts,
         "activation": opts["act"].value if "act" in opts else None}
    if s.kind == "conv":
        f["groups"] = _scalar(st, opts["groups"].value, env, "groups") if "groups" in opts else 1
        if "kernel" in opts:
            f["weights"] = opts["kernel"].value
    return f


def _opt_axis(st, opts, key, env):
    o = opts.get(key)
    return _per_axis(st, o.value, env, key, st.rank) if o else (1,) * st.rank


def _pool_fields(st, s, opts, env):
    pool = _per_axis(st, s.args[0], env, s.kind, st.rank)
    stride = _per_axis(st, opts["stride"].value, env, "stride", st.rank) if "stride" in opts else pool
    return {"pool": pool, "stride": stride, "padding": _padding(st, opts, env, st.rank),
            "ceil": "ceil" in opts}


def _dense_fields(st, s, opts, env):
    return {"units": _scalar(st, s.args[0], env, "dense"), "bias": "nobias" not in opts,
            "activation": opts["act"].value if "act" in opts else None}


def _dropout_fields(st, s, opts, env):
    a = s.args[0]
    rate = a if isinstance(a, float) else _scalar(st, a, env, "dropout")
    if not 0 <= rate < 1:
        raise st.error(f"dropout: the rate must be in [0, 1), received {rate}", s.line, s.column)
    return {"rate": float(rate)}


_FIELDS = {
    "conv": _conv_fields,
    "deconv": _conv_fields,
    "maxpool": _pool_fields,
    "avgpool": _pool_fields,
    "dense": _dense_fields,
    "dropout": _dropout_fields,
    "globalavgpool": lambda st, s, o, e: {},
    "globalmaxpool": lambda st, s, o, e: {},
    "flatten": lambda st, s, o, e: {},
    "batchnorm": lambda st, s, o, e: {},
    "zeropad": lambda st, s, o, e: {"padding": _per_axis(st, s.args[0], e, "zeropad", st.rank)},
    "upsample": lambda st, s, o, e: {"factor": _per_axis(st, s.args[0], e, "upsample", st.rank)},
    "activation": lambda st, s, o, e: {"activation": s.args[0]},
    "add_ref": lambda st, s, o, e: {"ref": s.args[0]},
    "concat_ref": lambda st, s, o, e: {"ref": s.args[0], "crop": "crop" in o},
}
_CLASSES = {"conv": m.Conv, "deconv": m.Deconv, "maxpool": m.MaxPool, "avgpool": m.AvgPool,
            "globalavgpool": m.GlobalAvgPool, "globalmaxpool": m.GlobalMaxPool,
            "flatten": m.Flatten, "dense": m.Dense, "dropout": m.Dropout, "batchnorm": m.BatchNorm,
            "zeropad": m.ZeroPad, "upsample": m.Upsample, "activation": m.Act,
            "add_ref": m.AddRef, "concat_ref": m.ConcatRef}
_KIND_OF = {cls: kind for kind, cls in _CLASSES.items()} | {m.Add: "add", m.Concat: "concat"}


# --- naming and construction -------------------------------------------------------------

def _construct(st: _State, raw: _Raw, taken: set, counters: dict):
    fields = dict(raw.fields)
    if "name" not in fields:
        kind = _KIND_OF[raw.cls]  # (model_fields is a slow class property in pydantic)
        base = fields.get("activation") if kind == "activation" else kind
        base = {"add_ref": "add", "concat_ref": "concat"}.get(base, base)
        n = counters.get(base, 0)
        while True:
            n += 1
            candidate = f"{base}_{n}"
            if candidate not in taken:
                break
        counters[base] = n
        taken.add(candidate)
        fields["name"] = candidate
    if raw.branches is not None:
        fields["branches"] = tuple(tuple(_construct(st, r, taken, counters) for r in b)
                                   for b in raw.branches)
    if raw.branches is not None:  # a container of layers validated just above
        return raw.cls.model_construct(line=raw.line, column=raw.column, **fields)
    try:
        return raw.cls(line=raw.line, column=raw.column, **fields)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise st.error(f"{fields['name']}: {where} {err['msg'].lower()}, received "
                       f"{err.get('input')!r}", raw.line, raw.column) from None
