"""Models nobody on the project wrote, imported as a new user would: torchvision's
classifiers, timm's convnets and segmentation_models_pytorch, built without weights on
PyTorch's meta device, and compared with PyTorch's own numbers for the same module: the
trainable count from ``parameters()``, the buffers from ``buffers()``, the multiply-
accumulates that ``torch.utils.flop_counter`` counts in a forward pass (flops / 2), and the
output's shape. A sample runs in ``make test``; every model of the lists under
CNNCALC_ZOO=1 (``make test-zoo``). Models the language cannot say yet are refused with the
operation named (attention, a convolution of a computed weight, a channel slice)."""

import copy
import math
import os
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from cnncalc.interop.from_torch import from_torch
from cnncalc.interop.graph import Unsupported

ZOO = os.environ.get("CNNCALC_ZOO") == "1"

TORCHVISION = ["alexnet", "vgg11", "vgg16_bn", "resnet18", "resnet50", "resnext50_32x4d",
               "wide_resnet50_2", "squeezenet1_0", "squeezenet1_1", "densenet121",
               "inception_v3", "googlenet", "mobilenet_v2", "mobilenet_v3_small",
               "mobilenet_v3_large", "mnasnet0_5", "shufflenet_v2_x0_5", "efficientnet_b0",
               "efficientnet_v2_s", "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny",
               "convnext_small"]
TORCHVISION_SAMPLE = {"resnet18", "densenet121", "inception_v3", "mobilenet_v3_small",
                      "shufflenet_v2_x0_5", "efficientnet_b0", "convnext_tiny"}

# one small variant of each timm convnet family that the language says today
TIMM = ["resnet18", "resnet50d", "resnext26ts", "seresnet33ts", "regnetx_002", "regnety_002",
        "densenet121", "vgg11", "efficientnet_b0", "efficientnetv2_rw_t", "tf_efficientnet_b0",
        "mobilenetv2_050", "mobilenetv3_small_050", "mnasnet_small", "fbnetc_100",
        "ghostnet_100", "mixnet_s", "tinynet_e", "lcnet_050", "hardcorenas_a", "semnasnet_050",
        "spnasnet_100", "convnext_atto", "cspresnet50", "cspdarknet53", "darknet17",
        "repvgg_a0", "gernet_s", "inception_v3", "xception41", "resnetrs50", "inception_v4",
        # graphs whose paths do not meet in one block: written with 'from ID'
        "dla34", "hrnet_w18_small", "selecsls42b", "vovnet39a", "ese_vovnet19b_dw",
        # channel slices x[:, a:b] and split parts outside a concat: 'slice N start S'
        "rexnet_100", "dpn48b", "res2net50_14w_8s",
        # 'x + 0' where a training branch is absent
        "mobileone_s0",
        # F.interpolate to a size: 'resize 7x7'
        "ghostnetv2_100",
        # weight standardisation ('stdconv'; NFNet's with 'gain'), scalar gains ('rescale')
        "resnetv2_50x1_bit", "nf_resnet26", "nf_regnet_b0", "nfnet_l0",
        # a learnt scalar scale and shift, a learnt skip gain: 'affine'
        "hgnetv2_b0", "dm_nfnet_f0",
        # ECA: a 1-D convolution across the channels between two reshapes
        "ecaresnet26t", "eca_nfnet_l0",
        # RepMixer's x + scale * (mixer(x) - norm(x)): 'subtract'
        "fastvit_t8",
        # ConvNeXt V2's global response normalisation: 'grn'
        "convnextv2_atto",
        # TResNet: space to depth in TensorFlow's order, BlurPool's fixed filter ('frozen')
        "tresnet_m",
        # attention across a layer's paths: ResNeSt's split attention, SKNet's selective
        # kernel ('splitsum R', 'rsoftmax R')
        "resnest14d", "skresnet18", "skresnext50_32x4d",
        # held out: families tried only after the importer was written, exact at once
        "mobilenetv4_conv_small", "repvit_m1", "regnetz_b16", "starnet_s1", "fasternet_t0",
        "repghostnet_050", "hgnet_tiny", "cs3darknet_s", "inception_next_tiny", "rdnet_tiny",
        "ghostnetv3_050", "resnetblur18", "mobilenetv1_100",
        # MambaOut's gated convolution: a split's parts read apart ('slice N start S')
        "mambaout_femto",
        # NASNet's and PNASNet's shift by a pixel, ZeroPad2d((-1, 1, -1, 1)): a negative
        # padding crops ('crop 1x0x1x0' then 'zeropad 0x1x0x1')
        "nasnetalarge", "pnasnet5large"]
# timm's dynamic 'same' padding (Python on sizes), BatchNormAct2d (F.batch_norm), ConvNeXt's
# LayerNorm2d (F.layer_norm between permutes), GhostNet's and CSPNet's channel concat
TIMM_SAMPLE = {"tf_efficientnet_b0", "mobilenetv3_small_050", "convnext_atto", "ghostnet_100",
               "cspdarknet53", "mixnet_s", "dla34", "rexnet_100", "resnest14d",
               "mambaout_femto", "pnasnet5large"}

