"""`python -m benchmarks.current`: BENCHMARKS.md's opening table rewritten between its markers, nothing else.

The figures are measurements (never checked here); what is checked is that the table goes between the markers,
that the rest of the file stays byte for byte, that each row comes from its benchmark's JSON, and that a failure
or a file without markers leaves the file as it was.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import current

ROOT = Path(__file__).resolve().parents[1]


def outside_markers(text):
    """(before the begin marker, after the end marker)."""
    head, rest = text.split(current.BEGIN)
    return head, rest.split(current.END)[1]


def between_markers(text):
    return text.split(current.BEGIN)[1].split(current.END)[0]


def test_benchmarks_md_opens_with_the_table_between_markers():
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert text.count(current.BEGIN) == text.count(current.END) == 1
    table = between_markers(text)
    assert "| what | symcompile | peer | load | command |" in table
    assert f"by `{current.COMMAND}`" in table


def fake_benchmark(name, code, rows=None):
    """A benchmark whose command is `python -c CODE`; the JSON path arrives as sys.argv[2]."""
    command = ("python", "-c", code)
    return current.Benchmark(name, command, command, rows or (lambda figures: [(name, str(figures), "-")]))


def test_table_goes_between_the_markers_and_the_rest_stays(tmp_path, monkeypatch):
    seconds = [3e-7, 1e-7, 2e-7]
    code = f"import json, sys; json.dump({{'seconds_per_iteration': {seconds}}}, open(sys.argv[2], 'w'))"
    monkeypatch.setattr(current, "BENCHMARKS", (fake_benchmark("fake", code, current.sequential_loop_rows),))
    original = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(original, encoding="utf-8")
    os.chmod(copy, 0o644)

    assert current.main(["--file", str(copy)]) == 0

    written = copy.read_text(encoding="utf-8")
    assert outside_markers(written) == outside_markers(original)
    table = between_markers(written)
    assert table != between_markers(original)
    row = next(line for line in table.splitlines() if "sequential loop" in line)
    median = statistics.median(seconds)
    assert f"| {median * 1e9:.3g} ns ({min(seconds) * 1e9:.3g}-{max(seconds) * 1e9:.3g}) |" in row
    assert "`python -c import json" in row
    assert f"{os.cpu_count()} cores" in table and "load average" in table
    assert copy.stat().st_mode & 0o777 == 0o644  # the renamed temporary file kept the file's mode
    assert [p.name for p in tmp_path.iterdir()] == ["BENCHMARKS.md"]  # no temporary file left


def test_a_failed_benchmark_leaves_the_file_and_exits_1(tmp_path, monkeypatch, capsys):
    fails = fake_benchmark("fails", "import sys; sys.exit('no such peer')")
    monkeypatch.setattr(current, "BENCHMARKS", (fails,))
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text((ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"), encoding="utf-8")
    before = copy.read_bytes()

    assert current.main(["--file", str(copy)]) == 1

    assert copy.read_bytes() == before
    out = capsys.readouterr()
    assert "| fails | failed: exit 1: no such peer |" in out.out
    assert "left as it was" in out.err


def test_a_benchmark_whose_peer_is_missing_says_so_in_its_row(tmp_path, monkeypatch, capsys):
    never_run = current.Benchmark("needs-peer", ("python", "-c", "raise SystemExit(3)"),
                                  ("python", "-c", "raise SystemExit(3)"), lambda figures: [],
                                  needs=("no_such_peer_module",))  # fmt: skip
    monkeypatch.setattr(current, "BENCHMARKS", (never_run,))
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(f"{current.BEGIN}\n{current.END}\n", encoding="utf-8")

    assert current.main(["--file", str(copy), "--dry-run"]) == 0

    assert "| needs-peer | not run | no_such_peer_module not installed | - |" in capsys.readouterr().out


def test_dry_run_prints_and_leaves_the_file(tmp_path, monkeypatch, capsys):
    code = "import json, sys; json.dump({'x': 1}, open(sys.argv[2], 'w'))"
    monkeypatch.setattr(current, "BENCHMARKS", (fake_benchmark("fake", code),))
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(f"intro\n{current.BEGIN}\nold\n{current.END}\nnotes\n", encoding="utf-8")

    assert current.main(["--file", str(copy), "--dry-run"]) == 0

    assert copy.read_text(encoding="utf-8") == f"intro\n{current.BEGIN}\nold\n{current.END}\nnotes\n"
    assert "| fake | {'x': 1} | - |" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["no markers\n", f"{current.END}\n{current.BEGIN}\n",
                                  f"{current.BEGIN}\n{current.BEGIN}\n{current.END}\n"])  # fmt: skip
def test_a_file_without_its_markers_is_refused_before_measuring(tmp_path, text, capsys):
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        current.main(["--file", str(copy)])
    assert exit_info.value.code == 2
    assert "needs one line <!-- current: begin -->" in capsys.readouterr().err
    assert copy.read_text(encoding="utf-8") == text


def test_unknown_benchmark_names_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        current.main(["--only", "seed-loop,nonesuch", "--dry-run"])
    assert exit_info.value.code == 2
    assert "benchmarks are seed-loop" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_of_the_sequential_loop_rewrites_a_copy(tmp_path):
    """The real command, on the one benchmark that takes seconds: its row is the benchmark's own JSON figure."""
    original = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(original, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "benchmarks.current", "--quick", "--only", "seed-loop",
                           "--file", str(copy)], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = copy.read_text(encoding="utf-8")
    assert outside_markers(written) == outside_markers(original)
    table = between_markers(written)
    assert "`python -m benchmarks.current --quick --only seed-loop`" in table
    assert "`python benchmarks/sequential_loop.py generated/seed_mlp.py 3 20000`" in table
    assert "| the blog's sequential loop, per iteration (generated/seed_mlp.py) |" in table


@pytest.mark.slow
def test_benchmark_json_matches_its_printed_median(tmp_path):
    """sequential_loop.py's --json holds the rounds it timed; their median is the one it prints."""
    path = tmp_path / "loop.json"
    done = subprocess.run([sys.executable, "benchmarks/sequential_loop.py", "generated/seed_mlp.py", "3", "2000",
                           "--json", str(path)], cwd=ROOT, capture_output=True, text=True, check=True)  # fmt: skip
    figures = json.loads(path.read_text(encoding="utf-8"))
    assert len(figures["seconds_per_iteration"]) == 3
    printed = float(done.stdout.split()[0])
    assert printed == pytest.approx(statistics.median(figures["seconds_per_iteration"]) * 1e9, abs=0.06)


def test_figures_keep_three_digits_in_the_median_unit():
    assert current.spread([2.7e-4, 4.36e-3, 2.75e-4]) == "275 us (270-4,360)"
    assert current.spread([1.5]) == "1.5 s (once)"
    assert current.number(541_899.0) == "542,000"
