"""A spec as a standalone PyTorch file: one nn.Module class whose __init__ holds each layer
(its kind writes it: ``Layer.code``) and whose forward wires them as the row tree does.
The file imports only torch, takes (N, C, H, W) as PyTorch models do, and has the spec's
shapes and parameter counts; it is written once, for a person to read and change."""

from __future__ import annotations

import keyword
import re

from .. import fmt
from ..analysis.summary import Summary
from ..errors import CnnCalcError
from ..layers import KINDS
from ..layers.base import picture
from ..layers.dense import Dense, Flatten
from ..layers.network import referenced
from ..layers.outputs import Output
from ..layers.reshaping import Reshape

_RESERVED = {"forward", "training", "input", "x", "torch", "nn", "self", "add_module", "cuda",
             "cpu", "to", "train", "eval", "parameters", "modules", "children", "apply",
             "float", "half", "double", "type", "state_dict"}
# nn.ModuleDict's own attributes: a key among them cannot name a module in it
_DICT = _RESERVED | {"keys", "items", "values", "update", "pop", "clear", "buffers",
                     "named_modules", "named_parameters", "named_buffers", "register_module",
                     "get_submodule", "zero_grad", "requires_grad_", "extra_repr", "register_buffer",
                     "register_parameter", "load_state_dict", "share_memory", "bfloat16",
                     "named_children", "xpu", "ipu", "mtia", "get_parameter", "get_buffer",
                     "compile", "dump_patches", "call_super_init"}


def _unique(base: str, taken: set) -> str:
    """base, or base_2, base_3, ...: the first not taken (then taken)."""
    out, n = base, 1
    while out in taken:
        n += 1
        out = f"{base}_{n}"
    taken.add(out)
    return out


class _Parameter(str):
    """A bare parameter's expression in the module tree (not a module)."""


