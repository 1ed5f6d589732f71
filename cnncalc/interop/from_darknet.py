"""A Darknet cfg file (YOLO's format) as a spec: [convolutional] with batch_normalize is 'conv
... nobias | batchnorm | <activation>', [shortcut] and [route] are merges with the layers they
name, [yolo] and [region] heads are network outputs. Layer N of the cfg (Darknet counts from
0 after [net]) is named layerN where another layer refers to it. Plain text is read, never
run; the weights file is not needed."""

from __future__ import annotations

from pathlib import Path

from ..errors import CnnCalcError
from ..limits import MAX_FOREIGN_LAYERS, MAX_SIZE
from .emit import emit
from .graph import Imported, Op, Unsupported, foreign, network_name, statement

# options that must be at least 1 (a stride of 0 divides by zero)
POSITIVE = ("filters", "size", "stride", "stride_x", "stride_y", "groups", "dilation", "output")

# Darknet's activation names, as cnncalc statements ('linear' adds none)
ACTIVATIONS = {"leaky": "leakyrelu slope 0.1", "relu": "relu", "relu6": "relu6",
               "logistic": "sigmoid", "tanh": "tanh", "elu": "elu", "selu": "selu",
               "swish": "silu", "mish": "mish", "gelu": "gelu", "hard_swish": "hardswish",
               "linear": None}


class Section:
    def __init__(self, kind, line):
        self.kind, self.line, self.values, self.lines = kind, line, {}, {}

    def __repr__(self):
        return f"[{self.kind}] at line {self.line}"


def read_cfg(text: str, file: str) -> list:
    """The cfg's sections in order, each with its key=value pairs and their line numbers."""
    sections = []
    for n, raw in enumerate(text.splitlines(), 1):
        if len(sections) > MAX_FOREIGN_LAYERS:
            raise CnnCalcError(f"more than {MAX_FOREIGN_LAYERS:,} sections: larger than any "
                               "network cnncalc reads", file=file, line=n)
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise CnnCalcError(f"a section header '{line}' without its ']'", file=file,
                                   line=n, column=1, context=raw)
            sections.append(Section(line[1:-1].strip().lower(), n))
        elif "=" in line and sections:
            key, value = (p.strip() for p in line.split("=", 1))
            sections[-1].values[key] = value
            sections[-1].lines[key] = n
        else:
            raise CnnCalcError(f"expected '[section]' or 'key=value', found '{line}'", file=file,
                               line=n, column=1, context=raw,
                               hint=None if sections else "a Darknet cfg starts with [net]")
    if not sections or sections[0].kind not in ("net", "network"):
        raise CnnCalcError("not a Darknet cfg: it does not start with a [net] section", file=file,
                           line=sections[0].line if sections else None)
    return sections


