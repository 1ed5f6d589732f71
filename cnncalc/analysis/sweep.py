"""Design-space search: a spec's knobs ('param width = 64') varied over a grid, every
variant analysed by the calculator's own walk, kept where a condition holds, and the
Pareto front of the metrics to minimise marked. The spec is parsed once; each variant is
only expanded and walked (``cnncalc sweep``, ``cnncalc.sweep``)."""

from __future__ import annotations

import itertools
import operator
import re
from functools import reduce

from ..errors import CnnCalcError

# metric -> what it is, for the table's header, the plot's axes and the errors' lists
METRICS = {
    "params": "parameters (Keras' count: batchnorm's statistics included)",
    "trainable": "trainable parameters",
    "macs": "multiply-accumulates of one example",
    "flops": "FLOPs of one example (2 x MACs + element-wise operations)",
    "rf": "receptive field of the last layer that has one (before a global pool)",
    "memory": "inference memory at the batch: parameters and peak activations, bytes",
    "training": "the training step's peak memory at the batch (parameters, optimizer state, "
                "kept activations, gradients), bytes",
}
MAX_VARIANTS = 10_000_000  # values of one knob, and records a sweep keeps
MAX_GRID = 10**12  # combinations: the lanes walk them in chunks, in bounded memory


def values(name: str, text: str) -> list | range:
    """'16:128:16' (both ends included), '1:6' (step 1), or a list '1.0,1.1,1.2'."""
    from fractions import Fraction
    try:
        if ":" in text:
            parts = [Fraction(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] <= 0):
                raise ValueError
            lo, hi, step = parts[0], parts[1], parts[2] if len(parts) == 3 else 1
            if (hi - lo) / step > MAX_VARIANTS:
                raise CnnCalcError(f"--vary {name}={text}: more than {MAX_VARIANTS:,} values")
            if all(p.denominator == 1 for p in (lo, hi, step)) and hi >= lo:
                # whole numbers: a range, not ten million Fractions (gigabytes)
                return range(int(lo), int(hi) + 1, int(step))
            out, v = [], lo
            while v <= hi:
                out.append(v)
                v += step
        else:
            out = [Fraction(p) for p in text.split(",")]
    except (ValueError, ZeroDivisionError):
        raise CnnCalcError(f"--vary {name}={text}: expected LO:HI[:STEP] or a list A,B,C, "
                           "e.g. width=16:128:16 or width=1.0,1.1,1.2") from None
    if not out:
        raise CnnCalcError(f"--vary {name}={text}: the range is empty (LO is above HI)")
    return [v.numerator if v.denominator == 1 else v for v in out]


def parse_vary(items) -> dict:
    """['width=16:128:16', 'depth=1:6'] → {'width': [16, 32, ...], 'depth': [1, ..., 6]}."""
    vary = {}
    for item in items:
        name, eq, text = str(item).partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            raise CnnCalcError(f"--vary {item}: expected NAME=LO:HI[:STEP] or NAME=A,B,C")
        vary[name] = values(name, text.strip())
    return vary


# --- the condition: 'params < 5M and macs < 1G and rf >= 200' -------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?(?:[eE]\d+)?)([kKMGTP]i?B?|B)?|(<=|>=|==|!=|<|>)|"
                    r"(\(|\))|([A-Za-z_]\w*)|(\S))")
