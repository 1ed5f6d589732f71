"""The language for real designs (issue 16): arithmetic, whole-word names, defaults and
keyword arguments, scoped names, 'pad half'. Expressions are checked against Python's own
integer arithmetic, shapes against hand-worked formulas."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc import SpecDesignError, SpecSyntaxError


def out(text):
    return cnncalc.summarize(text).output


# (spec, output) worked by hand
CASES = [
    pytest.param("def f(n) { repeat $n - 1 { conv 1x1x4 } }\ninput 8x8x3\nf(3)",
                 (8, 8, 4), id="repeat-n-minus-1"),
    pytest.param("def f(c) { conv 1x1x($c * 6) }\ninput 8x8x3\nf(4)", (8, 8, 24), id="c-times-6"),
    pytest.param("def f(k) { conv ${k}x${k}x8 pad $k // 2 }\ninput 9x9x3\nf(5)", (9, 9, 8),
                 id="k-floordiv-2"),
    pytest.param("def f(w) { conv 1x1x$w groups $w // 16 }\ninput 8x8x64\nf(64)", (8, 8, 64),
                 id="groups-w-floordiv-16"),
    pytest.param("def f(k, c) { conv ($k)x($k)x$c }\ninput 9x9x3\nf(3, 5)", (7, 7, 5),
                 id="parenthesised-axes"),
    pytest.param("def f(exp) { conv 1x1x8 groups $exp }\ninput 8x8x8\nf(2)", (8, 8, 8),
                 id="a-name-with-x"),
    pytest.param("def f(x) { conv 1x1x$x }\ninput 8x8x8\nf(3)", (8, 8, 3), id="a-name-x"),
    pytest.param("def f(k, kx) { conv 1x1x$kx }\ninput 8x8x8\nf(3, 5)", (8, 8, 5),
                 id="kx-is-not-k-then-x"),
    pytest.param("def f(a, b) { dense max($a, $b) | dense min($a, $b * 2) }\ninput 2x2\nflatten | f(3, 7)",
                 (3,), id="min-max"),
    pytest.param("def f(a) { dense $a / 4 }\ninput 2x2\nflatten | f(12)", (3,), id="exact-division"),
    pytest.param("def f(c, e=6) { conv 1x1x($c * $e) }\ninput 8x8x3\nf(2)", (8, 8, 12),
                 id="default"),
    pytest.param("def f(c, e=6) { conv 1x1x($c * $e) }\ninput 8x8x3\nf(e=1, c=5)", (8, 8, 5),
                 id="keywords"),
    pytest.param("def f(c, e=$c + 1) { conv 1x1x$e }\ninput 8x8x3\nf(4)", (8, 8, 5),
                 id="default-from-an-earlier-parameter"),
    # torchvision pads k // 2: a 7x7 stride-2 conv with pad 3 on 224 gives 112
    pytest.param("input 224x224x3 | conv 7x7x64 stride 2 pad half", (112, 112, 64),
                 id="pad-half-torchvision-conv1"),
    # an even kernel with pad half: 8 + 2 x 2 - 4 + 1 = 9, as PyTorch's Conv2d(4, padding=2)
    pytest.param("input 8x8x1 | conv 4x4x1 pad half", (9, 9, 1), id="pad-half-even-kernel"),
    pytest.param("input 224x224x3 | maxpool 3 stride 2 pad half", (112, 112, 3),
                 id="pad-half-pool"),
]


@pytest.mark.parametrize("text,output", CASES)
def test_values(text, output):
    assert out(text) == output


ERRORS = [
    # text, error, line, column, words
    ("def f(w) { conv 1x1x8 groups $w / 16 }\ninput 8x8x8\nf(200)", SpecDesignError, 1, 33,
     ["$w / 16 with w = 200 is 12.5", "use // to round down"]),
    ("def f(w) { conv 1x1x8 groups $w // 0 }\ninput 8x8x8\nf(2)", SpecDesignError, 1, 33,
     ["division by zero"]),
    ("def f(k) { conv $kx$kx8 }\ninput 8x8x8\nf(3)", SpecDesignError, 1, 17,
     ["unknown parameter '$kx' (parameters: $k)"]),
    ("def f(a, b=1) { relu }\ninput 8x8x8\nf(c=2)", SpecDesignError, 3, 5,
     ["no parameter 'c'", "a, b=1"]),
    ("def f(a, b=1) { relu }\ninput 8x8x8\nf(b=2)", SpecDesignError, 3, 1, ["needs 'a'"]),
    ("def f(a) { relu }\ninput 8x8x8\nf(a=1, 2)", SpecDesignError, 3, 8,
     ["positional argument cannot follow"]),
    ("def f(n) { repeat $n - 3 { relu } }\ninput 8x8x8\nf(2)", SpecDesignError, 1, 19,
     ["count of 0 or more", "$n - 3"]),
    ("def f(n) { conv 3x3x($n - 8) }\ninput 8x8x8\nf(2)", SpecDesignError, 1, 17,
     ["the kernel and filters must be at least 1, received -6"]),
    ("input 8x8x8 | conv 3x3x(4 +)", SpecSyntaxError, 1, 28, ["unexpected ')'"]),
]


@pytest.mark.parametrize("text,cls,line,column,words", ERRORS, ids=[e[4][0] for e in ERRORS])
def test_expression_errors(text, cls, line, column, words):
    with pytest.raises(cls) as info:
        cnncalc.summarize(text)
    e = info.value
    assert (e.line, e.column) == (line, column), str(e)
    for w in words:
        assert w in str(e), str(e)


# --- expressions evaluate as Python's integers do ---------------------------------------------

@st.composite
def expressions(draw, depth=0):
    """(text, python text) of a random integer expression over $a and $b (parentheses
    nest up to three deep)."""
    if depth > 2 or draw(st.booleans()):
        atom = draw(st.sampled_from(["$a", "$b", str(draw(st.integers(0, 50)))]))
        return atom, atom.replace("$", "")
    kind = draw(st.sampled_from(["+", "-", "*", "//", "min", "max", "()"]))
    left, pl = draw(expressions(depth + 1))
    right, pr = draw(expressions(depth + 1))
    if kind in ("min", "max"):
        return f"{kind}({left}, {right})", f"{kind}({pl}, {pr})"
    if kind == "()":
        return f"({left})", f"({pl})"
    if kind == "//":
        return f"({left}) // ({right})", f"({pl}) // ({pr})"
    return f"{left} {kind} {right}", f"{pl} {kind} {pr}"


@settings(max_examples=150, deadline=None, derandomize=True)
@given(expressions(), st.integers(1, 40), st.integers(1, 40))
def test_expressions_are_pythons_integer_arithmetic(expr, a, b):
    from cnncalc.language import expr as E
    from cnncalc.language.parser import parse
    text, python = expr
    stmt = parse(f"input 4 | dense {text}")[1]
    try:
        want = eval(python, {"a": a, "b": b, "min": min, "max": max})  # our own test's text
    except ZeroDivisionError:
        with pytest.raises(E.ExprError, match="division by zero"):
            E.evaluate(stmt.items[0].dims, {"a": (a,), "b": (b,)})
        return
    assert E.evaluate(stmt.items[0].dims, {"a": (a,), "b": (b,)}) == (want,)


# --- scoped names --------------------------------------------------------------------------

BLOCKS = """
def block(c) { conv 3x3x$c same name=conv1 | relu | conv 3x3x$c same name=conv2 }
def stage(c, n) { block($c) name=0 | repeat $n - 1 from 1 { block($c) } }
input 16x16x8
"""


def test_names_follow_the_calls_and_passes():
    s = cnncalc.summarize(BLOCKS + "stage(8, 3) name=layer1\nstage(8, 2) name=layer2")
    names = [r.name for r in s]
    assert names[:4] == ["layer1.0.conv1", "layer1.0.relu_1", "layer1.0.conv2", "layer1.1.conv1"]
    assert "layer1.2.conv2" in names and "layer2.1.conv2" in names
    assert len(set(names)) == len(names)


def test_references_resolve_in_the_nearest_scope():
    text = """def res(c) { conv 1x1x$c name=a | conv 3x3x$c same name=b | add a }