SMP = ["Unet", "Linknet", "DeepLabV3", "DeepLabV3Plus", "UnetPlusPlus", "FPN", "PAN",
       "UPerNet",  # UPerNet: its pyramid pooling back to the map's size ('resize')
       "Segformer"]  # its MLP: flatten(2), transpose, Linear, back: a dense per position


def _pick(names, sample):
    return [n for n in names if ZOO or n in sample]


def _measured(module, shape):
    """PyTorch's own numbers for ``module`` on an input of ``shape`` (NCHW), on the meta
    device: trainable parameters, running statistics, MACs, output shape."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    # batch norm's running statistics; not its num_batches_tracked, a step counter that
    # Keras' count_params() and cnncalc leave out
    buffers = sum(b.numel() for n, b in module.named_buffers()
                  if not n.endswith("num_batches_tracked"))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.to("meta")  # PyTorch counts the operators' flops from shapes alone
        out = module(torch.empty(shape, device="meta"))
    return trainable, buffers, counter.get_total_flops() // 2, tuple(out.shape[1:])


def _imports_exactly(module, size):
    module.eval()
    trainable, buffers, macs, out = _measured(module, (1, 3, size, size))
    s = from_torch(module, f"{size}x{size}x3").summary
    assert s.totals.trainable == trainable
    assert s.totals.non_trainable == buffers
    assert s.totals.macs == macs
    # PyTorch's (C, H, W) is the spec's W x H x C
    assert s.output == ((*out[1:][::-1], out[0]) if len(out) == 3 else out)


@pytest.mark.parametrize("name", _pick(TORCHVISION, TORCHVISION_SAMPLE))
def test_torchvision_classifiers_import_exactly(name):
    import torchvision.models as models
    kwargs = {"aux_logits": False, "init_weights": False} \
        if name in ("inception_v3", "googlenet") else {}
    # RegNet's constructor computes its widths with tensor arithmetic: built on the CPU
    device = "cpu" if name.startswith("regnet") else "meta"
    with torch.device(device), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = getattr(models, name)(**kwargs)
    _imports_exactly(module, 299 if name == "inception_v3" else 224)


def _transfer(model, summary, net) -> int:
    """The model's own weights into cnncalc's module of its imported spec, row by row: a
    row named like a module (layer1.0.conv1) takes that module's tensors, one named like a
    parameter (ConvNeXt's features.1.0.layer_scale) that tensor. Kernels are rows first in
    PyTorch and in the spec's order (width first) in cnncalc's module; a dense layer after a
    flatten of a map reads it as PyTorch flattens, (C, H, W), where the spec flattens as
    Keras does, (H, W, C): its inputs are permuted so. Returns the values copied."""
    from cnncalc.backends.modules import picture_weight
    modules, params = dict(model.named_modules()), dict(model.named_parameters())
    copied, flat = 0, None
    for row in summary.rows:
        mine, src = net.layers.get(row.name), modules.get(row.name)
        if mine is not None and (src is not None or row.name in params):
            theirs = src.state_dict() if src is not None else \
                {k: params[row.name] for k in mine.state_dict()}
            for k, v in mine.state_dict().items():
                key = k if k in theirs else k.split(".", 1)[-1]  # 'op.weight', 'norm.weight'
                if key not in theirs or not v.dtype.is_floating_point:
                    continue
                t = theirs[key].detach()
                t = picture_weight(t) if t.dim() >= 4 else t
                if flat is not None and key == "weight" and t.dim() == 2:
                    c, (h, w) = flat[-1], flat[:-1][::-1]
                    t = t.reshape(len(t), c, h, w).permute(0, 2, 3, 1).reshape(len(t), -1)
                v.copy_(t.reshape(v.shape))
                copied += t.numel()
        if row.kind == "flatten" and len(row.input) > 1:
            flat = row.input
        elif row.trainable:
            flat = None
    return copied


@pytest.mark.parametrize("name", _pick(TORCHVISION, TORCHVISION_SAMPLE | {"alexnet"}))
def test_torchvision_classifiers_compute_their_outputs_with_their_own_weights(name):
    """The strongest test of an importer: every weight and running statistic of the model,
    made random, goes into the module cnncalc builds from the imported spec, and into the
    PyTorch file it exports (strictly, by the model's own names), and all three compute
    the same outputs."""
    import cnncalc
    import torchvision.models as models
    kwargs = {"aux_logits": False, "init_weights": False} \
        if name in ("inception_v3", "googlenet") else {}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(models, name)(**kwargs).eval()
    with torch.no_grad():
        for n, b in model.named_buffers():
            if n.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif n.endswith("running_var"):
                b.uniform_(0.5, 2)
        for n, p in model.named_parameters():
            if n.endswith("layer_scale"):  # 1e-6 at first: the branch would not show
                p.uniform_(0.1, 1)
    size = 299 if name == "inception_v3" else 224
    summary = from_torch(model, f"{size}x{size}x3").summary
    net = cnncalc.to_torch(summary).eval()
    with torch.no_grad():
        copied = _transfer(model, summary, net)
        x = torch.randn(2, 3, size, size)
        want, got = model(x), net(x.permute(0, 2, 3, 1))
    assert copied == sum(t.numel() for t in model.state_dict().values()
                         if t.dtype.is_floating_point)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    # the PyTorch file 'cnncalc export' writes nests its modules as the spec names them
    # (features.1.0.block.0): the model's own state_dict() loads into it, strictly
    from cnncalc.interop.to_pytorch import load_class
    exported = load_class(cnncalc.to_pytorch_code(summary))().eval()
    exported.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        again = exported(x)
    assert torch.allclose(again, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


ONNX_SAMPLE = {("resnet18", 11), ("resnet18", 17), ("convnext_tiny", 13),
               ("convnext_tiny", 20), ("densenet121", 17), ("inception_v3", 11),
               ("shufflenet_v2_x0_5", 20), ("mobilenet_v3_small", 13)}


@pytest.mark.parametrize("name, opset", [(n, o) for n in TORCHVISION for o in (11, 13, 17, 20)
                                         if ZOO or (n, o) in ONNX_SAMPLE])
def test_torchvision_classifiers_import_from_onnx_at_every_opset(name, opset, tmp_path):
    """Exported by PyTorch at opsets 11, 13, 17 and 20 (GELU as Erf before 20, layer norm
    spelt out before 17), read back: the parameters are the file's own float tensors (batch
    norm folded into the convolutions by the exporter, so the file's count, not the
    module's), the MACs PyTorch's flop counter's for the module. Every weight is random
    first: the exporter shares identical tensors (zero biases, a layer scale of 1e-6)."""
    import onnx
    import torchvision.models as models
    from cnncalc.interop.from_onnx import from_onnx
    kwargs = {"aux_logits": False, "init_weights": False} \
        if name in ("inception_v3", "googlenet") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(models, name)(**kwargs).eval()
        with torch.no_grad():
            for t in [*model.parameters(), *model.buffers()]:
                if t.dtype.is_floating_point:
                    t.copy_(torch.rand_like(t) * 0.5 + 0.5)
        size = 299 if name == "inception_v3" else 224
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path),
                          opset_version=opset, dynamo=False)
    _, _, macs, out = _measured(model, (1, 3, size, size))
    floats = sum(math.prod(t.dims) for t in onnx.load(str(path)).graph.initializer
                 if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 1)
    s = from_onnx(path).summary
    assert (s.totals.params, s.totals.macs, s.output) == (floats, macs, out)


@pytest.mark.parametrize("name", _pick(TIMM, TIMM_SAMPLE))
def test_timm_convnets_import_exactly(name):
    import timm
    with torch.device("meta"):
        module = timm.create_model(name, pretrained=False)
    _imports_exactly(module, 224)


@pytest.mark.parametrize("arch", SMP)
def test_segmentation_models_import_exactly(arch):
    import segmentation_models_pytorch as smp
    with torch.device("meta"):
        module = getattr(smp, arch)("resnet18", encoder_weights=None, classes=3)
    _imports_exactly(module, 128)


def test_a_timm_encoder_without_a_stride_2_stage_imports_exactly():
    """smp's timm-universal encoder gives ConvNeXt (which starts at stride 4) an empty
    stand-in for the stride-2 features, which the decoder concatenates: 0 channels, a part
    that adds nothing (it stopped the import with a KeyError)."""
    import segmentation_models_pytorch as smp
    with torch.device("meta"):
        module = smp.Unet("tu-convnext_atto", encoder_weights=None, classes=3)
    _imports_exactly(module, 128)


def test_layers_whose_results_no_output_reads_are_named_not_written():
    """smp's PSPNet on an EfficientNet runs the encoder's blocks past the depth it reads:
    their results reach no output. The spec is what computes the output (it failed: 'not
    on a path to an output'); the comment names what it leaves out, and with it PyTorch's
    count is whole."""
    import re

    import segmentation_models_pytorch as smp
    with torch.device("meta"):
        module = smp.PSPNet("efficientnet-b0", encoder_weights=None, classes=3).eval()
    trainable, buffers, macs, out = _measured(module, (1, 3, 128, 128))
    imported = from_torch(module, "128x128x3")
    note = re.search(r"# not in this spec: ([\d,]+) parameters of modules that never run or "
                     r"whose results no output reads \(encoder\._blocks, ", imported.text)
    assert note is not None
    assert imported.summary.totals.trainable + int(note[1].replace(",", "")) == trainable
    assert imported.summary.totals.macs < macs  # what runs unread is not counted
    assert imported.summary.output == (*out[1:][::-1], out[0])


@pytest.mark.parametrize("name, said", [
    ("vit_tiny_patch16_224", "attention: bmm of two computed tensors (3x197x64, 3x64x197) "
                             "in blocks.0.attn"),
    ("swin_tiny_patch4_window7_224", "attention: bmm"),
    ("edgenext_xx_small", "attention: bmm of two computed tensors (4x12x784, 4x784x12) in "
                          "stages.1.blocks.1.xca"),
    ("efficientvit_b0", "attention: bmm"), ("coatnet_0_rw_224", "attention: bmm"),
    ("gcresnet33ts", "attention: bmm of two computed tensors (1x64x3136, 1x3136x1) in "
                     "stages.0.0.attn"),  # global context: a softmax over the positions
])
def test_what_the_language_cannot_say_yet_is_named(name, said):
    import timm
    with torch.device("meta"):
        module = timm.create_model(name, pretrained=False)
    with pytest.raises(Unsupported) as e:
        from_torch(module, "224x224x3")
    assert said in str(e.value)


# --- what real code does, written small -----------------------------------------------------

class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: the padding computed in Python from the input's size (symbolic
    tracing stops at the math.ceil), then F.conv2d: a subclass of nn.Conv2d with a forward
    of its own, which is traced, not taken for nn.Conv2d."""

    def forward(self, x):
        import math
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / 2) - 1) * 2 + 3 - ih, 0)
        pw = max((math.ceil(iw / 2) - 1) * 2 + 3 - iw, 0)
        x = nn.functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return nn.functional.conv2d(x, self.weight, self.bias, self.stride)


