"""The lecture notes' worked examples run for real, and the pictures."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cnncalc import CnnCalcError, analyse, parse as load
from cnncalc.backends.torch import Net
from cnncalc.cli import main
from conftest import SPECS

SEED_GRID = "0 10 9 3 4 / 4 3 2 1 5 / 10 2 10 3 0 / 3 -1 -3 -3 -4 / -4 -10 -8 -1 -2"
LAPLACE = "conv 3x3x1 valid kernel=[[0,1,0],[1,-4,1],[0,1,0]] nobias"


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_seed_convolution_by_the_laplace_kernel(tmp_path):
    grid = tmp_path / "grid.txt"
    grid.write_text(SEED_GRID)
    res = run("run", "-e", f"input 5x5x1 | {LAPLACE}", "--data", str(grid))
    assert res.exit_code == 0, res.output
    assert "6 15 9\n14 -36 -4\n-4 10 7" in res.output  # the lecture notes' result


def test_seed_max_pooling(tmp_path):
    grid = tmp_path / "grid.txt"
    grid.write_text("0 10 9 3\n4 3 2 1\n10 2 10 3\n3 -1 -3 -3\n")
    res = run("run", "-e", "input 4x4x1 | maxpool 2", "--data", str(grid))
    assert res.exit_code == 0 and "10 9\n10 10" in res.output


def _photo(path, size=(443, 592)):
    """A generated 'photograph': gradients and shapes, 443 wide and 592 high."""
    from PIL import Image, ImageDraw
    x = np.linspace(0, 1, size[0])[None, :, None]
    y = np.linspace(0, 1, size[1])[:, None, None]
    rgb = np.concatenate([x + 0 * y, y + 0 * x, (x * y)], axis=2)
    img = Image.fromarray((rgb * 255).astype(np.uint8))
    ImageDraw.Draw(img).ellipse((100, 150, 300, 400), fill=(250, 200, 40))
    img.save(path)


def test_seed_photograph_gives_six_439x588_maps(tmp_path):
    photo = tmp_path / "photo.png"
    _photo(photo)
    maps = tmp_path / "maps"
    res = run("run", str(SPECS / "seed_conv.cnn"), "--data", str(photo), "--maps", str(maps))
    assert res.exit_code == 0, res.output
    assert "output 439x588x6" in res.output
    from PIL import Image
    conv = Image.open(maps / "001_conv_1.png")
    assert conv.size[0] > 3 * 439 and conv.size[1] > 2 * 588  # six tiles, 3 by 2


def test_image_of_the_wrong_size_is_refused_or_resized(tmp_path):
    photo = tmp_path / "photo.png"
    _photo(photo, (100, 80))
    res = run("run", str(SPECS / "seed_conv.cnn"), "--data", str(photo))
    assert res.exit_code == 2 and "100x80" in res.output and "--resize" in res.output
    res = run("run", str(SPECS / "seed_conv.cnn"), "--data", str(photo), "--resize")
    assert res.exit_code == 0 and "439x588x6" in res.output


def test_inline_kernel_of_the_wrong_shape():
    with pytest.raises(CnnCalcError, match="the array is 3x3, expected 2x1x3x3"):
        analyse(load("input 5x5x1 | conv 3x3x2 kernel=[[0,1,0],[1,-4,1],[0,1,0]]"))


def test_weights_round_trip_and_mismatch(tmp_path):
    from cnncalc.backends.weights import save
    spec = "input 6x6x1 | conv 3x3x2 name=c | flatten | dense 3 name=d"
    net = Net(analyse(load(spec)))
    save(net, str(tmp_path / "w.safetensors"))
    grid = tmp_path / "g.npy"
    x = np.arange(36, dtype=np.float32).reshape(6, 6, 1)
    np.save(grid, x)
    res = run("run", "-e", spec, "--data", str(grid), "--weights", str(tmp_path / "w.safetensors"))
    want = net(torch.tensor(x)[None])[0].detach().numpy()
    got = [float(v) for v in res.stdout.splitlines()[0].split(":")[1].split()]
    assert np.allclose(got, want, rtol=1e-5)
    torch.save({"c.op.weight": torch.zeros(1, 1, 3, 3)}, tmp_path / "bad.pt")
    res = run("run", "-e", spec, "--data", str(grid), "--weights", str(tmp_path / "bad.pt"))
    assert res.exit_code == 2 and "has shape (1, 1, 3, 3), the network expects (2, 1, 3, 3)" in res.output


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/cnncalc-pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    import os
    import pickle
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"c.op.weight": _Evil()}))
    if os.path.exists("/tmp/cnncalc-pwned"):
        os.remove("/tmp/cnncalc-pwned")
    grid = tmp_path / "g.txt"
    grid.write_text("1 2 3\n4 5 6\n7 8 9\n")
    res = run("run", "-e", "input 3x3x1 | conv 3x3x1 name=c", "--data", str(grid),
              "--weights", str(evil))
    assert res.exit_code == 2 and "refused" in res.output
    assert not os.path.exists("/tmp/cnncalc-pwned")


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "unet", "inception3a"])
def test_draw_svg_and_png(tmp_path, name):
    svg, png = tmp_path / f"{name}.svg", tmp_path / f"{name}.png"
    assert run("draw", str(SPECS / f"{name}.cnn"), "-o", str(svg)).exit_code == 0
    root = ET.parse(svg).getroot()
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    rows = analyse(load((SPECS / f"{name}.cnn").read_text())).rows
    shown = {r.name for r in rows if not r.layer.fold and r.branches is None}
    assert shown <= {t.rstrip("+") for t in texts}
    assert run("draw", str(SPECS / f"{name}.cnn"), "-o", str(png)).exit_code == 0
    from PIL import Image
    assert Image.open(png).size[0] > 300


EXAMPLES = SPECS.parent / "examples"


def test_visualisation_raises_the_activation_well_above_random():
    from cnncalc.backends.visualize import maximise
    from cnncalc.backends.weights import apply, load_file
    s = analyse(load((EXAMPLES / "shapes.cnn").read_text()))
    net = Net(s)
    apply(net, load_file(str(EXAMPLES / "shapes.safetensors")))
    net.eval()
    out = {}
    net.layers["conv2"].register_forward_hook(lambda m, a, o: out.__setitem__("y", o))
    gen = torch.Generator().manual_seed(1)
    ratios = []
    for k in range(16):
        x, _, after = maximise(net, "conv2", k, (16, 16, 1), steps=100)
        if after == 0:
            continue  # a dead filter: nothing responds
        noise = torch.randn((64, 16, 16, 1), generator=gen)
        noise *= float(np.linalg.norm(x)) / noise.flatten(1).norm(dim=1)[:, None, None, None]
        with torch.no_grad():
            net(noise)  # random inputs of the same energy as the optimised one
        ratios.append(after / max(float(out["y"][:, k].mean()), 0.01))
    assert len(ratios) >= 8  # 10 of 16 filters are alive in the shipped weights
    # seen: 2.1x to 13x, 5.3x on average; the bounds leave room for other CPUs' rounding
    assert min(ratios) > 1.5 and sum(ratios) / len(ratios) > 3.5


def test_visualize_cli_writes_a_tiled_png(tmp_path):
    out = tmp_path / "conv1.png"
    res = run("visualize", str(EXAMPLES / "shapes.cnn"), "--weights",
              str(EXAMPLES / "shapes.safetensors"), "--layer", "conv1", "-o", str(out),
              "--steps", "20", "-q")
    assert res.exit_code == 0, res.output
    from PIL import Image
    assert Image.open(out).size[0] > 3 * 16


def test_example_weights_classify_held_out_pictures():
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_shapes", EXAMPLES / "train_shapes.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    from cnncalc.backends.weights import apply, load_file
    net = Net(analyse(load((EXAMPLES / "shapes.cnn").read_text())))
    apply(net, load_file(str(EXAMPLES / "shapes.safetensors")))
    x, y = train.pictures(256, seed=7)
    with torch.no_grad():
        assert (net.eval()(x).argmax(1) == y).float().mean() > 0.95


def test_html_and_svg_reprs():
    s = analyse(load((SPECS / "vgg16.cnn").read_text()))
    html = s._repr_html_()
    assert "<table>" in html and "block1_conv1" in html and "138,357,544" in html
    from cnncalc.render.draw import layout
    assert layout(s)._repr_svg_().startswith("<svg")


def test_oversized_inputs_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((1000, 1000)))
    res = run("run", "-e", "input 4x4x1 | relu", "--data", str(big))
    assert res.exit_code == 2 and "far more than the spec's input (4x4x1) can hold" in res.output
    from PIL import Image
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(bomb)  # past Pillow's decompression-bomb limit
    res = run("run", "-e", "input 4x4x1 | relu", "--data", str(bomb), "--resize")
    assert res.exit_code == 2 and "cannot read the image" in res.output


def test_an_encoder_decoder_is_drawn_as_a_u():
    """U-Net: four 2x2 pools down, four up-convolutions back, each skip joining maps of one
    level (Ronneberger et al., fig. 1): five rows, the skips level, the bottleneck lowest."""
    import cnncalc
    from cnncalc.render.draw import layout
    from conftest import SPECS
    unet = cnncalc.summarize(SPECS / "unet.cnn")
    d = layout(unet)
    names = {r.name for r in unet.rows} | {r.name + "+" for r in unet.rows} | {"input"}
    y = {text.rstrip("+"): ty for _, ty, text, _, _ in d.texts if text in names}
    levels = [y[n] for n in ("input", "d1", "d2", "d3", "d4", "conv_6")]
    gaps = [b - a for a, b in zip(levels, levels[1:])]
    assert all(g > 100 for g in gaps[1:]) and abs(gaps[0]) < 20  # input and d1 share a row
    assert y["conv_6"] == max(y.values())  # the bottleneck lowest
    for skip, source in (("concat_1", "d4"), ("concat_2", "d3"), ("concat_3", "d2"),
                         ("concat_4", "d1")):
        assert abs(y[skip] - y[source]) < 20  # the same row (labels sit on boxes of any size)
    dashed = [s for s in d.shapes if s[0] == "line" and s[3]]
    assert len(dashed) == 4 and all(s[1][1][1] == s[1][2][1] for s in dashed)  # level arrows
    # a network without skips across levels keeps the rows of a chain
    d = layout(cnncalc.summarize(SPECS / "vgg16.cnn"))
    assert not [s for s in d.shapes if s[0] == "line" and s[3]]


def test_the_api_visualizes_as_the_command_does():
    """cnncalc.visualize: each image, run through the trained network for real, gives the
    mean activation it reports, above the one it started from."""
    import cnncalc
    text = (EXAMPLES / "shapes.cnn").read_text()
    found = cnncalc.visualize(text, "conv1", "all", steps=20,
                              weights=str(EXAMPLES / "shapes.safetensors"))
    net = cnncalc.to_torch(text).eval()
    from cnncalc.backends.weights import apply, load_file
    apply(net, load_file(str(EXAMPLES / "shapes.safetensors")))
    out = {}
    net.layers["conv1"].register_forward_hook(lambda m, a, o: out.__setitem__("y", o))
    assert [k for k, *_ in found] == list(range(cnncalc.summarize(text).rows[0].output[-1]))
    alive = 0
    for k, image, before, after in found:
        assert image.shape == (16, 16, 1)
        with torch.no_grad():
            net(torch.from_numpy(image).swapaxes(0, 1)[None])
        assert float(out["y"][0, k].mean()) == pytest.approx(after, rel=1e-4, abs=1e-6)
        alive += after > before
    assert alive >= 4
    with pytest.raises(cnncalc.CnnCalcError, match="--filter 99: expected all or 0 to"):
        cnncalc.visualize(text, "conv1", 99)
    with pytest.raises(cnncalc.CnnCalcError, match="--layer nope: no such layer"):
        cnncalc.visualize(text, "nope")
