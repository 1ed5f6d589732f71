"""What the kinds' ``from_keras`` share: a Keras layer's config, as data, in the spec's
terms (sizes width first, as the language writes them; Keras holds rows first)."""

from __future__ import annotations

from .activations import named
from .base import Foreign, picture

# Keras' activation names as cnncalc's words: each activation's own, and Keras' synonyms
NAMES = {**named("keras"), "swish": "silu", "hard_silu": "hardswish", "linear": None}


def activation(cfg) -> str | None:
    """The activation a layer applies ('relu'), None for none."""
    word = cfg.get("activation", "linear")
    if isinstance(word, dict):
        word = word.get("config", {}).get("name", word.get("class_name"))
    if word not in NAMES:
        raise Foreign(f"activation '{word}'")
    return NAMES[word]


def sizes(values) -> tuple:
    """Keras' per-axis values (rows first) in the spec's order (width first)."""
    values = values if isinstance(values, (list, tuple)) else [values]
    return picture(tuple(values))


def window(cfg, default_stride=None) -> dict:
    """A window's padding, stride and dilation as fields; a pool's stride is its size
    unless written, so strides=(1, 1) must be written then."""
    fields = {"padding": cfg.get("padding", "valid")}
    strides = cfg.get("strides") or default_stride
    if strides and list(strides) != list(default_stride or [1] * len(strides)):
        fields["stride"] = sizes(strides)
    dilation = cfg.get("dilation_rate")
    if dilation and any(d != 1 for d in dilation):
        fields["dilation"] = sizes(dilation)
    return fields


def weighted(cfg) -> dict:
    """A weighted layer's bias and activation as fields."""
    return {"bias": bool(cfg.get("use_bias", True)), "activation": activation(cfg)}
