"""Properties: on random specs the calculator and a real PyTorch run agree on every
layer, or the spec is refused with a clean SpecDesignError (never a crash) that the
framework agrees with: PyTorch or Keras refuses the same layer too."""

import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")  # one backend per process (see test_keras_values)

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncalc import SpecDesignError, analyse, parse as load
from cnncalc.backends.check import check

from cnncalc.layers import ACTIVATIONS

ACTS = list(ACTIVATIONS)
# Derandomized: CI runs the same cases as a developer; `make fuzz` explores further.
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=True)


def _axes(draw, rank, lo, hi):
    vals = [draw(st.integers(lo, hi)) for _ in range(rank)]
    return str(vals[0]) if draw(st.booleans()) else "x".join(map(str, vals))


@st.composite
def map_layer(draw, rank):
    kind = draw(st.sampled_from(["conv", "conv", "deconv", "maxpool", "avgpool", "batchnorm",
                                 "dropout", "zeropad", "upsample", "act", "dwconv", "sepconv",
                                 "adaptive", "norm", "pads", "shuffle", "scale"]))
    k = "x".join(str(draw(st.integers(1, 3))) for _ in range(rank))
    if kind == "dwconv":
        return (f"dwconv {k} {draw(st.sampled_from(['', 'same', 'pad half']))} "
                f"{draw(st.sampled_from(['', 'stride 2', 'multiplier 2']))} "
                f"{draw(st.sampled_from(['', 'nobias', 'relu6']))}")
    if kind == "sepconv":
        return (f"sepconv {k}x{draw(st.integers(1, 4))} {draw(st.sampled_from(['', 'same']))} "
                f"{draw(st.sampled_from(['', 'stride 2', 'dilation 2']))} "
                f"{draw(st.sampled_from(['', 'hardswish']))}")
    if kind == "adaptive":
        size = "x".join(str(draw(st.integers(1, 5))) for _ in range(rank))
        return f"{draw(st.sampled_from(['adaptiveavgpool', 'adaptivemaxpool']))} {size}"
    if kind == "norm":
        return draw(st.sampled_from(["layernorm", "layernorm eps 1e-6", "groupnorm 1",
                                     "instancenorm", "instancenorm affine", "prelu"]))
    if kind == "pads":
        word = draw(st.sampled_from(["zeropad", "crop", "reflectpad"]))
        pads = "x".join(str(draw(st.integers(0, 1))) for _ in range(2 * rank))
        return f"{word} {pads}"
    if kind == "shuffle":
        return draw(st.sampled_from(["shuffle 1", "shuffle 2"]))
    if kind == "scale":
        return draw(st.sampled_from(["layerscale", "droppath 0.1", "upsample 2 bilinear"]))
    if kind == "conv":
        groups = draw(st.sampled_from([1, 1, 2]))
        words = [f"conv {'x'.join(str(draw(st.integers(1, 4))) for _ in range(rank))}x"
                 f"{groups * draw(st.integers(1, 4))}"]
        pads = ["", "valid", "same", f"pad {draw(st.integers(0, 2))}", "pad half"]
        words.append(draw(st.sampled_from(pads + (["causal"] if rank == 1 else []))))
        words.append(draw(st.sampled_from(["", f"stride {_axes(draw, rank, 1, 3)}"])))
        words.append(draw(st.sampled_from(["", f"dilation {_axes(draw, rank, 1, 2)}"])))
        words.append(f"groups {groups}" if groups > 1 else "")
        words.append(draw(st.sampled_from(["", "nobias"] + ACTS)))
        return " ".join(words)
    if kind == "deconv":
        k = "x".join(str(draw(st.integers(1, 4))) for _ in range(rank))
        return (f"deconv {k}x{draw(st.integers(1, 6))} stride {_axes(draw, rank, 1, 3)} "
                f"{draw(st.sampled_from(['', 'valid', 'same']))} "
                f"{draw(st.sampled_from(['', 'dilation 2']))} {draw(st.sampled_from(['', 'nobias', 'relu']))}")
    if kind in ("maxpool", "avgpool"):
        k = draw(st.integers(1, 3))
        pad = draw(st.sampled_from(["", "valid", "same", f"pad {draw(st.integers(0, k // 2))}"]))
        return (f"{kind} {k} {draw(st.sampled_from(['', f'stride {draw(st.integers(1, 3))}']))} "
                f"{pad} {draw(st.sampled_from(['', 'ceil']))}")
    if kind == "zeropad":
        return f"zeropad {_axes(draw, rank, 0, 2)}"
    if kind == "upsample":
        return f"upsample {_axes(draw, rank, 1, 2)}"
    if kind == "dropout":
        return "dropout 0.25"
    if kind == "act":
        return draw(st.sampled_from(ACTS))
    return "batchnorm"


