"""Activations: one family, one table. Each is a layer of its own (``| relu``) and an
option of conv, deconv and dense (``conv 3x3x64 relu``). ``ops`` is the element-wise cost
per value counted in FLOPs (README, 'Conventions')."""

from __future__ import annotations

import functools

from .base import FROZEN, Choice, Foreign, Layer, Outcome, Real, nn_call, runs_half


class Activation:
    """One activation: its word, what it computes, its torch.nn class and keyword
    arguments, Keras' name for it, its ONNX operator (when one without attributes computes
    it), Darknet's 'activation=' name and its FLOPs per value. Exporters and importers read their names here. What
    autograd saves for the backward pass (analysis/kept.py): ``keeps`` "input" or "output"
    (None: nothing), ``inplace`` whether torch's module can overwrite its input, and
    ``copies`` whether autograd then saves a copy of the input it overwrites."""
    __slots__ = ("word", "doc", "torch", "keras", "onnx", "ops", "keeps", "inplace", "copies",
                 "darknet")

    def __init__(self, word, doc, torch, keras, onnx=None, ops=1, keeps="input", inplace=True,
                 copies=False, darknet=None):
        self.word, self.doc, self.torch, self.keras = word, doc, torch, keras
        self.onnx, self.ops, self.darknet = onnx, ops, darknet
        self.keeps, self.inplace, self.copies = keeps, inplace, copies

    def code(self) -> str:  # pragma: no mutate block (export, tested apart)
        """The torch module as source text, for exporters: ``nn.LeakyReLU(negative_slope=0.2)``."""
        cls, kwargs = self.torch
        return f"nn.{cls}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


ACTIVATIONS = {a.word: a for a in (
    Activation("relu", "max(x, 0)", ("ReLU", {}), "relu", "Relu", keeps="output", darknet="relu"),
    Activation("sigmoid", "1 / (1 + exp(-x))", ("Sigmoid", {}), "sigmoid", "Sigmoid",
               keeps="output", inplace=False, darknet="logistic"),
    Activation("tanh", "hyperbolic tangent", ("Tanh", {}), "tanh", "Tanh", keeps="output",
               inplace=False, darknet="tanh"),
    Activation("softmax", "over the channels", ("Softmax", {"dim": 1}), "softmax",
               keeps="output", inplace=False),
    Activation("leakyrelu", "x if x > 0 else 0.2 x (Keras' slope)", ("LeakyReLU", {"negative_slope": 0.2}),
               "leaky_relu"),
    Activation("gelu", "x Φ(x), exact (erf) form", ("GELU", {}), "gelu", "Gelu", inplace=False,
               darknet="gelu"),
    Activation("linear", "the identity; counted as no operation", ("Identity", {}), "linear",
               ops=0, keeps=None),
    Activation("relu6", "min(max(x, 0), 6) (MobileNet)", ("ReLU6", {}), "relu6", copies=True,
               darknet="relu6"),
    Activation("silu", "x sigmoid(x) (EfficientNet's swish)", ("SiLU", {}), "silu",
               copies=True, darknet="swish"),
    Activation("swish", "the same as silu", ("SiLU", {}), "silu", copies=True),
    Activation("hardswish", "x relu6(x + 3) / 6 (MobileNetV3)", ("Hardswish", {}), "hard_swish",
               "HardSwish", copies=True, darknet="hard_swish"),
    Activation("hardsigmoid", "relu6(x + 3) / 6 (MobileNetV3's gates)", ("Hardsigmoid", {}),
               "hard_sigmoid", copies=True),
    Activation("elu", "x if x > 0 else exp(x) - 1", ("ELU", {}), "elu", "Elu", darknet="elu"),
    Activation("selu", "scaled elu (self-normalising)", ("SELU", {}), "selu", "Selu",
               darknet="selu"),
    Activation("mish", "x tanh(softplus(x))", ("Mish", {}), "mish", "Mish", copies=True,
               darknet="mish"),
)}


IDENTITY = "linear"  # the activation that computes nothing
SOFTMAX = "softmax"  # the one over the channels: equal inputs give 1 / C, whatever they are

