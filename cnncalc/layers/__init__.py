"""Every layer kind, one class each (or one table for a family), registered by keyword.
Importing this package imports every family; ``KINDS`` maps keywords to classes."""

from .base import KINDS, Layer, Outcome, RuleError, axis_names  # noqa: F401
from .activations import ACTIVATIONS  # noqa: F401
from . import conv, separable, deconv, pooling, dense, norm, scaling, regularise, padding, reshaping, channels, merge, outputs, splits  # noqa: F401
from .network import Input, Network, referenced  # noqa: F401


def takes_activation(word: str) -> bool:  # pragma: no mutate block (export and import: tested apart)
    """Kinds with an activation option: 'conv 3x3x64 relu' (importers fuse into these)."""
    cls = KINDS.get(word)
    return cls is not None and any(o.field == "activation" for o in cls.options)


def kinds() -> list:
    """Each kind once, in the order the families define them."""
    seen = []
    for cls in KINDS.values():
        if cls not in seen:
            seen.append(cls)
    return seen


def known_as(name: str):
    """The kind another framework's name stands for ('BatchNormalization', 'Conv2D',
    'nn.Linear'), from each kind's ``also``; None if none does."""
    word = name.rsplit(".", 1)[-1].lower()
    for cls in kinds():
        if word in cls.also:
            return cls
    return None
