"""What cnncalc writes and how it exits, as a careless user or an attacker would meet it:
a write is whole or not at all and never replaces a device or a link; a standard output
that cannot be written, Ctrl-C, a busy port and huge numbers each end in one line and a
conventional exit code, within bounded time and memory. Whole processes, as users run
them (the CLI's own process is what sets the exit code)."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CNN = [sys.executable, "-m", "cnncalc"]
SPEC = "input 8x8x3 | conv 3x3x4 relu"


def cnncalc(*args, **kw):
    return subprocess.run([*CNN, *args], capture_output=True, text=True, cwd=ROOT, **kw)


def test_a_full_disk_on_standard_output_is_exit_2_with_the_reason():
    with open("/dev/full", "w") as full:
        done = subprocess.run([*CNN, "summary", "-e", SPEC], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr == "error: standard output: cannot write it (No space left on device)\n"


def test_a_closed_pipe_ends_quietly():
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    long = "input 8x8x3 | repeat 3000 { relu }"  # a table past the pipe's 64 KiB buffer
    done = subprocess.run([*CNN, "summary", "-e", long],
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    reader.stdin.close()
    reader.wait()
    assert done.returncode == 0 and done.stderr == ""  # no traceback, no 'Broken pipe' noise
    # the same when the pipe closes while the table is written, not after
    reader = subprocess.Popen(["head", "-n", "2"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    done = subprocess.run([*CNN, "summary", "-e", "input 8x8x3 | repeat 30000 { relu }"],
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    reader.stdin.close()
    reader.wait()
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.parametrize("option", [["--weights-out"], ["-o"]], ids=["weights-out", "spec-out"])
def test_a_device_is_written_through_never_replaced(option):
    before = os.stat("/dev/full")
    done = cnncalc("import", "onnx", str(ROOT / "examples" / "shapes.onnx"), *option, "/dev/full")
    after = os.stat("/dev/full")
    assert done.returncode == 2 and "No space left on device" in done.stderr
    assert (after.st_mode, after.st_rdev) == (before.st_mode, before.st_rdev)  # still the device


def test_a_symlink_is_written_through_to_its_file(tmp_path):
    target = tmp_path / "real.py"
    target.write_text("old\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    done = cnncalc("export", "-e", SPEC, "--to", "pytorch", "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and "nn.Conv2d(3, 4, 3)" in target.read_text()


def _limit_file_size(size):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.parametrize("command", [
    ["export", "specs/resnet50.cnn", "--to", "pytorch", "-o"],
    ["draw", "specs/resnet50.cnn", "-o"],
    ["import", "darknet", "examples/yolov3.cfg", "-o"]], ids=["export", "draw", "import"])
def test_a_write_cut_short_leaves_what_was_there(tmp_path, command):
    out = tmp_path / ("net.svg" if command[0] == "draw" else "net.out")
    out.write_text("what was there\n")
    done = subprocess.run([*CNN, *command, str(out)], capture_output=True, text=True, cwd=ROOT,
                          preexec_fn=_limit_file_size(1000))
    assert done.returncode == 2 and "File too large" in done.stderr
    assert "what was there is unchanged" in done.stderr
    assert out.read_text() == "what was there\n"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no half-written file left


def test_run_maps_into_a_file_path_is_a_clear_error(tmp_path):
    (tmp_path / "maps").write_text("a file")
    done = cnncalc("run", "examples/shapes.cnn", "--data", "examples/shapes.cnn",
                   "--maps", str(tmp_path / "maps"))
    assert done.returncode == 2 and "is a file; give a folder" in done.stderr


def test_ctrl_c_exits_130_with_one_line():
    # a sweep of 10^7 ResNet-50s: minutes, so the signal lands in it whatever the machine
    # (SIGINT as a shell leaves it: a test before may leave it ignored here, as a Dask
    # cluster's processes do, and an ignored signal is inherited across exec)
    proc = subprocess.Popen([*CNN, "sweep", "specs/resnet50.cnn", "--vary", "input=32:10000000",
                             "--where", "params < 0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(2.5)  # past the imports, into the sweep
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.strip() == "interrupted"


def test_a_busy_port_is_exit_2_with_one_line():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    try:
        done = cnncalc("serve", "--port", str(port), timeout=30)
    finally:
        sock.close()
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "cannot listen there (Address already in use)" in \
        done.stderr


HUGE = [  # (arguments, words of the one-line message): each once a traceback, a freeze or GBs
    (["summary", "-e", "input 7x7x3 | adaptiveavgpool 1000000000000"], "at most 100,000"),
    (["fit", "-e", "input 8x8x3", "--memory", "1e10000000GiB"], "cannot read it as a size"),
    (["summary", "-e", "input 8x8x3 | conv 3x3x" + "9" * 5000], "is too large"),
    (["summary", "-e", "input 8x8x3 | conv 3x3x(" + "1+" * 960 + "1)"], "at most 256 operators"),
    (["summary", "-e", "input 8x8x3 | conv 3x3x(1" + "0" * 400 + "/7)"], "is too large"),
    (["summary", "-e", "input 8x8x3 | repeat 16000 { upsample 1000000000 }"], "passes 10^18"),
    (["summary", "specs/vgg16.cnn", "--input", "3x224x224"], "did you mean 224x224x3?"),
    (["summary", "specs/vgg16.cnn", "--input", "224,224,3"], "sizes are joined with x"),
]


@pytest.mark.parametrize("args, said", HUGE, ids=[
    "adaptive-pool", "memory-digits", "long-number", "long-sum", "huge-fraction",
    "size-overflow", "channels-first", "commas"])
def test_huge_numbers_end_in_one_line_within_bounded_memory(args, said):
    # 1.5 GiB of address space at most: a run that tried to hold more would fail, not pass
    done = cnncalc(*args, preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_AS, (3 << 30, 3 << 30)), timeout=10)
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")


def test_sizes_over_ten_million_sizes_runs_in_bounded_memory():
    done = cnncalc("sizes", "specs/vgg16.cnn", "--open", "--range", "1:9999999",
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)))
    assert done.returncode == 0, done.stderr
    # VGG16's five 2x2 pools: exact at every multiple of 32
    assert "exact: 32 to 9999968, every 32 (312,499 sizes)" in done.stdout
