"""The network as data: frozen pydantic models, a discriminated union on ``kind``.

Values are normalised before they get here (``stride 2`` on a 2-D input is
``(2, 2)``; padding is ``"valid"``, ``"same"`` or per-axis sizes), so the
rules in ``calc`` never guess."""



from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

MAX_NUMBER = 10**18  # sizes up to this are computed exactly; larger ones are refused

Pos = Annotated[int, Field(ge=1, le=MAX_NUMBER)]
NonNeg = Annotated[int, Field(ge=0, le=MAX_NUMBER)]
Size = Union[Pos, str]  # a str is an open size such as "H" (see ``input ?x?x3``)
Activation = Literal["relu", "sigmoid", "tanh", "softmax", "leakyrelu", "gelu", "linear"]
ACTIVATIONS = Activation.__args__
Padding = Union[Literal["valid", "same"], tuple[NonNeg, ...]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class _Layer(_Frozen):
    name: str
    line: int = 0
    column: int = 0
    block: Optional[str] = None  # the repeat or def the layer was expanded from


class Conv(_Layer):
    kind: Literal["conv"] = "conv"
    kernel: tuple[Pos, ...]
    filters: Pos
    stride: tuple[Pos, ...]
    dilation: tuple[Pos, ...]
    padding: Padding = "valid"
    groups: Pos = 1
    bias: bool = True
    activation: Optional[Activation] = None
    weights: Optional[tuple] = None  # inline kernel values, ``kernel=[[...]]``


class Deconv(_Layer):
    kind: Literal["deconv"] = "deconv"
    kernel: tuple[Pos, ...]
    filters: Pos
    stride: tuple[Pos, ...]
    dilation: tuple[Pos, ...]
    padding: Literal["valid", "same"] = "valid"
    bias: bool = True
    activation: Optional[Activation] = None


class MaxPool(_Layer):
    kind: Literal["maxpool"] = "maxpool"
    pool: tuple[Pos, ...]
    stride: tuple[Pos, ...]
    padding: Padding = "valid"
    ceil: bool = False


class AvgPool(_Layer):
    kind: Literal["avgpool"] = "avgpool"
    pool: tuple[Pos, ...]
    stride: tuple[Pos, ...]
    padding: Padding = "valid"
    ceil: bool = False


class GlobalAvgPool(_Layer):
    kind: Literal["globalavgpool"] = "globalavgpool"


class GlobalMaxPool(_Layer):
    kind: Literal["globalmaxpool"] = "globalmaxpool"


class Flatten(_Layer):
    kind: Literal["flatten"] = "flatten"


class Dense(_Layer):
    kind: Literal["dense"] = "dense"
    units: Pos
    bias: bool = True
    activation: Optional[Activation] = None


class Dropout(_Layer):
    kind: Literal["dropout"] = "dropout"
    rate: Annotated[float, Field(ge=0.0, lt=1.0)]


class BatchNorm(_Layer):
    kind: Literal["batchnorm"] = "batchnorm"


class ZeroPad(_Layer):
    kind: Literal["zeropad"] = "zeropad"
    padding: tuple[NonNeg, ...]


class Upsample(_Layer):
    kind: Literal["upsample"] = "upsample"
    factor: tuple[Pos, ...]


class Act(_Layer):
    kind: Literal["activation"] = "activation"
    activation: Activation


class AddRef(_Layer):
    """``add ID``: add the saved output of layer ID to the current tensor."""
    kind: Literal["add_ref"] = "add_ref"
    ref: str


class ConcatRef(_Layer):
    """``concat ID [crop]``: concatenate the saved output of layer ID (after the current tensor)."""
    kind: Literal["concat_ref"] = "concat_ref"
    ref: str
    crop: bool = False


class Add(_Layer):
    kind: Literal["add"] = "add"
    branches: "tuple[tuple[Node, ...], ...]"


class Concat(_Layer):
    kind: Literal["concat"] = "concat"
    branches: "tuple[tuple[Node, ...], ...]"


LAYER_TYPES = (Conv, Deconv, MaxPool, AvgPool, GlobalAvgPool, GlobalMaxPool, Flatten, Dense,
               Dropout, BatchNorm, ZeroPad, Upsample, Act, AddRef, ConcatRef, Add, Concat)

Node = Annotated[Union[LAYER_TYPES], Field(discriminator="kind")]  # type: ignore[valid-type]


class Input(_Frozen):
    shape: tuple[Size, ...]  # spatial sizes, then channels (channels last, as Keras)
    line: int = 0
    column: int = 0

    @property
    def rank(self) -> int:
        return len(self.shape) - 1


class Network(_Frozen):
    name: str = "network"
    input: Input
    layers: tuple[Node, ...]


def referenced(nodes) -> set:
    """Names that ``add ID`` or ``concat ID`` use anywhere in ``nodes``."""
    names = set()
    for node in nodes:
        if isinstance(node, (AddRef, ConcatRef)):
            names.add(node.ref)
        for branch in getattr(node, "branches", ()):
            names |= referenced(branch)
    return names


# No eager model_rebuild(): with defer_build, each model's validator is built on first use,
# so a spec pays only for the layer kinds it uses. ``build`` validates every layer and
# assembles the containers (Add, Concat, Network) from validated parts.
