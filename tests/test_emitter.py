"""The importers' shared half on its own, without a framework: the rewrite pass that nests
DenseNet's growing concats, and the emitter writing a graph that nests as blocks and one
that does not as chains with 'from ID' and references."""

import cnncalc
from cnncalc.interop.emit import emit
from cnncalc.interop.graph import Op, nest_concats


def test_a_concat_of_another_concats_inputs_nests():
    ops = [Op("a", "conv 3x3x4 same", ["input"]), Op("b", "conv 3x3x4 same", ["a"]),
           Op("c1", "concat", ["input", "a"]), Op("d", "conv 3x3x4 same", ["c1"]),
           Op("c2", "concat", ["input", "a", "d"])]
    nest_concats(ops)
    assert ops[4].inputs == ["c1", "d"]  # cat(x, a, d) = cat(cat(x, a), d)


def _graph():
    """x -> a -> b -> c; out = cat(a, c) + b... paths that do not meet in one block:
    b is read by c and by the final add, a by b and by the concat."""
    return [Op("a", "conv 3x3x8 same", ["input"], "a"),
            Op("b", "conv 3x3x8 same", ["a"], "b"),
            Op("c", "conv 3x3x8 same", ["b"], "c"),
            Op("cat", "concat", ["a", "c"]),
            Op("fuse", "conv 1x1x8", ["cat"], "fuse"),
            Op("sum", "add", ["fuse", "b"], "sum")]


def test_a_graph_that_does_not_nest_is_written_with_from():
    text = emit(_graph(), ["sum"], "16x16x3", "dag")
    assert text == ("network dag\ninput 16x16x3\nconv 3x3x8 same name=a\nconv 3x3x8 same name=b\n"
                    "conv 3x3x8 same name=c\nfrom a\nconcat c\nconv 1x1x8 name=fuse\n"
                    "add b name=sum\n")
    s = cnncalc.summarize(text)
    # three 3x3 convs (3x3x3x8 + 8, then 3x3x8x8 + 8 twice) and a 1x1 from 16 channels
    assert s.totals.params == 224 + 584 + 584 + (16 * 8 + 8)
    assert s.output == (16, 16, 8)


def test_the_flow_after_from_is_the_saved_tensor():
    import torch
    s = cnncalc.summarize(emit(_graph(), ["sum"], "16x16x3", "dag"))
    net = cnncalc.to_torch(s).eval()
    convs = {name: net.layers[name] for name in ("a", "b", "c", "fuse")}
    x = torch.randn(2, 16, 16, 3)
    with torch.no_grad():
        got = net(x)
        # the same modules wired by hand; they run on (N, C, W, H), the spec's order, and
        # the network takes and gives (N, H, W, C)
        run = {n: (lambda m: (lambda t: m(t.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)))(m)
               for n, m in convs.items()}
        a = run["a"](x)
        b = run["b"](a)
        c = run["c"](b)
        want = run["fuse"](torch.cat([a, c], -1)) + b
    assert torch.allclose(got, want, atol=1e-5)


def test_parts_of_a_split_read_apart_are_slices():
    """MambaOut's gate: split in three, the first part gates a concat of the other two
    (one of them convolved): no concat reads all the parts, so each is a slice of the
    split's input, and the spec computes what torch.split does."""
    import torch
    ops = [Op("fc", "conv 1x1x16", ["input"], "fc"),
           Op("parts", "split", ["fc"], sizes=[8, 4, 4]),
           Op("g", "take", ["parts"], index=0), Op("i", "take", ["parts"], index=1),
           Op("c", "take", ["parts"], index=2),
           Op("act", "gelu", ["g"], "act"), Op("conv", "dwconv 3x3 same", ["c"], "conv"),
           Op("cat", "concat", ["i", "conv"]), Op("gate", "multiply", ["act", "cat"])]
    text = emit(ops, ["gate"], "8x8x4", "gated")
    assert "split" not in text and "take" not in text
    assert "    slice 8\n" in text and "slice 4 start 8" in text and "slice 4 start 12" in text
    s = cnncalc.summarize(text)
    assert s.output == (8, 8, 8) and s.totals.params == 4 * 16 + 16 + 9 * 4 + 4
    net = cnncalc.to_torch(s).eval()
    x = torch.randn(2, 8, 8, 4)
    with torch.no_grad():
        y = net.layers["fc"](x.permute(0, 3, 2, 1))  # cnncalc's modules: (N, C, W, H)
        g, i, c = torch.split(y, [8, 4, 4], 1)
        want = torch.nn.functional.gelu(g) * torch.cat([i, net.layers["conv"](c)], 1)
        got = net(x)
    assert torch.allclose(got, want.permute(0, 3, 2, 1), atol=1e-6)


def test_what_no_output_reads_is_not_written():
    """A chain computed and never read (an encoder's stage a decoder skips) is no part of
    the spec: the outputs' own layers are, with the numbers they have alone."""
    ops = [Op("a", "conv 3x3x8 same", ["input"], "a"),
           Op("b", "conv 3x3x16", ["a"], "b"), Op("c", "conv 1x1x4", ["b"], "c"),
           Op("d", "relu", ["a"], "d")]
    text = emit(ops, ["d"], "16x16x3", "net")
    assert [line.split()[0] for line in text.splitlines()[2:]] == ["conv", "relu"]
    alone = cnncalc.summarize("input 16x16x3 | conv 3x3x8 same | relu")
    got = cnncalc.summarize(text).totals
    assert (got.params, got.macs) == (alone.totals.params, alone.totals.macs)
    assert got.params == 3 * 3 * 3 * 8 + 8 and got.macs == 16 * 16 * 8 * 27
