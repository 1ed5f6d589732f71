"""The sweep's fast path: the variants that share a structure walked at once. Each knob
that varies is a numpy array, one lane per variant; the expander puts the arrays into the
layers' fields and the calculator's own walk (the one ``cnncalc sizes`` runs on arrays of
input sizes) computes every lane's shapes and counts in one pass per layer.

Exact, or not used: a knob that shapes the network (a repeat count) is held at one value
per walk, so the grid is walked in groups; numpy's int64 wraps silently, so the lanes are
``Lanes``, whose every addition and multiplication carries a bound on its result and
refuses one that could pass 2^62; a rule that cannot take arrays, and an operation that
could overflow, send the group to the scalar path, and so does every lane the walk finds
invalid (the scalar path says why)."""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import CnnCalcError
from ..layers.base import LanesDiffer
from ..limits import MAX_SIZE

CHUNK = 1 << 15  # lanes per walk: bounded memory at any grid size
CONNECT_SECONDS = 10  # how long --scheduler waits for a Dask scheduler
SPLIT_FROM = 64  # a group the lanes cannot walk is halved down to this many


class Lanes(np.ndarray):
    """int64 lanes whose arithmetic cannot wrap unnoticed: each result of +, - and * keeps a
    bound on its magnitude (from its operands' bounds, exact maxima where unknown) and an
    operation whose bound reaches 2^62 raises OverflowError. Other operations pass through."""
    LIMIT = 2.0 ** 62
    bound = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, Lanes) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Lanes) else o
                                  for o in kwargs["out"])
        bound = None
        if ufunc in _GROWS and method in ("__call__", "reduce") and all(
                _whole(x) for x in inputs):
            bounds = [_bound(x) for x in inputs]
            if method == "reduce":
                n = inputs[0].shape[kwargs.get("axis", 0) or 0] if inputs[0].ndim else 1
                bound = bounds[0] ** n if ufunc is np.multiply else bounds[0] * n
            else:
                bound = bounds[0] * bounds[-1] if ufunc is np.multiply else sum(bounds)
            if bound >= self.LIMIT:
                raise OverflowError("a sweep's lanes could pass int64")
        result = getattr(ufunc, method)(*plain, **kwargs)
        if isinstance(result, np.ndarray) and result.dtype.kind in "iu":
            result = result.view(Lanes)
            result.bound = bound
        return result


_GROWS = (np.add, np.subtract, np.multiply)


def _whole(x) -> bool:
    return isinstance(x, (int, np.integer, bool, np.bool_)) or (
        isinstance(x, np.ndarray) and x.dtype.kind in "iub")


def _bound(x) -> float:
    if isinstance(x, Lanes) and x.bound is not None:
        return x.bound
    if isinstance(x, np.ndarray):
        b = float(np.abs(x.view(np.ndarray)).max()) if x.size else 0.0
        if isinstance(x, Lanes):
            x.bound = b
        return b
    return float(abs(int(x)))


def as_lanes(v):
    """Integer arrays as Lanes; anything else as it is."""
    if isinstance(v, np.ndarray) and v.dtype.kind in "iu" and not isinstance(v, Lanes):
        return v.astype(np.int64, copy=False).view(Lanes)
    return v


def columns(vary: dict) -> dict:
    return {n: _column(v) for n, v in vary.items()}


def lanes(columns: dict, names: list, start: int, stop: int) -> tuple[dict, dict]:
    """Lanes start..stop of the grid (in itertools.product's order): per name, the values
    and their indices into the name's list."""
    index = np.unravel_index(np.arange(start, stop), [len(columns[n]) for n in names])
    values = {n: columns[n][i] for n, i in zip(names, index)}
    return values, dict(zip(names, index))


def _column(values) -> np.ndarray:
    """A knob's values as an array: int64 when all are whole, else the Fractions as objects."""
    if isinstance(values, range):
        return np.arange(values.start, values.stop, values.step, dtype=np.int64)
    whole = all(isinstance(v, int) for v in values)  # (int64 would truncate a Fraction)
    return np.array(values, dtype=np.int64 if whole else object)


def _one(v):
    """A lane's value as the scalar path has it: an int, or a knob's Fraction."""
    return int(v) if isinstance(v, np.integer) else v