# an activation whose product with its own input is another: x * sigmoid(x) is silu
GATED = {"sigmoid": "silu", "hardsigmoid": "hardswish"}
# an activation as code spells it out: another one of x plus an offset, times a scale
# (MobileNetV3's relu6(x + 3) / 6 in Keras, timm and their ONNX exports)
SPELT = {"hardsigmoid": ("relu6", 3.0, 1 / 6)}


def act_ops(name) -> int:
    return ACTIVATIONS[name].ops if name else 0


def fused(row):
    """The activation a layer applies to its own result (``conv 3x3x64 relu``), or None
    (none, or the row is an activation itself)."""
    word = getattr(row.layer, "activation", None)
    return ACTIVATIONS.get(word) if word and row.kind != word else None


@functools.cache
def named(framework: str) -> dict:
    """The activations a framework names with no arguments, by that name → cnncalc's word
    (the first word wins: silu before swish): "torch" (torch.nn classes), "keras", "onnx"."""
    found = {}
    for a in ACTIVATIONS.values():
        name = a.torch[0] if framework == "torch" and not a.torch[1] else \
            getattr(a, framework) if framework != "torch" else None
        if name and a.ops:  # the identity is no activation to import
            found.setdefault(name, a.word)
    return found


def from_darknet(name: str | None) -> str | None:
    """The statement for Darknet's 'activation=' (None for 'linear', its default);
    Darknet's leaky slope is 0.1. Raises Foreign for a name cnncalc has no word for."""
    if name in (None, "linear"):
        return None
    if name == "leaky":
        return Act.write("leakyrelu", slope=0.1)
    word = named("darknet").get(name)
    if word is None:
        raise Foreign(f"activation={name} has no cnncalc counterpart")
    return Act.write(word)


def _elu(r) -> str:
    """ELU's alpha, scale and input scale (ATen's elu computes F.selu too): elu or selu."""
    alpha, scale, inner = r.get("alpha", 1), r.get("scale", 1), r.get("input_scale", 1)
    if (alpha, scale, inner) == (1, 1, 1):
        return "elu"
    if abs(alpha - 1.6732632423543772) < 1e-6 and abs(scale - 1.0507009873554805) < 1e-6 \
            and inner == 1:
        return "selu"
    r.refuse(f"ELU with alpha {alpha:g}, scale {scale:g} (cnncalc has elu and selu)")


def act_module(name):
    from torch import nn
    if not name:
        return nn.Identity()
    cls, kwargs = ACTIVATIONS[name].torch
    return getattr(nn, cls)(**kwargs)


def option():
    """The activation as an option of another kind: ``conv 3x3x64 relu``."""
    return Choice("activation", tuple(ACTIVATIONS), None, help="an activation")


