"""torch.nn's own layers, read whole from the module (its attributes, not its forward): what
the module holds, framework-neutral (``Read``), for the kind that declares the module in
its ``torch_reads`` to write. ATen operators that a module lowers to are read through here
too, as that module (``read_as``)."""

from __future__ import annotations

from ..layers.base import Foreign
from ..layers.reading import Read, kind_for
from .layout import Layout, each_axis, pad_pairs
from .rewrite import fold_pad
from .torch_nodes import _own_name

# a torch.nn attribute → the neutral field it is (the rest are read by _window and _read)
_SAME = {"eps": "eps", "groups": "groups", "affine": "affine", "mode": "mode",
         "align_corners": "corners", "ceil_mode": "ceil", "count_include_pad": "countpad",
         "value": "value", "padding_mode": "padding_mode", "approximate": "approximate",
         "negative_slope": "slope", "num_groups": "groups", "p": "rate", "drop_prob": "rate",
         "upscale_factor": "factor", "downscale_factor": "factor", "out_channels": "filters",
         "out_features": "units", "track_running_stats": "stats",
         "elementwise_affine": "affine", "num_parameters": "count", "alpha": "alpha",
         "scale": "scale", "input_scale": "input_scale", "min_val": "low", "max_val": "high",
         "standard": "standard", "frozen": "frozen"}  # the last two: an operator's record


def _window(lay, a, rank, f):
    """Kernel, stride, dilation and padding in the spec's axis order; a pool's stride is
    its kernel where it has none."""
    f["kernel"] = lay.spec(each_axis(a["kernel_size"], rank))
    f["stride"] = lay.spec(each_axis(a.get("stride") or a["kernel_size"], rank))
    f["dilation"] = lay.spec(each_axis(a.get("dilation", 1), rank))
    padding = a.get("padding", 0)
    if isinstance(padding, str):
        f["padding"] = padding
        f["pads"] = ((0, 0),) * rank
    else:
        f["pads"] = tuple((p, p) for p in lay.spec(each_axis(padding, rank)))
    if "output_padding" in a:
        f["extra"] = lay.spec(each_axis(a["output_padding"], rank))


class Record:
    """An operator's arguments as the module that calls it holds them (nn.Conv2d's
    kernel_size, stride, ...), read as that module."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _attributes(m) -> dict:
    """A module's attributes, parameters and buffers by name (read from its dictionaries:
    nn.Module's getattr of a missing name builds an error, a third of an import's time)."""
    own = vars(m)
    return {**own.get("_parameters", {}), **own.get("_buffers", {}), **own}


def _read(imp, node, name, m, x) -> Read:
    """What a module (or a module-like record of an operator's arguments) holds."""
    lay = imp.layout_of(x)
    shape = imp.shape(x)
    sizes, channels = lay.spatial(shape)
    a = _attributes(m)
    f = {v: a[k] for k, v in _SAME.items() if k in a}
    f.update(framework="torch", sizes=sizes, channels=channels)
    if "scale_factor" in a:  # an upsampling to a size: the output's sizes
        out = imp.shape(node)
        f["out_sizes"] = tuple(lay.spatial(out)[0]) if out is not None else None
    rank = lay.rank
    if "kernel_size" in a:
        _window(lay, a, rank, f)
    elif "padding" in a:  # a padding module: F.pad's order, last axis first
        f["pads"] = pad_pairs(lay, a["padding"])
    _held(lay, a, rank, shape, f)
    return Read(name, **f)


def _held(lay, a, rank, shape, f):
    """The fields only some modules hold: bias, batch norm's statistics, sizes, factors,
    the axis a norm or softmax works on, a flatten's dimensions."""
    if "bias" in a and not isinstance(a["bias"], bool):
        f["bias"] = a["bias"] is not None
    if "weight" in a and "running_mean" in a:  # batch norm: both, or neither
        f["affine"], f["stats"] = a["weight"] is not None, a["running_mean"] is not None
    if "output_size" in a:
        size = a["output_size"]
        f["size"] = None if size is None else tuple(lay.spec(each_axis(size, rank)))
    if a.get("scale_factor") is not None:
        f["factor"] = lay.spec(each_axis(a["scale_factor"], rank))
    if "normalized_shape" in a:
        f["normalized"] = tuple(a["normalized_shape"])
        f["on_channels"] = f["normalized"] == (shape[-1],) and not (rank and lay.first)
    elif "dim" in a:
        f["axis"] = a["dim"]
        f["on_channels"] = a["dim"] is not None and a["dim"] % (rank + 2) == lay.channel_dim()
    else:
        f["on_channels"] = not (rank and lay.first)
    if "start_dim" in a:
        f["dims"] = (a["start_dim"], a["end_dim"])
    for k in ("on_spatial", "reduced", "keep"):  # a reduction's record (aten.mean)
        if k in a:
            f[k] = a[k]


def read_as(imp, node, name, m, x=None):
    """The statement of a module ``name`` (or of an operator read as that module), written
    by the kind that reads it; a pad before it in its module is folded into its padding
    where the kind takes one (``pad_fill``). Returns the op, or None (refused, or an
    identity)."""
    x = node.args[0] if x is None else x
    kind = kind_for("torch", name)
    if kind is None:
        imp.fail(node, f"module {name}")
        return None
    r = _read(imp, node, name, m, x)
    pad = imp.pad_before(x, node) if kind.pad_fill is not None else None
    folded = fold_pad(kind, r, pad)
    if folded is not None:  # the padding per side, as the window's own
        imp.drop(pad)
        return _added(imp, node, folded[0], pad.meta["of"], folded[1], padded=True)
    try:
        text = kind.from_read(r)
    except Foreign as e:
        imp.fail(node, str(e))
        return None
    return _added(imp, node, text, x, r)


def _added(imp, node, text, x, r, padded=False):
    lay = imp.layout_of(x)
    if text is None:  # it passes its input on (a flatten of a vector)
        imp.alias(node, x)
        return None
    op = imp.add(node, text, [x], _own_name(node))
    op.meta.update(r.meta, cin=r.channels, padded=padded, read=r)
    flat = r.get("dims") is not None  # a flatten's result is a vector
    imp.layouts[node.name] = Layout(True, False, 0) if flat else lay
    return op


def flatten(imp, node, x):
    """A view that keeps the batch and flattens the rest."""
    read_as(imp, node, "Flatten", Record(start_dim=1, end_dim=-1), x)


def _module(imp, node, m):
    read_as(imp, node, type(m).__name__, m)


def _identity(imp, node, m=None):
    imp.alias(node, node.args[0])


def _is_cnncalc(module) -> bool:
    return type(module).__module__.startswith("cnncalc.")


def module_handler(module):
    """The handler of one of torch.nn's own layers, matched by type: a class of the same
    name elsewhere (timm's Linear, a user's Conv2d), or a subclass with a forward of its
    own (torchvision's LayerNorm2d), is traced through instead."""
    cls = type(module)
    if cls.__name__ == "Identity":
        handler = _identity
    elif kind_for("torch", cls.__name__) is not None:
        handler = _module
    else:
        return None
    if cls.__name__ in _FOREIGN_LEAVES or cls.__module__.startswith("torch.nn.modules"):
        return handler
    import torch.nn
    base = getattr(torch.nn, cls.__name__, None)
    return handler if base is not None and issubclass(cls, base) and \
        cls.forward is base.forward else None


_FOREIGN_LEAVES = ("StochasticDepth", "DropPath")  # stochastic depth: a row, not Python
