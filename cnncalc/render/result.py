"""The JSON contract of ``cnncalc summary --format json`` (and its JSON Schema): pydantic
models, built from the calculator's rows only when JSON or the schema is asked for, so a
table never pays for pydantic. Shapes leave out the batch; integers are exact."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .. import fmt
from ..layers import KINDS


class _JSON(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


Kind = Literal[tuple(KINDS)]  # every keyword of the registry


class FieldJSON(_JSON):
    size: int = Field(description="the largest number of input pixels one output unit sees "
                                  "along the axis")
    jump: float = Field(description="input pixels between neighbouring output units")
    start: float = Field(description="centre of the first output unit, in input pixels")


class LayerJSON(_JSON):
    index: int = Field(description="1-based position in the flattened list of layers")
    path: str = Field(description="position in the graph: '3', or '3.add.1.2' inside a branch")
    depth: int = Field(description="nesting depth: 0 at the top level")
    name: str
    kind: Kind
    layer: str = Field(description="the layer as written: 'conv 3x3x64 same relu'")
    ref: Optional[str] = Field(None, description="the earlier layer a merge takes ('add ID')")
    block: Optional[str] = Field(None, description="the repeat or def the layer came from")
    line: int = Field(description="the line of the spec the layer is written on")
    output: list[int] = Field(description="output shape without the batch, channels last")
    weights: int
    biases: int
    params: int = Field(description="trainable + non_trainable, as Keras' count_params()")
    params_torch: int = Field(description="as PyTorch's parameters(): batchnorm's moving "
                                          "statistics are buffers, not parameters")
    trainable: int
    non_trainable: int
    units: int = Field(description="number of values in the output (one example)")
    macs: int = Field(description="multiply-accumulates of convolutions and dense layers, "
                                  "times the batch")
    flops: int = Field(description="2 x macs + element-wise operations (bias, batchnorm, "
                                   "activation, pooling, add), times the batch")
    receptive_field: Optional[list[FieldJSON]] = Field(
        description="per spatial axis; null when every output sees the whole input")
    activation_bytes: int = Field(description="bytes of the output at the batch and dtype")
    note: Optional[str] = None


class TotalsJSON(_JSON):
    weights: int
    biases: int
    params: int = Field(description="as Keras' count_params()")
    params_torch: int = Field(description="as PyTorch's sum(p.numel() for p in parameters())")
    trainable: int
    non_trainable: int
    units: int
    macs: int
    flops: int
    backward_macs: int = Field(description="multiply-accumulates of the backward pass: each "
                               "weight's gradient, and each input's gradient where a weight "
                               "upstream needs it (the first layer computes none), times the "
                               "batch")
    param_bytes: int
    peak_activation_bytes: int = Field(description="largest set of activations alive at once "
                                                   "in inference")
    kept_activation_bytes: int = Field(description="the activations autograd keeps for the "
                                                   "backward pass, each storage once")
    training_bytes: int = Field(description="the training step's peak: parameters, the "
                                            "optimizer's state, the batch, and the larger of "
                                            "the backward pass's peak (kept activations, "
                                            "gradients) and the optimizer step's")


class OutputJSON(_JSON):
    name: str
    shape: list[int]


class SummaryJSON(_JSON):
    name: str
    batch: int
    dtype: str
    optimizer: str
    foreach: bool = Field(description="the optimizer steps every parameter at once")
    amp: bool = Field(description="mixed precision: the forward pass under autocast to dtype, "
                                  "parameters, gradients and optimizer state float32")
    checkpoint: list[str] = Field(description="blocks checkpointed: run again in the "
                                              "backward pass instead of keeping activations")
    input: list[int]
    output: list[int] = Field(description="the last layer's output")
    outputs: list[OutputJSON] = Field(description="every output of the network: side outputs "
                                                  "('output' in the spec), then the last layer")
    layers: list[LayerJSON]
    totals: TotalsJSON
    warnings: list[str] = Field(default_factory=list)


def record(summary, batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
           foreach: bool = True, amp: bool = False, checkpoint=()) -> dict:
    """The summary as SummaryJSON's plain data, fields in the models' order. Built from the
    calculator's own ints and written by ``json``: re-validating 10,000 rows on the way out
    took a third of a long spec's time (``to_result`` validates, for whoever wants the model)."""
    from ..analysis.memory import estimate
    from ..analysis.training import backward_macs
    mem = estimate(summary, batch, dtype, optimizer, foreach, amp, checkpoint)
    layers = [{"index": r.index, "path": r.path, "depth": r.depth, "name": r.name,
               "kind": r.kind, "layer": r.layer.describe(), "ref": r.layer.ref,
               "block": r.layer.origin, "line": r.layer.line, "output": list(r.output),
               "weights": r.weights, "biases": r.biases, "params": r.params,
               "params_torch": r.trainable, "trainable": r.trainable,
               "non_trainable": r.non_trainable, "units": r.units, "macs": r.macs * batch,
               "flops": r.flops * batch,
               "receptive_field": None if r.field is None else [
                   {"size": int(a[0]), "jump": float(fmt.exact(a[1])),
                    "start": float(fmt.exact(a[2]))} for a in r.field],
               "activation_bytes": b, "note": r.note}
              for r, b in zip(summary.rows, mem.activation_bytes)]
    t = summary.totals
    totals = {k: getattr(t, k) for k in ("weights", "biases", "params")}
    totals.update(params_torch=t.trainable, trainable=t.trainable,
                  non_trainable=t.non_trainable, units=t.units, macs=t.macs * batch,
                  flops=t.flops * batch,
                  backward_macs=sum(backward_macs(summary).values()) * batch,
                  param_bytes=mem.param_bytes,
                  peak_activation_bytes=mem.peak_activation_bytes,
                  kept_activation_bytes=mem.kept_bytes, training_bytes=mem.training_bytes)
    return {"name": summary.network.name, "batch": batch, "dtype": dtype,
            "optimizer": optimizer, "foreach": foreach, "amp": amp,
            "checkpoint": list(checkpoint),
            "input": list(summary.network.input.shape),
            "output": list(summary.output),
            "outputs": [{"name": n, "shape": list(s)} for n, s in summary.outputs],
            "layers": layers, "totals": totals, "warnings": list(summary.network.warnings)}


def to_result(summary, **options) -> SummaryJSON:
    """The summary as the validated pydantic model of the contract."""
    return SummaryJSON.model_validate(record(summary, **options))


def json_text(summary, **options) -> str:
    from pydantic_core import to_json  # pydantic's own writer: the models' text, 30x json's speed
    return to_json(record(summary, **options), indent=2).decode()


def schema() -> dict:
    return SummaryJSON.model_json_schema()