input 8x8x4
conv 1x1x4 name=a
res(4) name=one
res(4) name=two
add a"""
    s = cnncalc.summarize(text)
    refs = {r.name: r.source.name for r in s if r.source is not None}
    assert refs == {"one.add_1": "one.a", "two.add_1": "two.a", "add_1": "a"}


def test_a_layer_named_by_a_number_is_referenced_by_it():
    """'name=2' is a name (nn.Sequential's), so 'add 2', 'from 2', 'output 2' and
    'shares 2' read it as one: the same network as with a word for the name."""
    worded = ("input 8x8x4\nconv 3x3x4 same name=c\nrelu name=r\nadd c\noutput r\nfrom c\n"
              "conv 3x3x4 same shares c\nconcat r")
    numbered = worded.replace("=c", "=2").replace(" c\n", " 2\n").replace(" c", " 2")
    assert "from 2" in numbered and "shares 2" in numbered and "add 2" in numbered
    a, b = cnncalc.summarize(worded), cnncalc.summarize(numbered)
    assert [(r.kind, r.output, r.params, r.macs) for r in a] == \
        [(r.kind, r.output, r.params, r.macs) for r in b]
    assert b.totals.params == 148  # one conv's 144 weights and 4 biases, shared


def test_the_torch_module_is_named_as_the_spec():
    import torch  # noqa: F401
    net = cnncalc.to_torch(BLOCKS + "stage(8, 2) name=layer1")
    names = {n for n, _ in net.named_modules()}
    assert {"layer1.0.conv1", "layer1.1.conv2"} <= names
    assert "layer1.0.conv1.op.weight" in net.state_dict()


def test_the_largest_size_is_taken():
    # sizes go up to 10^18 (one more is refused: test_errors.py); the counts stay exact
    row = cnncalc.summarize("input 8 | dense 1000000000000000000").rows[-1]
    assert row.output == (10**18,) and row.weights == 8 * 10**18


def test_the_module_carries_the_spec_name_back_to_an_import():
    # the network's own line names the module, and importing the module names the spec so
    # (without it the importer falls back to the class: 'net')
    from cnncalc.interop.from_torch import from_torch
    net = cnncalc.to_torch("network tiny\ninput 8x8x3\nconv 3x3x4")
    assert net.spec_name == "tiny"
    back = from_torch(net, "8x8x3")
    assert back.summary.network.name == "tiny" and back.text.startswith("network tiny")


@pytest.mark.parametrize("names, keys", [
    (("down.conv", "down"), ("down.conv", "down_")), (("down", "down.conv"), ("down", "down.conv")),
    (("a.b", "a_b"), ("a.b", "a_b")), (("a_b", "a.b"), ("a_b", "a.b")),
    (("a..b", "c"), ("a__b", "c")), (("x", "x.op"), ("x", "x_op")),
    (("a.b", "a", "a_"), ("a.b", "a_", "a__"))])
def test_every_layer_keeps_its_weights_whatever_its_name(names, keys, tmp_path):
    """A name that cannot nest ('down' after 'down.conv' has made a 'down' container, an
    empty part) must not replace another module: it is registered flat (dots as '_'), with
    '_' added until the name is free. Every weight stays in the state dict and a weights
    file round-trips. By hand: conv 3x3x3->4 has 3*3*3*4 + 4 = 112 parameters, conv
    3x3x4->4 has 3*3*4*4 + 4 = 148."""
    import torch
    spec = "input 8x8x3 | " + " | ".join(f"conv 3x3x4 name={n}" for n in names)
    net = cnncalc.to_torch(spec)
    state = net.state_dict()
    assert set(state) == {f"{k}.op.{w}" for k in keys for w in ("weight", "bias")}
    assert sum(v.numel() for v in state.values()) == 112 + 148 * (len(names) - 1)
    assert sum(p.numel() for p in net.parameters()) == 112 + 148 * (len(names) - 1)
    path = tmp_path / "w.safetensors"
    from cnncalc.backends import weights
    weights.save(net, str(path))
    again = cnncalc.to_torch(spec)
    weights.apply(again, weights.load_file(str(path)))
    x = torch.rand(1, 8, 8, 3)
    assert torch.equal(net(x), again(x))


@st.composite
def nested(draw, depth=0):
    """A random nest of named and unnamed calls and repeats, with named layers inside."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["layer", "repeat", "call"] if depth < 3 else ["layer"]))
        name = draw(st.sampled_from(["", "a", "b", "0", "1"]))
        tag = f" name={name}" if name else ""
        if kind == "layer":
            parts.append(f"relu{tag}")
        elif kind == "repeat":
            parts.append(f"repeat {draw(st.integers(1, 3))}{tag} {{ {draw(nested(depth + 1))} }}")
        else:
            parts.append(f"blk(){tag}")
    return " | ".join(parts)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(nested(), nested())
def test_scoped_names_are_unique_or_refused(body, top):
    """Names are unique by construction: a spec either expands with unique names, or is
    refused because one scope names two layers alike."""
    text = f"def blk() {{ {body} }}\ninput 4x4x1\n{top}"
    try:
        s = cnncalc.summarize(text)
    except SpecDesignError as e:
        assert "is already used" in str(e) or "calls itself" in str(e)
        return
    except SpecSyntaxError:
        raise
    names = [r.name for r in s]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("text, written", [
    # what a layer writes back: options at their defaults left out (stride 1, a pool's stride
    # equal to its size), 'pad half' kept as a word, per-axis values kept per axis
    ("conv 3x3x8 pad half", "conv 3x3x8 pad half"),
    ("conv 3x3x8 stride 1", "conv 3x3x8"),
    ("conv 3x3x8 stride 2x1 pad 1", "conv 3x3x8 pad 1 stride 2x1"),
    ("conv 3x3x8 dilation 1x2", "conv 3x3x8 dilation 1x2"),
    ("maxpool 2 stride 2", "maxpool 2"),
    ("dropout 0.5", "dropout 0.5"),
    ("leakyrelu slope 0.1", "leakyrelu slope 0.1"),
    ("zeropad 1x2x3x4", "zeropad 1x2x3x4"), ("zeropad 2x2", "zeropad 2"),
    ("crop 1x2x0x3", "crop 1x2x0x3"), ("reshape ?x8", "reshape ?x8"),
    ("conv 3x3x8 groups 2", "conv 3x3x8 groups 2"), ("conv 3x3x8 groups 1", "conv 3x3x8"),
    ("dwconv 3x3 multiplier 2", "dwconv 3 multiplier 2"),  # a square kernel once
    ("layernorm eps 1e-3", "layernorm"),  # Keras' epsilon, the default
])
def test_a_layer_writes_itself_back(text, written):
    row = cnncalc.summarize(f"input 16x16x8 | {text}").rows[0]
    assert row.layer.describe() == written
    again = cnncalc.summarize(f"input 16x16x8 | {written}").rows[0]
    assert (again.output, again.params, again.field) == (row.output, row.params, row.field)
