"""`python -m benchmarks.current`: the table that opens BENCHMARKS.md, measured again by one command.

    python -m benchmarks.current [--dry-run] [--quick] [--only NAME,...] [--file PATH]

Runs the benchmarks of BENCHMARKS below one after another, each in its own process from the checkout's root with
`--json` into a temporary folder, reads each row's figures from that JSON, and rewrites what lies between the
lines `<!-- current: begin -->` and `<!-- current: end -->` of BENCHMARKS.md (a temporary file renamed over it);
everything outside the markers stays as it is. The table says when, at which commit, on which machine and under
which load average it was measured, and each row's command: run alone, it prints the full tables.

`--dry-run` prints the table instead of writing it. `--quick` runs every benchmark with few repeats: it checks
the setup and measures nothing (the tests run it). `--only` runs the benchmarks named (the table then holds their
rows alone). A benchmark that fails stops nothing, but then the file is left as it was and the exit status is 1.
About 5-10 minutes on a 2-core machine; run it on a quiet one, since every figure moves with the load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from benchmarks.bench.timing import machine

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- current: begin -->", "<!-- current: end -->"
COMMAND = "python -m benchmarks.current"


@dataclass(frozen=True)
class Benchmark:
    """One command and the table rows its JSON gives."""

    name: str
    command: tuple[str, ...]  # as the table shows it; "python" runs as this interpreter, from the checkout's root
    quick: tuple[str, ...]  # the command under --quick: the same benchmark with few repeats
    rows: Callable[[dict], list[tuple[str, str, str]]]  # the JSON -> [(what, symcompile, peer)]
    json_to_stdout: bool = False  # `--json` prints the JSON, rather than `--json PATH` writing it
    needs: tuple[str, ...] = ()  # peers it cannot run without: where one is missing, its row says so

    def argv(self, quick, json_path):
        words = list(self.quick if quick else self.command)
        words[0] = sys.executable
        return words + (["--json"] if self.json_to_stdout else ["--json", str(json_path)])


# --- figures: a median with its range, in one unit ----------------------------------------------------------------


UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))


def median_range(median, low, high, repeats):
    """'1.27 ms (1.23-1.34)': the median, and the min and max in the median's unit; '(once)' for one repeat."""
    unit, scale = next(((unit, scale) for unit, scale in UNITS if median >= scale), UNITS[-1])
    text = f"{number(median / scale)} {unit}"
    return f"{text} (once)" if repeats < 2 else f"{text} ({number(low / scale)}-{number(high / scale)})"


def number(value):
    """Three significant digits, without an exponent: 0.817, 12.3, 4,360, 542,000."""
    rounded = float(f"{value:.3g}")
    return f"{value:.3g}" if abs(rounded) < 1000 else f"{rounded:,.0f}"


def spread(seconds):
    return median_range(statistics.median(seconds), min(seconds), max(seconds), len(seconds))


def timing_spread(timing):
    """A scenario row's timing ({median, low, high, repeats})."""
    return median_range(timing["median"], timing["low"], timing["high"], timing["repeats"])


def scenario_rows(figures):
    """{table title: {row name: row}} of a `python -m benchmarks --json` file."""
    return {table["title"]: {row["name"]: row for row in table["rows"]}
            for scenario in figures["scenarios"] for table in scenario["tables"]}  # fmt: skip


def peer_cell(rows, prefix, label):
    """The rows whose names start with `prefix`, each as 'LABEL detail median (range)' or what its note says."""
    cells = []
    for name, row in rows.items():
        if not name.startswith(prefix):
            continue
        detail = name.rsplit(", ", 1)[1] if ", " in name else ""
        if row["timing"] is None:
            cells.append(f"{label}: {row['note']}")
        else:
            cells.append(" ".join(filter(None, (label, detail, timing_spread(row["timing"])))))
    return "; ".join(cells) or f"{label}: no row"


# --- the rows of each benchmark's JSON ----------------------------------------------------------------------------


def sequential_loop_rows(figures):
    return [("the blog's sequential loop, per iteration (generated/seed_mlp.py)",
             spread(figures["seconds_per_iteration"]), "-")]  # fmt: skip


