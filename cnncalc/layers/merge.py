"""Merges: add, multiply and concat. Each has two forms: a block whose branches all take
the current tensor (``add { branch { ... } branch { } }``), and a reference that merges
the saved output of an earlier layer into the current tensor (``add ID``)."""

from __future__ import annotations

from math import prod

from .. import fmt
from .options import layer_name
from .base import Flag, Foreign, Layer, Option, Outcome, RuleError


class Split(Option):
    """'split': the branches share the input's channels, equally or by the given sizes."""
    words = ("split",)
    field = "split"
    takes_value = "optional"
    help = "split [24x40] (blocks)"

    def read(self, word, item, r):
        if item is None:
            return "equal"
        return r.numbers(item, "split", 1, None)

    def describe(self, value):
        if value is None:
            return None
        # each share written out, equal ones too: 'split 4' would not say how many
        return "split" if value == "equal" else f"split {fmt.shape(value)}"


class _Merge(Layer):
    colour = "#fff59d"
    block = True  # takes { branch { ... } ... }
    merge = True
    infix = None        # the operator a PyTorch file writes between its inputs (' + ')
    sign = "c"          # what a drawing writes in its box
    commutative = False  # its inputs in any order give the same result
    keras_merge = None  # its Keras layer (Add)
    options = (Split(),)
    split = None

    def inputs(self, x, n: int) -> list:
        """What each of ``n`` branches takes: the input, or its share of the channels."""
        if self.split is None:
            return [x] * n
        c = x[-1]
        sizes = [c // n] * n if self.split == "equal" else list(self.split)
        if self.split == "equal" and c % n:
            raise RuleError(f"split: {c} channels do not split equally into {n} branches")
        if len(sizes) != n or sum(sizes) != c:
            raise RuleError(f"split {'x'.join(map(str, sizes))}: expected {n} sizes adding up to "
                            f"the {c} channels")
        return [(*x[:-1], k) for k in sizes]

    @classmethod
    def validate(cls, fields, r):
        if fields.get("split") is not None and not r.block:
            raise r.error("split applies to a block: add split { branch { ... } ... }", None)

    @classmethod
    def read_args(cls, word, rest, r, fields):
        """``add ID``: a first word that is no option names the layer; blocks have none."""
        if rest and layer_name(rest[0]) is not None and rest[0].text not in \
                {w for o in cls.options for w in o.words}:
            fields["ref"] = rest.pop(0).text
        elif not r.block:
            raise r.error(f"{word} needs the name of an earlier layer ('{word} ID') or "
                          f"branches ('{word} {{ branch {{ ... }} }}')", rest[0] if rest else None)
        return rest

    def describe(self):
        words = [self.kind, self.ref] if self.ref else [self.kind]
        words += [t for o in self.options if (t := o.describe(getattr(self, o.field)))]
        if self.branches is not None:
            words.append(f"{{ {len(self.branches)} branches }}")
        return " ".join(words)

    def combine(self, shapes, check, ex, names, x=None) -> Outcome:
        raise NotImplementedError


class _Elementwise(_Merge):
    """add and multiply: equal shapes, or a 1x1xC (or flat C) tensor broadcast over the
    spatial axes of the other, as squeeze-and-excitation gates do."""

    def combine(self, shapes, check, ex, names, x=None):
        out = shapes[0]
        for y, name in zip(shapes[1:], names[1:]):
            out = _broadcast(out, y, check, self.kind, names[0], name)
        if ex is not None and any(y != out for y in shapes):
            ex.append(f"broadcast: {' and '.join(map(fmt.shape, shapes))} give {fmt.shape(out)}")
        return Outcome(out, ops=prod(out) * (len(shapes) - 1))


def _broadcast(a, b, check, kind, an, bn):
    """Broadcast two channels-last shapes; a flat vector stands for 1 x ... x 1 x C."""
    rank = max(len(a), len(b)) - 1
    pa, pb = (1,) * (rank + 1 - len(a)) + tuple(a), (1,) * (rank + 1 - len(b)) + tuple(b)
    out = []
    for i, (u, v) in enumerate(zip(pa, pb)):
        if isinstance(u, int) and u == 1:
            out.append(v)
        elif isinstance(v, int) and v == 1:
            out.append(u)
        elif check(u == v, i):
            out.append(u)
        else:
            raise RuleError(f"{kind}: {an} gives {fmt.shape(a)} but {bn} gives {fmt.shape(b)}; "
                            "shapes must be equal, or one may have size 1 (or be a flat vector "
                            "of the channels) to be broadcast over the other")
    return tuple(out)


class Add(_Elementwise):
    keyword = "add"
    doc = ("sums its branches (add { branch {...} branch {} }: an empty branch is the "
           "identity), or the saved output of layer ID (add ID); broadcasts 1x1xC")
    example = "add { branch { conv 3x3x64 same } branch { } }"
    infix, keras_merge, sign, commutative = " + ", "Add", "+", True
    keras_reads = ("Add",)
    torch_reads = ("aten.add",)
    onnx_reads = ("Add", "Sum")
    darknet_reads = ("shortcut",)

    def module(self, row):
        from ..backends.tensor_ops import Sum
        return Sum()


class Multiply(_Elementwise):
    keyword = "multiply"
    doc = ("multiplies its branches, or the saved output of layer ID; a 1x1xC or flat C "
           "branch is broadcast over the map (squeeze-and-excitation, attention gates)")
    example = "multiply { branch { } branch { globalavgpool | dense 16 relu | dense 64 sigmoid } }"
    infix, keras_merge, sign, commutative = " * ", "Multiply", "x", True
    keras_reads = ("Multiply",)
    torch_reads = ("aten.mul",)
    onnx_reads = ("Mul",)
    darknet_reads = ("scale_channels",)

    @classmethod
    def from_darknet(cls, section):  # the named layer's map, scaled per channel
        return [cls.write()], section.inputs[0]
    keeps_inputs = True  # each input's gradient is the other's values

    def scratch(self, row):  # a broadcast input's gradient: the product, summed over the map
        return row.units

    def module(self, row):
        from ..backends.tensor_ops import Product
        return Product()


class Subtract(_Elementwise):
    keyword = "subtract"
    doc = ("the first of two branches minus the second (Keras Subtract), or the current tensor "
           "minus the saved output of layer ID (subtract ID); broadcasts 1x1xC")
    example = "subtract { branch { conv 3x3x64 same } branch { } }"
    infix, keras_merge, sign = " - ", "Subtract", "-"
    keras_reads = ("Subtract",)
    torch_reads = ("aten.sub",)
    onnx_reads = ("Sub",)
    ordered = True  # the branches keep their places: a - b is not b - a

    def combine(self, shapes, check, ex, names, x=None):
        if len(shapes) != 2:
            raise RuleError(f"subtract takes two branches (the first minus the second), "
                            f"received {len(shapes)}")
        return super().combine(shapes, check, ex, names, x)

    def fresh_gradient(self, j):  # the second input's: the output's, negated
        return j == 1

    def module(self, row):
        from ..backends.tensor_ops import Difference
        return Difference()


class Concat(_Merge):
    keyword = "concat"
    also = ("concatenate", "cat")
    doc = ("concatenates along the channels its branches, or (after the current tensor) the "
           "saved output of layer ID; 'crop' centre-crops ID first, as the original U-Net; "
           "'split' gives each branch its share of the channels (ShuffleNet)")
    example = "concat split { branch { } branch { conv 1x1x58 relu } }"
    keras_merge = "Concatenate"
    keras_reads = ("Concatenate",)
    torch_reads = ("aten.cat",)
    onnx_reads = ("Concat",)
    darknet_reads = ("route",)

    @classmethod
    def from_darknet(cls, section):
        """The layers it names, joined (one is taken as it is); 'groups' then keeps one group
        of the channels (YOLOv4-tiny's CSP) as a slice."""
        from ..errors import CnnCalcError
        from .channels import Slice
        channels = sum(c for _, _, c in section.inputs)
        texts = [cls.write()] if len(section.inputs) > 1 else []
        groups = section.int("groups", 1)
        if groups > 1:
            part = section.int("group_id", 0)
            if channels % groups or part >= groups:
                raise CnnCalcError(f"[route] groups={groups} group_id={part} of {channels} "
                                   "channels: the groups must divide them and group_id be "
                                   "below groups", file=section.file, line=section.line)
            texts.append(Slice.write(channels=channels // groups,
                                     start=part * channels // groups))
        return texts, (*section.inputs[0][:2], channels // groups)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        if cfg.get("axis", -1) not in (-1, 3):
            raise Foreign(f"Concatenate on axis {cfg['axis']}, not the channels")
        return cls.write()

    options = (Flag("crop", "crop", True, False, help="crop (with ID)"), Split())

    def fresh_gradient(self, j):  # a cropped reference's: zero-padded to its whole size
        return bool(self.crop) and j == 1

    def combine(self, shapes, check, ex, names, x=None):
        x = shapes[0]
        offsets = None
        for y, name in zip(shapes[1:], names[1:]):
            if len(y) != len(x):
                raise RuleError(f"concat: {names[0]} gives {fmt.shape(x)} but {name} gives "
                                f"{fmt.shape(y)}; the ranks differ")
        if self.crop:
            y = shapes[1]
            if not any(map(fmt.symbolic, (*y, *x))) and \
                    not all([check(a >= b, i) for i, (a, b) in enumerate(zip(y[:-1], x[:-1]))]):
                raise RuleError(f"cannot crop {self.ref!r} ({fmt.shape(y)}) to the current size "
                                f"({fmt.shape(x[:-1])}): it is smaller")
            offsets = tuple((a - b) // 2 for a, b in zip(y[:-1], x[:-1]))
            if ex is not None:
                ex.append(f"centre crop of {self.ref}: {fmt.shape(y[:-1])} -> "
                          f"{fmt.shape(x[:-1])}, offsets {offsets}")
        else:
            for y, name in zip(shapes[1:], names[1:]):
                if not all([check(a == b, i) for i, (a, b) in enumerate(zip(x[:-1], y[:-1]))]):
                    raise RuleError(f"concat: {names[0]} gives {fmt.shape(x)} but {name} gives "
                                    f"{fmt.shape(y)}; concatenated tensors must have the same "
                                    "spatial size" + (" (add 'crop' to centre-crop)"
                                                      if self.ref else ""))
        out = (*x[:-1], sum(y[-1] for y in shapes))
        if ex is not None:
            ex.append(f"channels: {' + '.join(str(y[-1]) for y in shapes)} = {out[-1]}")
        return Outcome(out, geometry={"offsets": offsets} if offsets else None)

    @classmethod
    def validate(cls, fields, r):
        super().validate(fields, r)
        if fields.get("crop") and "ref" not in fields:
            raise r.error("concat: 'crop' applies to 'concat ID crop' only", None)

    def module(self, row):
        from ..backends.tensor_ops import Cat
        return Cat(row.geometry["offsets"] if row.geometry else None, row.input[:-1])
