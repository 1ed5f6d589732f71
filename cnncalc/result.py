"""The JSON contract of ``cnncalc summary --format json`` (and its JSON Schema).

Built from the calculator's rows only when JSON or the schema is asked for, so
a table never pays for it. Shapes leave out the batch; integers are exact."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class LayerOut(_Out):
    index: int = Field(description="1-based position in the flattened list of layers")
    path: str = Field(description="position in the graph: '3', or '3.add.1.2' inside a branch")
    depth: int = Field(description="nesting depth: 0 at the top level")
    name: str
    kind: str
    block: Optional[str] = Field(None, description="the repeat or def the layer came from")
    output: list[int] = Field(description="output shape without the batch, channels last")
    weights: int
    biases: int
    params: int = Field(description="trainable + non_trainable, as Keras' count_params()")
    trainable: int
    non_trainable: int
    units: int = Field(description="number of values in the output (one example)")


class Totals(_Out):
    weights: int
    biases: int
    params: int
    trainable: int
    non_trainable: int
    units: int


class SummaryOut(_Out):
    name: str
    input: list[int]
    output: list[int]
    layers: list[LayerOut]
    totals: Totals


def to_result(summary) -> SummaryOut:
    layers = [LayerOut(index=r.index, path=r.path, depth=r.depth, name=r.name, kind=r.kind,
                       block=r.layer.block, output=list(r.output), weights=r.weights,
                       biases=r.biases, params=r.params, trainable=r.trainable,
                       non_trainable=r.non_trainable, units=r.units) for r in summary.rows]
    totals = Totals(**{k: summary.total(k) for k in
                       ("weights", "biases", "params", "trainable", "non_trainable", "units")})
    return SummaryOut(name=summary.network.name, input=list(summary.network.input.shape),
                      output=list(summary.output), layers=layers, totals=totals)


def schema() -> dict:
    return SummaryOut.model_json_schema()
