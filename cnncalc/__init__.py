"""cnncalc: shapes, counts and more of convolutional networks, from a text spec."""

from .errors import CnnCalcError, LimitError, SpecDesignError, SpecSyntaxError

__version__ = "0.1.0"
__all__ = ["CnnCalcError", "SpecSyntaxError", "SpecDesignError", "LimitError", "load", "analyse",
           "summarize"]


def load(text, file=None, limits=None):
    """Parse spec text into the frozen network model."""
    from .build import load as _load
    return _load(text, file, limits)


def analyse(network, explain=False, open_sizes=False):
    """Every layer's shape and counts (see ``cnncalc.calc``); with ``open_sizes``, open
    input sizes become formulas."""
    from .calc import analyse as _analyse
    return _analyse(network, explain, open_sizes)


def summarize(text, file=None):
    """Text to summary in one call."""
    return analyse(load(text, file))
