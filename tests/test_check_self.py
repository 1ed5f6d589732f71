"""The cross-check checks itself (issue 17): a calculator row wrong in any one compared
field (output shape, trainable parameters, buffers, MACs, receptive field) makes 'check'
report that layer as a mismatch and the command exit 1."""

import pytest
from click.testing import CliRunner

import cnncalc
from cnncalc.cli import main

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
    return row.name


@pytest.mark.parametrize("field", ["output", "weights", "non_trainable", "macs", "rf"])
def test_a_wrong_row_is_caught(field):
    s = cnncalc.summarize(SPEC)
    assert cnncalc.check(s).ok  # the honest calculator agrees with PyTorch
    name = _spoil(s, field)
    result = cnncalc.check(s)
    assert not result.ok
    if field == "rf":
        assert result.rf[0] == name and result.rf[1] != result.rf[2]
    else:
        assert [c.row.name for c in result.layers if not c.ok] == [name]


@pytest.mark.parametrize("field", ["output", "weights", "non_trainable", "macs", "rf"])
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
