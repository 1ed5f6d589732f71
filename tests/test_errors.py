"""Bad input: the message, the line and the column."""

import pytest

from cnncalc import CnnCalcError, SpecDesignError, SpecSyntaxError, analyse, parse as load, read

CASES = [
    # text, error type, line, column, words the message must hold
    ("input 443x592x3\nconvv 5x5x6 valid", SpecSyntaxError, 2, 1, ["unknown", "'convv'", "did you mean 'conv'"]),
    ("input 8x8x3\nconv 3x3x4 stride", SpecSyntaxError, 2, 12, ["stride needs a value", "stride 2"]),
    ("input 8x8x3\nconv 3x3x4 same same", SpecDesignError, 2, 17, ["padding", "give it once"]),
    ("input 8x8x3\nconv 3x3x4 same pad 1", SpecDesignError, 2, 17, ["'same' and 'pad 1'"]),
    ("input 8x8x3\nconv 3x3x4 stride 2 stride 1", SpecDesignError, 2, 21, ["stride", "give it once"]),
    ("input 8x8x3\nmaxpool 2 groups 2", SpecSyntaxError, 2, 11, ["'groups' does not apply"]),
    ("input 8x8x3\nconv 3x3x3x4", SpecDesignError, 2, 6, ["expected 2 kernel size(s)"]),
    ("input 8x8x3\nconv 3x3x4 stride 0", SpecDesignError, 2, 12, ["stride must be at least 1, received 0"]),
    ("input 8x8x3\nconv 3x3x4 name=a\nconv 3x3x4 name=a", SpecDesignError, 3, 12, ["'a' is already used on line 2"]),
    ("conv 3x3x4", SpecDesignError, 1, 1, ["must start with an 'input'"]),
    ("input 8x8x3\nrepeat 2 { conv 3x3x$f }", SpecDesignError, 2, 21, ["unknown parameter '$f'"]),
    ("def b(f) { conv 3x3x$f }\ninput 8x8x3\nb(1, 2)", SpecDesignError, 3, 1, ["takes 1 argument", "received 2"]),
    ("def b(f) { b($f) }\ninput 8x8x3\nb(1)", SpecDesignError, 1, 12, ["calls itself"]),
    ("input 8x8x3\nblk(1)", SpecDesignError, 2, 1, ["unknown block 'blk'"]),
    ("input 8x8x3\nconcat x", SpecDesignError, 2, 1, ["'x' is not the name of an earlier layer"]),
    ("input 8x8x3\nconv 1x1x4 name=a\nconv 1x1x4 shares a", SpecDesignError, 3, 1,
     ["shares a", "its weights do not fit", "12 weights, 4 biases", "16 weights, 4 biases"]),
    ("input 8x8x4\nconv 1x1x4 name=a\ndense 4 shares a", SpecDesignError, 3, 1,
     ["shares a", "'a' is a conv, this layer a dense"]),
    ("input 8x8x4\nconv 1x1x4 shares b", SpecDesignError, 2, 1,
     ["shares b", "'b' is not the name of an earlier layer"]),
    ("input 8x8x4\nconv 1x1x4 name=a\nconv 1x1x4 shares a name=b\nconv 1x1x4 shares b",
     SpecDesignError, 4, 1, ["'b' shares 'a''s weights", "write 'shares a'"]),
    ("input 8x8x4\nconv 1x1x4 shares", SpecSyntaxError, 2, 12, ["shares needs the name of an earlier layer"]),
    ("input 8x8x4\nmaxpool 2 shares a", SpecSyntaxError, 2, 11, ["'shares' does not apply"]),
    ("input 8x8x3\ndropout 1.5", SpecDesignError, 2, 9, ["the rate must be in [0, 1), received 1.5"]),
    # a real number where a whole one goes: a syntax error at the number, not at 'stride'
    ("input 8x8x3\nconv 3x3x4 stride 1.5", SpecSyntaxError, 2, 19,
     ["stride needs a whole number here, received '1.5'"]),
    # open sizes stand only in the input: in an argument, and in an option (at its word)
    ("input 8x8x3\nconv 3x3xC", SpecDesignError, 2, 6,
     ["the kernel and filters: the open size 'C' can only stand in the input"]),
    ("input 8x8x3\nconv 3x3x4 stride H", SpecDesignError, 2, 12,
     ["stride: the open size 'H' can only stand in the input"]),
    # every size is at most 10^18 (10^18 itself is taken: test_language.py)
    ("input 8\ndense 1000000000000000001", SpecDesignError, 2, 7,
     ["must be at most 10^18, received 1000000000000000001"]),
    # as an input, a reshape has up to 3 spatial sizes (no kind has a 4-D window)
    ("input 48\nreshape 2x2x2x2x3", SpecDesignError, 2, 9,
     ["expected up to 3 spatial sizes then the channels"]),
    # a word where an argument goes: the error points at that word
    ("input 8x8x3\ndropout x", SpecSyntaxError, 2, 9, ["dropout needs the rate", "dropout 0.5"]),
    # an activation's mistakes name the activation as written
    ("input 8x8x3\nrelu same", SpecSyntaxError, 2, 6, ["relu: option 'same' does not apply",
                                                        "relu takes slope"]),
    ("input 8x8x3\nleakyrelu slope 0.1 slope 0.3", SpecDesignError, 2, 21,
     ["leakyrelu: 'slope 0.1' and 'slope 0.3' both set the slope"]),
]


