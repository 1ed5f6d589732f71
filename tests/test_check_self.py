"""The cross-check checks itself (issue 17): a calculator row wrong in any one compared
field (output shape, trainable parameters, buffers, MACs, receptive field) makes 'check'
report that layer as a mismatch and the command exit 1."""

import pytest
import torch
from click.testing import CliRunner

import cnncalc
from cnncalc.cli import main

F = torch.nn.functional

SPEC = "input 12x12x3 | conv 3x3x8 nobias | batchnorm | relu | maxpool 2 | conv 3x3x4"


def _spoil(summary, field):
    row = summary["conv_2"] if field != "non_trainable" else summary["batchnorm_1"]
    if field == "output":
        row.output = (3, 4, 4)
    elif field == "weights":
        row.weights += 1
    elif field == "non_trainable":
        row.non_trainable += 2
    elif field == "macs":
        row.macs += 9
    elif field == "rf":
        row.rf = tuple((size + 2, jump, start) for size, jump, start in row.rf)
    elif field == "rf start":  # the right size in the wrong place
        row.rf = tuple((size, jump, start + 1) for size, jump, start in row.rf)
    elif field == "rf size":  # two pixels wider, from the same first pixel
        row.rf = tuple((size + 2, jump, start + 1) for size, jump, start in row.rf)
    return row.name


FIELDS = ["output", "weights", "non_trainable", "macs", "rf", "rf start", "rf size"]


@pytest.mark.parametrize("field", FIELDS)
def test_a_wrong_row_is_caught(field):
    s = cnncalc.summarize(SPEC)
    assert cnncalc.check(s).ok  # the honest calculator agrees with PyTorch
    name = _spoil(s, field)
    result = cnncalc.check(s)
    assert not result.ok
    if field == "rf":
        assert result.rf[0] == name and result.rf[1] != result.rf[2]
        assert str(result).rstrip().endswith("(MISMATCH)")
    elif field == "rf size":
        assert result.rf[1:] == ((10, 10), (8, 8)) and result.rf_from == ((2, 2), (2, 2))
        assert str(result).rstrip().endswith("calculated 10x10, measured by gradient 8x8 "
                                             "(MISMATCH)")
    elif field == "rf start":  # the centre unit of 3x3: its 8x8 field from (2, 2), not (3, 3)
        assert result.rf[1] == result.rf[2] and result.rf_from == ((3, 3), (2, 2))
        assert str(result).rstrip().endswith("it starts at input pixel (3, 3) by the calculation, "
                                    "(2, 2) by the gradient (MISMATCH)")
    else:
        assert [c.row.name for c in result.layers if not c.ok] == [name]


@pytest.mark.parametrize("field", FIELDS)
def test_the_command_exits_1(monkeypatch, field):
    import cnncalc.analysis.walk as walk
    honest = walk.analyse

    def spoilt(*args, **kwargs):
        s = honest(*args, **kwargs)
        _spoil(s, field)
        return s
    monkeypatch.setattr(walk, "analyse", spoilt)
    res = CliRunner().invoke(main, ["check", "-e", SPEC])
    assert res.exit_code == 1 and "MISMATCH" in res.output, res.output


def test_free_memory_on_the_cpu_is_what_the_kernel_says(monkeypatch):
    # /proc/meminfo counts kibibytes: MemAvailable 1000 kB is 1,024,000 bytes; no file, no
    # figure (and no guard from it)
    import io
    import torch
    from cnncalc.backends import check as module
    meminfo = "MemTotal:       2000 kB\nMemFree:         500 kB\nMemAvailable:   1000 kB\n"
    monkeypatch.setattr(module, "open", lambda path: io.StringIO(meminfo), raising=False)
    assert module._free_bytes(torch, torch.device("cpu")) == 1_024_000
    # a 3x3x8 convolution on 64x64x3: 224 params, 12,288 input and 30,752 output values, 4
    # bytes each: 173,056 bytes (169.0 KiB), more than the 100 kB said to be free
    meminfo = meminfo.replace("1000 kB", "100 kB")
    with pytest.raises(cnncalc.CnnCalcError, match=r"needs about 169\.0 KiB .* than the free "
                       r"memory on cpu \(100\.0 KiB\)"):
        cnncalc.check(cnncalc.summarize("input 64x64x3 | conv 3x3x8"))

    def missing(path):
        raise FileNotFoundError(path)
    monkeypatch.setattr(module, "open", missing, raising=False)
    assert module._free_bytes(torch, torch.device("cpu")) is None
    assert module._free_bytes(torch, torch.device("meta")) is None