class _Writer:
    def __init__(self, summary: Summary):
        self.summary = summary
        self.attrs = []  # (where, expression): self.conv1, self.layer1["0"]["conv1"]
        # the modules as the spec's names nest them (layer1.0.conv1): key -> expression or
        # a dict of the same, so that a model's own state_dict() loads into the file's
        self.tree = {}
        self.parameters = []  # (where, expression): bare parameters, set after the modules
        self.lines = []  # forward's body
        self.taken, self.variables = set(), set()
        self.saved = {}  # spec name -> variable holding its output
        self.modules = {}  # spec name -> {(suffix, expression): attribute}
        self.keep = referenced(summary.network.layers) | {n for n, _ in summary.outputs}
        self.count = 0
        self.needs_torch_ops = False

    def place(self, name: str, expr: str, parameter: bool = False) -> str:
        """Puts a module under its dotted name; returns how forward reaches it. A part that
        an earlier module already holds joins the rest with '_' (bn, then bn_act)."""
        parts = [p or "_" for p in name.split(".")]
        level, path = self.tree, []
        for i, part in enumerate(parts[:-1]):
            if isinstance(level.get(part), dict):
                level = level[part]
            elif part in level:  # a module there already: the rest is one key beside it
                parts = parts[:i] + ["_".join(parts[i:])]
                break
            else:
                level[part] = {}
                level = level[part]
            path.append(part)
        key = parts[-1]
        if not path:
            key = self.attr(key) if not key.isdigit() else _unique(key, self.taken)
        else:
            if key in _DICT:
                key += "_"
            key = _unique(key, {k for k in level})
        level[key] = _Parameter(expr) if parameter else expr
        access = f"self.{key}" if not path and key.isidentifier() else \
            f'getattr(self, "{key}")' if not path else \
            "self." + path[0] if path[0].isidentifier() else f'getattr(self, "{path[0]}")'
        if path:
            access += "".join(f'["{p}"]' for p in path[1:])
            access += f".{key}" if parameter else f'["{key}"]'
        if parameter:  # a module's attribute, set after the modules (nn.ModuleDict holds
            self.parameters.append((access, expr))  # modules only)
        else:
            self.attrs.append((access, expr))
        return access

    def init_lines(self) -> list:
        """__init__'s body: each top-level module, nested ones in nn.ModuleDicts."""
        def render(value, pad):
            if not isinstance(value, dict):
                return [value]
            out = ["nn.ModuleDict({"]
            for k, v in value.items():
                if isinstance(v, _Parameter):
                    continue
                inner = render(v, pad + 4)
                out.append(" " * (pad + 4) + f'"{k}": {inner[0]}')
                out += inner[1:]
                out[-1] += ","
            out.append(" " * pad + "})")
            return out
        lines = []
        for key, value in self.tree.items():
            if isinstance(value, _Parameter):
                continue
            inner = render(value, 8)
            head = f"self.{key} = " if key.isidentifier() else f'self.add_module("{key}", '
            tail = "" if key.isidentifier() else ")"
            lines += [" " * 8 + head + inner[0]] + inner[1:]
            lines[-1] += tail
        return lines + [f"        {where} = {expr}" for where, expr in self.parameters]

    def attr(self, name: str) -> str:
        base = re.sub(r"\W", "_", name).strip("_") or "layer"
        if base[0].isdigit():
            base = "l" + base
        if keyword.iskeyword(base) or base in _RESERVED:
            base += "_"
        return _unique(base, self.taken)

    def fresh(self, stem="y") -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def emit(self, line, depth=0):
        self.lines.append(line)

    def chain(self, rows, src: str, dst: str) -> str:
        """Writes the rows reading ``src``; returns the variable holding the result."""
        for row in rows:
            src = self.row(row, src, dst)
        return src

    def row(self, row, src, dst) -> str:
        layer, kind = row.layer, row.kind
        if row.branches is not None and kind == Output.keyword:  # a head: the flow goes on
            out = self.chain(row.branches[0], src, self.fresh("head"))
            self.saved[row.name] = out
            return src
        if kind == Output.keyword:
            self.saved[row.name] = self.saved[layer.ref] if layer.ref else src
            return src
        if row.branches is not None:
            out = self.block(row, src, dst)
        elif layer.jump:  # 'from ID': ID's tensor goes on
            out = self.saved[row.source.name]
        elif row.source is not None:
            other = self.align(self.saved[row.source.name], row.source.output, row.output)
            mine = self.align(src, row.input, row.output)
            if layer.infix is None:  # concat: torch.cat, not an operator between them
                if row.geometry and row.geometry.get("offsets"):
                    other = self.crop(other, row.geometry["offsets"], row.input)
                self.needs_torch_ops = True
                self.emit(f"{dst} = torch.cat([{mine}, {other}], 1)")
            else:
                self.emit(f"{dst} = {mine}{layer.infix}{other}")
            out = dst
        else:
            theirs = self.modules.get(layer.shares, {})
            mine = self.modules[row.name] = {}
            for suffix, expr in layer.code(row):
                if suffix == "*":  # a bare parameter that multiplies the input
                    access = self.place(row.name, expr, parameter=True)
                    self.emit(f"{dst} = {src} * {access}")
                    src = dst
                    continue
                if layer.frozen and not suffix:  # its weights: not trained
                    expr += ".requires_grad_(False)"
                name = theirs.get((suffix, expr))  # 'shares ID': ID's module, called again
                if name is None:
                    name = self.place(row.name + (f"_{suffix}" if suffix else ""), expr)
                mine[suffix, expr] = name
                self.emit(f"{dst} = {name}({src})")
                src = dst
            if layer.shares is not None and not set(theirs.values()) & set(mine.values()):
                raise CnnCalcError(f"layer '{row.name}' ({layer.describe()}): cnncalc writes "
                                   f"shared weights as one module called twice, and "
                                   f"{layer.shares!r} is written differently")
            out = src
        if row.name in self.keep:
            keep = self.variable(row.name)
            self.emit(f"{keep} = {out}")
            self.saved[row.name] = keep
        return out

    def variable(self, name: str) -> str:
        """A saved output's variable: conv1_out."""
        return _unique(re.sub(r"\W", "_", name).strip("_") + "_out", self.variables)

    def block(self, row, src, dst):
        layer = row.layer
        inputs = [src] * len(row.branches)
        if getattr(layer, "split", None):
            sizes = [c[-1] for c in layer.inputs(row.input, len(row.branches))]
            parts = self.fresh("parts")
            self.needs_torch_ops = True
            self.emit(f"{parts} = {src}.split({sizes}, 1)")
            inputs = [f"{parts}[{i}]" for i in range(len(sizes))]
        outs = []
        for branch, x in zip(row.branches, inputs):
            if not branch:
                outs.append((x, row.input))
                continue
            outs.append((self.chain(branch, x, self.fresh()), branch[-1].output))
        values = [self.align(v, shape, row.output) for v, shape in outs]
        if row.layer.infix is None:
            self.needs_torch_ops = True
            self.emit(f"{dst} = torch.cat([{', '.join(values)}], 1)")
        else:
            self.emit(f"{dst} = {layer.infix.join(values)}")
        return dst

    @staticmethod
    def align(var, shape, target) -> str:
        """A flat (N, C) gate broadcast over a map needs trailing axes of 1."""
        extra = len(target) - len(shape)
        return f"{var}[:, :{', None' * extra}]" if extra > 0 else var

    @staticmethod
    def crop(var, offsets, size) -> str:
        """A centre crop of a saved map to the current size (U-Net's copy and crop)."""
        slices = [f"{o}:{o + n}" for o, n in zip(picture(offsets), picture(size[:-1]))]
        return f"{var}[:, :, {', '.join(slices)}]"


