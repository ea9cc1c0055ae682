"""The build pipeline's outputs: determinism, the committed reference module, standalone imports, the CLI."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symcompile.cli import main
from symcompile.pipeline import build, generate
from symcompile.seed import seed_model

REPO = Path(__file__).resolve().parents[1]
COMMITTED_SEED = REPO / "generated" / "seed_mlp.py"
SEED_REBUILD = "python -m symcompile build"


def _provenance(source):
    return next(line for line in source.splitlines() if line.startswith("# Provenance:"))


def test_builds_are_byte_for_byte_reproducible():
    first = generate(seed_model(), rebuild_command=SEED_REBUILD).text
    second = generate(seed_model(), rebuild_command=SEED_REBUILD).text
    assert first == second


def test_committed_seed_module_is_what_build_writes():
    regenerated = generate(seed_model(), rebuild_command=SEED_REBUILD).text
    committed = COMMITTED_SEED.read_text(encoding="utf-8")
    if _provenance(committed) != _provenance(regenerated) and committed != regenerated:
        pytest.skip(f"library versions differ from the committed module's ({_provenance(committed)}); rebuild it")
    assert committed == regenerated


def test_unchanged_module_is_not_rewritten(tmp_path):
    first = build(seed_model(), tmp_path)
    mtime = first.path.stat().st_mtime_ns
    second = build(seed_model(), tmp_path)
    assert first.changed and not second.changed
    assert second.path.stat().st_mtime_ns == mtime


def _run_python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True)


def test_generated_module_is_standalone_and_cached(tmp_path):
    """A fresh process imports the module without sympy or symcompile, and a second one does not recompile."""
    build(seed_model(), tmp_path)
    probe = (
        "import sys, json, seed_mlp as m\n"
        "m.train(max_iter=1); m.loss_and_grad(); m.forward()\n"
        "kernels = (m._train_sequential_kernel, m._loss_and_grad_kernel, m._forward_kernel)\n"
        "print(json.dumps({'leaked': sorted(k for k in sys.modules if k.split('.')[0] in ('sympy', 'symcompile')),\n"
        "  'hits': sum(sum(k.stats.cache_hits.values()) for k in kernels),\n"
        "  'misses': sum(sum(k.stats.cache_misses.values()) for k in kernels)}))"
    )
    first = json.loads(_run_python(probe, tmp_path).stdout)
    second = json.loads(_run_python(probe, tmp_path).stdout)
    assert first["leaked"] == [] and second["leaked"] == []
    assert first["misses"] == 3 and first["hits"] == 0
    assert second["misses"] == 0 and second["hits"] == 3


def test_cli_build_reports_stages_and_writes_module(tmp_path, capsys):
    assert main(["build", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for stage in ("rewrite", "differentiate", "optimize", "emit", "write", "total"):
        assert stage in out
    assert "operations after CSE" in out
    assert (tmp_path / "seed_mlp.py").is_file()


def test_cli_train_prints_the_blog_result(tmp_path, capsys):
    assert main(["train", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "output 0.649864477526152" in out
    assert "output 0.999453185534" in out
    assert "iterations 999" in out


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, capsys):
    assert main(["train", "--out-dir", str(tmp_path), "--max-iter", "-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symcompile: error:") and "max_iter" in err and "\n" not in err


def test_python_dash_m_entry_point_reports_its_startup_and_stages(tmp_path):
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "symcompile", "build", "--out-dir", str(tmp_path)], capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert "seed_mlp" in done.stdout
    seconds = {line.split()[0]: float(line.split()[1]) for line in done.stdout.splitlines()[1:]}
    assert list(seconds) == ["startup", "model", "rewrite", "differentiate", "optimize", "emit", "write", "total"]
    total = seconds.pop("total")
    assert total == pytest.approx(sum(seconds.values()), abs=0.0005 * len(seconds))  # rows rounded to 1 ms
    # The startup counts from the process's start (in 10 ms clock ticks), which came after `started`.
    assert 0 < seconds["startup"] and total <= wall + 0.011
