"""Knobs and design-space search: 'param width = 64' in a spec, '--set' on every command,
'cnncalc sweep' over a grid with a condition and the Pareto front. Each variant's figures
are the summary of the spec with the knobs substituted by hand (an independent path through
the text), and EfficientNet's knobs give torchvision's published B0-B3 counts."""

import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc import CnnCalcError
from cnncalc.cli import main
from conftest import SPECS

SPEC = """param width = 16
param depth = 2
param k = 3
input 64x48x3
repeat $depth { conv ${k}x${k}x$width same relu | maxpool 2 }
conv 3x3x(2 * $width) pad 1 | batchnorm | relu
add { branch { } branch { conv 3x3x(2 * $width) same } }
globalavgpool | dense 10
"""


def _by_hand(width, depth, k, size=None):
    """The same network with the numbers written in, as a user would edit the spec."""
    text = re.sub(r"^param .*\n", "", SPEC, flags=re.M)
    text = text.replace("${k}", str(k)).replace("$width", str(width)).replace(
        "$depth", str(depth)).replace("(2 * 16)", "32")
    text = re.sub(r"\(2 \* (\d+)\)", lambda m: str(2 * int(m[1])), text)
    if size:
        text = text.replace("input 64x48x3", f"input {size}x{size}x3")
    return cnncalc.summarize(text)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(1, 64), min_size=1, max_size=3, unique=True),
       st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True),
       st.sampled_from([[1], [3], [1, 3, 5]]),
       st.sampled_from([None, [32, 40]]))
def test_every_variant_equals_the_summary_of_its_substituted_spec(widths, depths, ks, sizes):
    vary = {"width": widths, "depth": depths, "k": ks}
    if sizes:
        vary["input"] = sizes
    records = cnncalc.sweep(SPEC, vary=vary)
    assert len(records) == len(widths) * len(depths) * len(ks) * (len(sizes) if sizes else 1)
    for r in records:
        try:
            s = _by_hand(r["width"], r["depth"], r["k"], r.get("input"))
        except CnnCalcError:
            assert not r["valid"]
            continue
        assert r["valid"]
        t = s.totals
        assert (r["params"], r["trainable"], r["macs"], r["flops"]) == \
            (t.params, t.trainable, t.macs, t.flops)
        assert r["output"] == "10"
        from cnncalc.analysis.memory import estimate
        m = estimate(s)
        assert r["memory"] == m.param_bytes + m.peak_activation_bytes
        assert r["training"] == m.training_bytes


@pytest.mark.parametrize("knobs, trainable", [
    ({}, 5_288_548),                                                  # torchvision B0
    ({"depth": "1.1", "resolution": "240"}, 7_794_184),               # B1
    ({"width": "1.1", "depth": "1.2", "resolution": "260"}, 9_109_994),  # B2
    ({"width": "1.2", "depth": "1.4", "resolution": "300"}, 12_233_232),  # B3
], ids=["b0", "b1", "b2", "b3"])
def test_efficientnet_knobs_give_torchvisions_counts(knobs, trainable):
    s = cnncalc.summarize(SPECS / "efficientnet.cnn", set=knobs)
    assert s.totals.trainable == trainable
    size = int(knobs.get("resolution", 224))
    assert s.network.input.shape == (size, size, 3)
    if not knobs:
        assert s.totals.macs == 385_814_752  # as specs/efficientnet_b0.cnn, torchvision's


def test_set_works_on_every_command(tmp_path):
    run = CliRunner().invoke
    res = run(main, ["summary", str(SPECS / "efficientnet.cnn"), "--set", "depth=1.1",
                     "--set", "resolution=240", "--counts", "torch"])
    assert res.exit_code == 0 and "params: 7,794,184" in res.output
    res = run(main, ["export", "-e", "param w = 8\ninput 8x8x3 | conv 3x3x$w", "--set", "w=5",
                     "--to", "pytorch"])
    assert res.exit_code == 0 and "nn.Conv2d(3, 5, 3)" in res.output


