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
from ..language.records import Float, Value, Word
from ..limits import MAX_SIZE

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
    importer names the layer and this."""


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


# --- reading a statement's words --------------------------------------------------------

class Reader:
    """What an argument or option needs while reading a statement: the rank of the input,
    parameter values, and an error that points at the right column."""

    def __init__(self, rank, evaluate, error, kind, block, syntax):
        self.rank, self.evaluate, self.error, self.kind = rank, evaluate, error, kind
        self.block = block  # the statement has a body: 'add { ... }'
        self.syntax = syntax  # an error in the words themselves (SpecSyntaxError)

    def at(self, item) -> "Reader":
        """The same reader, its errors pointing at ``item`` (an option's word)."""
        return Reader(self.rank, self.evaluate, lambda message, _: self.error(message, item),
                      self.kind, self.block, self.syntax)

    def numbers(self, item, label, minimum, per_axis, allow_open=False) -> tuple:
        """The numbers of a value, per spatial axis or one; each at least ``minimum``."""
        if not isinstance(item, Value):
            raise self.syntax(f"{label} needs a whole number here, received "
                              f"{getattr(item, 'text', 'nothing')!r}", item)
        v = self.evaluate(item)
        for n in v:
            if isinstance(n, str) and not allow_open:
                raise self.error(f"{label}: the open size {n!r} can only stand in the input", item)
            if isinstance(n, int) and not minimum <= n <= MAX_SIZE:
                limit = f"at least {minimum}" if n < minimum else "at most 10^18"
                raise self.error(f"{label} must be {limit}, received {n}", item)
            if hasattr(n, "dtype") and ((n < minimum).any() or (n > MAX_SIZE).any()):
                raise self.error(f"{label}: some variants are out of range", item)
        if per_axis:
            if len(v) == 1:
                return v * self.rank
            if len(v) != self.rank:
                raise self.error(f"{label} {item.text}: expected one number or {self.rank} (one "
                                 f"per spatial axis of the {self.rank}-D input)", item)
        elif per_axis is False and len(v) != 1:
            raise self.error(f"{label}: expected one number, received {item.text}", item)
        return v


class Arg:
    """A positional argument: ``3x3x64`` of conv, ``2`` of maxpool, ``ID`` of add."""
    label = "value"
    example = "N"

    def read(self, item, r: Reader) -> dict:
        raise NotImplementedError

    def describe(self, layer) -> str:
        raise NotImplementedError


class PerAxis(Arg):
    def __init__(self, field, label, example, minimum=1):
        self.field, self.label, self.minimum, self.example = field, label, minimum, example

    def read(self, item, r):
        return {self.field: r.numbers(item, self.label, self.minimum, True)}

    def describe(self, layer):
        return fmt.axes(getattr(layer, self.field))


class Count(Arg):
    def __init__(self, field, label, example, minimum=1):
        self.field, self.label, self.minimum, self.example = field, label, minimum, example

    def read(self, item, r):
        return {self.field: r.numbers(item, self.label, self.minimum, False)[0]}

    def describe(self, layer):
        return str(getattr(layer, self.field))


class Factor(Arg):
    """A real number in a range: Rescaling's scale, above 0 (``rescale 0.0039216``)."""
    minimum, within = 1, "positive"  # a whole number in a value is at least this

    def __init__(self, field, label, example="0.0039216"):
        self.field, self.label, self.example = field, label, example

    def read(self, item, r):
        if isinstance(item, Float):
            v = item.value
        elif isinstance(item, Value):
            v = r.numbers(item, self.label, self.minimum, False)[0]
        else:
            raise r.error(f"{self.label} needs a number such as {self.example}", item)
        if not self.holds(v):
            raise r.error(f"{self.label} must be {self.within}, received {v}", item)
        return {self.field: float(v)}

    def holds(self, v) -> bool:
        return v > 0

    def describe(self, layer):
        return f"{getattr(layer, self.field):.8g}"


class Rate(Factor):
    """A number in [0, 1): dropout's rate."""
    minimum, within = 0, "in [0, 1)"

    def __init__(self, field, label, example="0.5"):
        super().__init__(field, label, example)

    def holds(self, v) -> bool:
        return 0 <= v < 1


# --- options ------------------------------------------------------------------------------

class Option:
    """Words after the arguments. ``words`` start it; ``field`` is what it sets (two options
    setting one field, such as 'same' and 'pad 1', are refused); ``takes_value`` says
    whether a value follows the word."""
    words: tuple = ()
    field: str = ""
    default = None
    takes_value = False  # True, False, "optional" ('split' or 'split 24x40') or "name"
    value_words = ()  # words that may stand for the value ('pad half')
    help = ""
    only = None  # in a family of words (the activations), the words it belongs to

    def applies(self, word: str) -> bool:
        return self.only is None or word in self.only

    def read(self, word, item, r) -> object:
        raise NotImplementedError

    def describe(self, value) -> str | None:
        """The words that write ``value``; None for the default."""
        raise NotImplementedError


class Flag(Option):
    def __init__(self, word, field, value, default, help=""):
        self.words, self.field, self.value, self.default = (word,), field, value, default
        self.help = help or word

    def read(self, word, item, r):
        return self.value

    def describe(self, value):
        return self.words[0] if value == self.value else None


class Choice(Option):
    """One of several words: ``valid``/``same``/``half``, ``nearest``/``bilinear``."""

    def __init__(self, field, words, default, help=""):
        self.field, self.words, self.default = field, tuple(words), default
        self.help = help or " | ".join(words)

    def read(self, word, item, r):
        return word

    def describe(self, value):
        return value if value != self.default and value in self.words else None


class Amount(Option):
    """A word and its value: ``stride 2``, ``pad 1x2``, ``groups 4``."""
    takes_value = True

    def __init__(self, word, field=None, default=1, minimum=1, per_axis=True, example="2",
                 help="", value_words=()):
        self.words, self.field, self.value_words = (word,), field or word, tuple(value_words)
        self.default, self.minimum, self.per_axis = default, minimum, per_axis
        self.help = help or f"{word} {example}"

    def read(self, word, item, r):
        v = r.numbers(item, word, self.minimum, self.per_axis)
        return v if self.per_axis else v[0]

    def describe(self, value):
        if isinstance(value, str):  # 'pad half', or another option of the same field ('same')
            return f"{self.words[0]} {value}" if value in self.value_words else None
        if self.per_axis:
            if all(v == self.default for v in value):
                return None
            return f"{self.words[0]} {fmt.axes(value)}"
        return None if value == self.default else f"{self.words[0]} {value}"


class Real(Option):
    """A word and a real number: ``eps 1e-6``."""
    takes_value = True

    def __init__(self, word, field, default, help, only=None, sign=1):
        self.words, self.field, self.default = (word,), field, default
        self.help, self.only, self.sign = help, only, sign  # sign -1: 'minus 1' sets -1

    def read(self, word, item, r):
        if isinstance(item, Float):
            v = item.value
        elif isinstance(item, Value):
            v = r.numbers(item, word, 0, False)[0]
        else:
            raise r.error(f"{word} needs a number such as {self.default or 1:g}", item)
        if v <= 0:
            raise r.error(f"{word} must be positive, received {v}", item)
        return self.sign * float(v)

    def describe(self, value):
        if value == self.default or (value > 0) != (self.sign > 0):
            return None  # the default, or the other sign's word writes it
        return f"{self.words[0]} {self.sign * value:g}"


class Shares(Option):
    """'shares ID': the weights of an earlier layer of the same kind and sizes, as one
    PyTorch module called twice or one Keras layer applied twice; counted once, there."""
    words, field, takes_value, help = ("shares",), "shares", "name", "shares ID"

    def read(self, word, item, r):
        return item.text

    def describe(self, value):
        return None if value is None else f"shares {value}"


SHARES = Shares()

# weights that are not trained: counted with the buffers (timm's BlurPool filter, a buffer;
# a layer frozen for fine-tuning: PyTorch's requires_grad=False, Keras' trainable=False)
FROZEN = Flag("frozen", "frozen", True, False)


# --- the kind -----------------------------------------------------------------------------

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
            if not rest or not _is_value(rest[0]):
                got = rest[0] if rest else None
                later = next((i for i in rest[1:] if _is_value(i)), None)
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
            value, i = _option_value(option, rest, i, r)
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

    #: the Keras layer classes this kind reads ('Conv2D'); ``from_keras`` reads one
    keras_reads: ClassVar[tuple] = ()

    @classmethod
    def from_keras(cls, keras_class: str, cfg: dict) -> str | None:
        """Its statement from a Keras layer's config (the inverse of ``keras_code``); None
        for a layer that passes its input on. Raises Foreign for what it cannot say."""
        return cls.write()

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


class Whole(tuple):
    """A tuple ``nn_call`` writes whole: a shape (4, 4, 4), not a kernel size 4."""


def nn_call(cls: str, *args, **kwargs) -> str:  # pragma: no mutate block (export, tested apart)
    """``nn.Conv2d(3, 64, kernel_size=3)``: keyword arguments left out when None; per-axis
    tuples of one repeated value written as that value. A class without 'nn.' is one of
    the file's own (a kind's ``torch_helper``): ``LayerScale(96, init=1e-06)``."""
    def text(v):
        if isinstance(v, tuple) and not isinstance(v, Whole) and v and all(i == v[0] for i in v):
            v = v[0]
        return repr(tuple(v)) if isinstance(v, Whole) else repr(v)
    parts = [text(a) for a in args] + [f"{k}={text(v)}" for k, v in kwargs.items()
                                       if v is not None]
    return f"{cls}({', '.join(parts)})"


def keras_code_default(layer, row):
    from ..errors import CnnCalcError
    raise CnnCalcError(f"layer '{row.name}' ({layer.describe()}): cnncalc cannot write "
                       f"'{layer.kind}' as Keras source yet")


def keras_act(name):  # pragma: no mutate block (export, tested apart)
    """A fused activation as Keras' argument: activation="relu" (None for none)."""
    from .activations import ACTIVATIONS
    return None if not name or name == "linear" else ACTIVATIONS[name].keras


def act_code(name, inplace=True):  # pragma: no mutate block (export, tested apart)
    """[(suffix, expression)] for a fused activation ('conv 3x3x64 relu'), in place where
    ``inplace``."""
    from .activations import ACTIVATIONS
    if not name or name == "linear":
        return []
    code = ACTIVATIONS[name].code()
    if inplace and code in ("nn.ReLU()", "nn.ReLU6()", "nn.Hardswish()", "nn.SiLU()",
                            "nn.Hardsigmoid()"):
        code = code[:-1] + "inplace=True)"
    return [("act", code)]


def _option_value(option, rest, i, r):
    """The item that gives an option's value (or None), and the index after the option."""
    after = rest[i + 1] if i + 1 < len(rest) else None
    if isinstance(after, Word) and after.text in option.value_words:
        return after, i + 2
    if option.takes_value == "name":  # 'shares conv1': a layer's name
        if isinstance(after, Word):
            return after, i + 2
        raise r.syntax(f"{rest[i].text} needs the name of an earlier layer, e.g. "
                       f"'{option.help}'", after or rest[i])
    if option.takes_value and _is_value(after):
        return after, i + 2
    if option.takes_value is True:
        raise r.syntax(f"{rest[i].text} needs a value, e.g. '{option.help}'", rest[i])
    return None, i + 1


def _is_value(item) -> bool:
    return isinstance(item, (Value, Float))


def unknown_option(cls, word, item) -> str:
    """What a word that this kind does not take is, and what it takes instead."""
    import difflib
    text = getattr(item, "text", None)
    takes = ", ".join(o.help for o in cls.options) or "no options"
    if text is None:
        return f"{word}: unexpected {type(item).__name__.lower()} here; {word} takes {takes}"
    if not isinstance(item, Word):
        return f"{word}: unexpected value {text!r}; {word} takes {takes}"
    from . import ACTIVATIONS
    if text in ACTIVATIONS:
        return (f"{word}: activation {text!r} does not apply here; write it as its own layer "
                f"('| {text}'). {word} takes {takes}")
    others = {w for k in set(KINDS.values()) for o in k.options for w in o.words}
    if text in others:
        return f"{word}: option {text!r} does not apply here; {word} takes {takes}"
    close = difflib.get_close_matches(text.lower(), [w for o in cls.options for w in o.words],
                                      n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{word}: unknown word {text!r}; {word} takes {takes}{hint}"

