"""Atomic writes: a build that fails or is killed leaves the previous module intact; concurrent builds never mix."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.model import make_model
from symcompile.pipeline import build, generate
from symcompile.writer import load_module

REPO = Path(__file__).resolve().parents[1]

# A child process that builds the model `victim` with a given description (so the bytes differ per build)
# and pauses between writing its temporary file and renaming it: the moment a kill does the most harm.
PAUSING_BUILD = textwrap.dedent(
    """
    import os, sys, time
    import sympy as sp
    from symcompile.model import make_model
    from symcompile.pipeline import build

    out_dir, description, go_file = sys.argv[1:4]
    rename = os.replace

    def paused_rename(src, dst):
        print("temporary written:", src, flush=True)
        while not os.path.exists(go_file):  # the test kills us here, or creates go_file
            time.sleep(0.01)
        rename(src, dst)

    os.replace = paused_rename
    a, x, y = sp.symbols("a x y")
    build(make_model("victim", a * x, (a * x - y) ** 2, [a], [x], [y], description=description), out_dir)
    """
)


def victim(description):
    a, x, y = sp.symbols("a x y")
    return make_model("victim", a * x, (a * x - y) ** 2, [a], [x], [y], description=description)


def source_of(description):
    return generate(victim(description)).text


@pytest.fixture
def start_paused_build():
    """Start PAUSING_BUILD; returns (process, its temporary file). Children still running at the end are killed."""
    children = []

    def start(out_dir, description, go_file):
        child = subprocess.Popen(
            [sys.executable, "-c", PAUSING_BUILD, str(out_dir), description, str(go_file)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        children.append(child)
        line = child.stdout.readline()
        assert line.startswith("temporary written:"), line + child.stderr.read()
        return child, Path(line.split(":", 1)[1].strip())

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def stray_files(out_dir):
    return sorted(p.name for p in Path(out_dir).iterdir() if p.name != "victim.py" and p.name != "__pycache__")


@pytest.mark.slow
def test_killed_build_leaves_the_previous_module_intact(tmp_path, start_paused_build):
    old = build(victim("the old build"), tmp_path).path
    old_bytes = old.read_bytes()
    child, temporary = start_paused_build(tmp_path, "the new build", tmp_path / "never")
    assert temporary.read_text(encoding="utf-8") == source_of("the new build")  # all written, not yet renamed
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert old.read_bytes() == old_bytes
    # The stray temporary is hidden and not a module: no *.py glob or import picks it up.
    assert [p.name for p in tmp_path.glob("*.py")] == ["victim.py"]
    assert temporary.exists() and temporary.name.startswith(".victim.") and temporary.suffix == ".tmp"
    module = load_module(old)
    assert "the old build" in module.__doc__ and module.forward([2.0], [[3.0]])[0] == 6.0
    # The next build replaces the module as usual.
    assert build(victim("the new build"), tmp_path).changed
    assert old.read_text(encoding="utf-8") == source_of("the new build")


def test_failed_write_leaves_the_previous_module_and_no_temporary(tmp_path, monkeypatch):
    old = build(victim("the old build"), tmp_path).path
    old_bytes = old.read_bytes()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(SymcompileError, match="cannot write .*victim.py: No space left on device"):
        build(victim("the new build"), tmp_path)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(victim("the new build"), tmp_path)
    assert old.read_bytes() == old_bytes
    assert stray_files(tmp_path) == []


@pytest.mark.slow
def test_two_builds_at_once_leave_one_whole_module(tmp_path, start_paused_build):
    build(victim("the old build"), tmp_path)
    go = tmp_path / "go"
    first, first_temporary = start_paused_build(tmp_path, "build one", go)
    second, second_temporary = start_paused_build(tmp_path, "build two", go)
    assert first_temporary != second_temporary and first_temporary.exists() and second_temporary.exists()
    go.touch()  # both have written their bytes; now both rename
    for child in (first, second):
        assert child.wait(timeout=60) == 0, child.stderr.read()
    go.unlink()
    written = (tmp_path / "victim.py").read_text(encoding="utf-8")
    assert written in (source_of("build one"), source_of("build two"))
    assert stray_files(tmp_path) == []


def test_module_file_mode_follows_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        path = build(victim("mode"), tmp_path).path
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_an_unreadable_previous_file_is_replaced(tmp_path):
    path = tmp_path / "victim.py"
    path.write_bytes(b"\xff\xfe not a module")
    assert build(victim("fresh"), tmp_path).changed
    assert path.read_text(encoding="utf-8") == source_of("fresh")