def test_the_sweep_command_keeps_sorts_and_marks_the_front(tmp_path):
    spec = tmp_path / "net.cnn"
    spec.write_text("param w = 8\ninput 32x32x3 | conv 3x3x$w | conv 3x3x$w\n")
    plot = tmp_path / "front.svg"
    res = CliRunner().invoke(main, ["sweep", str(spec), "--vary", "w=4:16:4", "--where",
                                    "params < 2k and macs >= 100k", "--sort", "macs",
                                    "--pareto", "params,macs", "--format", "json",
                                    "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)
    # params = (27w + w) + (9w^2 + w) = 9w^2 + 29w: w=4 260, w=8 808, w=12 1,644, w=16 2,768
    # (over 2k: left out); MACs = 30 x 30 x 27w + 28 x 28 x 9w^2 = 24,300w + 7,056w^2
    assert [(r["w"], r["params"], r["macs"]) for r in records] == \
        [(4, 260, 210_096), (8, 808, 645_984), (12, 1_644, 1_307_664)]
    assert [r["pareto"] for r in records] == [True, False, False]  # w=4 is least in both
    svg = plot.read_text()
    assert svg.count("<title>") == 3 and "<title>w = 4: 260 params, 210,096 macs</title>" in svg


def _brute_front(records, metrics):
    return [not any(all(o[m] <= r[m] for m in metrics) and any(o[m] < r[m] for m in metrics)
                    for o in records) for r in records]


def test_the_pareto_front_is_the_set_no_variant_dominates():
    records = cnncalc.sweep(SPEC, vary={"width": [4, 8, 16, 32], "depth": [1, 2, 3],
                                        "k": [1, 3]}, pareto="params,macs")
    assert [r["pareto"] for r in records] == _brute_front(records, ["params", "macs"])
    records = cnncalc.sweep(SPEC, vary={"width": [4, 8, 16], "depth": [1, 2, 3], "k": [1, 3]},
                            pareto="params,macs,rf")
    # rf is to be minimised too here; a front of three metrics by the same definition
    assert [r["pareto"] for r in records] == _brute_front(records, ["params", "macs", "rf"])


@pytest.mark.parametrize("args, said", [
    (["--vary", "size=1:3"], "--vary size: the spec has no 'param size'; its params: width, "
                             "depth, k"),
    (["--vary", "width=9:3"], "the range is empty"),
    (["--vary", "width=a:b"], "expected LO:HI[:STEP] or a list"),
    (["--vary", "width=8:16:8", "--where", "latency < 5"], "unknown metric 'latency'"),
    (["--vary", "width=8:16:8", "--where", "params <"], "expected a metric or a number"),
    (["--vary", "width=8:16:8", "--sort", "speed"], "unknown metric 'speed'"),
    (["--vary", "width=8:16:8", "--where", "__import__('os')"], "unknown metric '__import__'"),
])
def test_bad_knobs_grids_and_conditions_are_clear_errors(tmp_path, args, said):
    spec = tmp_path / "net.cnn"
    spec.write_text(SPEC)
    res = CliRunner().invoke(main, ["sweep", str(spec), *args])
    assert res.exit_code == 2 and said in res.output, res.output


def test_a_fraction_that_is_a_size_must_say_how_it_rounds():
    text = "param mult = 1.1\ninput 32x32x3 | conv 3x3x(16 * $mult)"
    with pytest.raises(CnnCalcError, match=r"16 \* \$mult with mult = 1.1 is 17.6, not a whole "
                                           r"number: .* ceil\(\), floor\(\), round\(\) or div8\(\)"):
        cnncalc.summarize(text)
    # torchvision's _make_divisible(17.6, 8) = 16; ceil 18, floor 17, round 18
    for fn, filters in (("div8", 16), ("ceil", 18), ("floor", 17), ("round", 18)):
        s = cnncalc.summarize(text.replace("(16 * $mult)", f"{fn}(16 * $mult)"))
        assert s.output[-1] == filters, fn


def test_solve_lists_the_windows_that_take_a_size_to_another():
    res = CliRunner().invoke(main, ["solve", "224:112", "--kernels", "7:7", "--dilations",
                                    "1:1", "--all"])
    # ResNet's stem: 7x7 stride 2 pad 3 gives floor((224 + 6 - 7) / 2) + 1 = 112, the last
    # row unused; Keras' 'same' pads 2 before and 3 after: ceil(224 / 2) = 112, every row read
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "2 window(s) take 224 to 112:",
        "  kernel 7, stride 2, same                 pads 2+3   49 MACs   exact",
        "  kernel 7, stride 2, pad 3                pads 3+3   49 MACs   inexact"]
    for w in cnncalc.solve(32, 16):  # each is what the calculator gives for the same layer
        words = f"conv {w['kernel']}x{w['kernel']}x1 stride {w['stride']} {w['padding']}" + \
            (f" dilation {w['dilation']}" if w["dilation"] > 1 else "")
        assert cnncalc.summarize(f"input 32x32x1 | {words}").output == (16, 16, 1), words
    assert CliRunner().invoke(main, ["solve", "32"]).exit_code == 2


# --- the vectorised path: a grid of 256 variants or more is walked as numpy lanes ----------

def _scalar_calls(monkeypatch):
    """Counts the variants the scalar path computes (the lanes' sample checks included)."""
    from cnncalc.analysis import sweep as S
    calls = [0]
    scalar = S._variant

    def counted(*a, **k):
        calls[0] += 1
        return scalar(*a, **k)
    monkeypatch.setattr(S, "_variant", counted)
    return calls


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(1, 300), min_size=16, max_size=40, unique=True),
       st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True),
       st.lists(st.integers(8, 200), min_size=16, max_size=20, unique=True),
       st.randoms(use_true_random=False))
