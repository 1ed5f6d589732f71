"""A Keras model's architecture as a spec: a '.keras' file (its config.json) or the JSON of
model.to_json(), Keras 3 or tf.keras 2. The language follows Keras' semantics, so most
layers are one statement each; sizes are written width first (Keras holds H, W). The JSON
is read as data: no Keras, no code from the file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..errors import CnnCalcError
from ..layers import KINDS, kinds
from ..layers.base import FROZEN, Foreign, picture
from ..layers.merge import Add
from ..layers.scaling import Rescale
from ..limits import MAX_ARCHIVE_BYTES, MAX_FOREIGN_LAYERS
from .emit import emit
from .rewrite import rewrite
from .graph import Imported, Op, Unsupported, foreign, network_name


def read_config(path) -> dict:
    """The model's config from a .keras file or a to_json() JSON file."""
    path = Path(path)
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z, z.open("config.json") as fh:
                text = fh.read(MAX_ARCHIVE_BYTES + 1)  # streamed: a zip bomb stops here
        else:
            with open(path, "rb") as fh:
                text = fh.read(MAX_ARCHIVE_BYTES + 1)
        if len(text) > MAX_ARCHIVE_BYTES:
            raise CnnCalcError(f"the model's config is over {MAX_ARCHIVE_BYTES >> 20} MiB; no "
                               "Keras architecture is that large", file=str(path))
        return json.loads(text.decode("utf-8-sig"))
    except FileNotFoundError:
        raise CnnCalcError("no such file", file=str(path)) from None
    except OSError as e:
        raise CnnCalcError(f"cannot read the model: {e.strerror or e}", file=str(path)) from None
    except RecursionError:
        raise CnnCalcError("not a Keras model file: its JSON nests too deeply",
                           file=str(path)) from None
    except (ValueError, KeyError, zipfile.BadZipFile) as e:  # no config.json, not JSON
        raise CnnCalcError(f"not a Keras model file (expected a .keras file or the JSON of "
                           f"model.to_json()): {type(e).__name__}: {str(e)[:120]}",
                           file=str(path)) from None


def _readers() -> dict:
    """Keras layer class -> the kind that reads it, from each kind's ``keras_reads`` (its
    own, not inherited: StdConv does not read Conv2D)."""
    return {name: cls for cls in kinds() for name in cls.__dict__.get("keras_reads", ())}


READERS = _readers()


def _layer(cls, cfg, problems, name) -> str | None:
    """One Keras layer as a cnncalc statement, written by the kind that reads it; None for
    a layer that passes its input on."""
    if cfg.get("data_format", "channels_last") != "channels_last":
        problems.append((name, f"{cls} with data_format={cfg['data_format']}"))
        return None
    kind = READERS.get(cls)
    if kind is None:
        problems.append((name, f"layer class {cls}"))
        return None
    try:
        return kind.from_keras(cls, cfg)
    except Foreign as e:  # what the kind cannot say of this layer
        problems.append((name, str(e)))
        return None


def _constants(node) -> list:
    """The numbers a call of an operation takes beside its tensors (x + 3.0)."""
    if not isinstance(node, dict):
        return []
    return [a for a in node.get("args", []) if isinstance(a, (int, float))
            and not isinstance(a, bool)]


def _chain(cls, cfg, name) -> list:
    """(class, config, name) of a layer, or of each layer of a nested Sequential (ConvNeXt's
    stem and downsampling blocks), which runs as a chain."""
    if cls != "Sequential":
        return [(cls, cfg, name)]
    return [(inner.get("class_name"), inner.get("config", {}),
             inner.get("name") or inner.get("config", {}).get("name"))
            for inner in cfg.get("layers", []) if inner.get("class_name") != "InputLayer"]


def _names(layer) -> list:
    """A layer's name, then those of the layers a nested Sequential holds."""
    cfg = layer.get("config", {})
    name = layer.get("name") or cfg.get("name")
    return [name] + ([n for _, _, n in _chain("Sequential", cfg, name)]
                     if layer.get("class_name") == "Sequential" else [])


