"""Loading weights safely: safetensors, or a PyTorch state dict read with
``torch.load(weights_only=True)``, which refuses any pickle that would run code.

Keys are the model's own state-dict keys (``block1_conv1.op.weight``), as
``cnncalc.backends.torch.Net.state_dict()`` writes them (files of earlier releases put
``body.`` before them, which is accepted). Kernels in files are
rows first (kH, kW), as in every PyTorch model; the module keeps them in the spec's order."""

from __future__ import annotations

from pathlib import Path

from ..errors import CnnCalcError


def load_file(path: str) -> dict:
    import torch
    p = Path(path)
    if not p.is_file():
        raise CnnCalcError(f"--weights {path}: no such file")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors
        try:
            return load_safetensors(str(p))
        except Exception as e:  # safetensors raises its own error types
            raise CnnCalcError(f"--weights {path}: not a valid safetensors file ({e})") from None
    import warnings
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            data = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for a pickle that asks to run code, and others
        lines = [ln.strip() for ln in str(e).split("\n")]
        why = next((ln for ln in lines if "Unsupported" in ln or "GLOBAL" in ln), "")
        raise CnnCalcError(f"--weights {path}: refused: only a safetensors file or a PyTorch "
                           "state dict of tensors can be loaded" + (f" ({why[:160]})" if why else
                                                                    "")) from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CnnCalcError(f"--weights {path}: expected a state dict of tensors")
    return data


def apply(net, tensors: dict, source: str = "--weights") -> None:
    """Copy tensors into ``net``; every key must match a parameter or buffer, in shape."""
    from .modules import picture_weight
    own = net.state_dict()
    full = {}
    for key, value in tensors.items():
        value = picture_weight(value)
        name = key[len("body."):] if key.startswith("body.") and key not in own else key
        if name not in own:
            raise CnnCalcError(f"{source}: {key!r} is not a weight of this network; its weights "
                               f"are named like {next(iter(own), '(none)')!r}")
        if tuple(own[name].shape) != tuple(value.shape):
            raise CnnCalcError(f"{source}: {key!r} has shape {tuple(picture_weight(value).shape)}, "
                               f"the network expects {tuple(picture_weight(own[name]).shape)}")
        full[name] = value
    net.load_state_dict(full, strict=False)


def load_labels(path: str):
    """Class names a safetensors file carries in its metadata ('labels': a JSON list)."""
    if not str(path).endswith(".safetensors"):
        return None
    import json
    from safetensors import safe_open
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    try:
        labels = json.loads(meta.get("labels", "null"))
    except ValueError:
        return None
    return labels if isinstance(labels, list) and all(isinstance(v, str) for v in labels) else None


def save(net, path: str, labels=None, what: str = "--weights-out") -> None:
    import json
    from safetensors.torch import save as to_bytes
    from ..files import write
    from .modules import picture_weight
    write(path, to_bytes({k: picture_weight(v).contiguous() for k, v in net.state_dict().items()},
                         metadata={"labels": json.dumps(list(labels))} if labels else None),
          what)