def test_lanes_give_every_variant_the_summary_of_its_substituted_spec(widths, depths, sizes, rnd):
    """Random grids large enough for the lanes (sizes too small for the pools included, so
    some variants are invalid); a random sample of the records against the substituted spec,
    and every record against the scalar path."""
    from cnncalc.analysis import sweep as S
    vary = {"width": widths, "depth": depths, "k": [3], "input": sizes}
    records = cnncalc.sweep(SPEC, vary=vary)
    assert len(records) == len(widths) * len(depths) * len(sizes) >= S.VECTOR_FROM
    for r in rnd.sample(records, 12):
        try:
            s = _by_hand(r["width"], r["depth"], 3, r["input"])
        except CnnCalcError:
            assert not r["valid"]
            continue
        t = s.totals
        assert (r["params"], r["trainable"], r["macs"], r["flops"]) == \
            (t.params, t.trainable, t.macs, t.flops)
        assert r["output"] == "x".join(map(str, s.output))
    scalar = S.sweep(SPEC, vary={**vary, "width": widths[:3]})  # under 256: the scalar loop
    assert scalar == [r for r in records if r["width"] in widths[:3]]


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "unet", "densenet121",
                                  "inception_v3", "squeezenet1_0", "convnext_tiny"])
def test_lanes_equal_the_scalar_path_on_the_zoo(name, monkeypatch):
    from cnncalc.analysis import sweep as S
    text = (SPECS / f"{name}.cnn").read_text()
    size = int(re.search(r"^input (\d+)x", text, re.M)[1])
    vary = {"input": [size, 17, 64, 97, 128, 300] * 50}
    calls = _scalar_calls(monkeypatch)
    lanes = S.sweep(text, vary=vary)
    walked = calls[0]
    monkeypatch.setattr(S, "VECTOR_FROM", 10**9)
    assert lanes == S.sweep(text, vary=vary)
    # the group's two sample checks, and each invalid variant (the scalar path says why)
    assert walked == 2 + sum(not r["valid"] for r in lanes)
    assert next(r for r in lanes if r["input"] == size)["valid"]


def test_lanes_with_fractional_and_structural_knobs_reach_torchvisions_b1_and_b2(monkeypatch):
    """EfficientNet: depth shapes the network (repeat counts), so the lanes run in groups;
    width is a fraction rounded by div8; the records equal the scalar path's."""
    from cnncalc.analysis import sweep as S
    text = (SPECS / "efficientnet.cnn").read_text()
    vary = {"width": [1.0, 1.1, 1.2], "depth": [1.0, 1.1, 1.2, 1.4],
            "resolution": list(range(224, 320, 4))}
    vary = {k: [S.values(k, str(v))[0] for v in vs] for k, vs in vary.items()}
    calls = _scalar_calls(monkeypatch)
    lanes = S.sweep(text, vary=vary)
    assert calls[0] == 2 * 4  # the sample checks of the four groups, one per depth
    pick = {(r["width"], r["depth"], r["resolution"]): r for r in lanes}
    assert pick[(1.0, 1.1, 240)]["trainable"] == 7_794_184
    assert pick[(1.1, 1.2, 260)]["trainable"] == 9_109_994
    monkeypatch.setattr(S, "VECTOR_FROM", 10**9)
    assert lanes == S.sweep(text, vary=vary)