def _sources(node) -> list:
    """The layer names a call of a layer reads, in Keras 3 and in tf.keras 2 form."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        names = []

        def walk(v):
            if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
                names.append(v["config"]["keras_history"][0])
            elif isinstance(v, (list, tuple)):
                for i in v:
                    walk(i)
        walk(node.get("args", []))
        return names
    return [entry[0] for entry in node]  # tf.keras 2: [[name, node, tensor, kwargs], ...]


def _model_layers(config, path) -> tuple:
    """(the model's class, its config, its layers), each checked to be what Keras writes."""
    if not isinstance(config, dict) or "config" not in config:
        raise CnnCalcError("not a Keras model file: no 'config' at its top", file=str(path))
    kind, body = config.get("class_name"), config["config"]
    layers = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(layers, list) or not layers:
        raise CnnCalcError(f"not a Keras model file: a {kind} without layers", file=str(path))
    if len(layers) > MAX_FOREIGN_LAYERS:
        raise CnnCalcError(f"{len(layers):,} layers: more than the {MAX_FOREIGN_LAYERS:,} cnncalc "
                           "reads", file=str(path))
    if not all(isinstance(layer, dict) for layer in layers):
        raise CnnCalcError("not a Keras model file: its layers are not objects", file=str(path))
    return kind, body, layers


def _input_text(layers, sequential, input, path) -> str:
    """The spec's input sizes: ``input``, else the model's input layer's (width first)."""
    first, shape = layers[0], None
    if first.get("class_name") == "InputLayer":
        cfg = first["config"]
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    elif sequential:
        shape = first["config"].get("batch_input_shape") or \
            (first.get("build_config") or {}).get("input_shape")
    if input:
        return input
    if shape and all(isinstance(n, int) for n in shape[1:]):
        *spatial, c = shape[1:]
        return "x".join(map(str, (*picture(spatial), c)))
    raise CnnCalcError(f"the model's input sizes are open ({shape}); give them with "
                       "--input, e.g. 224x224x3", file=str(path))


class _Reader:
    """The walk over a model's layers: each to its ops, the layer names to the op each
    stands for, what has no counterpart (and what follows it: not said again)."""

    def __init__(self, sequential, path):
        self.sequential, self.path = sequential, path
        self.problems, self.ops, self.ids, self.failed = [], [], {}, set()
        self.previous = "input"

    def fail(self, name, why):
        self.problems.append((name, why))
        self.failed.add(name)

    def sources(self, layer, name, cls):
        """The ops a layer reads, or None (said as a problem, or after one)."""
        if cls in ("Functional", "Model"):
            self.fail(name, f"a nested {cls} model (import it on its own)")
            return None
        if self.sequential:
            return [self.previous]
        nodes = layer.get("inbound_nodes", [])
        if len(nodes) != 1:
            self.problems.append((name, f"a layer called {len(nodes)} times (shared weights)"))
            return None
        names = _sources(nodes[0])
        if any(n in self.failed for n in names):
            self.failed.add(name)  # after a layer already named: not reported again
            return None
        sources = [self.ids.get(n) for n in names]
        if None in sources or not sources:
            self.fail(name, "an input that is not a layer of this model")
            return None
        return sources

    def read(self, layer):
        cls, cfg = layer.get("class_name"), layer.get("config", {})
        name = layer.get("name") or cfg.get("name")
        if cls == "InputLayer":
            self.ids[name] = "input"
            return
        sources = self.sources(layer, name, cls)
        if sources is None:
            return
        constants = [] if self.sequential else _constants(layer["inbound_nodes"][0])
        if cls in ("Add", "Multiply") and len(sources) == 1 and len(constants) == 1:
            # x + 3.0, x * (1 / 6): MobileNetV3's hard sigmoid, a rescale by a constant
            c = float(constants[0])
            cls, cfg = "Rescaling", ({"scale": 1.0, "offset": c} if cls == "Add" else
                                     {"scale": c, "offset": 0.0})
        if cls == "CustomScaleLayer" and len(sources) == 2:  # Inception-ResNet: a + b x scale
            scaled = f"{name}:scaled"
            self.ops.append(Op(scaled, Rescale.write(scale=float(cfg.get("scale", 1.0))),
                               [sources[1]], source=f"layer {name} ({cls})"))
            self.ops.append(Op(name, Add.write(), [sources[0], scaled], name=name,
                               source=f"layer {name} ({cls})"))
            self.ids[name] = self.previous = name
            return
        here = self.chain(cls, cfg, name, sources)
        if here is not None:
            self.ids[name] = self.previous = here[0]

    def chain(self, cls, cfg, name, here):
        """A layer's ops (a nested Sequential's, one after another); where they end, or None
        when one has no counterpart."""
        for icls, icfg, iname in _chain(cls, cfg, name):
            count = len(self.problems)
            try:
                text = _layer(icls, icfg, self.problems, iname)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
                raise CnnCalcError(f"layer {iname!r} ({icls}): a configuration this reader "
                                   f"does not know ({type(e).__name__}: {str(e)[:100]})",
                                   file=str(self.path)) from None
            if len(self.problems) > count:
                self.failed.add(name)
                return None
            if text is not None and icfg.get("trainable") is False and \
                    FROZEN in getattr(KINDS.get(text.split()[0]), "options", ()):
                text += " frozen"  # trainable=False: a layer frozen for fine-tuning
            if text is not None:  # else it passes its input on
                op = Op(iname, text, here, name=iname, source=f"layer {iname} ({icls})")
                scale, offset = icfg.get("scale", 1.0), icfg.get("offset", 0.0)
                if icls == "Rescaling" and all(isinstance(v, (int, float))
                                               for v in (scale, offset)):
                    op.meta.update(scale=float(scale), offset=float(offset))  # for the rewrite
                self.ops.append(op)
                here = [iname]
        return here

    def outputs(self, layers, body) -> tuple:
        """The ops to write and the network's outputs: up to the first problem (partial),
        the last op (Sequential), else the model's output layers."""
        ops = self.ops
        if self.problems:
            first_bad = self.problems[0][0]
            names = [n for layer in layers for n in _names(layer)]
            stop = names.index(first_bad) if first_bad in names else len(names)
            kept = set(names[:stop])
            ops = [op for op in ops if op.id in kept]
            return ops, [ops[-1].id] if ops else []
        if self.sequential:
            return ops, [ops[-1].id]
        outs = body.get("output_layers") or []
        outs = [outs] if outs and isinstance(outs[0], str) else outs
        return ops, [self.ids[o[0]] for o in outs]


@foreign("Keras model")
def from_keras(path, input: str | None = None, network: str | None = None,
               partial: bool = False) -> Imported:
    """The spec of a Keras model file (.keras, or model.to_json()'s JSON), and its summary."""
    from ..specs import summarize
    kind, body, layers = _model_layers(read_config(path), path)
    sequential = kind == "Sequential"
    input_text = _input_text(layers, sequential, input, path)
    r = _Reader(sequential, path)
    for layer in layers:
        r.read(layer)
    if r.problems and not partial:
        raise Unsupported(r.problems, Path(path).name)
    ops, outputs = r.outputs(layers, body)
    if not ops:
        raise CnnCalcError("nothing to import: the model has no layers cnncalc can write",
                           file=str(path))
    name = network or network_name(body.get("name") or Path(path).stem)
    text = emit(*rewrite(ops, list(outputs)), input_text, name)
    if r.problems:
        text += f"# import stopped at layer {r.problems[0][0]}: {r.problems[0][1]} has no " \
                "cnncalc counterpart\n"
    return Imported(text, summarize(text))