@pytest.mark.parametrize("text,cls,line,column,words", CASES, ids=[c[0].split("\n")[-1] for c in CASES])
def test_error_message_line_and_column(text, cls, line, column, words):
    with pytest.raises(cls) as info:
        analyse(load(text, file="net.cnn"))
    e = info.value
    assert (e.line, e.column) == (line, column), str(e)
    for w in words:
        assert w in str(e)
    if isinstance(e, SpecSyntaxError):
        assert "^" in str(e) and str(e).startswith(f"net.cnn:{line}:{column}:")


DESIGN = [
    ("input 8x8x3\nconv 9x9x4", 1, "conv_1", "the window 9 is larger than the width 8"),
    ("input 8x8x3\nflatten\nconv 3x3x4", 2, "conv_1", "needs a 2-D feature map, received a flat vector of 192"),
    ("input 8x8x3\nflatten\ndense 10\nconv 3x3x4", 3, "conv_1", "needs a 2-D feature map"),
    ("input 8x8x6\nconv 3x3x4 groups 4", 1, "conv_1", "groups 4 must divide the input channels (6)"),
    ("input 8x8x6\nadd { branch { conv 3x3x6 } branch { } }", 1, "add_1",
     "branch 1 gives 6x6x6 but branch 2 gives 8x8x6"),
    ("input 8x8x6\nconcat { branch { conv 3x3x6 } branch { } }", 1, "concat_1",
     "branch 1 gives 6x6x6 but branch 2 gives 8x8x6"),
    ("input 2x8x3\navgpool 3", 1, "avgpool_1", "the window 3 is larger than the width 2"),
    ("input 8x2x3\nmaxpool 3", 1, "maxpool_1", "the window 3 is larger than the height 2"),
    # after a global pool the sizes are read per axis of the input's rank, so the error is
    # the vector, not "expected one number or 1"
    ("input 8x8x3\nglobalavgpool\nmaxpool 2x2", 2, "maxpool_1",
     "maxpool needs a 2-D feature map, received a flat vector of 3 values"),
    ("input 8x8x3\nflatten\nadaptiveavgpool 2", 2, "adaptiveavgpool_1",
     "adaptiveavgpool needs a 2-D feature map, received a flat vector of 192 values"),
    ("input 8x8x3\nglobalmaxpool\nupsample 2x3", 2, "upsample_1", "received a flat vector of 3"),
    ("input 8x8x6 name=x\nconv 3x3x6 name=a\nconv 3x3x6\nadd a", 3, "add_1",
     "the current tensor gives 4x4x6 but 'a' gives 6x6x6"),
]


@pytest.mark.parametrize("text,index,name,words", DESIGN)
def test_design_error_names_the_layer(text, index, name, words):
    if "name=x" in text:
        text = text.replace(" name=x", "")
    with pytest.raises(SpecDesignError) as info:
        analyse(load(text))
    e = info.value
    assert (e.index, e.layer) == (index, name)
    assert words in str(e)
    assert any(r.error for r in e.rows)