def to_pytorch_code(spec, class_name: str | None = None, source: str | None = None) -> str:
    """The spec as the source of a standalone PyTorch file (a string)."""
    from ..specs import summarize
    summary = spec if isinstance(spec, Summary) else summarize(spec)
    net = summary.network
    if any(fmt.symbolic(n) for n in net.input.shape):
        raise CnnCalcError("export needs a fixed input size: give one with --input, "
                           "e.g. --input 224x224x3")
    w = _Writer(summary)
    y = w.chain(summary.tree, "x", "x")
    names = [n for n, _ in summary.outputs]
    results = [w.saved.get(n, y) for n in names] if len(names) > 1 else [y]
    cls = _class_name(class_name, net.name)
    shape = net.input.shape
    picture_in = (shape[-1], *picture(shape[:-1]))
    head = _head(summary, w, source, picture_in)
    body = []
    for h in _helpers(w):
        body += h.rstrip("\n").splitlines() + ["", ""]
    body += [f"class {cls}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    body += w.init_lines()
    used = " ".join(w.lines + results)
    lines = [line for line in w.lines  # a saved output nothing reads (the last layer's)
             if not (m := re.match(r"(\w+_out(?:_\d+)?) = \w+$", line))
             or len(re.findall(rf"\b{m[1]}\b", used)) > 1]
    lines = _release(lines, set(results))
    body += ["", "    def forward(self, x):"] + [f"        {line}" for line in lines]
    body.append(f"        return {results[0] if len(results) == 1 else '(' + ', '.join(results) + ')'}")
    demo = ["", "", 'if __name__ == "__main__":', f"    model = {cls}().eval()",
            f"    y = model(torch.zeros(1, {', '.join(map(str, picture_in))}))",
            "    for out in (y if isinstance(y, tuple) else (y,)):",
            "        print(tuple(out.shape))",
            "    print(sum(p.numel() for p in model.parameters()), \"parameters\")"]
    return "\n".join(head + body + demo) + "\n"


def _class_name(given, network) -> str:
    cls = given or "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", network)
                           if p) or "Network"
    return "Net" + cls if cls[0].isdigit() else cls


def _helpers(w) -> list:
    """The helper classes (a kind's ``torch_helper``) the file's modules use."""
    return [k.torch_helper for k in dict.fromkeys(KINDS.values()) if k.torch_helper
            and any(e.startswith(k.torch_helper.split()[1].split("(")[0] + "(")
                    for _, e in w.attrs)]


def _head(summary, w, source, picture_in) -> list:
    """The file's docstring (what it computes, from where) and its imports."""
    t = summary.totals
    origin = {None: "its spec", "<expr>": "an inline spec", "<stdin>": "standard input"}.get(
        source, source)
    return [f'"""{summary.network.name}, written by cnncalc from {origin}.',
            "",
            f"Input (N, {', '.join(map(str, picture_in))}): channels first, rows before columns, "
            "as PyTorch takes pictures.",
            f"Output {', '.join(_shape(s) for _, s in summary.outputs)}; "
            f"{t.trainable:,} trainable parameters"
            + (f" and {t.non_trainable:,} in buffers" if t.non_trainable else "") + ".",
            *_notes(summary, w.attrs), '"""',
            "", "import torch", "from torch import nn", "", ""]


def _release(lines: list, keep: set) -> list:
    """Each branch or saved tensor deleted after its last read ('del y1'), as a forward
    written by hand lets go of it: the module's inference peak is then the spec's."""
    last = {}
    for i, line in enumerate(lines):
        for v in re.findall(r"\b(y\d+|\w+_out(?:_\d+)?)\b", line.partition(" = ")[2]):
            last[v] = i
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        dead = sorted(v for v, j in last.items() if j == i and v not in keep)
        if dead:
            out.append(f"del {', '.join(dead)}")
    return out


def _shape(shape) -> str:
    """A row's shape as PyTorch holds it: (C, H, W) for maps, (C,) for vectors."""
    if len(shape) == 1:
        return f"(N, {shape[0]})"
    return f"(N, {', '.join(map(str, (shape[-1], *picture(shape[:-1]))))})"


def class_name(code: str) -> str:
    """The network's class in a file to_pytorch_code wrote."""
    return re.search(r"^class (\w+)\(nn.Module\):\n    def __init__\(self\):", code, re.M)[1]


def load_class(code: str):
    """The class of a file to_pytorch_code wrote (our own source, never a user's)."""
    namespace = {"__name__": "cnncalc_export"}
    exec(compile(code, "<cnncalc export>", "exec"), namespace)
    return namespace[class_name(code)]


def _notes(summary, attrs) -> list:
    """Where the file and the Keras-minded spec differ in more than spelling."""
    code = " ".join(e for _, e in attrs)
    notes = []
    if "BatchNorm" in code:
        notes.append("Batchnorm keeps the spec's Keras settings: momentum 0.01 (Keras' 0.99),\nand "
                     "eps 1e-3 unless the spec gives its own.")
    if any(isinstance(r.layer, Flatten) and len(r.input) > 1 and any(
            n != 1 for n in r.input[:-1]) or isinstance(r.layer, Reshape) for r in summary.rows):
        notes.append("nn.Flatten and nn.Unflatten order values channels first, where the "
                     "spec (as Keras)\norders rows, columns, channels: the same counts, but "
                     "Keras weights need reordering.")
    if any(isinstance(r.layer, Dense) and len(r.input) > 1 for r in summary.rows):
        notes.append("A dense layer on a map is ChannelLinear: nn.Linear at each position.")
    return notes
