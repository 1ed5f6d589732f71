"""The README shows what the code does: its layer table is the kinds' own catalogue, and
its Python example runs as written."""

import re

from conftest import ROOT


def test_layer_table_is_generated_from_the_kinds():
    from cnncalc.layers.catalogue import catalogue
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- layers:begin -->\n")[1].split("<!-- layers:end -->")[0]
    assert table == catalogue("markdown"), "regenerate: cnncalc layers --format markdown"


def test_python_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    s = namespace["s"]
    assert s.totals.params == 25_610_152 and s.output == (1000,)  # torchvision + buffers
    assert namespace["s2"].output == (64, 64, 16)


def _shown_commands():
    """Each '$ cnncalc ...' of the README's examples with the lines shown after it."""
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```\n(.*?)```", readme, re.S):
        parts = re.split(r"^\$ ", block, flags=re.M)
        for part in parts[1:]:
            command, _, shown = part.partition("\n")
            yield command, [line for line in shown.splitlines() if line.strip() not in ("", "...")]


def test_every_command_the_readme_shows_prints_what_it_shows(tmp_path, monkeypatch):
    import shlex
    from click.testing import CliRunner
    from cnncalc.cli import main
    for name in ("specs", "examples", "tests"):  # the README's relative paths, and a clean cwd
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    commands = list(_shown_commands())
    assert len(commands) >= 10
    for command, shown in commands:
        command = command.split(" | ")[0] if "| tail" in command else command
        args = shlex.split(command)
        assert args[0] == "cnncalc", command
        res = CliRunner().invoke(main, args[1:])
        error = any(line.startswith("error:") for line in shown)
        mismatch = any(" differ at step " in line for line in shown)
        assert res.exit_code == (2 if error else 1 if mismatch else 0), (command, res.output)
        out = res.output.splitlines()
        for line in shown:
            assert line in out, (command, line)