@st.composite
def head(draw):
    first = draw(st.sampled_from(["flatten", "globalavgpool", "globalmaxpool", ""]))
    if not first:
        return []
    return [first, f"dense {draw(st.integers(1, 5))} {draw(st.sampled_from(['', 'nobias', 'softmax']))}",
            draw(st.sampled_from(["", "batchnorm", "relu"]))]


@st.composite
def sequential(draw):
    rank = draw(st.integers(1, 3))
    top = {1: 40, 2: 16, 3: 8}[rank]
    size = "x".join(str(draw(st.integers(1, top))) for _ in range(rank))
    lines = [f"input {size}x{draw(st.integers(1, 4))}"]
    lines += draw(st.lists(map_layer(rank), min_size=1, max_size=5))
    lines += [h for h in draw(head()) if h]
    return "\n".join(lines)


def _agree(text):
    try:
        summary = analyse(load(text))
    except SpecDesignError as e:
        framework_refuses(text, e)
        return
    result = check(summary, device="cpu", batch=2)
    assert result.ok, [(c.row.name, c.row.output, c.torch_shape, c.row.trainable, c.torch_params)
                       for c in result.layers if not c.ok]


@SETTINGS
@given(sequential())
def test_calculator_matches_pytorch_on_random_chains(text):
    _agree(text)


@st.composite
def graph_body(draw, depth, channels):
    items = []
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.sampled_from(["conv", "conv", "pool", "add", "concat", "repeat", "act",
                                       "multiply", "gate", "output"]))
        if choice == "conv":
            pad = draw(st.sampled_from(["same", "same", "valid"]))
            items.append(f"conv {draw(st.sampled_from([1, 3]))}x{draw(st.sampled_from([1, 3]))}x"
                         f"{draw(st.sampled_from([channels, 2, 3]))} {pad}")
        elif choice == "pool":
            items.append(f"maxpool 2 {draw(st.sampled_from(['same', 'valid']))}")
        elif choice == "act":
            items.append("relu")
        elif choice == "gate":  # squeeze and excitation: a flat gate broadcast over the map
            items.append(f"multiply {{ branch {{ }} branch {{ globalavgpool | dense {channels} "
                         "hardsigmoid } }")
        elif choice == "output":
            items.append("output")
        elif choice == "repeat":
            items.append(f"repeat {draw(st.integers(1, 3))} {{ conv 3x3x{channels} same }}")
        elif depth < 3:
            branches = [draw(graph_body(depth + 1, channels)) if draw(st.booleans()) else ""
                        for _ in range(draw(st.integers(1, 3)))]
            split = draw(st.sampled_from(["", "", "split"]))
            items.append(f"{choice} {split} {{ " + " ".join(f"branch {{ {b} }}" for b in branches)
                         + " }")
    return " | ".join(items)


@st.composite
def graph(draw):
    channels = draw(st.integers(1, 4))
    body = draw(graph_body(0, channels))
    defs = "def blk(f) { conv 3x3x$f same | relu }\n"
    call = draw(st.sampled_from(["", f"| blk({channels})", "| blk(2)"]))
    return f"{defs}input {draw(st.integers(4, 12))}x{draw(st.integers(4, 12))}x{channels}\n" \
           f"conv 1x1x{channels} name=stem\n{body} {call}\n" + \
           draw(st.sampled_from(["", "add stem", "concat stem", "concat stem crop"]))


@SETTINGS
@given(graph())
def test_calculator_matches_pytorch_on_random_graphs(text):
    _agree(text)


@st.composite
def conv_pool_chain(draw):
    """1-D chains of convolutions and pooling on an input wide enough for their field."""
    layers = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            layers.append(f"conv {draw(st.integers(1, 5))}x2 stride {draw(st.integers(1, 2))} "
                          f"dilation {draw(st.integers(1, 3))} "
                          f"{draw(st.sampled_from(['valid', 'same', 'pad 1']))} relu")
        else:
            k = draw(st.integers(1, 3))
            layers.append(f"{draw(st.sampled_from(['maxpool', 'avgpool']))} {k} "
                          f"stride {draw(st.integers(1, k))}")
    return "input 400x1\n" + "\n".join(layers)


@pytest.mark.slow
@SETTINGS
@given(conv_pool_chain())
def test_receptive_field_matches_the_gradient_support(text):
    summary = analyse(load(text))
    result = check(summary, device="cpu")
    assert result.rf is not None, "the field fits in 400 pixels: it must be measured"
    name, calculated, measured = result.rf
    assert calculated == measured, (name, calculated, measured)


# --- a refusal is right only if the framework refuses the same layer ----------------------

def _layers(layers):
    for layer in layers:
        yield layer
        for branch in layer.branches or ():
            yield from _layers(branch)


