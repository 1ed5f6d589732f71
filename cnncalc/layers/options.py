"""A kind's arguments and options: how each is read from the words after the keyword,
checked, and written back (``describe``); 'frozen' and 'shares ID', which every weighted
kind takes."""


from __future__ import annotations

from .. import fmt
from ..language.records import Float, Value, Word
from ..limits import MAX_SIZE

KINDS: dict = {}  # keyword → class


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


class Shape(Arg):
    """reshape's target: sizes then channels, one of them '?'."""
    label = "the new shape"
    example = "4x4x1024"

    def read(self, item, r):
        v = r.numbers(item, "reshape", 1, None, allow_open=True)
        opens = [n for n in v if isinstance(n, str)]
        if len(opens) > 1 or any(n != "?" for n in opens):
            raise r.error(f"reshape {item.text}: one size may be '?' (it is worked out), no "
                          "other letters", item)
        if len(v) > 4:  # as an input: every kind's rule and module stop at 3-D maps
            raise r.error(f"reshape {item.text}: expected up to 3 spatial sizes then the "
                          "channels, as an input takes", item)
        return {"shape": v}

    def describe(self, layer):
        return fmt.shape(layer.shape)


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


def option_value(option, rest, i, r):
    """The item that gives an option's value (or None), and the index after the option."""
    after = rest[i + 1] if i + 1 < len(rest) else None
    if isinstance(after, Word) and after.text in option.value_words:
        return after, i + 2
    if option.takes_value == "name":  # 'shares conv1': a layer's name
        if layer_name(after) is not None:
            return after, i + 2
        raise r.syntax(f"{rest[i].text} needs the name of an earlier layer, e.g. "
                       f"'{option.help}'", after or rest[i])
    if option.takes_value and is_value(after):
        return after, i + 2
    if option.takes_value is True:
        raise r.syntax(f"{rest[i].text} needs a value, e.g. '{option.help}'", rest[i])
    return None, i + 1


def layer_name(item) -> str | None:
    """The layer an item names ('conv1', '1.conv'; '2', as nn.Sequential names its
    layers and 'name=2' writes), or None."""
    if isinstance(item, Word):
        return item.text
    if isinstance(item, Value) and item.text.isdigit():
        return item.text
    return None


def is_value(item) -> bool:
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
    from .base import KINDS  # (at call time: base imports this module)
    others = {w for k in set(KINDS.values()) for o in k.options for w in o.words}
    if text in others:
        return f"{word}: option {text!r} does not apply here; {word} takes {takes}"
    close = difflib.get_close_matches(text.lower(), [w for o in cls.options for w in o.words],
                                      n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{word}: unknown word {text!r}; {word} takes {takes}{hint}"