def seed_comparison_rows(figures):
    rows = {(row["table"], row["name"], row["update"]): row for row in figures["rows"]}
    subs = rows["per_iteration", "SymPy subs loop (the blog's method)", "sequential"]
    compiled = rows["per_iteration", "compiled module train()", "sequential"]
    whole = next(row for row in figures["rows"] if row["table"] == "runs")
    return [
        ("the seed, sequential update, per iteration: the blog's subs loop against the compiled loop",
         _median_range(compiled), f"SymPy subs {_median_range(subs)}, {number(subs['ratio'])}x the compiled time"),
        (f"the seed, {whole['name'].split(': ')[1]} (the whole train())", _median_range(whole), "target 1 ms"),
    ]  # fmt: skip


def _median_range(row):
    return median_range(row["median"], row["low"], row["high"], row["repeats"])


def seed_hand_rows(figures):
    ratios = figures["ratios"]
    ratio = f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})"
    return [(f"the seed's simultaneous loop, per iteration (median of {len(ratios)} processes)",
             f"{spread(figures['compiled'])}; {ratio} the hand-written time",
             f"hand-written Numba backprop {spread(figures['hand'])}")]  # fmt: skip


def minibatch_rows(figures):
    rows = next(rows for title, rows in scenario_rows(figures).items() if "time per epoch" in title)
    compiled = timing_spread(rows["compiled module train()"]["timing"])
    peers = f"{peer_cell(rows, 'JAX', 'JAX')}; {peer_cell(rows, 'PyTorch', 'PyTorch')}"
    return [("digits 64-32-10, Adam on batches of 32, per epoch", compiled, peers)]


DATASET_WORKLOADS = {"bench_digits": "digits 64-32-10, full batch, per epoch",
                     "bench_mlp_2_16_16_1": "2-16-16-1 on 4,096 samples, full batch, per epoch"}  # fmt: skip


def dataset_rows(figures):
    found = []
    for title, rows in scenario_rows(figures).items():
        model = title.split(" ", 1)[0]
        if model not in DATASET_WORKLOADS or "time per epoch" not in title:
            continue
        compiled = timing_spread(rows["compiled module train(), default threads"]["timing"])
        one = rows.get("compiled module train(threads=1)")
        if one and one["timing"]:
            compiled += f"; 1 thread {timing_spread(one['timing'])}"
        peers = f"{peer_cell(rows, 'JAX', 'JAX')}; {peer_cell(rows, 'hand-written NumPy', 'NumPy')}"
        found.append((DATASET_WORKLOADS[model], compiled, peers))
    return found


def curve_fit_rows(figures):
    first, loop = figures["first"], figures["loop"]
    fits = loop["fits"]
    ours, scipy = (statistics.median(loop["seconds"][side]) for side in ("symcompile", "SciPy"))
    per_fit = {side: [s / fits for s in loop["seconds"][side]] for side in ("symcompile", "SciPy")}
    return [
        ("the first `curve_fit` of a new formula, whole fresh process", spread(first["whole_process_seconds"]),
         f"target 1.5 s; its CPU time {spread(first['cpu_seconds'])}"),
        (f"{fits:,} `curve_fit` calls of one formula, per fit", spread(per_fit["symcompile"]),
         f"SciPy curve_fit {spread(per_fit['SciPy'])}, {scipy / ours:.2f}x"),
    ]  # fmt: skip


def nist_rows(figures):
    solved, of = figures["nist"]["solved"], figures["nist"]["of"]
    return [("NIST StRD, 27 problems x 2 starts, solved (parameters to 6 digits, standard errors to 4)",
             f"{solved['symcompile']} of {of}", f"SciPy curve_fit {solved['SciPy']} of {of}")]  # fmt: skip


def startup_rows(figures):
    seconds, failures = figures["seconds"], figures["failures"]

    def case(letter, label=""):
        if letter in failures:
            return f"{label}failed (run the command)"
        values = seconds.get(letter, {}).get("peer" if letter in "cf" else "this")
        return f"{label}{spread(values)}" if values else f"{label}not run"

    jax = case("c", "JAX script ") if JAX else "JAX script: jax not installed"
    rows = [("`train digits`, second run, whole process", case("b"), "target 0.8 s (issue 20)")]
    if "h" in seconds or "h" in failures:
        rows.append(("`train digits`, a new model, the runtime compiled, whole process", case("h"), jax))
    if "a" in seconds or "a" in failures:
        rows.append(("`train digits`, first-ever run (empty Numba cache), whole process", case("a"), jax))
    return rows


