"""Write examples/shapes.onnx: the trained shapes model (examples/shapes.cnn with
examples/shapes.safetensors) exported by PyTorch's ONNX exporter, the example file for
'cnncalc import onnx'. Run: python tools/make_examples.py"""

from pathlib import Path

import torch

import cnncalc
from cnncalc.backends.weights import apply, load_file

ROOT = Path(__file__).resolve().parent.parent


class Pictures(torch.nn.Module):
    """ONNX files take channels first (N, C, H, W), as PyTorch models do."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.permute(0, 2, 3, 1))


def main():
    net = cnncalc.to_torch(cnncalc.summarize(ROOT / "examples" / "shapes.cnn")).eval()
    apply(net, load_file(str(ROOT / "examples" / "shapes.safetensors")))
    torch.onnx.export(Pictures(net), (torch.zeros(1, 1, 16, 16),), str(ROOT / "examples" / "shapes.onnx"),
                      dynamo=False, do_constant_folding=False, input_names=["picture"],
                      output_names=["classes"], dynamic_axes={"picture": {0: "batch"}})
    print("wrote examples/shapes.onnx")


if __name__ == "__main__":
    main()