@pytest.mark.parametrize("text", ["", "   \n# only a comment\n", "\x00\x01", "input"])
def test_empty_and_binary_inputs(text):
    with pytest.raises(CnnCalcError):
        analyse(load(text))


def test_limits():
    with pytest.raises(CnnCalcError, match="more than 100,000 layers"):
        load("input 8x8x3\nrepeat 100001 { relu }")
    with pytest.raises(CnnCalcError, match="more than 100,000 layers"):
        load("input 8x8x3\nrepeat 1000000 { repeat 1000000 { relu } }")
    with pytest.raises(CnnCalcError, match="nest deeper than 64"):
        load("input 8x8x3\n" + "add { branch { " * 70 + "}}" * 70)
    with pytest.raises(CnnCalcError, match="sizes must be between"):
        load("input 1000000000000000000000x3")
    with pytest.raises(CnnCalcError, match="larger than the limit of 1,048,576 bytes"):
        load("input 8x8x3\n" + "relu\n" * 300000)


def test_huge_files_are_refused_unread_and_deep_nesting_is_clean(tmp_path):
    from click.testing import CliRunner
    from cnncalc.cli import main
    big = tmp_path / "big.cnn"
    big.write_text("#" * 3_000_000)
    res = CliRunner().invoke(main, ["summary", str(big)])
    assert res.exit_code == 2 and "line 1 is 3,000,000 characters" not in res.output
    # the API reads files as the command does: one byte past the limit, then refuses
    with pytest.raises(CnnCalcError, match="larger than the limit of 1,048,576 bytes"):
        read(big)
    deep = tmp_path / "deep.cnn"
    deep.write_text("input 8x8x1\n" + "add { branch { " * 100 + "relu" + " } }" * 100)
    res = CliRunner().invoke(main, ["check", str(deep), "--max-depth", "200", "-q"])
    assert res.exit_code == 0 and "101 of 101 layers match" in res.output


@pytest.mark.parametrize("text,column,word,hint", [
    ("input 8x8x3\nconv 3x3x4 samee", 12, "'samee'", "did you mean 'same'?"),
    ("input 8x8x3\nconv 3x3x4 stridee 2", 12, "'stridee'", "did you mean 'stride'?"),
    ("input 8x8x3\ndense 10 reluu", 10, "'reluu'", "did you mean 'relu'?"),
    ("input 8x8x3\nConv 3x3x4", 1, "'Conv'", "did you mean 'conv'?"),
])
def test_misspelt_words_are_reported_whole(text, column, word, hint):
    with pytest.raises(SpecSyntaxError) as info:
        load(text)
    assert info.value.column == column and word in str(info.value) and hint in str(info.value)


def test_an_error_inside_a_block_names_the_call():
    # 12 - 3 + 1 = 10, 10 - 9 + 1 = 2: the second call's 3x3 window meets a 2-wide map
    import cnncalc
    text = "def down(f) {\n  conv 3x3x$f\n  conv 9x9x$f\n}\ninput 12x12x3\ndown(8)\ndown(4)\n"
    with pytest.raises(cnncalc.SpecDesignError) as caught:
        cnncalc.summarize(text)
    e = caught.value
    assert str(e) == ("<spec>:2:3: layer 3 'conv_3': the window 3 is larger than the width 2; "
                      "use 'same' padding or a smaller kernel (in the block called on line 7)\n"
                      "      conv 3x3x$f\n      ^")
    assert (e.line, e.column, e.layer, e.index) == (2, 3, "conv_3", 3)
    # the rows computed so far, the failing one last, carrying its error
    assert [r.name for r in e.rows] == ["conv_1", "conv_2", "conv_3"]
    assert e.rows[-1].error.startswith("the window 3 is larger than the width 2")
    # a layer written at top level names no call
    with pytest.raises(cnncalc.SpecDesignError) as caught:
        cnncalc.summarize("input 2x2x1\nconv 3x3x1")
    assert "called on line" not in str(caught.value) and caught.value.line == 2


CONV_TAKES = ("conv takes valid | same | causal, pad P | pad half, stride 2, dilation 2, "
              "groups 4, nobias, an activation, frozen, shares ID")


