"""A spec as a standalone Keras 3 file: a function building the functional model, each
layer written by its kind (``Layer.keras_code``) under the spec's name. The spec's
semantics are Keras', so the file computes what the spec says; input in picture order,
channels last (H, W, C), as Keras takes it."""

from __future__ import annotations

import re
import sys

from .. import fmt
from ..analysis.summary import Summary
from ..errors import CnnCalcError
from ..layers.base import picture
from ..layers.outputs import Output
from .to_pytorch import _unique


class _Writer:
    def __init__(self, keep, targets=()):
        self.lines, self.saved, self.names, self.count = [], {}, set(), 0
        self.keep, self.variables = keep, set()
        self.targets, self.layers = set(targets), {}  # 'shares ID': ID -> {expression: variable}

    def name(self, spec_name: str) -> str:
        return _unique(re.sub(r"[^\w]", "_", spec_name).strip("_") or "layer", self.names)

    def fresh(self) -> str:
        self.count += 1
        return f"y{self.count}"

    def chain(self, rows, src, dst):
        for row in rows:
            src = self.row(row, src, dst)
        return src

    def row(self, row, src, dst):
        if row.kind == Output.keyword:
            if row.branches is not None:
                self.saved[row.name] = self.chain(row.branches[0], src, self.fresh())
            else:
                self.saved[row.name] = self.saved[row.layer.ref] if row.layer.ref else src
            return src
        if row.layer.jump:  # 'from ID': ID's tensor goes on
            out = self.saved[row.source.name]
        elif row.branches is not None or row.source is not None:
            out = self.merge(row, src, dst)
        else:
            out = self.layer(row, src, dst)
        if row.name in self.keep:  # read again later: a variable of its own
            keep = _unique(re.sub(r"\W", "_", row.name).strip("_") + "_out", self.variables)
            self.lines.append(f"{keep} = {out}")
            out = keep
        self.saved[row.name] = out
        return out

    def merge(self, row, src, dst):
        """A merge block, or a merge with a saved tensor (centre-cropped first where the
        spec crops it)."""
        if getattr(row.layer, "split", None):
            raise CnnCalcError(f"layer '{row.name}' (concat split): cnncalc cannot write a "
                               "channel split as Keras source yet")
        if row.source is not None:
            values = [src, self.saved[row.source.name]]
            offsets = (row.geometry or {}).get("offsets")
            if offsets:  # the centre crop of the saved map to the current size
                pairs = tuple((o, big - small - o) for o, big, small in zip(
                    picture(offsets), picture(row.source.output[:-1]),
                    picture(row.input[:-1])))
                crop = self.name(row.name + "_crop")
                self.lines.append(f'{dst}_crop = layers.Cropping{len(pairs)}D('
                                  f'{pairs!r}, name="{crop}")({values[1]})')
                values[1] = f"{dst}_crop"
        else:
            values = [self.chain(b, src, self.fresh()) if b else src for b in row.branches]
        cls = row.layer.keras_merge
        self.lines.append(f'{dst} = layers.{cls}(name="{self.name(row.name)}")'
                          f'([{", ".join(values)}])')
        return dst

    def layer(self, row, src, dst):
        """A layer's Keras layers, each applied in turn (a shared one: its variable)."""
        exprs = row.layer.keras_code(row)
        shared = self.layers.get(row.layer.shares, {})
        if row.layer.shares is not None and not set(exprs) <= set(shared):
            raise CnnCalcError(f"layer '{row.name}' ({row.layer.describe()}): cnncalc "
                               f"writes shared weights as one Keras layer applied twice, "
                               f"and {row.layer.shares!r} is written differently")
        for i, expr in enumerate(exprs):
            if expr in shared:  # 'shares ID': ID's layer, applied again
                self.lines.append(f"{dst} = {shared[expr]}({src})")
                src = dst
                continue
            name = self.name(row.name + ("" if i == len(exprs) - 1 else f"_{i + 1}"))
            frozen = "trainable=False, " if row.layer.frozen and i == len(exprs) - 1 else ""
            named = expr[:-1] + (", " if not expr.endswith("()") else "") + \
                f'{frozen}name="{name}")'
            if row.name in self.targets:  # applied again later: a variable of its own
                self.lines.append(f"layer_{name} = {named}")
                self.layers.setdefault(row.name, {})[expr] = named = f"layer_{name}"
            self.lines.append(f"{dst} = {named}({src})")
            src = dst
        return src