@pytest.mark.parametrize("size, out", [(16, 8), (15, 8)])
def test_padding_computed_from_the_size_is_keras_same(size, out):
    # TensorFlow's 'same' with stride 2: ceil(n / 2) out; on 16, 0 before and 1 after
    module = nn.Sequential(Conv2dSame(3, 8, 3, stride=2))
    imported = from_torch(module, f"{size}x{size}x3")
    assert "conv 3x3x8 same stride 2 name=0" in imported.text
    assert imported.summary.output == (out, out, 8)


class Linear(nn.Module):
    """A user's own class named Linear, computing x W^T + b itself: matched by type, never
    by name, so it is traced (torch.fx's importer took it for nn.Linear)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = 2  # not nn.Linear's attributes

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias)


class ChunkArgs(nn.Module):
    """Ultralytics' C2f: chunk into a list, append to it, concat; a forward(x, *args)."""

    def __init__(self):
        super().__init__()
        self.cv1 = nn.Conv2d(8, 16, 1)
        self.m = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = Linear(24, 5)

    def forward(self, x, *args):
        y = list(self.cv1(x).chunk(2, 1))
        y.append(self.m(y[-1]))
        return self.fc(self.pool(torch.cat(y, 1)).flatten(1))


def test_lists_args_and_a_class_named_linear_import():
    module = ChunkArgs()
    s = from_torch(module, "16x16x8").summary
    assert s.totals.trainable == sum(p.numel() for p in module.parameters())  # 8 x 16 + 16 +
    assert s.totals.trainable == 8 * 16 + 16 + 8 * 8 * 9 + 8 + 24 * 5 + 5    # 9 x 64 + 8 + 125
    assert s.output == (5,)


class SharedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU()  # a module without weights may run any number of times

    def forward(self, x):
        return self.relu(self.c(self.relu(self.c(x))))


class ChannelAttention(nn.Module):
    """CBAM's channel attention (Woo et al. 2018, eq. 2): one MLP, as timm's CbamModule
    writes it (1x1 convs), on the average- and on the max-pooled map."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1, self.act, self.fc2 = nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 16, 1)

    def forward(self, x):
        x = self.stem(x)
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        top = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * (avg + top).sigmoid()


class SharedParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8, 3, 3))

    def forward(self, x):
        return F.conv2d(F.conv2d(x, self.w, padding=1), self.w, padding=1)


SHARED = [(SharedConv, 8, "shares c "), (ChannelAttention, 3, "shares fc1 "),
          (SharedParameter, 8, "shares convolution")]


@pytest.mark.parametrize("cls, channels, said", SHARED)
def test_weights_used_twice_count_once(cls, channels, said):
    """One module or parameter called twice: 'shares ID', with PyTorch's own counts (its
    parameters() counts a shared tensor once: 584 for the conv, not 1,168) and MACs, and
    with the model's own weights, its outputs."""
    import cnncalc
    model = cls().eval()
    summary = from_torch(model, f"16x16x{channels}").summary
    assert said in summary.network.text
    trainable, buffers, macs, out = _measured(cls(), (1, channels, 16, 16))
    assert (summary.totals.trainable, summary.totals.macs) == (trainable, macs)
    net = cnncalc.to_torch(summary).eval()
    assert sum(p.numel() for p in net.parameters()) == trainable
    with torch.no_grad():
        if cls is SharedParameter:  # a bare parameter: the first layer's, by its name
            net.layers["convolution"].op.weight.copy_(model.w.transpose(-2, -1))
        else:
            _transfer(model, summary, net)
        x = torch.randn(2, channels, 16, 16)
        want, got = model(x), net(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("cls, channels, said", SHARED)
def test_an_initializer_two_layers_read_counts_once_from_onnx(cls, channels, said, tmp_path):
    from cnncalc.interop.from_onnx import from_onnx
    model = cls().eval()
    path = tmp_path / "shared.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.randn(1, channels, 16, 16), str(path), opset_version=17,
                          dynamo=False)
    s = from_onnx(str(path)).summary
    assert "shares" in s.network.text
    assert s.totals.trainable == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_upsample_aligncorners_computes_what_pytorch_computes(rank):
    """segmentation_models_pytorch's decoders interpolate with align_corners=True: the spec
    says 'upsample 2 bilinear aligncorners', imported from nn.Upsample and F.interpolate,
    and cnncalc's module computes what F.interpolate computes."""
    import cnncalc
    mode = ("linear", "bilinear", "trilinear")[rank - 1]
    sizes = (5, 4, 3)[:rank]
    x = torch.randn(2, 3, *sizes)
    want = nn.functional.interpolate(x, scale_factor=2, mode=mode, align_corners=True)

    class Functional(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(x, scale_factor=2, mode=mode, align_corners=True)

    spec = "x".join(map(str, (*sizes[::-1], 3)))  # width first
    for module in (nn.Upsample(scale_factor=2, mode=mode, align_corners=True), Functional()):
        imported = from_torch(module, spec)
        assert [r.layer.describe() for r in imported.summary.rows] == \
            ["upsample 2 bilinear aligncorners"]
        got = cnncalc.to_torch(imported.summary).eval()(x.movedim(1, -1))
        assert torch.allclose(got, want.movedim(1, -1), atol=1e-6)


def test_slice_keeps_the_channels_pytorch_indexing_keeps():
    import cnncalc
    x = torch.randn(2, 5, 4, 12)  # (N, H, W, C): the module's input, channels last
    net = cnncalc.to_torch(cnncalc.summarize("input 4x5x12 | slice 5 start 3")).eval()
    assert torch.equal(net(x), x[..., 3:8])


class Rexish(nn.Module):
    """RexNet's and DPN's partial residual: the first C channels get the shortcut, the
    rest go on as they are (torch.cat([out[:, :C] + x, out[:, C:]], 1))."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 12, 3, padding=1)

    def forward(self, x):
        out = self.conv(x)
        return torch.cat([out[:, :8] + x, out[:, 8:]], 1)


def test_a_partial_residual_imports_and_computes_the_same():
    import cnncalc
    module = Rexish().eval()
    imported = from_torch(module, "6x6x8")
    assert "slice 8\n" in imported.text and "slice 4 start 8" in imported.text
    net = cnncalc.to_torch(imported.summary).eval()
    conv = net.layers["conv"].op
    with torch.no_grad():
        conv.weight.copy_(module.conv.weight.transpose(-1, -2))  # cnncalc runs (N, C, W, H)
        conv.bias.copy_(module.conv.bias)
        x = torch.randn(2, 8, 6, 6)
        assert torch.allclose(net(x.permute(0, 2, 3, 1)), module(x).permute(0, 2, 3, 1),
                              atol=1e-5)


def test_parameters_that_never_run_are_named_not_counted():
    """segmentation_models_pytorch's PSPNet keeps its ResNet's layer3 and layer4 without
    running them: parameters() counts them, the spec (what runs) does not, and says so."""
    import segmentation_models_pytorch as smp
    with torch.device("meta"):
        module = smp.PSPNet("resnet18", encoder_weights=None)
    trainable, buffers, macs, out = _measured(module.eval(), (1, 3, 128, 128))
    imported = from_torch(module, "128x128x3")
    idle = sum(p.numel() for n, p in module.named_parameters()
               if n.startswith(("encoder.layer3.", "encoder.layer4.")))
    assert imported.summary.totals.trainable == trainable - idle
    assert imported.summary.totals.macs == macs  # all that runs is counted
    assert f"# not in this spec: {idle:,} parameters of modules that never run or whose " \
           "results no output reads " \
           "(encoder.layer3, encoder.layer4)" in imported.text


@pytest.mark.parametrize("mode, corners", [("nearest", None), ("bilinear", False),
                                           ("bilinear", True)])
def test_resize_to_a_size_computes_what_f_interpolate_computes(mode, corners):
    import cnncalc
    x = torch.randn(2, 3, 5, 7)

    class Functional(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(x, size=(11, 13), mode=mode, align_corners=corners)

    imported = from_torch(Functional(), "7x5x3")
    assert [r.layer.describe() for r in imported.summary.rows] == \
        ["resize 13x11" + {"nearest": "", "bilinear": " bilinear"}[mode]
         + (" aligncorners" if corners else "")]
    got = cnncalc.to_torch(imported.summary).eval()(x.permute(0, 2, 3, 1))
    assert torch.allclose(got, Functional()(x).permute(0, 2, 3, 1), atol=1e-6)


def _ultralytics(tmp_path_factory):
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics")))
    from ultralytics.nn.tasks import DetectionModel
    return DetectionModel


@pytest.mark.parametrize("yaml", ["yolov8n.yaml"])
def test_yolo_imports_to_its_raw_maps_with_partial(yaml, tmp_path_factory):
    """Ultralytics' YOLOv8n from its yaml (no weights). In eval mode its Detect head
    decodes boxes (views across the maps, DFL's softmax over a reshaped axis, anchors):
    the import names that and stops; with --partial the outputs are the head's raw maps,
    what training sees: the trainable count and the MACs Ultralytics' model computes in
    training mode, which returns those maps."""
    DetectionModel = _ultralytics(tmp_path_factory)
    reference = DetectionModel(yaml, verbose=False).train()
    trainable = sum(p.numel() for p in reference.parameters() if p.requires_grad)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(torch.randn(1, 3, 640, 640))
    macs = counter.get_total_flops() // 2
    model = DetectionModel(yaml, verbose=False).eval()
    # the head's views of each level's maps as (N, C, H x W), joined across the levels
    with pytest.raises(Unsupported, match=r"cat_13: operator cat on view, a map with its "
                                          r"spatial axes merged \(\[1x64x6400, 1x64x1600"):
        from_torch(model, "640x640x3")
    imported = from_torch(model, "640x640x3", partial=True)
    s = imported.summary
    assert (s.totals.trainable, s.totals.macs) == (trainable, macs) == (3_157_184,
                                                                        4_371_456_000)
    shapes = {shape for _, shape in s.outputs}
    assert {(80, 80, 64), (40, 40, 64), (20, 20, 64), (80, 80, 80), (40, 40, 80),
            (20, 20, 80)} <= shapes  # box and class maps per level: 4 x 16 and 80
    assert "# import stopped at node cat_13" in imported.text


def test_yolo11_is_refused_at_its_attention(tmp_path_factory):
    DetectionModel = _ultralytics(tmp_path_factory)
    with pytest.raises(Unsupported, match=r"attention: bmm .* in model\.10\.m\.0\.attn"):
        from_torch(DetectionModel("yolo11n.yaml", verbose=False).eval(), "640x640x3")


@pytest.mark.parametrize("scaled", [False, True])
def test_stdconv_computes_what_timms_standardised_convolutions_compute(scaled):
    import cnncalc
    from timm.layers import ScaledStdConv2d, StdConv2d
    torch.manual_seed(0)
    conv = ScaledStdConv2d(3, 8, 3, gamma=1.7) if scaled else StdConv2d(3, 8, 3, eps=1e-8)
    with torch.no_grad():
        if scaled:
            conv.gain.uniform_(0.5, 1.5)
    module = nn.Sequential(conv).eval()
    imported = from_torch(module, "9x9x3")
    assert imported.summary.totals.trainable == sum(p.numel() for p in module.parameters())
    row = imported.summary.rows[0]
    assert row.layer.describe().startswith("stdconv 3x3x8") and row.layer.gain == scaled
    net = cnncalc.to_torch(imported.summary).eval()
    mine = net.layers[row.name]
    with torch.no_grad():
        mine.op.weight.copy_(conv.weight.transpose(-1, -2))  # cnncalc runs (N, C, W, H)
        if conv.bias is not None:
            mine.op.bias.copy_(conv.bias)
        if scaled:
            mine.gain.copy_(conv.gain.view(-1))
        x = torch.randn(2, 3, 9, 9)
        assert torch.allclose(net(x.permute(0, 2, 3, 1)), module(x).permute(0, 2, 3, 1),
                              atol=1e-5)


def test_affine_computes_what_hgnetv2s_learnable_affine_block_computes():
    import cnncalc
    from timm.models.hgnet import LearnableAffineBlock
    block = LearnableAffineBlock(scale_value=1.3, bias_value=0.2)
    module = nn.Sequential(nn.Conv2d(3, 4, 3), block).eval()
    imported = from_torch(module, "8x8x3")
    assert [r.layer.describe() for r in imported.summary.rows][1] == "affine"
    assert imported.summary.totals.trainable == sum(p.numel() for p in module.parameters())
    net = cnncalc.to_torch(imported.summary).eval()
    rows = imported.summary.rows
    with torch.no_grad():
        net.layers[rows[0].name].op.weight.copy_(module[0].weight.transpose(-1, -2))
        net.layers[rows[0].name].op.bias.copy_(module[0].bias)
        net.layers[rows[1].name].scale.copy_(block.scale)
        net.layers[rows[1].name].bias.copy_(block.bias)
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(net(x.permute(0, 2, 3, 1)), module(x).permute(0, 2, 3, 1),
                              atol=1e-6)


def test_eca_is_a_1d_convolution_across_the_channels_and_computes_the_same():
    """timm's EcaModule: the channels' means as a sequence of C values with one channel
    ('reshape 16x1'), a 1-D convolution along it, a sigmoid, back to a 1x1x16 gate."""
    import cnncalc
    from timm.layers import EcaModule
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 16, 3), EcaModule(16)).eval()
    imported = from_torch(module, "8x8x3")
    words = [r.layer.describe() for r in imported.summary.rows]
    assert ["reshape 16x1", "conv 3x1 pad half nobias", "sigmoid", "reshape 1x1x16"] == \
        [w for w in words if w.startswith(("reshape", "conv 3x1", "sigmoid"))]
    assert imported.summary.totals.trainable == 3 * 3 * 3 * 16 + 16 + 3
    net = cnncalc.to_torch(imported.summary).eval()
    with torch.no_grad():
        assert _transfer(module, imported.summary, net) == 3 * 3 * 3 * 16 + 16 + 3
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(net(x.permute(0, 2, 3, 1)), module(x).permute(0, 2, 3, 1),
                              atol=1e-6)


class Difference(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.b(x) - self.a(x)


def test_a_subtraction_keeps_its_order():
    import cnncalc
    module = Difference().eval()
    imported = from_torch(module, "6x6x4")
    net = cnncalc.to_torch(imported.summary).eval()
    with torch.no_grad():
        assert _transfer(module, imported.summary, net) == 2 * (4 * 4 * 9 + 4) - 4 * 4 * 8
        x = torch.randn(2, 4, 6, 6)
        assert torch.allclose(net(x.permute(0, 2, 3, 1)), module(x).permute(0, 2, 3, 1),
                              atol=1e-6)


class ToLast(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_grn_computes_what_timms_global_response_norm_computes(channels_last):
    import cnncalc
    from timm.layers.grn import GlobalResponseNorm
    torch.manual_seed(0)
    grn = GlobalResponseNorm(8, channels_last=channels_last)
    with torch.no_grad():
        grn.weight.normal_()
        grn.bias.normal_()
    module = nn.Sequential(nn.Conv2d(3, 8, 3), *([ToLast()] if channels_last else []), grn)
    imported = from_torch(module.eval(), "9x7x3")
    assert [r.layer.describe() for r in imported.summary.rows][-1] == "grn"
    net = cnncalc.to_torch(imported.summary).eval()
    with torch.no_grad():
        assert _transfer(module, imported.summary, net) == 3 * 9 * 8 + 8 + 16
        x = torch.randn(2, 3, 7, 9)
        want = module(x) if channels_last else module(x).permute(0, 2, 3, 1)
        assert torch.allclose(net(x.permute(0, 2, 3, 1)), want, atol=1e-5)


def test_a_factory_that_returns_no_module_and_a_model_that_reads_values_are_told(tmp_path):
    from click.testing import CliRunner
    from cnncalc.cli import main
    (tmp_path / "m.py").write_text(
        "import torch\n"
        "def answer():\n    return 42\n"
        "class Reads(torch.nn.Module):\n"
        "    def forward(self, x):\n        return x if x.sum().item() > 0 else -x\n"
        "def reads():\n    return Reads()\n")
    res = CliRunner().invoke(main, ["import", "torch", f"{tmp_path}/m.py:answer",
                                    "--input", "8x8x3"])
    assert res.exit_code == 2 and "answer() returned int, not a torch.nn.Module" in res.output
    res = CliRunner().invoke(main, ["import", "torch", f"{tmp_path}/m.py:reads",
                                    "--input", "8x8x3"])
    assert res.exit_code == 2 and "its forward reads a tensor's values" in res.output


@pytest.mark.parametrize("through", ["pytorch", "onnx"])
def test_space_to_depth_keeps_tresnets_channel_order(tmp_path, through):
    """timm's SpaceToDepth (view, permute, view), read from the module and from its ONNX
    export (Reshape, Transpose, Reshape): 'spacetodepth 4', computing what timm's does."""
    import cnncalc
    from cnncalc.interop.from_onnx import from_onnx
    from timm.layers import SpaceToDepth
    module = nn.Sequential(SpaceToDepth(4)).eval()
    x = torch.randn(2, 3, 8, 16)
    if through == "onnx":
        torch.onnx.export(module, (x[:1],), str(tmp_path / "s2d.onnx"), opset_version=13,
                          dynamo=False)
        imported = from_onnx(str(tmp_path / "s2d.onnx"))
    else:
        imported = from_torch(module, "16x8x3")
    assert [r.layer.describe() for r in imported.summary.rows] == ["spacetodepth 4"]
    got = cnncalc.to_torch(imported.summary).eval()(x.permute(0, 2, 3, 1))
    assert torch.equal(got, module(x).permute(0, 2, 3, 1))


def test_a_convolution_by_a_fixed_filter_is_frozen_not_trained():
    """timm's BlurPool2d convolves with a binomial filter held as a buffer: 'frozen', its
    weights counted with the buffers, as PyTorch counts them."""
    from timm.layers import BlurPool2d
    module = nn.Sequential(nn.Conv2d(3, 8, 3), BlurPool2d(8, filt_size=3, stride=2)).eval()
    s = from_torch(module, "16x16x3").summary
    assert any(r.layer.describe().endswith("frozen") for r in s.rows)
    assert s.totals.trainable == sum(p.numel() for p in module.parameters()) == 3 * 9 * 8 + 8
    assert s.totals.non_trainable == sum(b.numel() for b in module.buffers()) == 8 * 9


def test_a_backbone_frozen_for_fine_tuning_counts_as_pytorch_trains_it():
    """requires_grad=False on the stem and layer1 of a ResNet-18 (fine-tuning): those
    layers are 'frozen', and the trainable count is what requires_grad says; the spec's
    module trains only what PyTorch's would."""
    import cnncalc
    import torchvision.models as models
    model = models.resnet18()
    for p in [*model.conv1.parameters(), *model.bn1.parameters(), *model.layer1.parameters()]:
        p.requires_grad_(False)
    s = from_torch(model, "64x64x3").summary
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    buffers = sum(b.numel() for n, b in model.named_buffers() if "num_batches" not in n)
    assert s.totals.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert s.totals.non_trainable == frozen + buffers
    assert [r.name for r in s.rows if r.layer.frozen][:3] == ["conv1", "bn1", "layer1.0.conv1"]
    net = cnncalc.to_torch(s)
    assert sum(p.numel() for p in net.parameters()) == s.totals.trainable


@pytest.mark.parametrize("module", ["split_attention", "selective_kernel", "split_input"])
def test_split_attention_computes_what_timms_modules_compute(module):
    """ResNeSt's SplitAttn (radix 2 in 2 groups: 'rsoftmax 2 groups 2') and SKNet's
    SelectiveKernel (two or three paths, on the input or on splits of it) import exactly,
    and with their own weights, made random, compute what timm computes."""
    import cnncalc
    from timm.layers import SelectiveKernel, SplitAttn
    torch.manual_seed(0)
    model, channels = {
        "split_attention": (SplitAttn(16, 32, groups=2, radix=2, norm_layer=nn.BatchNorm2d),
                            16),
        "selective_kernel": (SelectiveKernel(16, 32, split_input=False), 16),
        "split_input": (SelectiveKernel(18, 30, kernel_size=[3, 5, 7], split_input=True), 18),
    }[module]
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.dtype.is_floating_point:
                t.uniform_(0.5, 1.5)
    model.eval()
    # (_measured moves its module to the meta device: a copy)
    trainable, buffers, macs, _ = _measured(copy.deepcopy(model), (1, channels, 12, 12))
    summary = from_torch(model, f"12x12x{channels}").summary
    assert (summary.totals.trainable, summary.totals.non_trainable, summary.totals.macs) == \
        (trainable, buffers, macs)
    assert ("rsoftmax 2 groups 2" in summary.network.text) == (module == "split_attention")
    net = cnncalc.to_torch(summary).eval()
    with torch.no_grad():
        assert _transfer(model, summary, net) == sum(
            t.numel() for t in model.state_dict().values() if t.dtype.is_floating_point)
        x = torch.randn(2, channels, 12, 12)
        want, got = model(x), net(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("name", ["convnextv2_atto", "fastvit_t8", "resnest14d"])
def test_a_library_models_training_step_costs_what_cnncalc_says(name):
    """Held-out designs (timm's, imported): the tensors autograd saves per example equal
    cnncalc's exactly, and a training step's peak (SGD, batch 2; Adam under bfloat16
    autocast) is within 10% of the allocator's. Measured so, ConvNeXt-V2 kept 24% more than
    PyTorch and FastViT 19%: their 'dropout 0' was counted with a mask, where PyTorch's
    dropout of rate 0 returns its input."""
    import timm

    import cnncalc
    from cnncalc.analysis.memory import estimate
    from cnncalc.backends.data import picture_shape
    from cnncalc.backends.measure import measured_step, saved_bytes
    s = from_torch(timm.create_model(name, pretrained=False, num_classes=10), "64x64x3").summary
    net = cnncalc.to_torch(s).train()
    x2, x3 = (torch.randn(n, *picture_shape(s.network.input.shape)) for n in (2, 3))
    assert saved_bytes(net, x3)[0] - saved_bytes(net, x2)[0] == estimate(s).kept_bytes
    for optimizer, dtype, amp in (("sgd", "float32", False), ("adam", "bfloat16", True)):
        real = measured_step(s, 2, optimizer, False, dtype=dtype, amp=amp)
        assert 0.9 * real <= s.memory(2, dtype, optimizer, False, amp).training_bytes <= 1.1 * real
