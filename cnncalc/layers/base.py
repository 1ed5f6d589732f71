"""What a layer kind is made of. A kind is one class: its keyword, its arguments and
options (with their checks and wording), its rule (shape, counts, MACs, element-wise
operations, receptive-field window, and the explanation beside each formula), its
one-line description, its colour in diagrams and its torch module (imported lazily).
An instance of the class is one layer of a network.

Everything that lists kinds derives from the registry here: the words the expander
accepts, the hints in errors, ``cnncalc layers``, the README's table, the JSON Schema's
``kind``, diagrams and the backends."""

from __future__ import annotations

from typing import ClassVar

from .. import fmt
from ..language.records import Word

# the kinds' toolkit in one import: their arguments and options, and how they write code
from .code import Whole, act_code, keras_act, keras_code_default, nn_call  # noqa: F401
from .options import (  # noqa: F401
    FROZEN,
    SHARES,
    Amount,
    Arg,
    Choice,
    Count,
    Factor,
    Flag,
    Option,
    PerAxis,
    Rate,
    Reader,
    Real,
    Shares,
    is_value,
    option_value,
    unknown_option,
)

KINDS: dict = {}  # keyword → class

AXIS_NAMES = {1: ("length",), 2: ("width", "height"), 3: ("depth", "width", "height")}


SIDES = {"length": ("start", "end"), "width": ("left", "right"), "height": ("top", "bottom"),
         "depth": ("front", "back")}


def axis_names(rank: int) -> tuple:
    return AXIS_NAMES[rank]  # the parser allows 1 to 3 spatial axes


class RuleError(Exception):
    """A short message from a rule; the walk adds the layer and the line."""


class Foreign(ValueError):
    """What a kind cannot say of a foreign layer it reads (Keras' output_padding): the
    importer names the layer and this. ``shape``: the layer's output shape where the kind
    knows it, so that the import reads on and names every layer it cannot say."""

    def __init__(self, message, shape=None):
        super().__init__(message)
        self.shape = shape


class _Fields:
    """Fields as attributes, for an argument's describe (it reads a layer's field)."""

    def __init__(self, fields):
        self.__dict__.update(fields)


class Outcome:
    """What a rule computes for one layer: its output shape; its weights, biases and
    buffers (non-trainable values: batchnorm's moving statistics); MACs and element-wise
    operations; the resolved values the backends follow (pads, crops); the window for
    receptive fields, per axis (kernel, stride, pad_before) or "all", and whether it is an
    upsampling's (kernel, stride, crop_before); and a caveat for the row."""
    __slots__ = ("shape", "weights", "biases", "buffers", "macs", "ops", "geometry", "window",
                 "up", "note")

    def __init__(self, shape, weights=0, biases=0, buffers=0, macs=0, ops=0, geometry=None,
                 window=None, up=False, note=None):
        self.shape, self.weights, self.biases, self.buffers = shape, weights, biases, buffers
        self.macs, self.ops, self.geometry, self.window = macs, ops, geometry, window
        self.up, self.note = up, note


def picture(sizes) -> tuple:
    """Spatial sizes in the spec's order (width before height) → rows first."""
    sizes = tuple(sizes)
    return sizes if len(sizes) < 2 else (*sizes[:-2], sizes[-1], sizes[-2])


def symbolic(v) -> bool:
    return getattr(v, "symbolic", False)


def runs_half(self, row):
    """``autocast`` of a kind autocast runs in half precision."""
    return "half"


def promotes(self, row):
    """``autocast`` of a kind whose float32 parameters promote a half input (x * gamma):
    its result is float32, and it reads (and keeps) the half input itself."""
    return "promotes"


def saves_nothing(self, row, k):
    """``kept`` of a kind whose backward needs no tensor (a copy, a pad, a resize, a sum)."""
    k.new()


def same_tensor(self, row, k):
    """``kept`` of a kind whose result is its input's storage (an identity, a view)."""