@pytest.mark.parametrize("text, message", [
    # every option of the kind, as 'cnncalc layers' lists them; a hint only for a near miss:
    # 'nobxxs' shares n, o, b, s with 'nobias', a ratio of 2 x 4 / 12 = 0.67 (difflib), below
    # the 0.75 that keeps hints from guessing
    ("conv 3x3x4 foo", f"conv: unknown word 'foo'; {CONV_TAKES}"),
    ("conv 3x3x4 nobxxs", f"conv: unknown word 'nobxxs'; {CONV_TAKES}"),
    ("conv 3x3x4 stridd 2", f"conv: unknown word 'stridd'; {CONV_TAKES}; did you mean 'stride'?"),
    ("conv 3x3x4 (2)", f"conv: unexpected value '(2)'; {CONV_TAKES}"),
    ("flatten foo", "flatten: unknown word 'foo'; flatten takes no options"),
    ("flatten 3", "flatten: unexpected value '3'; flatten takes no options"),
])
def test_a_word_a_kind_does_not_take_is_answered_with_what_it_takes(text, message):
    with pytest.raises(SpecSyntaxError) as info:
        load(f"input 8x8x3\n{text}")
    assert str(info.value).splitlines()[0].split(": ", 1)[1] == message


@pytest.mark.parametrize("text, message", [
    # each argument named in its own words, at its column ('input 8x8x4 | ' is 14 characters)
    ("dense 0", "1:21: the number of outputs must be at least 1, received 0"),
    ("dense 2x3", "1:21: the number of outputs: expected one number, received 2x3"),
    ("shuffle 0", "1:23: the number of groups must be at least 1, received 0"),
    ("maxpool 0", "1:23: the pool size must be at least 1, received 0"),
    ("maxpool 2x2x2", "1:23: the pool size 2x2x2: expected one number or 2 (one per spatial "
                      "axis of the 2-D input)"),
])
def test_arguments_are_named_when_refused(text, message):
    with pytest.raises(CnnCalcError) as info:
        load(f"input 8x8x4 | {text}")
    assert f"<spec>:{message}" in str(info.value)


def test_causal_padding_is_for_sequences_as_in_keras():
    # Keras' Conv2D refuses padding='causal' (only Conv1D takes it), on any backend
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    with pytest.raises(ValueError, match="causal"):
        keras.layers.Conv2D(8, 3, padding="causal")
    with pytest.raises(SpecDesignError, match="causal padding is for 1-D inputs"):
        analyse(load("input 8x8x4 | conv 3x3x8 causal"))
    assert analyse(load("input 8x4 | conv 3x8 causal")).rows[0].output == (8, 8)


@pytest.mark.parametrize("text, message", [
    # a missing argument is shown with an example; an argument of the wrong form by its name
    ("dropout", "1:15: dropout needs the rate, e.g. 'dropout 0.5'"),
    ("maxpool", "1:15: maxpool needs the pool size, e.g. 'maxpool 2'"),
    ("pixelshuffle", "1:15: pixelshuffle needs the factor, e.g. 'pixelshuffle 2'"),
    ("zeropad 1x2x3", "1:23: the padding 1x2x3: expected 1 number, 2 (one per axis) or 4 "
                      "(before and after each axis) for the 2-D input"),
    ("crop 1x2x3", "1:20: the crop 1x2x3: expected 1 number"),
    ("upsample 2 cubic", "1:26: upsample: unknown word 'cubic'; upsample takes nearest | bilinear"),
])
def test_a_kind_says_what_it_needs(text, message):
    with pytest.raises(CnnCalcError) as info:
        load(f"input 8x8x4 | {text}")
    assert f"<spec>:{message}" in str(info.value)


def test_an_unknown_kind_lists_every_kind():
    # each word listed is a kind that 'cnncalc layers WORD' describes; none is empty
    from click.testing import CliRunner
    from cnncalc.cli import main
    res = CliRunner().invoke(main, ["layers", "nosuchkind"])
    assert res.exit_code == 2
    words = res.output.strip().split("the kinds are ")[1].split(", ")
    assert len(words) == len(set(words)) and all(words) and {"conv", "relu", "concat"} <= set(words)
    for word in words:
        assert CliRunner().invoke(main, ["layers", word]).exit_code == 0, word