JAX = importlib.util.find_spec("jax") is not None  # the startup's JAX script (case c) fails without it
BENCHMARKS = (
    Benchmark("seed-loop", ("python", "benchmarks/sequential_loop.py", "generated/seed_mlp.py", "9", "200000"),
              ("python", "benchmarks/sequential_loop.py", "generated/seed_mlp.py", "3", "20000"),
              sequential_loop_rows),
    Benchmark("seed-subs", ("python", "-m", "symcompile", "bench", "--out-dir", "generated/current"),
              ("python", "-m", "symcompile", "bench", "--out-dir", "generated/current", "--quick"),
              seed_comparison_rows),
    Benchmark("seed-hand", ("python", "-m", "benchmarks.bench.seed_hand", "--processes", "3"),
              ("python", "-m", "benchmarks.bench.seed_hand", "--processes", "1", "--rounds", "3",
               "--iterations", "20000"),
              seed_hand_rows, json_to_stdout=True),
    Benchmark("minibatch", ("python", "-m", "benchmarks", "--scenario", "minibatch", "--epochs", "10"),
              ("python", "-m", "benchmarks", "--scenario", "minibatch", "--quick"), minibatch_rows),
    Benchmark("dataset", ("python", "-m", "benchmarks", "--scenario", "dataset", "--fresh-processes", "0"),
              ("python", "-m", "benchmarks", "--scenario", "dataset", "--quick"), dataset_rows),
    Benchmark("curve-fit", ("python", "benchmarks/curve_fit/bench.py", "first", "loop", "--rounds", "3"),
              ("python", "benchmarks/curve_fit/bench.py", "first", "loop", "--rounds", "1"), curve_fit_rows,
              needs=("scipy",)),
    Benchmark("nist", ("python", "benchmarks/curve_fit/bench.py", "nist", "--rounds", "1"),
              ("python", "benchmarks/curve_fit/bench.py", "nist", "--rounds", "1"), nist_rows, needs=("scipy",)),
    Benchmark("startup",
              ("python", "benchmarks/startup/bench.py", "--repeat", "3", "--cases", "abhc" if JAX else "abh"),
              ("python", "benchmarks/startup/bench.py", "--repeat", "1", "--cases", "b"), startup_rows),
)  # fmt: skip
NAMES = tuple(b.name for b in BENCHMARKS)


# --- running -----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    benchmark: Benchmark
    rows: list  # [(what, symcompile, peer)]
    load: tuple[float, float] | None  # 1-minute load average at the command's start and end (None: not run)
    seconds: float
    error: str = ""  # why it failed: the command's last line of errors


def run_benchmark(benchmark, quick, folder):
    """Run one benchmark's command and read its rows from its JSON; a failure becomes the Outcome's error."""
    missing = [peer for peer in benchmark.needs if importlib.util.find_spec(peer) is None]
    if missing:
        return Outcome(benchmark, [(benchmark.name, "not run", f"{', '.join(missing)} not installed")], None, 0)
    json_path = Path(folder) / f"{benchmark.name}.json"
    argv = benchmark.argv(quick, json_path)
    load_start, began = os.getloadavg()[0], time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds, load = time.perf_counter() - began, (load_start, os.getloadavg()[0])
    if done.returncode:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        return Outcome(benchmark, [], load, seconds, f"exit {done.returncode}: {last}")
    try:
        figures = json.loads(done.stdout.strip().splitlines()[-1]) if benchmark.json_to_stdout else (
            json.loads(json_path.read_text(encoding="utf-8")))  # fmt: skip
        return Outcome(benchmark, benchmark.rows(figures), load, seconds)
    except (OSError, ValueError, KeyError, IndexError, StopIteration) as exc:
        return Outcome(benchmark, [], load, seconds, f"its JSON could not be read: {type(exc).__name__}: {exc}")


def run_all(benchmarks, quick):
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="symcompile-current-") as folder:
        for k, benchmark in enumerate(benchmarks, 1):
            print(f"[{k}/{len(benchmarks)}] {shown(benchmark, quick)}", file=sys.stderr, flush=True)
            outcome = run_benchmark(benchmark, quick, folder)
            state = f"FAILED, {outcome.error}" if outcome.error else "done"
            print(
                f"      {state} in {outcome.seconds:.0f} s, load {load_text(outcome.load)}", file=sys.stderr, flush=True
            )
            outcomes.append(outcome)
    return outcomes


def load_text(load):
    return "-" if load is None else f"{load[0]:.1f}-{load[1]:.1f}"


def shown(benchmark, quick):
    return " ".join(benchmark.quick if quick else benchmark.command)