class LanesDiffer(ValueError):
    """A sweep's lanes disagree on how a tensor is stored: fewer lanes at once will do."""


def uniform(v) -> bool:
    """A condition that decides how a tensor is stored, for a sweep's lanes: the same for
    every lane, or the group goes to the scalar path (ValueError), where it is one number."""
    if hasattr(v, "dtype"):
        if v.all():
            return True
        if v.any():
            raise LanesDiffer("the lanes differ")
        return False
    return bool(v)


def anywhere(v) -> bool:
    """A condition that holds for one lane of a sweep's arrays, or for a plain number: the
    rule then refuses, and the sweep's scalar path says for which variant."""
    return bool(v.any()) if hasattr(v, "dtype") else bool(v)


def need_map(x: tuple, rank: int, what: str):
    """A rule that needs a feature map of ``rank`` spatial axes."""
    if len(x) == 1:
        raise RuleError(f"{what} needs a {rank}-D feature map, received a flat vector of "
                        f"{fmt.count(x[0])} values (after flatten, a global pool or dense)")
    if len(x) - 1 != rank:
        raise RuleError(f"{what} has a {rank}-D window but the input is {len(x) - 1}-D "
                        f"({fmt.shape(x)})")


class Layer:
    """One layer of a network; subclasses are the kinds."""
    keyword: ClassVar[str] = ""
    words: ClassVar[tuple] = ()       # further keywords of a family (the activations)
    also: ClassVar[tuple] = ()        # what Keras and PyTorch call it, lower case: for hints
    doc: ClassVar[str] = ""           # one line for 'cnncalc layers' and the README
    example: ClassVar[str] = ""
    args: ClassVar[tuple] = ()
    options: ClassVar[tuple] = ()
    colour: ClassVar[str] = "#e0e0e0"
    fold: ClassVar[bool] = False      # drawn inside the box before it (keeps the shape)
    overwrites: ClassVar[bool] = True  # a fold layer may run in place on a tensor it owns
    semantics: ClassVar[str] = "Keras"
    branches = None                   # a block's branches (tuple of tuples of layers)
    ref = None                        # the earlier layer a merge takes ('add ID')
    split = None                      # a block's branches share the channels
    keeps_inputs: ClassVar[bool] = False  # a merge whose backward reads its inputs (multiply)
    # its input's gradient is a view of its output's (a reshape, even one that copies)
    grad_view: ClassVar[bool] = False
    # a reference that leaves the current tensor for the saved one ('from ID'): the flow,
    # its receptive field and its gradient are the saved tensor's alone
    jump: ClassVar[bool] = False
    shares = None                     # 'shares ID': the layer whose weights it uses
    frozen = False                    # 'frozen': its weights are not trained

    def kept(self, row, k):
        """What autograd saves of this layer for the backward pass, as PyTorch's module
        computes it (``k``: analysis/kept.py's walk): by default its input, and its result
        is a new tensor."""
        k.save_input()
        k.new()

    def autocast(self, row) -> str | None:
        """The precision it runs in under CPU autocast (mixed precision): "half" (a
        convolution, a matmul: a float32 input and its weights are cast, the copies kept for
        the backward pass), "float32" (a half input is cast up), "promotes" (a float32
        result from a half input, read as it is), or None: its input's."""
        return None

    def padded_copy(self, row):
        """Values of the padded copy of its input its module makes first (uneven padding,
        which PyTorch's own padding is not): its backward makes its input's gradient at
        that size, which the pad's backward then cuts. By default none."""
        return 0

    def passes(self, row) -> bool:
        """Its result is its input itself in training too (a dropout of rate 0): it keeps
        nothing and its gradient is its output's."""
        return False

    def transient(self, row):
        """Values its forward pass makes for a moment beside its input and result (the
        first step of two-step arithmetic: x * s before + o): by default none."""
        return 0

    def first_gradient(self, row):
        """Values of a gradient its backward pass makes from its output's before its own
        (a cropped result's: the whole, zero-padded): by default none."""
        return 0

    def fresh_gradient(self, j: int) -> bool:
        """The gradient a merge hands its ``j``-th input is a new tensor, not a view of its
        own (a product's: the other input times it): by default where it keeps its inputs."""
        return self.keeps_inputs

    def scratch(self, row):
        """Values its backward pass makes for a moment beside its input's gradient (a
        scale's gradient is the sum of a product the size of its output): by default none."""
        return 0

    def tensors(self, row) -> tuple:
        """Values in each of its parameter tensors (the optimizer's temporaries are the size
        of the largest): by default its weights and its biases."""
        return tuple(n for n in (row.weights, row.biases) if anywhere(n))

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for word in ((cls.keyword,) if cls.keyword else ()) + cls.words:
            KINDS[word] = cls

    def __init__(self, name, line, column, origin=None, **fields):
        self.name, self.line, self.column, self.origin = name, line, column, origin
        self.__dict__.update(fields)

    @property
    def kind(self) -> str:
        return self.keyword

    @classmethod
    def defaults(cls, rank: int) -> dict:
        out = {}
        for o in cls.options:
            d = o.default
            if o.field in out:  # 'same' and 'pad P' share a field: the first gives the default
                continue
            per_axis = getattr(o, "per_axis", False) and isinstance(d, int)
            out[o.field] = (d,) * rank if per_axis else d
        return out

    @classmethod
    def read(cls, word, items, r: Reader) -> dict:
        """The layer's fields from the words of its statement."""
        fields = cls.defaults(r.rank)
        rest = cls.read_args(word, list(items), r, fields)
        cls.read_options(word, rest, r, fields)
        cls.validate(fields, r)
        return fields

    @classmethod
    def read_args(cls, word, rest, r, fields) -> list:
        for arg in cls.args:
            if not rest or not is_value(rest[0]):
                got = rest[0] if rest else None
                later = next((i for i in rest[1:] if is_value(i)), None)
                order = f"; found {got.text!r} where it goes: write '{word} {later.text} " \
                        f"{got.text}'" if isinstance(got, Word) and later is not None else ""
                raise r.syntax(f"{word} needs {arg.label}, e.g. '{word} {arg.example}'{order}",
                               got)
            fields.update(arg.read(rest.pop(0), r))
        return rest

    @classmethod
    def read_options(cls, word, rest, r, fields):
        by_word = {w: o for o in cls.options for w in o.words}
        given = {}
        i = 0
        while i < len(rest):
            item = rest[i]
            option = by_word.get(item.text) if isinstance(item, Word) else None
            if option is None:
                raise r.syntax(unknown_option(cls, word, item), item)
            value, i = option_value(option, rest, i, r)
            written = item.text + (f" {value.text}" if value is not None else "")
            if option.field in given:
                raise r.error(f"{word}: {given[option.field]!r} and {written!r} both set the "
                              f"{option.field}; give it once", item)
            given[option.field] = written
            fields[option.field] = value.text if isinstance(value, Word) else \
                option.read(item.text, value, r.at(item))

    @classmethod
    def validate(cls, fields, r):
        """Checks that need several fields together; raise ``r.error``."""

    @classmethod
    def write(cls, word=None, **fields) -> str:
        """The statement these fields make, as the kind writes itself: options at their
        defaults left out ('batchnorm', not 'batchnorm eps 0.001'). Importers write through
        it, so a foreign file's values reach the spec only as the kind's own words."""
        layer, words = _Fields(fields), [word or cls.keyword]
        if fields.get("ref"):  # a reference form: 'add ID', 'from ID'
            words.append(fields["ref"])
        for a in cls.args:
            try:
                words.append(a.describe(layer))
            except AttributeError:  # not given: the importer writes it some other way
                pass
        for o in cls.options:
            text = o.describe(fields[o.field]) if o.field in fields else None
            if text and text not in words:
                words.append(text)
        return " ".join(w for w in words if w)

    #: whether it marks an output of the network ('output'), which consumers ask
    marks_output: ClassVar[bool] = False

    #: the Keras layer classes this kind reads ('Conv2D'); ``from_keras`` reads one
    keras_reads: ClassVar[tuple] = ()

    @classmethod
    def from_keras(cls, keras_class: str, cfg: dict) -> str | None:
        """Its statement from a Keras layer's config (the inverse of ``keras_code``); None
        for a layer that passes its input on. Raises Foreign for what it cannot say."""
        return cls.write()

    #: the Darknet cfg sections this kind reads ('convolutional'); ``from_darknet`` reads one
    darknet_reads: ClassVar[tuple] = ()

    @classmethod
    def from_darknet(cls, section) -> tuple:
        """Its statements from a Darknet cfg section, and the section's output shape as
        Darknet computes it (``section.int(key, default)``; ``section.shape``: (height,
        width, channels) in; ``section.inputs``: the shapes of the layers it names). Raises
        Foreign for what it cannot say."""
        return [cls.write()], section.shape

    #: the torch.nn classes this kind reads ('Conv2d'; ATen operators are read as the
    #: module PyTorch lowers to them) and the ONNX operators ('Conv'); ``from_read`` reads
    #: one, from what the importer found (layers.reading)
    torch_reads: ClassVar[tuple] = ()
    onnx_reads: ClassVar[tuple] = ()
    #: the fill of a pad before it that it takes as its own padding (0: a conv's zeros)
    pad_fill: ClassVar = None

    @classmethod
    def from_read(cls, r) -> str | None:
        """Its statement from a foreign operation read framework-neutral (``Read``: kernel,
        stride, pads, channels, ... in the spec's axis order); None for one that passes its
        input on. Raises Foreign (``r.refuse``) for what it cannot say. By default the
        fields read that are its own (a pixel shuffle's factor, a dropout's rate)."""
        return cls.write(**r.fields())

    @classmethod
    def rank_after(cls, fields, rank: int) -> int:
        """Spatial axes after this layer (0: a vector), so that later layers read their
        per-axis sizes right; most layers keep the rank."""
        return rank

    # --- the rule and its consumers ---------------------------------------------------
    def rule(self, x: tuple, ex) -> Outcome:
        raise NotImplementedError

    def last_note(self, row) -> str | None:
        """A note for this layer when it ends the network (the walk asks the last one)."""
        return None

    def describe(self) -> str:
        """The layer as a person would write it: ``conv 3x3x64 same relu``."""
        words = [self.kind] + [a.describe(self) for a in self.args]
        for o in self.options:
            text = o.describe(getattr(self, o.field, o.default))
            if text and text not in words:
                words.append(text)
        return " ".join(words)

    def module(self, row):
        """The torch module computing this layer (channels first inside)."""
        raise NotImplementedError

    #: 'check --against' passes over it: an identity in inference (dropout), or padding that
    #: shows in the next layer's output and MACs (an exporter may write 'same' as a pad)
    transparent: ClassVar[bool] = False

    #: source of a small nn.Module class that ``code`` names, copied into an exported file
    torch_helper: ClassVar[str] = ""

    def keras_code(self, row) -> list:  # pragma: no mutate block (export, tested apart)
        """This layer as Keras source, for 'cnncalc export --to keras': a list of
        expressions ('layers.Conv2D(64, 3, padding="same")') applied in turn to a
        channels-last tensor in picture order (N, H, W, C)."""
        keras_code_default(self, row)

    def code(self, row) -> list:  # pragma: no mutate block (export, tested apart)
        """This layer as PyTorch source, for 'cnncalc export --to pytorch': a list of
        (suffix, expression) run in turn on a channels-first tensor in picture order
        (N, C, H, W); the first gets the layer's name, the others name_suffix."""
        from ..errors import CnnCalcError
        raise CnnCalcError(f"layer '{row.name}' ({self.describe()}): cnncalc cannot write "
                           f"'{self.kind}' as PyTorch source yet")