def test_a_run_that_would_not_fit_is_refused_before_it_starts():
    # VGG16 at batch 2: parameters 138,357,544 x 4 bytes = 553,430,176; activations kept,
    # (15,112,168 outputs + 150,528 input) x 4 x 2 = 122,101,568: 675,531,744 bytes
    s = cnncalc.summarize(cnncalc.api.Path(__file__).parent.parent / "specs" / "vgg16.cnn")
    with pytest.raises(cnncalc.CnnCalcError, match=r"about 644\.2 MiB .* --max-memory "
                       r"\(600\.0 MiB\)"):
        cnncalc.check(s, batch=2, max_memory="600MiB")
    assert cnncalc.check(s, device="meta", batch=2, max_memory="700MiB").estimate == 675_531_744
    # exactly enough is enough; one byte less is not
    assert cnncalc.check(s, device="meta", batch=2, max_memory="675531744B").ok
    with pytest.raises(cnncalc.CnnCalcError, match=r"--max-memory \(644\.2 MiB\)"):
        cnncalc.check(s, device="meta", batch=2, max_memory="675531743B")


@pytest.mark.parametrize("kw, message", [
    ({"batch": 0}, "--batch must be at least 1, received 0"),
    ({"device": "nonsense"}, "--device nonsense"),
    ({"max_memory": "600"}, "--max-memory 600: a size needs a unit"),
    ({"max_memory": "lots"}, "--max-memory lots: cannot read it as a size"),
])
def test_bad_check_options_are_named(kw, message):
    with pytest.raises(cnncalc.CnnCalcError, match=message):
        cnncalc.check(cnncalc.summarize(SPEC), **kw)


def test_check_on_meta_compares_shapes_and_counts_without_running():
    # conv 3x3x8 on 3 channels, no bias: 216 weights; batchnorm: 16 + 16; conv 3x3x4: 292
    result = cnncalc.check(cnncalc.summarize(SPEC), device="meta")
    assert result.ok and result.rf is None and result.device == "meta"
    assert [(c.torch_params, c.torch_buffers) for c in result.layers] == \
        [(216, 0), (16, 16), (0, 0), (0, 0), (292, 0)]
    # MACs: 10 x 10 x 8 outputs x 27 = 21,600; 3 x 3 x 4 outputs x 72 = 2,592
    assert result.layers[0].torch_macs == 21_600 and result.layers[-1].torch_macs == 2_592


def test_the_check_table_reads_as_worked_out_by_hand():
    # 12 - 3 + 1 = 10; 3 x 3 x 3 x 8 = 216 weights; batchnorm 2 x 8 trained + 2 x 8 moving;
    # conv_2 3 x 3 x 8 x 4 + 4 = 292; MACs 10 x 10 x 8 x 27 = 21,600 and 3 x 3 x 4 x 72 =
    # 2,592; field 3, then the pool's 2 (4), then 3 at jump 2: 4 + 2 x 2 = 8
    result = cnncalc.check(SPEC)
    text = str(result).splitlines()
    assert "MISMATCH" not in str(result) and "(not run)" not in str(result)
    from cnncalc.backends.check import check as backend_check  # its defaults: cpu, batch 1
    assert str(backend_check(cnncalc.summarize(SPEC))).splitlines()[0] == text[0]
    assert text[0] == "network: PyTorch forward pass on cpu, batch 1, input 12x12x3"
    assert text[1] == ("#  name         calc output  torch output  calc params  torch params  "
                       "calc MACs  torch MACs  match")
    assert text[4] == ("2  batchnorm_1  10x10x8      10x10x8           16 + 16       16 + 16  "
                       "        0           0  ok")
    assert text[1].split() == ["#", "name", "calc", "output", "torch", "output", "calc", "params",
                               "torch", "params", "calc", "MACs", "torch", "MACs", "match"]
    assert [line.split() for line in text[3:8]] == [
        ["1", "conv_1", "10x10x8", "10x10x8", "216", "216", "21,600", "21,600", "ok"],
        ["2", "batchnorm_1", "10x10x8", "10x10x8", "16", "+", "16", "16", "+", "16", "0", "0", "ok"],
        ["3", "relu_1", "10x10x8", "10x10x8", "0", "0", "0", "0", "ok"],
        ["4", "maxpool_1", "5x5x8", "5x5x8", "0", "0", "0", "0", "ok"],
        ["5", "conv_2", "3x3x4", "3x3x4", "292", "292", "2,592", "2,592", "ok"]]
    assert text[9].startswith("5 of 5 layers match in shape, params (trainable + non-trainable "
                              "buffers) and MACs (torch.utils.flop_counter); ")
    assert text[10] == ("receptive field of the centre unit of conv_2: calculated 8x8, "
                        "measured by gradient 8x8 (ok)")


def test_a_mismatch_reads_as_one():
    s = cnncalc.summarize(SPEC)
    s["conv_2"].macs += 9
    text = str(cnncalc.check(s))
    assert "2,601       2,592  MISMATCH" in text and "4 of 5 layers match" in text
    assert "; 1 MISMATCH; " in text


