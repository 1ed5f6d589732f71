"""Every command, format and exit code through click's CliRunner."""

import json

import pytest
from click.testing import CliRunner

from cnncalc.cli import main
from conftest import ROOT, SPECS

VGG = str(SPECS / "vgg16.cnn")


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


INCEPTION = str(SPECS / "inception3a.cnn")

# One golden file per format. Each also holds figures from an independent source, checked
# here: VGG16's 138,357,544 parameters (Keras), the Inception (3a) block's 163,696 and its
# 28x28x256 output (the GoogLeNet paper). 'make golden' rewrites them; review the diff.
GOLDEN = [
    pytest.param(VGG, "table", "default", "vgg16.txt", ["138,357,544"], id="vgg16-table"),
    pytest.param(INCEPTION, "table", "all", "inception3a.txt", ["163,696", "28x28x256"],
                 id="inception3a-table-all"),
    pytest.param(INCEPTION, "markdown", "all", "inception3a.md", ["163,696", "28x28x256"],
                 id="inception3a-markdown"),
    pytest.param(INCEPTION, "csv", "all", "inception3a.csv", ["163696", "28x28x256"],
                 id="inception3a-csv"),
    pytest.param(INCEPTION, "html", "all", "inception3a.html", ["163,696", "28x28x256"],
                 id="inception3a-html"),
    pytest.param(INCEPTION, "json", "default", "inception3a.json", ['"params": 163696'],
                 id="inception3a-json"),
]


@pytest.mark.parametrize("spec,fmt,columns,name,figures", GOLDEN)
def test_summary_golden(update_golden, spec, fmt, columns, name, figures):
    res = run("summary", spec, "--format", fmt, "--columns", columns)
    assert res.exit_code == 0
    golden = ROOT / "tests" / "golden" / name
    if update_golden:
        golden.write_text(res.output)
    assert res.output == golden.read_text()
    for figure in figures:
        assert figure in res.output


def test_summary_json_contract():
    res = run("summary", VGG, "--format", "json")
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert set(data) >= {"name", "input", "output", "layers", "totals"}
    assert data["input"] == [224, 224, 3] and data["output"] == [1000]
    assert data["totals"]["params"] == 138_357_544
    first = data["layers"][0]
    for key in ("index", "name", "kind", "output", "weights", "biases", "params", "trainable",
                "non_trainable", "units", "path", "depth"):
        assert key in first
    assert first["name"] == "block1_conv1" and first["weights"] == 1728 and first["units"] == 224 * 224 * 64


def test_summary_markdown():
    res = run("summary", VGG, "--format", "markdown")
    assert res.exit_code == 0 and "| block1_conv1 |" in res.output and "138,357,544" in res.output


