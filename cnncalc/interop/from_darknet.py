"""A Darknet cfg file (YOLO's format) as a spec: [convolutional] with batch_normalize is 'conv
... nobias | batchnorm | <activation>', [shortcut] and [route] are merges with the layers they
name, [yolo] and [region] heads are network outputs. Layer N of the cfg (Darknet counts from
0 after [net]) is named layerN where another layer refers to it. Plain text is read, never
run; the weights file is not needed."""

from __future__ import annotations

from pathlib import Path

from ..errors import CnnCalcError
from ..layers import activations, kinds
from ..layers.base import Foreign
from ..limits import MAX_FOREIGN_LAYERS, MAX_SIZE
from .emit import emit
from .graph import Imported, Op, Unsupported, foreign, network_name

# options that must be at least 1 (a stride of 0 divides by zero)
POSITIVE = ("filters", "size", "stride", "stride_x", "stride_y", "groups", "dilation", "output")

# detection heads: the network's outputs
HEADS = ("yolo", "region", "detection")


def _readers() -> dict:
    """Darknet section -> the kind that reads it, from each kind's ``darknet_reads`` (its
    own class's, not a parent's)."""
    return {name: cls for cls in kinds() for name in cls.__dict__.get("darknet_reads", ())}


READERS = _readers()


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
        if sec.kind in HEADS:
            return self.head(sec, index)
        kind = READERS.get(sec.kind)
        if kind is None:
            self.fail(sec, index, f"[{sec.kind}] has no cnncalc counterpart")
            return self.shape
        inputs, shapes = self.inputs(sec, index)
        try:
            texts, out = kind.from_darknet(_Section(self, sec, self.shape, shapes))
            act = activations.from_darknet(sec.values.get("activation"))
        except Foreign as e:
            self.fail(sec, index, str(e))
            return e.shape or self.shape
        if not texts:  # a route of one layer: that layer's tensor
            self.here = inputs[0]
        for text in texts + ([act] if act else []):
            self.add(text, inputs, sec, index)
            inputs = [self.here]
        return out

    def inputs(self, sec, index):
        """The ops a section reads, and the shapes of the layers it names."""
        kind = sec.kind
        if kind == "shortcut":
            other = self.ref(sec, index, sec.values.get("from", ""), "from", named=False)
            if self.shapes[other] != self.shape:
                raise CnnCalcError(f"[shortcut] from layer {other} ({_fmt(self.shapes[other])}) "
                                   f"to a {_fmt(self.shape)} tensor: the shapes differ",
                                   file=self.file, line=sec.line)
            return [self.here, self.ids[other]], [self.shape, self.shapes[other]]
        if kind == "scale_channels":
            other = self.ref(sec, index, sec.values.get("from", ""), "from", named=False)
            return [self.ids[other], self.here], [self.shapes[other], self.shape]
        if kind == "route":
            layers = [self.ref(sec, index, v.strip(), "layers")
                      for v in sec.values.get("layers", "").split(",")]
            if len({self.shapes[i][:2] for i in layers}) > 1:
                raise CnnCalcError("[route] joins layers of different sizes: " + ", ".join(
                    f"layer {i} {_fmt(self.shapes[i])}" for i in layers), file=self.file,
                    line=sec.line)
            return [self.ids[i] for i in layers], [self.shapes[i] for i in layers]
        return [self.here], []

    def head(self, sec, index):
        """A detection head: the tensor before it is an output (named after the head)."""
        self.outputs.append(self.here)
        op = self.ops[-1] if self.ops else None
        if op is not None and op.id == self.here and not op.name:
            op.name = f"{sec.kind}{index}"
        return self.shape

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


class _Section:
    """What a kind reads of a section (``Layer.from_darknet``): its whole numbers and
    fractions, checked, with the line they are on; the shape it reads; the shapes of the
    layers it names."""

    def __init__(self, reader, sec, shape, inputs):
        self.reader, self.sec, self.shape, self.inputs = reader, sec, shape, inputs
        self.file, self.line = reader.file, sec.line

    def int(self, key, default=None):
        return self.reader.int(self.sec, key, default)

    def fraction(self, key, default):
        """A number from 0 to 1 (1 excluded): a dropout's probability."""
        text = self.sec.values.get(key, str(default))
        try:
            value = float(text)
        except ValueError:
            value = -1
        if not 0 <= value < 1:
            raise CnnCalcError(f"'{key}' should be a number from 0 to 1, got '{text[:40]}'",
                               file=self.file, line=self.sec.lines.get(key, self.sec.line))
        return value


def _fmt(shape) -> str:
    h, w, c = shape
    return f"{w}x{h}x{c}"


def _text(path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CnnCalcError(f"cannot read the cfg: {e.strerror}", file=str(path)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CnnCalcError("not a Darknet cfg: the file is not text", file=str(path)) from None


def _input_size(r, net, input, path) -> tuple:
    """(width, height, channels): ``input`` ('608x608x3'), else the [net] section's."""
    if input:
        from ..language.expand import load
        shape = load(f"input {input}").input.shape
        if len(shape) != 3:
            raise CnnCalcError(f"--input {input}: a Darknet network takes pictures, WxHxC")
        return shape
    w, h, c = (r.int(net, k, 0) for k in ("width", "height", "channels"))
    if not (w and h and c):
        raise CnnCalcError("[net] gives no width, height and channels; give them with "
                           "--input, e.g. 416x416x3", file=str(path), line=net.line)
    return w, h, c


def _check_size(sec, index, before, shape, path):
    if max(shape) > MAX_SIZE:
        raise CnnCalcError(f"[{sec.kind}] (layer {index}) makes a {_fmt(shape)} tensor: "
                           "sizes are at most 10^18", file=str(path), line=sec.line)
    if min(shape) < 1:
        raise CnnCalcError(f"[{sec.kind}] (layer {index}) leaves nothing: {_fmt(before)} in, "
                           f"{_fmt(shape)} out", file=str(path), line=sec.line)


@foreign("Darknet cfg")
def from_darknet(path, input: str | None = None, network: str | None = None,
                 partial: bool = False) -> Imported:
    """The spec of a Darknet cfg file, and its summary. ``input`` ('608x608x3') replaces the
    [net] section's width, height and channels."""
    from ..specs import summarize
    path = Path(path)
    sections = read_cfg(_text(path), str(path))
    r = _Reader(path.name, (0, 0), 0)
    w, h, c = _input_size(r, sections[0], input, path)
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
        _check_size(sec, index, r.shape, shape, path)
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
