"""Exact results of the core language. Each row cites where its numbers come from."""

import pytest

from conftest import summarize

# (spec, output shapes of each layer, (weights, biases, params) of the first layer or None)
CASES = [
    pytest.param("input 443x592x3 | conv 5x5x6 valid", [(439, 588, 6)], (450, 6, 456),
                 id="seed-photo-conv-5x5x6"),
    pytest.param("input 443x592x3 | conv 5x5x6 valid stride 1 | maxpool 2",
                 [(439, 588, 6), (219, 294, 6)], (450, 6, 456), id="seed-photo-with-pool"),
    pytest.param("input 2000x2000x3 | conv 5x5x16 same", [(2000, 2000, 16)], (1200, 16, 1216),
                 id="seed-2000-same"),
    pytest.param("input 2000x2000x3 | conv 5x5x16 valid", [(1996, 1996, 16)], (1200, 16, 1216),
                 id="seed-2000-valid"),
    pytest.param("input 16x16x1 | conv 3x3x1 valid stride 2", [(7, 7, 1)], None, id="seed-stride-2"),
    pytest.param("input 16x16x1 | conv 3x3x1 valid stride 3", [(5, 5, 1)], None, id="seed-stride-3"),
    pytest.param("input 16x16x1 | conv 3x3x1 valid stride 4", [(4, 4, 1)], None, id="seed-stride-4"),
    pytest.param("input 32x32x3 | conv 5x5x16 same | maxpool 2", [(32, 32, 16), (16, 16, 16)],
                 (1200, 16, 1216), id="seed-conv-then-pool"),
    pytest.param("input 10x8x128 | deconv 3x3x32 stride 2", [(21, 17, 32)], None,
                 id="seed-keras-conv2dtranspose"),
    pytest.param("input 10x8x128 | deconv 3x3x32 stride 2 same", [(20, 16, 32)], None,
                 id="keras-conv2dtranspose-same"),
    pytest.param("input 7x7x1 | conv 3x3x1 same stride 2", [(4, 4, 1)], None,
                 id="keras-same-with-stride"),
    pytest.param("input 32x32x32 | conv 3x3x64 same groups 4", [(32, 32, 64)], (4608, 64, 4672),
                 id="keras-groups"),
    pytest.param("input 32x32x3 | conv 3x3x8 dilation 2", [(28, 28, 8)], (216, 8, 224),
                 id="keras-dilation"),
    # Keras Conv2DTranspose with a kernel smaller than the stride: (in - 1) x s + max(k, s)
    pytest.param("input 5x5x4 | deconv 1x1x2 stride 3", [(15, 15, 2)], (8, 2, 10),
                 id="keras-deconv-kernel-below-stride"),
    # PyTorch MaxPool2d(3, 2, ceil_mode=True) on 6: ceil(3/2)+1 = 3 windows
    pytest.param("input 6x6x1 | maxpool 3 stride 2 ceil", [(3, 3, 1)], None, id="torch-ceil-mode"),
    # PyTorch: 5 + 2*1 - 2 = 5, ceil(5/2) + 1 = 4, but the 4th window would start at 6 >= 5 + 1
    pytest.param("input 5x5x1 | maxpool 2 stride 2 pad 1 ceil", [(3, 3, 1)], None,
                 id="torch-ceil-last-window-rule"),
    pytest.param("input 100x16 | conv 5x32 same | maxpool 2", [(100, 32), (50, 32)],
                 (2560, 32, 2592), id="keras-conv1d"),
    pytest.param("input 16x64x64x1 | conv 3x3x3x8 same", [(16, 64, 64, 8)], (216, 8, 224),
                 id="keras-conv3d"),
    pytest.param("input 8x8x3 | zeropad 1x2 | upsample 2", [(10, 12, 3), (20, 24, 3)], None,
                 id="keras-zeropad-upsample"),
    pytest.param("input 7x7x512 | flatten | dense 4096 relu", [(25088,), (4096,)], None,
                 id="vgg16-fc1"),
]


@pytest.mark.parametrize("text,shapes,counts", CASES)
def test_exact_results(text, shapes, counts):
    s = summarize(text)
    assert [r.output for r in s.rows] == shapes
    if counts:
        first = s.rows[0]
        assert (first.weights, first.biases, first.params) == counts


def test_seed_64_million_units():
    s = summarize("input 2000x2000x3 | conv 5x5x16 same")
    assert s.rows[0].units == 64_000_000


def test_batchnorm_counts_like_keras():
    # Keras BatchNormalization(C): 2C trainable (gamma, beta), 2C non-trainable (moving stats)
    r = summarize("input 8x8x32 | batchnorm").rows[0]
    assert (r.trainable, r.non_trainable, r.params) == (64, 64, 128)