class Plan:
    """Which knobs a walk holds at one value (``fixed``), found on the first lanes: the
    smallest set that lets the rest run as lanes; None when no set does."""

    def __init__(self, statements, text, file, knobs: list, options):
        self.statements, self.text, self.file, self.knobs = statements, text, file, knobs
        self.options, self.fixed = options, None

    def find(self, values: dict):
        for size in range(len(self.knobs) + 1):
            for fixed in itertools.combinations(self.knobs, size):
                self.fixed = fixed
                try:
                    self.walk(values, np.arange(min(len(next(iter(values.values()))), 64)))
                    return self
                except (LanesDiffer, OverflowError):  # lanes to split, not knobs to hold
                    return self
                except (CnnCalcError, ArithmeticError, TypeError, ValueError):
                    continue
        self.fixed = None
        return self

    def groups(self, index: dict):
        """Lane numbers of each group sharing the fixed knobs' values."""
        if not self.fixed:
            yield np.arange(len(next(iter(index.values()))))
            return
        key = np.ravel_multi_index([index[k] for k in self.fixed],
                                   [int(index[k].max()) + 1 for k in self.fixed])
        _, inverse = np.unique(key, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        yield from np.split(order, bounds)

    def walk(self, values: dict, take) -> tuple[dict, np.ndarray]:
        """Metrics of lanes ``take`` as int64 arrays, and which lanes are valid."""
        return _metrics(self._network(values, take), len(take), self.options)

    def _network(self, values, take):
        from ..language.expand import Limits, expand
        env = {}
        for k in self.knobs:
            lane = values[k][take]
            if k in self.fixed:
                env[k] = _one(lane[0])
            else:
                env[k] = as_lanes(lane)
        network = expand(self.statements, self.text, self.file, Limits(), env)
        shape = network.input.shape
        if "input" in values:
            n = as_lanes(values["input"][take])
            shape = tuple(n if i < len(shape) - 1 else v for i, v in enumerate(shape))
            network = network.with_input(shape)
        if any(isinstance(v, str) for v in shape):
            raise CnnCalcError("open input sizes: vary 'input'")
        return network


def _metrics(network, n: int, options) -> tuple[dict, np.ndarray]:
    from .memory import estimate
    from .walk import Walk
    from .summary import Summary
    valid = np.ones(n, bool)

    def check(condition, axis=None):
        holds = np.asarray(condition)
        if holds.ndim:
            valid[:] &= holds
            return True
        return bool(holds)

    def after(row, out):
        fixed = []
        for v in row.output:
            if hasattr(v, "dtype") and (v.min() < 1 or v.max() > MAX_SIZE):
                # invalid lanes go on clamped; the scalar path says why
                valid[:] &= (v >= 1) & (v <= MAX_SIZE)
                v = np.clip(v, 1, MAX_SIZE).astype(v.dtype)
            fixed.append(as_lanes(v))
        row.output = tuple(fixed)

    walk = Walk(check=check, after=after)
    shape = network.input.shape
    tree, out = walk.run(network, shape)
    s = Summary(network, walk.rows, out, shape, tree)
    t = s.totals
    fields = [r.rf for r in s.rows if r.rf is not None]
    rf = 1 if not fields else _largest([size for size, _, _ in fields[-1]])
    mem = estimate(s, *options)
    got = {"params": t.params, "trainable": t.trainable, "macs": t.macs, "flops": t.flops,
           "rf": rf, "memory": mem.param_bytes + mem.peak_activation_bytes,
           "training": mem.training_bytes}
    got = {m: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for m, v in got.items()}
    got["output"] = s.output
    return got, valid


def _largest(values):
    out = values[0]
    for v in values[1:]:
        out = np.maximum(out, v)
    return out


def output_text(shape: tuple, lane: int) -> str:
    from .. import fmt
    return fmt.shape(tuple(int(v[lane]) if hasattr(v, "dtype") else v for v in shape))


# --- the chunk kernel: picklable, so a Dask worker runs it as this process does -------------

class Job:
    """What every chunk needs: the spec's text, the grid, the knobs, the condition's text
    and the memory options (batch, dtype, optimizer, foreach, amp, checkpoint)."""

    def __init__(self, text, file, vary, knobs, where, options):
        self.text, self.file, self.vary, self.knobs = text, file, vary, knobs
        self.where, self.options = where, options
        self.fixed, self._prepared = False, None

    def prepared(self):
        """(statements, condition, columns), made once per process."""
        if self._prepared is None:
            from ..language.parser import parse
            from .sweep import condition
            self._prepared = (parse(self.text, self.file),
                              condition(self.where) if self.where else None, columns(self.vary))
        return self._prepared

    def __getstate__(self):  # to a worker: the text, not the parsed records or closures
        return {**self.__dict__, "_prepared": None}


def run(job: Job, total: int, scheduler=None, progress=None) -> list[dict]:
    spans = [(a, min(total, a + CHUNK)) for a in range(0, total, CHUNK)]
    if scheduler is not None:
        return _on_dask(job, spans, scheduler, progress)
    out = []
    for a, b in spans:
        out.extend(chunk(job, a, b))
        _bounded(out)
        if progress is not None:
            progress(b - a)
    return out


def _bounded(records):
    """A grid of any size runs in bounded memory; what it keeps must fit too."""
    from .sweep import MAX_VARIANTS
    if len(records) > MAX_VARIANTS:
        raise CnnCalcError(f"sweep: more than {MAX_VARIANTS:,} variants kept; narrow the grid "
                           "or keep fewer with --where")


def _on_dask(job, spans, scheduler, progress) -> list[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise CnnCalcError("--scheduler needs Dask: pip install 'cnncalc[dask]'") from None
    try:
        client = scheduler if isinstance(scheduler, Client) else Client(
            scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as e:
        raise CnnCalcError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                           f"({e})") from None
    try:
        futures = [client.submit(chunk, job, a, b, pure=False) for a, b in spans]
        where = {f.key: i for i, f in enumerate(futures)}
        parts, kept = [None] * len(futures), 0
        for future in as_completed(futures):
            i = where[future.key]
            parts[i] = future.result()
            kept += len(parts[i])
            _bounded(range(kept))
            if progress is not None:
                progress(spans[i][1] - spans[i][0])
        return [r for part in parts for r in part]  # in the grid's order
    finally:
        if client is not scheduler:
            client.close()


def chunk(job: Job, start: int, stop: int) -> list[dict]:
    """Records of lanes start..stop of the grid, kept where the condition holds, in the
    grid's order."""
    from .sweep import _plain, _variant
    statements, keep, cols = job.prepared()
    names = list(job.vary)
    values, index = lanes(cols, names, start, stop)
    plan = Plan(statements, job.text, job.file, job.knobs, job.options)
    if job.fixed is False:  # found on the first chunk, kept for the rest
        job.fixed = plan.find(values).fixed
    plan.fixed = job.fixed
    found = []  # (lane, record)

    def scalar(take):
        for j in take:
            record = _variant(statements, job.text, job.file, job.knobs,
                              {n: _one(values[n][j]) for n in names}, job.options)
            if keep is None or (record["valid"] and keep(record)):
                found.append((j, record))

    work = list(plan.groups(index)) if plan.fixed is not None else [range(stop - start)]
    while work:
        take = work.pop()
        if plan.fixed is None:
            scalar(take)
            continue
        try:
            got, good = plan.walk(values, take)
        except (CnnCalcError, ArithmeticError, TypeError, ValueError):
            # a rule that takes no arrays, lanes that differ in how a tensor is stored, or
            # int64 could overflow (large inputs): halves, down to a few lanes, then one by one
            if len(take) > SPLIT_FROM:
                work += [take[:len(take) // 2], take[len(take) // 2:]]
            else:
                scalar(take)
            continue
        # a rule may branch on whether a size is a plain int: the lanes must agree with the
        # scalar path on the group's first and last variant, or the group goes there
        if not all(_agrees(got, good, i, _variant(
                statements, job.text, job.file, job.knobs,
                {n: _one(values[n][take[i]]) for n in names}, job.options))
                for i in {0, len(take) - 1}):
            scalar(take)
            continue
        kept = good if keep is None else good & np.broadcast_to(keep(got), good.shape)
        for i in np.flatnonzero(kept):
            record = {n: _plain(_one(values[n][take[i]])) for n in names}
            record.update({m: int(got[m][i]) for m in METRIC_NAMES},
                          output=output_text(got["output"], i), valid=True)
            found.append((take[i], record))
        scalar(take[i] for i in np.flatnonzero(~good))  # invalid: the scalar path says why
    found.sort(key=lambda p: p[0])
    return [r for _, r in found]


METRIC_NAMES = ("params", "trainable", "macs", "flops", "rf", "memory", "training")


def _agrees(got, good, i, record) -> bool:
    if not record["valid"] or not good[i]:
        return record["valid"] == bool(good[i])
    return all(int(got[m][i]) == record[m] for m in METRIC_NAMES) and \
        output_text(got["output"], i) == record["output"]
