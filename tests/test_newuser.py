"""What a new user hit (issue 11): each former failure, with the behaviour a person would
expect and a figure that does not come from cnncalc itself."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import cnncalc
from cnncalc.cli import main
from conftest import ROOT, SPECS


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


# --- crashes --------------------------------------------------------------------------------

def test_receptive_field_after_upsampling_is_a_whole_number_of_pixels():
    # nearest upsampling by 2, then a 2-wide window: two neighbouring outputs of the upsampled
    # map come from one input pixel or from two, so a unit sees at most 2 input pixels. Input
    # pixel i spans [i - 0.5, i + 0.5]; its two copies are centred at i -/+ 0.25, so the
    # first window (copies -0.25 and +0.25) is centred at 0
    res = run("summary", "--format", "json", "-e", "input 58x4 | upsample 2 | conv 2x4")
    assert res.exit_code == 0, res.output
    field = json.loads(res.stdout)["layers"][1]["receptive_field"][0]
    assert field == {"size": 2, "jump": 0.5, "start": 0.0}


@pytest.mark.parametrize("ext", ["svg", "png"])
def test_drawing_into_a_missing_folder_is_a_clean_error(tmp_path, ext):
    res = run("draw", str(SPECS / "lenet5.cnn"), "-o", str(tmp_path / "missing" / f"x.{ext}"))
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output


def test_writing_to_a_full_disk_is_a_clean_error():
    res = run("draw", str(SPECS / "lenet5.cnn"), "-o", "/dev/full/x.svg")
    assert res.exit_code == 2
    if os.path.exists("/dev/full"):  # Linux: every write fails with ENOSPC
        from cnncalc.cli import write_file
        with pytest.raises(cnncalc.CnnCalcError, match="No space left"):
            write_file("/dev/full", "x")


def test_visualize_into_a_missing_folder_and_maps_onto_a_file(tmp_path):
    res = run("visualize", str(ROOT / "examples" / "shapes.cnn"), "--layer", "conv1",
              "-o", str(tmp_path / "missing" / "v.png"))
    assert res.exit_code == 2 and "does not exist" in res.output
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    grid = tmp_path / "g.txt"
    grid.write_text("1 2\n3 4\n")
    res = run("run", "-e", "input 2x2x1 | relu", "--data", str(grid), "--maps", str(existing))
    assert res.exit_code == 2 and "is a file" in res.output


def test_huge_counts_print_exactly():
    # 10^13 x 10^13 outputs x 1 value each: the MACs are exact integers, so the footer's
    # units come from integer division, not floats
    s = cnncalc.summarize("input 10000000000000x10000000000000x1 | conv 1x1x1 nobias")
    assert s.totals.macs == 10**26
    text = str(s)
    assert "100,000,000.00 EMACs" in text and "e+" not in text and "0000000269" not in text


# --- one axis convention --------------------------------------------------------------------

SOBEL_X = "[[-1,0,1],[-2,0,2],[-1,0,1]]"  # as a student writes it: rows top to bottom


def _response(data_path, extra=()):
    res = run("run", "-e", f"input 6x6x1 | conv 3x3x1 nobias kernel={SOBEL_X}",
              "--data", str(data_path), *extra)
    assert res.exit_code == 0, res.output
    return np.array([[float(v) for v in line.split()] for line in res.stdout.splitlines()[1:]])


def _edge_pictures(tmp_path):
    """A vertical edge (dark left half, bright right half) as a text grid, a .npy array and
    a PNG; each is 6 wide and 6 high."""
    from PIL import Image
    picture = np.zeros((6, 6), np.float32)
    picture[:, 3:] = 1.0  # rows first: the right half of every row is bright
    grid = tmp_path / "edge.txt"
    grid.write_text("\n".join(" ".join(str(int(v)) for v in row) for row in picture))
    npy = tmp_path / "edge.npy"
    np.save(npy, picture)
    png = tmp_path / "edge.png"
    Image.fromarray((picture * 255).astype(np.uint8)).save(png)
    return grid, npy, png


def test_sobel_x_responds_to_a_vertical_edge_in_every_format(tmp_path):
    # Sobel-x is the horizontal derivative: along a vertical edge it gives -1*0 + 1*1 per
    # row, summed with weights 1, 2, 1: 4 on the columns next to the edge, 0 elsewhere
    for path in _edge_pictures(tmp_path):
        out = _response(path)
        assert out.shape == (4, 4)
        assert np.allclose(out, [[0, 4, 4, 0]] * 4), (path.suffix, out)


def test_a_horizontal_bar_is_classified_as_horizontal_in_every_format(tmp_path):
    from PIL import Image
    bar = np.zeros((16, 16), np.float32)
    bar[7:9, :] = 1.0  # two bright rows across the picture
    grid = tmp_path / "bar.txt"
    grid.write_text("\n".join(" ".join(str(int(v)) for v in row) for row in bar))
    npy = tmp_path / "bar.npy"
    np.save(npy, bar)
    png = tmp_path / "bar.png"
    Image.fromarray((bar * 255).astype(np.uint8)).save(png)
    for path in (grid, npy, png):
        res = run("run", str(ROOT / "examples" / "shapes.cnn"), "--data", str(path), "--weights",
                  str(ROOT / "examples" / "shapes.safetensors"))
        assert res.exit_code == 0, res.output
        top = res.stdout.split("top 4: ")[1]
        assert top.startswith("0 horizontal"), (path.suffix, res.stdout)


def test_the_torch_module_takes_pictures_rows_first():
    import torch
    net = cnncalc.to_torch(f"input 6x4x1 | conv 3x3x1 nobias kernel={SOBEL_X}")
    picture = torch.zeros(1, 4, 6, 1)  # 4 rows of 6: the spec's 6 wide, 4 high
    picture[:, :, 3:] = 1
    y = net(picture)[0, :, :, 0]
    assert y.shape == (2, 4) and torch.allclose(y, torch.tensor([[0., 4, 4, 0]] * 2))


def test_channels_first_input_gets_a_warning():
    res = run("summary", "-e", "input 3x224x224 | conv 3x3x8")
    assert res.exit_code == 0 and "warning: input 3x224x224 reads as 3 wide with 224 channels" \
        in res.output and "224x224x3" in res.output


# --- errors that point the right way ---------------------------------------------------------

def test_an_unclosed_block_is_reported_where_it_opens():
    text = "input 8x8x3\nadd {\n  branch { conv 1x1x3 }\n\nrelu\n"
    with pytest.raises(cnncalc.SpecSyntaxError) as info:
        cnncalc.parse(text)
    assert (info.value.line, info.value.column) == (2, 5) and "never closed" in str(info.value)


def test_capital_x_in_sizes_is_accepted():
    assert cnncalc.summarize("input 32X32X3 | conv 3X3X8").output == (30, 30, 8)


def test_byte_order_mark_and_old_mac_line_endings():
    text = "\ufeffinput 8x8x3\rconv 3x3x4\rmaxpool 2\r"
    assert cnncalc.summarize(text).output == (3, 3, 4)
    res = CliRunner().invoke(main, ["summary", "-"], input=text.encode("utf-8"))
    assert res.exit_code == 0 and "3x3x4" in res.output
    with pytest.raises(cnncalc.SpecSyntaxError) as info:
        cnncalc.parse("input 8x8x3\rconv 3x3x4 =\r")
    assert info.value.line == 2


def test_an_inline_spec_given_as_a_file_name_points_at_dash_e():
    res = run("summary", "input 8x8x3 | conv 3x3x4")
    assert res.exit_code == 2 and "-e 'input 8x8x3 | conv 3x3x4'" in res.output


@pytest.mark.parametrize("text,hint", [
    ("input 8x8x3 | conv 3x3x8 stride=2", "write 'stride 2'"),
    ("input 8x8x3 | conv 3x3x8 activation=relu", "write the activation as a word: 'relu'"),
])
def test_key_equals_value_gets_a_hint(text, hint):
    with pytest.raises(cnncalc.SpecSyntaxError) as info:
        cnncalc.parse(text)
    assert hint in str(info.value)


@pytest.mark.parametrize("word,wrong", [("reshapee", "repeat"), ("groupnorms", "groups"),
                                        ("attention", "flatten")])
def test_suggestions_stay_within_a_role(word, wrong):
    with pytest.raises(cnncalc.SpecSyntaxError) as info:
        cnncalc.parse(f"input 8x8x3 | {word}")
    assert f"'{wrong}'" not in str(info.value)
    assert "unknown layer kind" in str(info.value)


def test_options_are_suggested_only_from_the_kind():
    with pytest.raises(cnncalc.SpecSyntaxError) as info:
        cnncalc.parse("input 8x8x3 | maxpool 2 sam")
    assert "did you mean 'same'?" in str(info.value) and "maxpool takes" in str(info.value)


def test_layers_lists_every_kind_with_an_example():
    from cnncalc.layers import KINDS
    res = run("layers")
    assert res.exit_code == 0
    for word in KINDS:
        assert f"\n{word} " in "\n" + res.output or res.output.startswith(word)
    res = run("layers", "conv")
    assert "stride" in res.output and "example:" in res.output


def test_explain_names_the_call_line_of_a_block():
    text = "def pair(c) {\n  conv 3x3x$c same\n  relu\n}\ninput 8x8x3\npair(4)\npair(8)\n"
    res = run("explain", "-e", text, "--layer", "conv_2")
    assert "(line 2, from pair(8) called on line 7)" in res.output


def test_each_open_axis_has_its_own_name():
    s = cnncalc.summarize("input Hx?x3 | conv 3x3x8 stride 2")
    assert cnncalc.fmt_shape(s.output) if hasattr(cnncalc, "fmt_shape") else True
    from cnncalc.fmt import shape
    # floor((H - 3) / 2) + 1, with the whole part of the offset taken out of the floor
    assert shape(s.output) == "(floor((H + 1) / 2) - 1)x(floor((W + 1) / 2) - 1)x8"
    assert shape(cnncalc.summarize("input ?x?x3 | relu").output) == "WxHx3"


def test_fit_needs_a_unit_and_says_when_nothing_fits():
    res = run("fit", str(SPECS / "vgg16.cnn"), "--memory", "16")
    assert res.exit_code == 2 and "needs a unit" in res.output and "16GiB" in res.output
    res = run("fit", str(SPECS / "vgg16.cnn"), "--memory", "100MiB")
    # VGG16's 138,357,544 float32 parameters alone are 527.8 MiB
    assert res.exit_code == 0 and res.output.count("does not fit, even at batch 1") == 2


# --- honest defaults --------------------------------------------------------------------------

def test_run_without_weights_says_the_numbers_mean_nothing(tmp_path):
    grid = tmp_path / "g.txt"
    grid.write_text("1 2\n3 4\n")
    res = run("run", "-e", "input 2x2x1 | flatten | dense 3", "--data", str(grid))
    assert res.exit_code == 0 and res.output.startswith("random weights (seed 0)")
    assert "top 3: " in res.stdout


def test_sizes_opens_a_spec_with_fixed_sizes():
    res = run("sizes", str(SPECS / "vgg16.cnn"), "--open", "--range", "1:256")
    # five 2x2 poolings: every multiple of 32 tiles exactly, 32 is the smallest
    assert res.exit_code == 0 and "exact: 32 to 256, every 32" in res.output
    res2 = run("sizes", str(SPECS / "vgg16.cnn"), "--input", "?x?x3", "--range", "1:256")
    assert res2.output == res.output


# --- a Python API a user can find -------------------------------------------------------------

def test_every_name_in_all_imports_and_the_readme_shows_only_those():
    import re
    for name in cnncalc.__all__:
        assert getattr(cnncalc, name) is not None
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"cnncalc\.([a-z_]+)\(", readme))
    assert shown and shown <= set(cnncalc.__all__), shown - set(cnncalc.__all__)


def test_summary_is_pleasant_in_a_script():
    s = cnncalc.summarize(SPECS / "vgg16.cnn")
    assert s.totals.params == 138_357_544  # Keras' count_params() of VGG16
    assert str(s).startswith("vgg16: input 224x224x3") and len(repr(s)) < 200
    assert s["fc1"].params == 102_764_544 and [r.name for r in s][:2] == ["block1_conv1", "block1_conv2"]
    assert json.loads(s.to_json())["totals"]["params"] == 138_357_544
    assert s.to_dict()["layers"][0]["output"] == [224, 224, 64]


def test_library_errors_carry_the_position_and_the_caret():
    with pytest.raises(cnncalc.SpecDesignError) as info:
        cnncalc.summarize("input 8x8x3\nconv 9x9x4")
    text = str(info.value)
    assert text.startswith("<spec>:2:1: layer 1 'conv_1': the window 9 is larger") and "^" in text


def test_large_networks_wrap_into_rows():
    from cnncalc.render.draw import MAX_WIDTH, layout
    d = layout(cnncalc.summarize(SPECS / "densenet121.cnn"))
    assert d.width <= MAX_WIDTH + 200 and d.height > 1000


def test_arithmetic_in_braces_points_at_parentheses():
    res = run("summary", "-e", "input 8x8x3 | def f(p) { conv 1x1x${p * 4} } | f(2)")
    assert res.exit_code == 2 and "an expression goes in parentheses: '($p * 4)'" in res.output
    assert cnncalc.summarize("input 8x8x3 | def f(p) { conv 1x1x($p * 4) } | f(2)").output \
        == (8, 8, 8)


@pytest.mark.parametrize("args, says", [
    (["summary"], "params: 0 (trainable 0, non-trainable 0); output 8x8x3"),
    (["check"], "0 of 0 layers match"),
    (["explain"], "input 8x8x3: no layers to explain"),
])
def test_a_spec_of_only_its_input_answers(args, says):
    # found by the mutation run: the backend and the check table crashed on it
    res = run(*args, "-e", "input 8x8x3")
    assert res.exit_code == 0 and says in res.output, res.output