# --- the table ------------------------------------------------------------------------------------------------------


def git(*args):
    done = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def commit_text():
    """'main at 1a2b3c4' and whether the working tree had changes (git's index left alone)."""
    commit = git("rev-parse", "--short", "HEAD") or "an unknown commit"
    branch = git("rev-parse", "--abbrev-ref", "HEAD") or "?"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{branch} at {commit}" + (" with uncommitted changes" if changed else "")


def invocation(args):
    """The command as the table shows it (without --dry-run and --file)."""
    only = f" --only {','.join(b.name for b in args.only)}" if args.only else ""
    return f"{COMMAND}{' --quick' if args.quick else ''}{only}"


def table(outcomes, started, load_before, load_after, seconds, args):
    where = machine()
    loads = ", ".join(f"{x:.2f}" for x in load_before), ", ".join(f"{x:.2f}" for x in load_after)
    quick = " (`--quick`: few repeats, a check of the setup, not figures to quote)" if args.quick else ""
    lines = [
        "## Current figures",
        "",
        textwrap.fill(
            f"Measured {started:%Y-%m-%d %H:%M} UTC by `{invocation(args)}`{quick}, {seconds / 60:.1f} min, at "
            f"{commit_text()}; {where['cpu']}, {where['cpus']} cores, Python {where['python']}; load average "
            f"(1, 5, 15 min) {loads[0]} before, {loads[1]} after. Medians of repeats, the min-max in brackets; "
            "each row's command, run alone, prints its full tables and checks. The load column is the 1-minute "
            "load average at the command's start and end: above about 1, other work shared the "
            f"{where['cpus']} cores with the benchmark, and its figures are slower than on a quiet machine.",
            width=115,
            break_long_words=False,
            break_on_hyphens=False,
        ),
        "",
        "| what | symcompile | peer | load | command |",
        "| --- | --- | --- | --- | --- |",
    ]
    for outcome in outcomes:
        command = f"`{shown(outcome.benchmark, args.quick)}`"
        load = load_text(outcome.load)
        rows = [(outcome.benchmark.name, f"failed: {outcome.error}", "")] if outcome.error else outcome.rows
        for what, ours, peer in rows:
            cells = [cell.replace("|", "\\|") for cell in (what, ours, peer)]
            lines.append(f"| {' | '.join(cells)} | {load} | {command} |")
    return "\n".join(lines)


def replace_between_markers(text, new):
    """`text` with what lies between its BEGIN and END lines replaced by `new`; a ValueError without them."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the file needs one line {BEGIN} and, after it, one line {END}")
    head, rest = text.split(BEGIN)
    tail = rest.split(END)[1]
    return f"{head}{BEGIN}\n{new}\n{END}{tail}"


def write_atomically(path, text):
    """Write a temporary file beside `path`, then rename it over `path`: a reader never sees half a file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the command line -----------------------------------------------------------------------------------------------


def chosen(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"benchmarks are {', '.join(NAMES)}; got {text!r}")
    return [b for b in BENCHMARKS if b.name in names]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the table; leave the file as it is")
    parser.add_argument("--quick", action="store_true", help="few repeats: checks the setup, measures nothing")
    parser.add_argument("--only", type=chosen, metavar="NAME,...", help=f"some of: {', '.join(NAMES)}")
    parser.add_argument("--file", type=Path, default=ROOT / "BENCHMARKS.md", help="the file (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        replace_between_markers(args.file.read_text(encoding="utf-8"), "")  # before minutes of measuring
    except (OSError, ValueError) as exc:
        parser.error(f"{args.file}: {exc}")
    return args


def main(argv=None):
    args = parse_args(argv)
    started, load_before, began = datetime.now(timezone.utc), os.getloadavg(), time.perf_counter()
    outcomes = run_all(args.only or BENCHMARKS, args.quick)
    text = table(outcomes, started, load_before, os.getloadavg(), time.perf_counter() - began, args)
    failed = [o for o in outcomes if o.error]
    if args.dry_run or failed:
        print(text)
    if failed:
        print(f"{len(failed)} benchmark(s) failed ({', '.join(o.benchmark.name for o in failed)}); "
              f"{args.file} left as it was", file=sys.stderr)  # fmt: skip
        return 1
    if not args.dry_run:
        write_atomically(args.file, replace_between_markers(args.file.read_text(encoding="utf-8"), text))
        print(f"wrote the table into {args.file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