def test_a_layer_pytorch_never_ran_and_a_measured_peak_read_as_such():
    result = cnncalc.check(SPEC)
    result.layers[0].torch_shape = None
    result.peak, result.estimate = 3 * 2**20, 4 * 2**20
    text = str(result)
    assert text.splitlines()[3].split() == ["1", "conv_1", "10x10x8", "(not", "run)", "216",
                                            "216", "21,600", "21,600", "MISMATCH"]
    assert "; 1 MISMATCH; " in text
    assert text.rstrip().endswith("peak memory: measured 3.0 MiB (torch.cuda.max_memory_allocated), "
                         "estimated at most 4.0 MiB")


def test_check_with_weights_runs_them_and_refuses_a_wrong_file(tmp_path):
    # conv_1's kernel: 3 x 3 x 3 x 8 values, saved in PyTorch's (out, in, rows, columns)
    import torch
    from safetensors.torch import save_file
    good = tmp_path / "good.safetensors"
    save_file({"conv_1.op.weight": torch.ones(8, 3, 3, 3)}, str(good))
    assert cnncalc.check(SPEC, weights=str(good)).ok
    bad = tmp_path / "bad.safetensors"
    save_file({"conv_1.op.weight": torch.ones(8, 3, 5, 5)}, str(bad))
    with pytest.raises(cnncalc.CnnCalcError, match=r"'conv_1.op.weight' has shape \(8, 3, 5, 5\), "
                       r"the network expects \(8, 3, 3, 3\)"):
        cnncalc.check(SPEC, weights=str(bad))


def test_check_ticks_once_per_layer_and_times_itself():
    import time
    from cnncalc.backends.check import check
    ticks = []
    start = time.perf_counter()
    result = check(cnncalc.summarize(SPEC), progress=ticks.append)
    assert ticks == [1] * 5
    assert 0 < result.seconds <= time.perf_counter() - start


def test_cuda_is_checked_where_there_is_one_and_refused_where_there_is_none():
    import torch
    if torch.cuda.is_available():  # the measured peak comes with it
        result = cnncalc.check(SPEC, device="cuda")
        assert result.ok and result.peak is not None and result.device.startswith("cuda")
    else:
        with pytest.raises(cnncalc.CnnCalcError, match="no CUDA device is available here"):
            cnncalc.check(SPEC, device="cuda")


def test_a_unit_no_input_reaches_has_no_field_to_measure():
    # a layernorm over one channel outputs its offset whatever comes in (PyTorch: no
    # gradient at all), so the gradient cannot show a field: check says nothing of it
    x = torch.rand(1, 1, 5, 5, requires_grad=True)
    (g,) = torch.autograd.grad(F.layer_norm(x.permute(0, 2, 3, 1), (1,)).sum(), x)
    assert not g.any()
    out = CliRunner().invoke(main, ["check", "-e", "input 7x7x1 | conv 3x3x1 | layernorm"])
    assert out.exit_code == 0, out.output
    assert "2 of 2 layers match" in out.output and "receptive field" not in out.output


def test_a_layernorms_field_is_measured_across_its_channels():
    # over 4 channels the plain sum of a layernorm's outputs is constant too (the normalised
    # values sum to 0: no gradient but rounding's): the measure weighs the centre unit's
    # channels unequally, and finds the 3x3 field of the convolution before it
    x = torch.rand(1, 5, 5, 4, requires_grad=True, dtype=torch.float64)
    (g,) = torch.autograd.grad(F.layer_norm(x, (4,)).sum(), x)
    assert g.abs().max() < 1e-12
    result = cnncalc.check(cnncalc.summarize("input 7x7x4 | conv 3x3x4 | layernorm"))
    assert result.ok and result.rf is not None
    assert result.rf[1] == result.rf[2] == (3, 3)


def test_a_single_path_through_a_relu_is_always_measured():
    # the centre unit of the 1x1 convolution sees the input through one ReLU only: with a
    # signed input that ReLU is dead for about half the draws and no gradient is left; the
    # measure's positive input and weights keep it alive for every draw
    spec = cnncalc.summarize("input 3x3x1 | conv 3x3x1 relu | conv 1x1x1")
    for seed in range(12):
        torch.manual_seed(seed)
        result = cnncalc.check(spec)
        assert result.rf is not None and result.rf[1] == result.rf[2] == (3, 3), seed


def test_the_field_is_measured_through_a_deep_relu_chain():
    # six 3x3 convolutions with ReLUs on one channel: 1 + 6 x 2 = 13 pixels. The measure
    # needs positive weights (a ReLU of a negative sum has no gradient): with signed ones a
    # chain this deep would lose part of the field, or all of it
    spec = "input 21x21x1" + " | conv 3x3x1 relu" * 6
    result = cnncalc.check(cnncalc.summarize(spec), device="cpu")
    assert result.rf is not None and result.rf[1] == result.rf[2] == (13, 13)