def to_keras_code(spec, source: str | None = None) -> str:
    """The spec as the source of a standalone Keras 3 file (a string)."""
    from ..specs import summarize
    summary = spec if isinstance(spec, Summary) else summarize(spec)
    net = summary.network
    shape = net.input.shape
    if any(fmt.symbolic(n) for n in shape):
        raise CnnCalcError("export needs a fixed input size: give one with --input")
    from ..layers.network import referenced
    w = _Writer(referenced(net.layers) | {n for n, _ in summary.outputs},
                {r.layer.shares for r in summary.rows if r.layer.shares is not None})
    y = w.chain(summary.tree, "x", "x")
    names = [n for n, _ in summary.outputs]
    outs = [w.saved.get(n, y) for n in names] if len(names) > 1 else [y]
    picture_in = (*picture(shape[:-1]), shape[-1])
    origin = {None: "its spec", "<expr>": "an inline spec"}.get(source, source)
    t = summary.totals
    lines = [f'"""{net.name}, written by cnncalc from {origin}: a Keras 3 functional model.',
             "",
             f"Input (N, {', '.join(map(str, picture_in))}), channels last; "
             f"{t.params:,} parameters ({t.trainable:,} trainable).",
             '"""', "", "import importlib.util", "import os", "",
             "# Keras 3 looks for TensorFlow unless KERAS_BACKEND names another: take one installed",
             "if \"KERAS_BACKEND\" not in os.environ:",
             "    os.environ[\"KERAS_BACKEND\"] = next((b for b in (\"tensorflow\", \"jax\", \"torch\")",
             "                                          if importlib.util.find_spec(b)), \"tensorflow\")",
             "", "import keras  # noqa: E402", "from keras import layers  # noqa: E402", "", "",
             "def build():",
             f'    x = inputs = keras.Input({tuple(picture_in)!r}, name="input")']
    lines += [f"    {line}" for line in w.lines]
    result = outs[0] if len(outs) == 1 else "[" + ", ".join(outs) + "]"
    lines += [f'    return keras.Model(inputs, {result}, name="{net.name}")', "", "",
              'if __name__ == "__main__":', "    build().summary()"]
    return "\n".join(lines) + "\n"


def load_model(code: str):
    """The model a file to_keras_code wrote builds (our own source, never a user's)."""
    namespace = {"__name__": "cnncalc_export"}
    exec(compile(code, "<cnncalc export>", "exec"), namespace)
    return namespace["build"]()


class KerasCheck:
    """The spec built in Keras, compared layer by layer: each row with Keras' output shape
    and count_params() for the layers written under its name."""

    def __init__(self, summary, rows):
        self.summary, self.rows = summary, rows  # (row, keras shape or None, keras params)

    def mismatched(self, entry) -> bool:
        row, shape, params = entry
        return shape != _picture_shape(row.output) or params != row.params

    @property
    def ok(self) -> bool:
        return not any(self.mismatched(e) for e in self.rows)

    def __str__(self):
        from ..render.table import Matrix, text
        keys = ["#", "name", "calc output", "keras output", "calc params", "keras params",
                "match"]
        body = []
        for entry in self.rows:
            row, shape, params = entry
            cells = [str(row.index), row.name, fmt.shape(row.output),
                     fmt.shape((*picture(shape[:-1]), shape[-1])) if shape else "(none)",
                     f"{row.params:,}", f"{params:,}",
                     "MISMATCH" if self.mismatched(entry) else "ok"]
            body.append((row.depth, cells, cells))
        bad = sum(self.mismatched(e) for e in self.rows)
        footer = [f"{len(self.rows) - bad} of {len(self.rows)} layers match in shape and "
                  "params (Keras' count_params(), batchnorm's moving statistics included)"
                  + (f"; {bad} MISMATCH" if bad else "")]
        title = f"{self.summary.network.name}: built in Keras {_keras_version()}"
        return text(Matrix(title, keys, keys, [k in ("name", "calc output", "keras output",
                                                     "match") for k in keys], body,
                           footer=footer))


def _picture_shape(shape) -> tuple:
    return (*picture(shape[:-1]), shape[-1])


def _keras_version() -> str:
    import keras
    return f"{keras.__version__} on {keras.backend.backend()}"


def keras_check(summary) -> KerasCheck:
    """Build the spec in Keras and compare every leaf row with its Keras layers."""
    import importlib.util
    import os
    if "KERAS_BACKEND" not in os.environ and "keras" not in sys.modules:
        # Keras 3 looks for TensorFlow unless told: take a backend that is installed
        found = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
        if found:
            os.environ["KERAS_BACKEND"] = found[0]
    try:
        import keras  # noqa: F401
    except ImportError:
        raise CnnCalcError("'check --backend keras' needs Keras 3: pip install keras "
                           "(and a backend: jax, torch or tensorflow)") from None
    model = load_model(to_keras_code(summary))
    by_name = {}
    for layer in model.layers:  # a row's layers: its name, and name_1, name_2 for pads
        base = re.sub(r"_\d+$", "", layer.name)
        by_name.setdefault(layer.name, []).append(layer)
        if base != layer.name:
            by_name.setdefault(base, []).append(layer)
    rows, calls = [], {}
    for row in summary.rows:
        if row.kind == Output.keyword or row.layer.jump:  # no layer of their own
            continue
        owner = row.layer.shares or row.name  # 'shares ID': ID's layer, its next call
        call = calls[owner] = calls.get(owner, -1) + 1
        name = re.sub(r"[^\w]", "_", owner).strip("_")
        mine = by_name.get(name, [])
        last = next((lay for lay in mine if lay.name == name), None)
        # a layer applied several times has an output per call (Keras' inbound nodes)
        shape = tuple(last._inbound_nodes[call].outputs[0].shape[1:]) \
            if last is not None else None
        params = sum(lay.count_params() for lay in mine if lay.built) if not call else 0
        rows.append((row, shape, params))
    return KerasCheck(summary, rows)
