"""What the command line says to habits from other tools (PyTorch's channels first, Python's
commas, a GPU called 'gpu', upper-case options, Keras' Dense on a map), and the small
things a newcomer meets in their first hour: each reproduced from a user's session."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cnncalc import summarize
from cnncalc.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("given, said", [
    ("3x224x224", "--input 3x224x224: did you mean 224x224x3? cnncalc writes sizes channels "
                  "last (the spec's input has 3 channels)"),
    ("224,224,3", "sizes are joined with x: 224x224x3"),
    ("224×224×3", "sizes are joined with x: 224x224x3"),
])
def test_sizes_written_as_other_tools_write_them_get_the_cnncalc_form(given, said):
    res = run("summary", "specs/vgg16.cnn", "--input", given)
    assert res.exit_code == 2 and said in res.output


def test_options_are_read_whatever_their_case():
    res = run("summary", "-e", "input 8x8x3 | conv 3x3x4", "--format", "JSON")
    assert res.exit_code == 0 and '"output": [' in res.output


def test_a_gpu_called_gpu_is_answered_with_cuda():
    res = run("check", "-e", "input 8x8x3 | conv 3x3x4", "--device", "gpu")
    assert res.exit_code == 2
    assert res.output == "error: --device gpu: expected cpu, cuda, cuda:N, mps or meta; did " \
                         "you mean cuda?\n"


def test_options_before_the_kernel_are_put_in_their_place():
    res = run("summary", "-e", "input 32x32x3 | conv same 3x3x16 relu")
    assert res.exit_code == 2
    assert "found 'same' where it goes: write 'conv 3x3x16 same'" in res.output


def test_sizes_says_how_many_exact_sizes_it_left_out():
    # conv 3x3 then maxpool 2: exact when W - 2 is even, so every other size of 500..700
    res = run("sizes", "-e", "input ?x?x3 | conv 3x3x8 | maxpool 2", "--range", "500:700",
              "--show", "3")
    assert res.exit_code == 0
    assert "exact: 500 to 700, every 2 (101 sizes)" in res.output
    assert "    504 -> 251\n    ... 98 more (--show N lists more)" in res.output


def test_csv_holds_the_columns_listed_and_no_more():
    res = run("summary", "-e", "input 32x32x3 | conv 3x3x16", "--format", "csv", "--columns",
              "name,output")
    assert res.output == "name,output\ninput,32x32x3\nconv_1,30x30x16\ntotal,30x30x16\n"


def test_the_block_column_is_headed_block():
    res = run("summary", "-e", "input 8x8x3 | repeat 2 { conv 3x3x4 same }")
    assert res.output.splitlines()[1].split()[:5] == ["#", "name", "layer", "block", "output"]


def test_a_network_ending_in_dense_on_a_map_says_what_it_computes():
    res = run("summary", "-e", "input 32x32x3 | conv 3x3x16 | dense 10")
    # Keras' Dense on 30x30x16: 16 x 10 weights at each of 900 positions
    assert "30x30x10" in res.output and "160      10     170" in res.output
    assert "note: dense_1: on the 30x30x16 map it acts at each position, as Keras' Dense; " \
           "'flatten' (or 'globalavgpool') before it makes a classifier" in res.output
    # a dense inside a network (ConvNeXt's pointwise layers) is meant: no note
    assert "acts at each position" not in run("summary", "specs/convnext_tiny.cnn").output


def test_the_name_of_a_call_or_a_repeat_stands_for_its_output():
    s = summarize("def double(f) { conv 3x3x$f same relu | conv 3x3x$f same relu }\n"
                  "input 64x64x3\ndouble(16) name=e1\nmaxpool 2\ndouble(32) name=e2\n"
                  "upsample 2\nconcat e1\nrepeat 2 name=r { conv 3x3x8 same }\nadd r\n")
    # concat: 32 upsampled channels and e1's 16, at 64x64; add r: r's last conv, 8 channels
    assert s["concat_1"].output == (64, 64, 48) and s["concat_1"].source.name == "e1.conv_2"
    assert s["add_1"].source.name == "r.1.conv_1" and s.output == (64, 64, 8)


def test_the_activations_options_are_their_own():
    assert "options:  name=ID" in run("layers", "relu").output
    assert "options:  slope 0.1, name=ID" in run("layers", "leakyrelu").output


def test_draw_reports_the_size_of_the_png_it_wrote(tmp_path):
    from PIL import Image
    out = tmp_path / "net.png"
    res = run("draw", "specs/lenet5.cnn", "-o", str(out))
    width, height = Image.open(out).size
    assert res.exit_code == 0 and res.output == f"wrote {out} ({width} x {height} pixels)\n"


def test_keras_check_and_export_pick_an_installed_backend(tmp_path):
    """Keras 3 looks for TensorFlow unless KERAS_BACKEND says otherwise; this machine has JAX
    and PyTorch. Both run in a process without the variable."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    py = tmp_path / "lenet.py"
    done = subprocess.run([sys.executable, "-m", "cnncalc", "export", "specs/lenet5.cnn", "--to",
                           "keras", "-o", str(py)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    built = subprocess.run([sys.executable, str(py)], capture_output=True, text=True, env=env)
    assert built.returncode == 0 and "Total params: 61,706" in built.stdout  # LeNet-5's count
    done = subprocess.run([sys.executable, "-m", "cnncalc", "check", "specs/lenet5.cnn",
                           "--backend", "keras"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "8 of 8 layers match" in done.stdout, done.stderr


@pytest.mark.parametrize("text, said", [
    ("input 32×32×3 | conv 3x3x4", "sizes are joined with x: 32x32x3"),
    ("input 32,32,3 | conv 3x3x4", "sizes are joined with x: 32x32x3"),
    ("model = keras.Sequential([", "this looks like Python (a Keras or PyTorch model)"),
    ("input 32x32x3 | Conv2D(32, (3, 3), activation='relu')",
     "Conv2D is cnncalc's 'conv', written without parentheses"),
    ("input 32x32x3 | nn.Linear(10)", "nn.Linear is cnncalc's 'dense'"),
    ("input 32x32x3 | batchnormalization", "cnncalc calls it 'batchnorm'"),
])
def test_python_and_other_frameworks_names_are_answered_in_cnncalcs_words(text, said):
    res = run("summary", "-e", text)
    assert res.exit_code == 2 and said in res.output, res.output
    assert "^" in res.output  # the line, with a caret under the place
