"""Transposed convolutions: deconv (Keras Conv*DTranspose, PyTorch ConvTranspose*d), with
Keras' output sizes and PyTorch's output padding."""


from __future__ import annotations

from math import prod

from .. import fmt
from . import activations
from .base import (
    FROZEN,
    SHARES,
    Amount,
    Choice,
    Flag,
    Foreign,
    Layer,
    Outcome,
    act_code,
    anywhere,
    axis_names,
    keras_act,
    need_map,
    nn_call,
    picture,
    runs_half,
)
from .conv import KernelFilters, bias_act_ops
from .window import (
    deconv_axis,
    unless,
)


class Deconv(Layer):
    keyword = "deconv"
    autocast = runs_half
    also = ("conv2dtranspose", "convtranspose2d", "conv1dtranspose", "conv3dtranspose")
    doc = ("transposed convolution as Keras Conv*DTranspose: valid gives (in - 1) x s + "
           "max(k, s), same gives in x s")
    example = "deconv 3x3x32 stride 2 same"
    args = (KernelFilters(),)
    options = (Choice("padding", ("valid", "same"), "valid"), Amount("stride"),
               Amount("dilation"), Flag("nobias", "bias", False, True), activations.option(),
               FROZEN, SHARES)
    colour = "#81c784"

    def kept(self, row, k):  # the transposed conv's whole result; the crop is a view of it
        k.save_input()
        k.new(self._whole(row))
        k.act(self.activation, True)

    def first_gradient(self, row):  # the crop's: its whole result's size, zero-padded
        whole = self._whole(row)
        return whole if anywhere(whole != row.units) else 0

    def _whole(self, row):
        return prod(n + b + a for n, (b, a) in zip(row.output, row.geometry["crops"])) * \
            self.filters

    def rule(self, x, ex):
        rank = len(self.kernel)
        need_map(x, rank, "deconv")
        names, cin = axis_names(rank), x[-1]
        outs, crops, extra = [], [], []
        for i in range(rank):
            o, c, e = deconv_axis(x[i], self.kernel[i], self.stride[i], self.dilation[i],
                                  self.padding, names[i], ex)
            outs.append(o)
            crops.append(c)
            extra.append(e)
        weights = prod(self.kernel) * cin * self.filters
        biases = self.filters if self.bias else 0
        # every input value is multiplied by the whole kernel (scatter), whatever is cropped
        macs = prod(x[:-1]) * weights
        if ex is not None:
            ex.append(f"weights: {' x '.join(map(str, self.kernel))} x {cin} x {self.filters}"
                      f" = {weights:,}")
            ex.append(f"biases: {biases:,}")
            ex.append(f"MACs: {fmt.shape(x[:-1])} inputs x {weights:,} = {macs:,} (each input "
                      "scatters the whole kernel)")
        keff = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))
        shape = (*outs, self.filters)
        return Outcome(shape, weights, biases, 0, macs, bias_act_ops(self, prod(shape)),
                       {"crops": tuple(crops), "output_padding": tuple(extra)},
                       tuple(zip(keff, self.stride, (c[0] for c in crops))), up=True)

    def module(self, row):
        from ..backends.modules import Deconv
        return Deconv(self, row)

    keras_reads = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        if cfg.get("output_padding"):
            raise Foreign(f"{keras_class} with output_padding")
        return cls.write(kernel=k.sizes(cfg["kernel_size"]), filters=cfg["filters"],
                         **k.window(cfg), **k.weighted(cfg))

    torch_reads = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    onnx_reads = ("ConvTranspose",)

    @classmethod
    def from_read(cls, r):
        """'valid' where nothing is cropped, Keras' 'same' where (k - s) // 2 is cropped
        before and the rest after; a valid one notes the crop after it that would make it
        'same' (``cropped_same``: an exporter's slice, read back as the padding)."""
        if r.groups != 1:
            r.refuse("a transposed convolution with groups")
        words = set()
        for k, s, d, (b, e), op in zip(r.kernel, r.stride, r.dilation, r.pads, r.extra):
            ke = d * (k - 1) + 1
            if b == e == 0 and op == max(s - ke, 0):
                words.add("valid")
            elif ke >= s and (b, e - op) == ((ke - s) // 2, ke - s - (ke - s) // 2):
                words.add("same")
            else:
                r.refuse(f"a transposed convolution cropping {b} before and {e - op} after, "
                         "which neither 'valid' nor 'same' (Keras' Conv2DTranspose) does")
        if len(words) > 1:
            r.refuse("a transposed convolution whose axes differ in padding")
        fields = dict(kernel=r.kernel, filters=r.filters, stride=r.stride,
                      dilation=r.dilation, bias=r.bias)
        padding = words.pop()
        if padding == "valid":
            crops = [(max(d * (k - 1) + 1 - s, 0) // 2,
                      max(d * (k - 1) + 1 - s, 0) - max(d * (k - 1) + 1 - s, 0) // 2)
                     for k, s, d in zip(r.kernel, r.stride, r.dilation)]
            r.meta["cropped_same"] = crops if any(b or a for b, a in crops) else None
            r.meta["as_same"] = cls.write(padding="same", **fields)
        return cls.write(padding=padding, **fields)

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = len(self.kernel)
        return [nn_call(f"layers.Conv{rank}DTranspose", self.filters, picture(self.kernel),
                        strides=unless(picture(self.stride), 1),
                        padding="same" if self.padding == "same" else None,
                        dilation_rate=unless(picture(self.dilation), 1),
                        use_bias=None if self.bias else False,
                        activation=keras_act(self.activation))]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        crops = picture(row.geometry["crops"])
        # PyTorch's padding crops both sides alike; Keras' 'same' with an odd total crops
        # one more after: then the full output, and the file's Crop module after it
        uneven = any(b != a for b, a in crops)
        rank = len(self.kernel)
        extra = picture(row.geometry["output_padding"])
        deconv = ("", nn_call(f"nn.ConvTranspose{rank}d", row.input[-1], self.filters,
                              picture(self.kernel), stride=unless(picture(self.stride), 1),
                              padding=None if uneven else unless(tuple(b for b, _ in crops), 0),
                              output_padding=unless(extra, 0),
                              bias=None if self.bias else False,
                              dilation=unless(picture(self.dilation), 1)))
        from .padding import crop_code
        cropped = [("crop", crop_code(crops))] if uneven else []
        return [deconv, *cropped] + act_code(self.activation)