class Act(Layer):
    words = tuple(ACTIVATIONS)
    doc = "an activation as its own layer"
    options = (Real("slope", "slope", 0.2, help="slope 0.1", only=("leakyrelu",)),)
    colour = "#fff9c4"
    fold = True

    @classmethod
    def read(cls, word, items, r):
        fields = super().read(word, items, r)
        fields["activation"] = word
        slope = cls.options[0]
        if not slope.applies(word) and fields["slope"] != slope.default:
            raise r.syntax(f"{word}: 'slope' is leakyrelu's option", None)
        return fields

    keras_reads = ("Activation", "ReLU", "LeakyReLU", "Softmax")
    darknet_reads = ("softmax",)
    torch_reads = (*named("torch"), "LeakyReLU", "Softmax", "Hardtanh")
    onnx_reads = (*named("onnx"), "LeakyRelu", "Softmax", "Clip", "HardSigmoid")

    @classmethod
    def from_read(cls, r):
        """An activation by its framework's name; those with arguments checked against
        cnncalc's (relu6 is a clip to [0, 6], hardsigmoid x / 6 + 0.5, gelu the exact one)."""
        op = r.op
        if op in ("LeakyReLU", "LeakyRelu"):
            return cls.write("leakyrelu", slope=r.slope)
        if op == "Softmax" and not r.on_channels:
            r.refuse(f"softmax over dimension {r.axis}, not the channels")
        if op in ("Clip", "Hardtanh"):
            if (r.low, r.high) != (0, 6):
                r.refuse(f"a clip to [{r.low}, {r.high}] (cnncalc clips to [0, 6]: relu6)")
            return cls.write("relu6")
        if op == "HardSigmoid" and (abs(r.alpha - 1 / 6) > 1e-6 or abs(r.beta - 0.5) > 1e-6):
            r.refuse("HardSigmoid with Keras 2's 0.2 slope (cnncalc's is x / 6 + 0.5)")
        if op in ("GELU", "Gelu") and r.get("approximate", "none") != "none":
            r.refuse("GELU with the tanh approximation (cnncalc's gelu is the exact one)")
        if op == "ELU":
            return cls.write(_elu(r))
        return cls.write({"Softmax": "softmax", "HardSigmoid": "hardsigmoid"}.get(op) or
                         named(r.framework)[op])

    @classmethod
    def from_darknet(cls, section):
        return [cls.write("softmax")], section.shape

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        if keras_class == "Activation":
            word = k.activation(cfg)
            return cls.write(word) if word else None
        if keras_class == "Softmax":
            return cls.write("softmax")
        if keras_class == "LeakyReLU":
            return cls.write("leakyrelu", slope=cfg.get("negative_slope", cfg.get("alpha", 0.3)))
        top, slope = cfg.get("max_value"), cfg.get("negative_slope", 0) or 0
        if top == 6 and not slope and not cfg.get("threshold"):
            return cls.write("relu6")
        if top is None and not cfg.get("threshold"):
            return cls.write("leakyrelu", slope=slope) if slope else cls.write("relu")
        raise Foreign(f"ReLU with max_value={top}, threshold={cfg.get('threshold')}")

    @property
    def kind(self):
        return self.activation

    def passes(self, row):  # 'linear' computes nothing
        return ACTIVATIONS[self.activation].keeps is None

    def describe(self):
        return self.activation + (f" slope {self.slope:g}" if self.slope != 0.2 else "")

    def rule(self, x, ex):
        return Outcome(x, ops=_prod(x) * act_ops(self.activation))

    def kept(self, row, k):  # in place on a tensor its chain owns, as the backend runs it
        k.act(self.activation, k.fresh and self.overwrites)

    def module(self, row):
        if self.activation == "leakyrelu":
            from torch import nn
            return nn.LeakyReLU(self.slope)
        return act_module(self.activation)

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        if self.activation == "leakyrelu":
            return [nn_call("layers.LeakyReLU", negative_slope=self.slope)]
        return [nn_call("layers.Activation", ACTIVATIONS[self.activation].keras or "linear")]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if self.activation == "leakyrelu":
            return [("", nn_call("nn.LeakyReLU", negative_slope=self.slope))]
        return [("", ACTIVATIONS[self.activation].code())]


class PReLU(Layer):
    keyword = "prelu"
    doc = ("x if x > 0 else a x, with a learnt slope a per channel: C parameters (PyTorch "
           "PReLU(C); Keras PReLU with shared_axes over the spatial axes)")
    example = "prelu"
    options = (FROZEN,)
    keras_reads = ("PReLU",)
    torch_reads = ("PReLU",)
    onnx_reads = ("PRelu",)

    @classmethod
    def from_read(cls, r):
        if r.count is None:
            r.refuse("PReLU whose slopes are not constants")
        if r.count != r.channels:
            r.refuse(f"PReLU with {r.count} slope(s) for {r.channels} channels")
        return cls.write()
    colour = "#fff9c4"
    fold = True
    autocast = runs_half  # on CPU autocast's list

    def scratch(self, row):  # the gradient times the input, before its sum per channel
        return row.units

    def rule(self, x, ex):
        c = x[-1]
        if ex is not None:
            ex.append(f"weights: one slope per channel = {c:,}")
        return Outcome(x, weights=c, ops=_prod(x))

    def module(self, row):
        from torch import nn
        return nn.PReLU(row.input[-1], init=0.25)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.PReLU", row.input[-1]))]

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = len(row.input) - 1
        return [nn_call("layers.PReLU", shared_axes=list(range(1, rank + 1)) or None)]


def _prod(x):
    from math import prod
    return prod(x)