def test_summary_csv_rows_add_up():
    import csv
    import io
    res = run("summary", VGG, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert res.exit_code == 0 and rows[0]["name"] == "input" and rows[1]["name"] == "block1_conv1"
    assert rows[-1]["name"] == "total" and int(rows[-1]["params"]) == 138_357_544
    assert sum(int(r["params"]) for r in rows[1:-1]) == 138_357_544


def test_inline_and_stdin():
    res = run("summary", "-e", "input 443x592x3 | conv 5x5x6 valid stride 1 | maxpool 2")
    assert res.exit_code == 0 and "439x588x6" in res.output and "219x294x6" in res.output
    res = run("summary", "-", input="input 32x32x3\nconv 5x5x16 same\nmaxpool 2\n")
    assert res.exit_code == 0 and "16x16x16" in res.output


def test_footer_counts_below_a_thousand_keep_their_space():
    # a 1x1 conv from 3 to 3 channels on 8x8: 8 * 8 * 3 outputs, 3 MACs each
    res = run("summary", "-e", "input 8x8x3 | conv 1x1x3")
    assert "compute: 576 MACs," in res.output


def test_an_input_override_keeps_the_file_for_errors(tmp_path):
    # the error of a layer the new input breaks points at its line of the user's file
    spec = tmp_path / "net.cnn"
    spec.write_text("input 32x32x3\nconv 5x5x8\n")
    res = run("summary", str(spec), "--input", "4x4x3")
    assert res.exit_code == 2
    assert f"{spec}:2:1: layer 1 'conv_1': the window 5 is larger than the width 4" in res.output
    assert "    conv 5x5x8\n    ^" in res.output


def test_sizes_with_an_input_override_points_at_the_input(tmp_path):
    # --input closes the open sizes: 'sizes' has nothing to sweep and says where the input
    # is written (line 2, column 3 of the user's file)
    spec = tmp_path / "net.cnn"
    spec.write_text("# a net\n  input ?x?x3\n  conv 3x3x4\n")
    res = run("sizes", str(spec), "--input", "32x32x3")
    assert res.exit_code == 2
    assert f"{spec}:2:3: the input has no open size" in res.output
    assert "      input ?x?x3\n      ^" in res.output


def test_input_override():
    res = run("summary", VGG, "--input", "32x32x3", "--format", "json")
    data = json.loads(res.output)
    assert data["input"] == [32, 32, 3]
    # 32 / 2^5 = 1: flatten gives 512, fc1 has 512 x 4096 + 4096 params
    assert data["layers"][18]["output"] == [512]
    assert data["layers"][19]["params"] == 512 * 4096 + 4096


def test_schema_is_json_schema():
    res = run("schema")
    schema = json.loads(res.output)
    assert res.exit_code == 0
    assert set(schema["required"]) >= {"name", "input", "output", "layers", "totals"}


def test_check_passes_and_prints_match_column():
    res = run("check", str(SPECS / "lenet5.cnn"))
    assert res.exit_code == 0, res.output
    assert "8 of 8 layers match" in res.output


def test_check_meta_device_needs_no_memory():
    res = run("check", str(SPECS / "vgg16.cnn"), "--device", "meta", "--input", "2048x2048x3")
    assert res.exit_code == 0, res.output
    assert "22 of 22 layers match" in res.output


def test_check_refuses_too_large_before_allocating():
    res = run("check", "-e", "input 100000x100000x3 | conv 3x3x64 same")
    assert res.exit_code == 2
    assert "needs about" in res.output and "--device meta" in res.output


def test_check_max_memory():
    res = run("check", VGG, "--max-memory", "100MiB")
    assert res.exit_code == 2 and "more than the --max-memory (100.0 MiB)" in res.output


def test_check_mismatch_exits_1(monkeypatch):
    import cnncalc.backends.check as chk
    orig = chk._recorder

    def wrong(seen, name, progress=None):
        hook = orig(seen, name)
        return lambda m, a, o: (hook(m, a, o), seen.__setitem__(name, (1,)))[0]
    monkeypatch.setattr(chk, "_recorder", wrong)
    res = run("check", "-e", "input 8x8x1 | conv 3x3x2")
    assert res.exit_code == 1 and "MISMATCH" in res.output


@pytest.mark.parametrize("args,needle", [
    (["summary"], "give a SPEC file"),
    (["summary", "nope.cnn"], "No such file"),
    (["summary", "-e", "input 8x8x3", "--format", "yaml"], "Invalid value"),
    (["summary", "-e", ""], "the spec is empty"),
    (["summary", "-e", "input 8x8x3", "--input", "8x8"], "--input 8x8"),
])
def test_usage_errors_exit_2(args, needle):
    res = run(*args)
    assert res.exit_code == 2
    assert needle in res.output


def test_design_error_shows_rows_up_to_the_failure():
    res = run("summary", "-e", "input 8x8x3 | conv 3x3x6 | conv 7x7x3 name=big | dense 3")
    assert res.exit_code == 2
    assert "6x6x6" in res.output and "✗ big" in res.output
    assert "layer 2 'big'" in res.output and "larger than the width 6" in res.output


def test_binary_file_is_an_error(tmp_path):
    f = tmp_path / "x.cnn"
    f.write_bytes(b"\x00\x01\x02binary")
    res = run("summary", str(f))
    assert res.exit_code == 2 and "binary" in res.output


def test_summary_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys; from cnncalc.cli import main\n"
            "sys.argv=['cnncalc','summary','" + VGG + "']\n"
            "try: main()\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("text,shown", [("input 8x8x3", "output 8x8x3"),
                                        ("input HxWx3", "output HxWx3")])
def test_a_spec_with_only_an_input(text, shown):
    res = run("summary", "-e", text)
    assert res.exit_code == 0, res.output
    assert shown in res.output and "params: 0" in res.output


def test_the_golden_inception_figures_from_the_paper():
    # GoogLeNet's table 1, inception (3a) on 28x28x192: #1x1 64, #3x3 reduce 96, #3x3 128,
    # #5x5 reduce 16, #5x5 32, pool proj 32. Params k x k x in x out + out; MACs per
    # position the weights (same padding, stride 1): 784 x 163,328 = 128,049,152 in all
    rows = {line.split()[1]: line.split() for line in
            (ROOT / "tests" / "golden" / "inception3a.txt").read_text().splitlines()[3:12]}
    want = {"conv_1": (1 * 192 * 64, 64), "conv_2": (192 * 96, 96), "conv_3": (9 * 96 * 128, 128),
            "conv_4": (192 * 16, 16), "conv_5": (25 * 16 * 32, 32), "conv_6": (192 * 32, 32)}
    for name, (weights, biases) in want.items():
        cells = [c.replace(",", "") for c in rows[name]]
        assert str(weights) in cells and str(biases) in cells and str(weights + biases) in cells
        assert f"{784 * weights / 1e6:.2f}" in cells  # MACs, in millions
    total = (ROOT / "tests" / "golden" / "inception3a.txt").read_text()
    assert "128.05 MMACs" in total
    # what autograd keeps: the block's input (read by three convs; the pool on the image
    # keeps nothing, no gradient passes there), the pool's output, and each conv's ReLU
    # output (in place): 150,528 x 2 + 28 x 28 x (64 + 96 + 128 + 16 + 32 + 32) = 589,568
    # values x 4 B; the training step's peak with Adam at batch 1 (5.7 MiB: a real step's
    # allocator events say 6,028,664 bytes, the estimate 6,028,608) is measured in
    # test_training_step
    totals = json.loads((ROOT / "tests" / "golden" / "inception3a.json").read_text())["totals"]
    assert totals["kept_activation_bytes"] == (2 * 150_528 + 784 * 368) * 4
    assert "training with adam 5.7 MiB" in total and "639,744" in total