_SCALE = {"": 1, "B": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "P": 10**15, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def condition(text: str):
    """The condition as a function of a variant's metrics; read, never evaluated as code."""
    toks = []
    for m in _TOKEN.finditer(text):
        number, unit, op, paren, word, bad = m.groups()
        if bad:
            raise CnnCalcError(f"--where {text}: unexpected {bad!r} at column {m.start(6) + 1}; "
                               "write e.g. 'params < 5M and macs < 1G and rf >= 200'")
        if number is not None:
            toks.append(("num", float(number) * _SCALE[(unit or "").rstrip("B")]))
        elif op or paren:
            toks.append(("op", op or paren))
        elif word in ("and", "or", "not"):
            toks.append(("op", word))
        elif word in METRICS:
            toks.append(("metric", word))
        else:
            raise CnnCalcError(f"--where {text}: unknown metric {word!r}; the metrics are "
                               + ", ".join(METRICS))
    if len(toks) > 200:
        raise CnnCalcError(f"--where: at most 200 words, received {len(toks)}")
    reader = _Reader(toks, text)
    test = reader.either()
    if reader.i != len(toks):
        reader.fail("the end of the condition")
    return test


class _Reader:
    def __init__(self, toks, text):
        self.toks, self.text, self.i = toks, text, 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", None)

    def fail(self, expected):
        kind, v = self.peek()
        got = "the end" if kind == "end" else repr(v)
        raise CnnCalcError(f"--where {self.text}: expected {expected}, found {got}")

    def either(self):
        return self._joined("or", self.both, operator.or_)

    def both(self):
        return self._joined("and", self.single, operator.and_)

    def _joined(self, word, part, combine):
        """part (word part)*: one test, or the tests combined by any or all."""
        parts = [part()]
        while self.peek() == ("op", word):
            self.i += 1
            parts.append(part())
        return parts[0] if len(parts) == 1 else (lambda r: reduce(combine, (p(r) for p in parts)))

    def single(self):
        if self.peek() == ("op", "not"):
            self.i += 1
            inner = self.single()
            return lambda r: ~inner(r) if hasattr(inner(r), "dtype") else not inner(r)
        if self.peek() == ("op", "("):
            self.i += 1
            inner = self.either()
            if self.peek() != ("op", ")"):
                self.fail("')'")
            self.i += 1
            return inner
        left, op, right = self.side(), self.peek(), None
        if op[0] != "op" or op[1] not in _COMPARE:
            self.fail("a comparison (<, <=, >, >=, ==, !=)")
        self.i += 1
        right = self.side()
        compare = _COMPARE[op[1]]
        return lambda r: left(r) is not None and right(r) is not None and \
            compare(left(r), right(r))

    def side(self):
        kind, v = self.peek()
        if kind == "num":
            self.i += 1
            return lambda r: v
        if kind == "metric":
            self.i += 1
            return lambda r: r.get(v)
        self.fail("a metric or a number")


_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


# --- the sweep ----------------------------------------------------------------------------

def sweep(spec, vary: dict, where: str | None = None, pareto=None, sort: str | None = None,
          batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
          file: str | None = None, progress=None, scheduler=None,
          foreach: bool = True, amp: bool = False, checkpoint=()) -> list[dict]:
    """Every combination of ``vary`` ({'width': [16, 32], 'input': [128, 160]}; 'input'
    sets every open or given spatial size of the input), each a record of its knobs, the
    metrics and 'output'; kept where ``where`` holds; ``pareto`` (metrics to minimise)
    marks the front ('pareto': True); ``sort`` orders by a metric. Grids of 256 variants
    and more run as numpy lanes (analysis/lanes.py), in chunks: on Dask's workers when
    ``scheduler`` is an address (or a distributed Client or cluster)."""
    from ..language.parser import parse
    from .memory import check_options
    check_options(batch, dtype, optimizer)
    from ..language.checks import Limits, check_text
    text, file = _text(spec, file)
    check_text(text, file, Limits())  # as every spec is checked before it is parsed
    statements = parse(text, file)
    front = [m.strip() for m in (pareto.split(",") if isinstance(pareto, str) else pareto or ())]
    _check_metrics(front + ([sort] if sort else []))
    names, grid, total = _grid(vary)
    knobs = [n for n in names if n != "input"]
    _check_knobs(knobs, statements)
    options = (batch, dtype, optimizer, foreach, amp, tuple(checkpoint))
    if total >= VECTOR_FROM or scheduler is not None:
        from . import lanes
        job = lanes.Job(text, file, dict(zip(names, grid)), knobs, where, options)
        out = lanes.run(job, total, scheduler, progress)
    else:
        keep = condition(where) if where else None
        out = []
        for combo in itertools.product(*grid):
            record = _variant(statements, text, file, knobs, dict(zip(names, combo)), options)
            if progress is not None:
                progress(1)
            if keep is None or (record["valid"] and keep(record)):
                out.append(record)
    if front:
        _mark_front(out, front)
    if sort:
        key, sign = sort.lstrip("-"), -1 if sort.startswith("-") else 1
        out.sort(key=lambda r: (r[key] is None, sign * (r[key] or 0)))
    return out


def _check_metrics(metrics):
    for m in metrics:  # '-rf': larger is better, or descending
        if m.lstrip("-") not in METRICS:
            raise CnnCalcError(f"unknown metric {m!r}; the metrics are {', '.join(METRICS)} "
                               "('-rf' for larger is better)")


def _grid(vary) -> tuple:
    """The knobs' names, each one's values, and the number of variants."""
    names = list(vary)
    grid = [vary[n] if isinstance(vary[n], (list, range)) else list(vary[n]) for n in names]
    if not names or any(not g for g in grid):
        raise CnnCalcError("sweep: nothing to vary; give --vary NAME=LO:HI[:STEP]")
    total = 1
    for g in grid:
        total *= len(g)
    if total > MAX_GRID:
        raise CnnCalcError(f"sweep: {total:,} variants, more than {MAX_GRID:,}")
    return names, grid, total


def _check_knobs(knobs, statements):
    from ..language.records import Knob
    declared = [s.name for s in statements if isinstance(s, Knob)]
    for n in knobs:
        if n not in declared:
            raise CnnCalcError(f"--vary {n}: the spec has no 'param {n}'" + (
                f"; its params: {', '.join(declared)}" if declared else
                f"; it declares none (write 'param {n} = ...' at the top)") + ", or 'input'")


VECTOR_FROM = 256  # grids this large take the vectorised path (analysis/lanes.py)


def _variant(statements, text, file, knobs, setting, options) -> dict:
    """One variant by the scalar path: expanded, walked, measured; an invalid one says why."""
    from ..language.expand import Limits, expand
    record = {n: _plain(v) for n, v in setting.items()}
    try:
        network = expand(statements, text, file, Limits(), {n: setting[n] for n in knobs})
        if "input" in setting:
            network = _at_size(network, setting["input"])
        record.update(_metrics(network, *options))
    except CnnCalcError as e:
        record.update({m: None for m in METRICS}, output=None, valid=False, error=e.message)
    return record


def _text(spec, file):
    import os
    if isinstance(spec, os.PathLike):  # read as every spec is (one byte past the limit)
        from ..specs import read_bytes
        return read_bytes(spec).decode("utf-8", "replace"), str(spec)
    return (spec.decode("utf-8", "replace") if isinstance(spec, bytes) else spec), file


def _plain(v):
    """A knob's value for a record: a fraction as a float, a whole number as an int."""
    if hasattr(v, "denominator"):
        return int(v) if v.denominator == 1 else float(v)
    return v


def _at_size(network, n):
    shape = network.input.shape
    return network.with_input(tuple(n if i < len(shape) - 1 else v
                                    for i, v in enumerate(shape)))


def _metrics(network, batch, dtype, optimizer, foreach, amp, checkpoint) -> dict:
    from .. import fmt
    from .memory import estimate
    from .walk import analyse
    s = analyse(network)
    t = s.totals
    fields = [r.field for r in s.rows if r.field is not None]
    rf = max(size for size, _, _ in fields[-1]) if fields else 1
    mem = estimate(s, batch, dtype, optimizer, foreach, amp, checkpoint)
    return {"params": t.params, "trainable": t.trainable, "macs": t.macs, "flops": t.flops,
            "rf": rf, "memory": mem.param_bytes + mem.peak_activation_bytes,
            "training": mem.training_bytes, "output": fmt.shape(s.output), "valid": True}


def _mark_front(records, metrics):
    """Pareto front: no other valid variant is at least as good in every metric and better
    in one (minimised; '-rf' maximised)."""
    signs = [(m.lstrip("-"), -1 if m.startswith("-") else 1) for m in metrics]
    pts = [(i, tuple(sign * r[m] for m, sign in signs)) for i, r in enumerate(records)
           if r["valid"]]
    pts.sort(key=lambda p: p[1])
    front, best = set(), None
    if len(metrics) == 2:  # sorted by the first: on the front when the second improves
        for i, (a, b) in pts:
            if best is None or b < best:
                front.add(i)
                best = b
    else:
        for i, p in pts:
            if not any(q != p and all(x <= y for x, y in zip(q, p)) for _, q in pts):
                front.add(i)
    for i, r in enumerate(records):
        r["pareto"] = i in front