def test_lanes_that_could_pass_int64_go_to_the_exact_path(monkeypatch):
    """Products past 2^62 are refused by the lanes' bound, never wrapped: a 10^9 input has
    per-layer MACs past int64, and its records equal the scalar path's Python integers."""
    from cnncalc.analysis import sweep as S
    from cnncalc.analysis.lanes import Lanes
    import numpy as np
    text = (SPECS / "vgg16.cnn").read_text()
    vary = {"input": [32, 224, 10**5, 10**9] * 70}
    lanes = S.sweep(text, vary=vary)
    big = next(r for r in lanes if r["input"] == 10**5)
    assert big["valid"] and big["macs"] > 2**63 // 10**4
    monkeypatch.setattr(S, "VECTOR_FROM", 10**9)
    assert lanes == S.sweep(text, vary=vary)
    a = np.array([2**40, 3], dtype=np.int64).view(Lanes)
    with pytest.raises(OverflowError):
        a * a
    assert (a * 2).tolist() == [2**41, 6]


def test_a_dask_cluster_of_two_worker_processes_gives_the_same_records(tmp_path):
    """The chunk kernel on a LocalCluster of two worker processes (8 chunks of lanes), from
    the API and from the CLI's --scheduler ADDRESS: the records equal the single-process run."""
    from distributed import Client, LocalCluster
    from cnncalc.analysis import lanes
    text = (SPECS / "resnet18.cnn").read_text()
    vary = {"input": list(range(32, 32 + 8 * lanes.CHUNK // 64)) * 64}
    here = cnncalc.sweep(text, vary=vary, where="macs < 2G", pareto="params,macs")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        there = cnncalc.sweep(text, vary=vary, where="macs < 2G", pareto="params,macs",
                              scheduler=client)
        assert set(client.nthreads()) and len(client.nthreads()) == 2
        spec = tmp_path / "r18.cnn"
        spec.write_text(text)
        cli = CliRunner().invoke(main, ["sweep", str(spec), "--vary", "input=32:1055", "--format",
                                        "json", "--scheduler", cluster.scheduler_address])
        assert cli.exit_code == 0, cli.output
    assert there == here and len(here) > 1000
    local = CliRunner().invoke(main, ["sweep", str(spec), "--vary", "input=32:1055",
                                      "--format", "json"])
    assert json.loads(cli.output) == json.loads(local.output)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    from cnncalc.analysis import lanes
    monkeypatch.setattr(lanes, "CONNECT_SECONDS", 1)
    spec = tmp_path / "a.cnn"
    spec.write_text("input 32x32x3 | conv 3x3x8")
    res = CliRunner().invoke(main, ["sweep", str(spec), "--vary", "input=8:300",
                                    "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 2
    assert "--scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler" in res.output


def test_a_grid_past_what_can_be_kept_is_refused_unless_the_condition_keeps_less(monkeypatch):
    """Any grid runs in bounded memory (chunks of lanes); the records kept are bounded too."""
    from cnncalc.analysis import sweep as S
    monkeypatch.setattr(S, "MAX_VARIANTS", 1000)
    text = "param w = 8\ninput 32x32x3 | conv 3x3x$w | globalavgpool | dense 10"
    vary = {"w": list(range(1, 41)), "input": list(range(8, 58))}  # 2,000 variants
    with pytest.raises(CnnCalcError, match="more than 1,000 variants kept; narrow the grid"):
        S.sweep(text, vary)
    kept = S.sweep(text, vary, where="params < 500")  # 27w + w + 10w + 10 < 500: w <= 12
    assert {r["w"] for r in kept} == set(range(1, 13)) and len(kept) == 12 * 50


def test_lanes_that_differ_in_storage_split_and_stay_exact(monkeypatch):
    """VGG16 from 32 to 2,031: below 64 its last map is 1x1, so flatten is a view there and
    a copy elsewhere (the kept bytes differ in kind, not just size); the lanes split the
    group in halves until each part agrees, and the records equal the scalar path's."""
    from cnncalc.analysis import sweep as S
    text = (SPECS / "vgg16.cnn").read_text()
    vary = {"input": range(32, 2032)}
    calls = _scalar_calls(monkeypatch)
    lanes = S.sweep(text, vary=vary, where="training < 3G")
    assert calls[0] < 100 and len(lanes) > 100
    monkeypatch.setattr(S, "VECTOR_FROM", 10**9)
    assert lanes == S.sweep(text, vary=vary, where="training < 3G")