def test_huge_sizes_are_exact():
    r = summarize("input 100000000000x100000000000x3 | conv 3x3x16 same").rows[0]
    assert r.output == (100000000000, 100000000000, 16)
    assert r.units == 100000000000 * 100000000000 * 16


def test_explain_reasons_like_the_notes():
    from cnncalc import analyse, parse as load
    r = analyse(load("input 443x592x3 | conv 5x5x6 valid"), explain=True).rows[0]
    assert "height: floor((592 + 0 - 5) / 1) + 1 = 588" in r.explain
    assert "weights: 5 x 5 x 3 x 6 = 450" in r.explain
    r = analyse(load("input 7x7x1 | conv 3x3x1 same stride 2"), explain=True).rows[0]
    assert "height: same padding, stride 2: ceil(7 / 2) = 4, pad 1 top, 1 bottom" in r.explain


def test_totals_are_sums_of_rows():
    from conftest import spec_text
    s = summarize(spec_text("resnet50_keras.cnn"))
    for attr in ("weights", "biases", "params", "trainable", "non_trainable", "units"):
        assert s.total(attr) == sum(getattr(r, attr) for r in s.rows)
    assert s.total("params") == s.total("trainable") + s.total("non_trainable")


# --- every explanation's arithmetic holds ---------------------------------------------------

def _arithmetic(line):
    """(expression, stated result) for each 'a op b ... = n' in an explanation line."""
    import re
    for m in re.finditer(r"((?:floor|ceil|\(|\d)[\d ,+\-x/()floorceil]*?) = ([\d,]+)\b", line):
        expr, value = m[1].strip(), int(m[2].replace(",", ""))
        if re.search(r"\d\s*[+\-x/]\s*[\d(]", expr):
            yield expr, value


def _evaluate(expr):
    """Exact arithmetic of '+ - x /' with floor() and ceil(), by walking Python's AST
    (never eval): thousands separators dropped, 'x' read as times."""
    import ast
    import math
    import re
    from fractions import Fraction
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expr).replace(" x ", " * ")
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: Fraction(a) / b}
    calls = {"floor": math.floor, "ceil": math.ceil}

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in calls:
            return calls[node.func.id](walk(node.args[0]))
        raise ValueError(f"not arithmetic: {expr!r}")
    return walk(ast.parse(text, mode="eval"))


def _explanations_hold(text):
    from cnncalc import analyse, parse as load
    checked = 0
    for row in analyse(load(text), explain=True).rows:
        for line in row.explain or []:
            for expr, value in _arithmetic(line):
                assert _evaluate(expr) == value, (row.name, line)
                checked += 1
    return checked


def test_every_explanation_of_the_zoo_computes():
    from conftest import SPECS
    assert sum(_explanations_hold(p.read_text()) for p in sorted(SPECS.glob("*.cnn"))) > 2000


def test_explanations_of_random_designs_compute():
    from hypothesis import HealthCheck, given, settings
    from test_property import sequential

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(sequential())
    def check(text):
        try:
            _explanations_hold(text)
        except Exception as e:
            if type(e).__name__ != "SpecDesignError":
                raise
    check()


def test_the_summary_object_of_vgg16():
    # Keras' and torchvision's VGG16: 138,357,544 params; biases by hand: convs 2 x 64 +
    # 2 x 128 + 3 x 256 + 6 x 512 = 4,224, dense 4,096 + 4,096 + 1,000 = 9,192: 13,416
    import cnncalc
    from cnncalc.cli import main
    from click.testing import CliRunner
    from conftest import SPECS
    s = cnncalc.summarize(SPECS / "vgg16.cnn")
    t = s.totals
    assert (t.params, t.biases, t.weights, t.trainable, t.non_trainable) == \
        (138_357_544, 13_416, 138_344_128, 138_357_544, 0)
    # outputs by hand: 224^2 x 64 x 2 + 112^2 x 64 + ... + 4,096 + 4,096 + 1,000
    assert t.units == 15_112_168
    assert t.flops == 2 * t.macs + sum(r.ops for r in s.rows)
    assert "params=138,357,544" in repr(t) and "units=15,112,168" in repr(t)
    first = s["block1_conv1"]  # 3 x 3 x 3 x 64 + 64 = 1,792 (Keras)
    assert first is s[0] and first.params == 1792 and len(s) == 22 == len(list(s))
    # 224 x 224 x 64 outputs x 27 MACs; a bias and a relu per output
    assert (first.macs, first.ops, first.flops) == (86_704_128, 6_422_528, 179_830_784)
    assert repr(first) == "<Row 1 block1_conv1: 224x224x64>"
    assert repr(s) == "<Summary vgg16: 22 layers, 138,357,544 params, output 1000>"
    assert s.outputs == [("predictions", (1000,))] and s.input == (224, 224, 3)
    with pytest.raises(KeyError):
        s["no_such_layer"]
    cli = CliRunner().invoke(main, ["summary", str(SPECS / "vgg16.cnn")]).output
    assert str(s).rstrip("\n") == s.table().rstrip("\n") == cli.rstrip("\n")
    assert "138,357,544" in s._repr_html_() and "<table" in s._repr_html_()
    assert s.to_dict()["totals"]["params"] == 138_357_544
    assert '"params": 138357544' in s.to_json()