class _Reader:
    def __init__(self, file, size, channels):
        self.file = file
        self.ops, self.problems, self.outputs = [], [], []
        self.ids = []  # per Darknet layer: the op whose output it is
        self.shapes = []  # per Darknet layer: (height, width, channels)
        self.shape = (*size, channels)
        self.here = "input"
        self.count = 0
        self.by_id = {}

    def where(self, sec, index):
        return f"{self.file}:{sec.line} [{sec.kind}] (layer {index})"

    def int(self, sec, key, default=None):
        value = sec.values.get(key)
        if value is None:
            if default is None:
                raise CnnCalcError(f"[{sec.kind}] needs '{key}='", file=self.file, line=sec.line)
            return default
        least = 1 if key in POSITIVE else 0
        if len(value) > 19 or not value.lstrip("-").isdigit() or \
                not least <= int(value) <= MAX_SIZE:
            raise CnnCalcError(f"'{key}' should be a whole number, got '{value[:40]}' (at "
                               f"least {least})", file=self.file, line=sec.lines[key])
        return int(value)

    def add(self, text, inputs, sec, index):
        self.count += 1
        op = Op(f"{index}.{self.count}", text, inputs, source=self.where(sec, index))
        self.ops.append(op)
        self.by_id[op.id] = op
        self.here = op.id
        return op

    def layer(self, sec, index):
        """Reads one section; returns its output shape, and leaves self.here at its op."""
        h, w, c = self.shape
        kind = sec.kind
        if kind in ("convolutional", "conv"):
            f, k, s = self.int(sec, "filters", 1), self.int(sec, "size", 1), self.int(sec, "stride", 1)
            p = k // 2 if self.int(sec, "pad", 0) else self.int(sec, "padding", 0)
            groups = self.int(sec, "groups", 1)
            dilation = self.int(sec, "dilation", 1)
            bn = self.int(sec, "batch_normalize", 0)
            opts = [f"pad {p}" if p else "", f"stride {s}" if s > 1 else "",
                    f"dilation {dilation}" if dilation > 1 else "", "nobias" if bn else ""]
            if groups > 1 and groups == c == f:
                text = f"dwconv {k}x{k} "
            else:
                text = f"conv {k}x{k}x{f} " + (f"groups {groups} " if groups > 1 else "")
            self.add((text + " ".join(o for o in opts if o)).strip(), [self.here], sec, index)
            if bn:
                self.add("batchnorm", [self.here], sec, index)
            self.activation(sec, index)
            span = dilation * (k - 1) + 1
            return (h + 2 * p - span) // s + 1, (w + 2 * p - span) // s + 1, f
        if kind == "maxpool":
            k = self.int(sec, "size", 1)
            s = self.int(sec, "stride", 1)
            pad = self.int(sec, "padding", k - 1)
            before = pad // 2
            out = ((h + pad - k) // s + 1, (w + pad - k) // s + 1)
            # the padding the windows reach: Darknet pads size-1 by default, often unused
            used = {(before, max((o - 1) * s + k - before - n, 0)) for o, n in zip(out, (h, w))}
            same = {(t // 2, t - t // 2) for t in
                    (max((-(-n // s) - 1) * s + k - n, 0) for n in (h, w))}
            if used == same:
                text = f"maxpool {k} stride {s}" + (" same" if same != {(0, 0)} else "")
            elif len(used) == 1 and (b := used.pop())[0] == b[1] and 2 * b[0] <= k:
                text = f"maxpool {k} stride {s} pad {b[0]}"
            else:
                self.fail(sec, index, f"a max pool padded {before} before and {pad - before} "
                          "after, unlike Keras' 'same'")
                return out + (c,)
            self.add(text, [self.here], sec, index)
            return out + (c,)
        if kind == "avgpool":
            self.add("globalavgpool", [self.here], sec, index)
            return 1, 1, c
        if kind == "upsample":
            s = self.int(sec, "stride", 2)
            self.add(f"upsample {s}", [self.here], sec, index)
            return h * s, w * s, c
        if kind in ("connected",):
            n = self.int(sec, "output", 1)
            if (h, w) != (1, 1):
                self.add("flatten", [self.here], sec, index)
            self.add(f"dense {n}", [self.here], sec, index)
            self.activation(sec, index)
            return 1, 1, n
        if kind == "softmax":
            self.add("softmax", [self.here], sec, index)
            return h, w, c
        if kind == "dropout":
            p = sec.values.get("probability", "0.5")
            try:
                rate = float(p)
            except ValueError:
                rate = -1
            if not 0 <= rate < 1:
                raise CnnCalcError(f"'probability' should be a number from 0 to 1, got "
                                   f"'{p[:40]}'", file=self.file,
                                   line=sec.lines.get("probability", sec.line))
            self.add(f"dropout {rate:g}", [self.here], sec, index)
            return h, w, c
        if kind == "shortcut":
            other = self.ref(sec, index, sec.values.get("from", ""), "from", named=False)
            if self.shapes[other] != self.shape:
                raise CnnCalcError(f"[shortcut] from layer {other} ({_fmt(self.shapes[other])}) "
                                   f"to a {_fmt(self.shape)} tensor: the shapes differ",
                                   file=self.file, line=sec.line)
            self.add("add", [self.here, self.ids[other]], sec, index)
            self.activation(sec, index)
            return h, w, c
        if kind == "scale_channels":
            other = self.ref(sec, index, sec.values.get("from", ""), "from", named=False)
            self.add("multiply", [self.ids[other], self.here], sec, index)
            return self.shapes[other]
        if kind == "route":
            layers = [self.ref(sec, index, v.strip(), "layers")
                      for v in sec.values.get("layers", "").split(",")]
            sizes = {self.shapes[i][:2] for i in layers}
            if len(sizes) > 1:
                raise CnnCalcError("[route] joins layers of different sizes: " + ", ".join(
                    f"layer {i} {_fmt(self.shapes[i])}" for i in layers), file=self.file,
                    line=sec.line)
            channels = sum(self.shapes[i][2] for i in layers)
            if len(layers) == 1:
                self.here = self.ids[layers[0]]
            else:
                self.add("concat", [self.ids[i] for i in layers], sec, index)
            groups = self.int(sec, "groups", 1)
            if groups > 1:  # one group of the channels (YOLOv4-tiny's CSP): a slice
                part = self.int(sec, "group_id", 0)
                if channels % groups or part >= groups:
                    raise CnnCalcError(f"[route] groups={groups} group_id={part} of {channels} "
                                       f"channels: the groups must divide them and group_id "
                                       f"be below groups", file=self.file, line=sec.line)
                channels //= groups
                self.add(statement("slice", channels=channels, start=part * channels),
                         [self.here], sec, index)
            return (*self.shapes[layers[0]][:2], channels)
        if kind in ("yolo", "region", "detection"):
            self.outputs.append(self.here)
            op = self.ops[-1] if self.ops else None
            if op is not None and op.id == self.here and not op.name:
                op.name = f"{kind}{index}"
            return h, w, c
        self.fail(sec, index, f"[{kind}] has no cnncalc counterpart")
        return h, w, c

    def activation(self, sec, index):
        word = sec.values.get("activation", "linear")
        if word not in ACTIVATIONS:
            self.fail(sec, index, f"activation={word} has no cnncalc counterpart")
        elif ACTIVATIONS[word]:
            self.add(ACTIVATIONS[word], [self.here], sec, index)

    def ref(self, sec, index, value, key, named=True):
        """A layer another one names: relative (-3) or absolute (61), as Darknet reads it."""
        try:
            n = int(value)
        except ValueError:
            raise CnnCalcError(f"'{key}' should name layers by number, got '{value}'",
                               file=self.file, line=sec.lines.get(key, sec.line)) from None
        target = index + n if n < 0 else n
        if not 0 <= target < index:
            raise CnnCalcError(f"'{key}={value}' names layer {target}, but only layers 0 to "
                               f"{index - 1} come before layer {index}", file=self.file,
                               line=sec.lines.get(key, sec.line))
        op = self.by_id.get(self.ids[target])
        if named and op is not None and target != index - 1 and not op.name:
            op.name = f"layer{target}"
        return target

    def fail(self, sec, index, why):
        self.problems.append((self.where(sec, index), why))


def _fmt(shape) -> str:
    h, w, c = shape
    return f"{w}x{h}x{c}"


@foreign("Darknet cfg")
def from_darknet(path, input: str | None = None, network: str | None = None,
                 partial: bool = False) -> Imported:
    """The spec of a Darknet cfg file, and its summary. ``input`` ('608x608x3') replaces the
    [net] section's width, height and channels."""
    from ..specs import summarize
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CnnCalcError(f"cannot read the cfg: {e.strerror}", file=str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CnnCalcError("not a Darknet cfg: the file is not text", file=str(path)) from None
    sections = read_cfg(text, str(path))
    net = sections[0]
    r = _Reader(path.name, (0, 0), 0)
    if input:
        from ..language.expand import load
        shape = load(f"input {input}").input.shape
        if len(shape) != 3:
            raise CnnCalcError(f"--input {input}: a Darknet network takes pictures, WxHxC")
        w, h, c = shape
    else:
        w, h, c = (r.int(net, k, 0) for k in ("width", "height", "channels"))
        if not (w and h and c):
            raise CnnCalcError("[net] gives no width, height and channels; give them with "
                               "--input, e.g. 416x416x3", file=str(path), line=net.line)
    r.shape = (h, w, c)
    for index, sec in enumerate(sections[1:]):
        if sec.kind in ("net", "network"):
            raise CnnCalcError("a second [net] section", file=str(path), line=sec.line)
        start, here = len(r.ops), r.here
        shape = r.layer(sec, index)
        if r.problems and partial:  # the spec stops before the first layer it cannot write
            del r.ops[start:]
            r.here = here
            break
        if max(shape) > MAX_SIZE:
            raise CnnCalcError(f"[{sec.kind}] (layer {index}) makes a {_fmt(shape)} tensor: "
                               "sizes are at most 10^18", file=str(path), line=sec.line)
        if min(shape) < 1:
            raise CnnCalcError(f"[{sec.kind}] (layer {index}) leaves nothing: {_fmt(r.shape)} in, "
                               f"{_fmt(shape)} out", file=str(path), line=sec.line)
        r.ids.append(r.here)
        r.shapes.append(shape)
        r.shape = shape
    if r.problems and not partial:
        raise Unsupported(r.problems, path.name)
    ops = r.ops
    kept = {op.id for op in r.ops}
    outputs = [o for o in r.outputs if o != r.here and o in kept] + [r.here]
    body = emit(ops, outputs, f"{w}x{h}x{c}", network or network_name(path.stem))
    if r.problems:
        body += (f"# import stopped at {r.problems[0][0]}: {r.problems[0][1]}\n")
    return Imported(body, summarize(body))