def _keras_shape(shape):
    """A spec shape (width first, channels last) as Keras' (rows first)."""
    from cnncalc.backends.data import picture_shape
    return picture_shape(shape)


def framework_refuses(text, error):
    """PyTorch builds the layer on a map (the backend's framework); Keras decides crops,
    merges and splits (cnncalc follows its semantics; PyTorch's slicing would crop to
    nothing without complaint). A refusal with no framework check here fails the test."""
    layer = next(x for x in _layers(load(text).layers) if x.name == error.layer)
    if layer.kind in ("add", "concat", "multiply"):
        return _keras_refuses_merge(error.message)
    if text.startswith("def "):  # a layer inside a graph: its window and input, as said
        m = re.search(r"window (\d+).* larger than the \w+ (\d+)(?: \+ (\d+) x (\d+))?",
                      error.message)
        assert m, f"no framework check for this refusal: {error}"
        window, size, pad = int(m[1]), int(m[2]), int(m[4] or 0)
        with pytest.raises(RuntimeError):
            F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, window), padding=pad)
        return
    # a chain: the lines before the refused one give its input
    before = analyse(load("\n".join(text.split("\n")[:error.line - 1])))
    _torch_refuses(layer, before.rows[-1].output if before.rows else before.input)


def _torch_refuses(layer, shape):
    *spatial, c = shape
    x = torch.zeros(1, c, *spatial)  # spec axis order throughout, as the layer's fields
    if layer.kind == "crop":  # Keras' Cropping refuses a crop that leaves nothing
        import keras
        from cnncalc.layers.base import picture  # the pads in Keras' order, rows first
        pairs = picture(tuple(tuple(p) for p in layer.pads))
        crop = getattr(keras.layers, f"Cropping{len(spatial)}D")(
            pairs[0] if len(spatial) == 1 else pairs)
        with pytest.raises(ValueError):
            crop(keras.Input(_keras_shape(shape)))
        return
    with pytest.raises((RuntimeError, ValueError)):
        _torch_layer(layer, c, len(spatial))(x)


def _torch_layer(layer, c, rank):
    kind = layer.kind
    if kind == "instancenorm":  # on a vector: "Expected more than 1 spatial element"
        return F.instance_norm
    if kind == "shuffle":
        return nn.ChannelShuffle(layer.groups)
    if kind == "reflectpad":
        flat = [p for pair in reversed(layer.pads) for p in pair]
        return lambda x: F.pad(x, flat, mode="reflect")
    pad = layer.padding
    k = layer.kernel if hasattr(layer, "kernel") else layer.pool
    dilation = getattr(layer, "dilation", (1,) * rank)
    if pad == "valid":
        pad = 0
    elif pad == "half":
        pad = tuple(((kk - 1) * d + 1) // 2 for kk, d in zip(k, dilation))
    elif pad == "same":  # Keras pads the window's size less one: never too small
        total = [(kk - 1) * d for kk, d in zip(k, dilation)]
        flat = [p for t in reversed(total) for p in (t // 2, t - t // 2)]
        inner = _torch_layer(_with(layer, padding="valid"), c, rank)
        return lambda x: inner(F.pad(x, flat))
    if kind in ("maxpool", "avgpool"):
        cls = getattr(nn, f"{'Max' if kind == 'maxpool' else 'Avg'}Pool{rank}d")
        return cls(k, layer.stride, pad, ceil_mode=layer.ceil)
    conv = getattr(nn, f"Conv{rank}d")
    if kind == "conv":
        return conv(c, layer.filters, k, layer.stride, pad, dilation, layer.groups)
    if kind in ("dwconv", "sepconv"):  # the depthwise step meets the window first
        return conv(c, c, k, layer.stride, pad, dilation, groups=c)
    raise AssertionError(f"no PyTorch layer written here for '{kind}'")


def _with(layer, **fields):
    twin = type(layer).__new__(type(layer))
    twin.__dict__.update(layer.__dict__, **fields)
    return twin


def _keras_refuses_merge(message):
    import keras
    kind = re.search(r"(add|concat|multiply|split):", message)[1]
    shapes = re.findall(r"gives (\d+(?:x\d+)*)", message)
    if m := re.search(r"(\d+) channels do not split equally into (\d+)", message):
        with pytest.raises(ValueError):
            keras.ops.split(keras.Input((int(m[1]),)), int(m[2]), axis=-1)
        return
    assert len(shapes) == 2, message
    inputs = [keras.Input(_keras_shape(tuple(map(int, s.split("x"))))) for s in shapes]
    merge = {"add": keras.layers.Add, "concat": keras.layers.Concatenate,
             "multiply": keras.layers.Multiply}[kind]()
    with pytest.raises(ValueError):
        merge(inputs)