def test_outputs_are_what_pytorch_returns():
    # a head's last layer, a marked current tensor, and the last layer, in order
    import cnncalc
    import torch
    s = cnncalc.summarize("input 8x8x3 | conv 3x3x4 same | output { conv 1x1x2 name=head } "
                          "| conv 3x3x6 | output | relu")
    assert [name for name, _ in s.outputs] == ["head", "conv_2", "relu_1"]
    ys = cnncalc.to_torch(s)(torch.zeros(1, 8, 8, 3))  # pictures: (N, H, W, C)
    assert [tuple(y.shape[1:]) for y in ys] == [(8, 8, 2), (6, 6, 6), (6, 6, 6)]
    assert [shape for _, shape in s.outputs] == [(8, 8, 2), (6, 6, 6), (6, 6, 6)]
    # an empty head marks the tensor the block receives
    empty = cnncalc.summarize("input 8x8x3 | conv 3x3x4 same | output { } | conv 3x3x6")
    assert empty.outputs == [("output_1", (8, 8, 4)), ("conv_2", (6, 6, 6))]


def test_the_table_method_takes_the_commands_options():
    # conv 3x3x4 on 2 channels: 72 + 4 = 76; batchnorm: 8 trained + 8 moving statistics
    import cnncalc
    s = cnncalc.summarize("input 4x4x2 | conv 3x3x4 same | batchnorm")
    assert "params: 92 (trainable 84, non-trainable 8)" in s.table()
    assert "params: 84 (PyTorch's parameters(); buffers 8)" in s.table(counts="torch")
    with pytest.raises(cnncalc.CnnCalcError, match="counts 'tf'"):
        s.table(counts="tf")
    # FLOPs: 2 x 1,152 MACs, a bias per conv output (64), scale and shift per batchnorm one
    assert repr(s.totals) == ("Totals(weights=76, biases=8, params=92, trainable=84, "
                              "non_trainable=8, units=128, macs=1,152, flops=2,496)")
    # listed columns are all a CSV holds; by default it adds each row's depth and note
    assert s.table("csv", columns="name,params").splitlines()[:3] == \
        ["name,params", "input,0", "conv_1,76"]
    assert s.table("csv").splitlines()[0].endswith(",depth,note")
    # peak at batch 8: (input 32 + conv 64) ... batchnorm 64 + 64 = 128 values x 4 B x 8
    assert "inference peak 4.0 KiB" in s.table(batch=8)
    assert "memory (float16)" in s.table(dtype="float16")
    assert "training with sgd" in s.table(optimizer="sgd")
    # at batch 8: MACs 4 x 4 x 4 outputs x 18 x 8; kept 8 x 96 values (the conv's input
    # 32, batchnorm's 64) x 4 bytes; the training step's peak: parameters 368 and Adam's
    # moments 672, the batch 128 B per example, and batchnorm's backward (the output held
    # for the loss, its saved input, the loss's gradient and its input's, 1,024 B per
    # example, and its weights' 32 B)
    totals = s.to_dict(batch=8)["totals"]
    assert (totals["peak_activation_bytes"], totals["macs"], totals["kept_activation_bytes"],
            totals["training_bytes"]) == (128 * 4 * 8, 1152 * 8, 96 * 4 * 8,
                                          1040 + 32 + (128 + 1024) * 8)
    assert '\n  "' in s.to_json() and '"peak_activation_bytes": 4096' in s.to_json(batch=8)


def test_a_softmax_leaves_the_field_unmeasured():
    # with the measure's equal weights every channel is the same, and a softmax of equal
    # values is 1 / C whatever comes in: no gradient reaches the input, so check does not
    # measure the field (a measurement would read 0 and disagree)
    import cnncalc
    result = cnncalc.check("input 20x20x2 | conv 3x3x2 softmax | conv 3x3x2")
    assert result.ok and result.rf is None
    assert cnncalc.check("input 20x20x2 | conv 3x3x2 relu | conv 3x3x2").rf is not None
