"""Start-up side by side: symcompile's commands and their peers, each a whole fresh process timed from outside.

    python benchmarks/startup/bench.py [--repeat N] [--before PATH] [--cases LETTERS] [--json PATH]

The cases (issue 20, "What must be shown"):

  a  `python -m symcompile train digits.toml --out-dir NEW`, NUMBA_CACHE_DIR new and empty
  b  the same command again, on a's output folder and cache (the second run)
  c  benchmarks/startup/digits_jax.py, the same job in JAX
  d  `python -m symcompile fit misra1a.toml --out-dir NEW`, NUMBA_CACHE_DIR new and empty
  e  the same command again, on d's output folder and cache
  f  benchmarks/startup/misra1a_curve_fit.py, the same fit by scipy.optimize.curve_fit
  g  `fit misra1b.toml` (NIST Misra1b: Misra1a's data, another formula) on d's output folder and cache, after d
     and e: through compile_events.py, which reports every function Numba compiles in that process
  h  `train digits.toml` into a new output folder with a and b's Numba cache: a model never compiled on this
     machine, the runtime already compiled (Numba's cache is per source folder, so the module's kernels compile)

Each round runs every case once, in chains (a b; c; d e g; f) that keep the order a case depends on; the chains'
order rotates from round to round. The report gives each case's median, min and max wall time, the ratios the
issue sets targets for, and the machine's load average at the start and the end (the figures mean something only
on a quiet machine).

`--before PATH`: another checkout of this repository (a git worktree of an older commit). The symcompile cases
run in it too (cwd PATH, PYTHONPATH=PATH, checked by printing `symcompile.__file__`), interleaved with this
checkout's in the same rounds, and the report adds before/after ratios. Each side runs its own examples/*.toml,
copied into the scratch folder with their data (checkouts.py: a worktree lacks examples/data/digits.csv, which is
not committed, and gets this checkout's). Everything a run writes (modules, caches, specs) lives in one temporary
folder, removed at the end.

`--cases LETTERS` (e.g. `abc`): only those cases, and in each chain the steps before a chosen one (b needs a's
folder and cache, so `--cases b` runs a and b). `--json PATH` also writes every case's seconds per side, the
failures and the load average as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from checkouts import THIS_CHECKOUT, Checkout, add_before_argument, checked_before, checkouts

HERE = Path(__file__).resolve().parent
PROCESS_TIMEOUT = 600  # seconds; a process that takes longer has hung

# Issue 20's targets.
DIGITS_VS_JAX = 0.75
DIGITS_SECOND_RUN = 0.8
MISRA1A_EMPTY_CACHE = 1.5

TITLES = {
    "a": "train digits, empty cache",
    "b": "train digits, second run",
    "c": "digits_jax.py (JAX)",
    "d": "fit misra1a, empty cache",
    "e": "fit misra1a, second run",
    "f": "misra1a_curve_fit.py (SciPy)",
    "g": "fit misra1b after misra1a (same cache)",
    "h": "train digits, new folder, runtime cached",
}
SYMCOMPILE_CASES = "abdegh"

# Misra1b (NIST StRD): the data of Misra1a, y = b1*(1 - (1 + b2*x/2)**(-2)); Start 1 as for Misra1a.
MISRA1B = """kind = "expression"
name = "misra1b"
description = "NIST StRD Misra1b, from its Start 1; certified b1 = 337.99746163, b2 = 3.9039091287e-4."
params = ["b1", "b2"]
inputs = ["x"]
targets = ["y"]
init = [500.0, 0.0001]
output = "b1*(1 - (1 + b2*x/2)**(-2))"
residual = "b1*(1 - (1 + b2*x/2)**(-2)) - y"

[data]
X = {X}
Y = {Y}
"""


@dataclass
class Results:
    """Wall seconds per (case, side name), failures, and (g)'s compile events, one list per run."""

    seconds: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)

    def add(self, case, side, seconds):
        self.seconds.setdefault((case, side), []).append(seconds)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds: each case runs once per round (default 5)")
    add_before_argument(parser)
    parser.add_argument("--cases", default="".join(TITLES), help="the cases to run (default: all, abcdefgh)")
    parser.add_argument("--json", metavar="PATH", help="also write the seconds as JSON to PATH")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.cases or set(args.cases) - set(TITLES):
        parser.error(f"--cases {args.cases!r}: letters among {''.join(TITLES)} expected")
    checked_before(parser, args.before)
    return args


def main(argv=None):
    args = parse_args(argv)
    digits_csv = THIS_CHECKOUT / "examples" / "data" / "digits.csv"
    if not digits_csv.is_file():
        sys.exit(f"{digits_csv} is missing: `python examples/make_data.py` writes it (needs scikit-learn)")
    load_start = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="symcompile-startup-"))
    try:
        sides = checkouts(args.before, scratch)
        for side in sides:
            write_misra1b(side.examples)
        results = Results()
        chains = chosen_steps(make_chains(sides), args.cases)
        for round_index in range(args.repeat):
            k = round_index % len(chains)
            for chain in chains[k:] + chains[:k]:
                run_chain(chain, scratch / f"round{round_index}", results, round_index, args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load_end = os.getloadavg()
    report(results, sides, args.repeat, load_start, load_end)
    if args.json:
        write_json(args.json, results, load_start, load_end)
    return 1 if results.failures else 0


def chosen_steps(chains, cases):
    """Each chain up to its last chosen step (the steps before it prepare its folder); chains with none dropped."""
    kept = []
    for chain in chains:
        last = max((k for k, step in enumerate(chain) if step.case in cases), default=None)
        if last is not None:
            kept.append(chain[: last + 1])
    return kept


def write_json(path, results, load_start, load_end):
    """{"seconds": {case: {side: [seconds]}}, "titles", "failures": {case: [side]}, "load_average"}."""
    seconds, failures = {}, {}
    for (case, side), values in results.seconds.items():
        seconds.setdefault(case, {})[side] = values
    for case, side in results.failures:
        failures.setdefault(case, []).append(side)
    figures = {"seconds": seconds, "titles": TITLES, "failures": failures,
               "load_average": {"start": load_start[0], "end": load_end[0]}}  # fmt: skip
    with open(path, "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=1)


def write_misra1b(examples):
    """misra1b.toml beside the copied misra1a.toml, with its data."""
    with open(examples / "misra1a.toml", "rb") as f:
        data = tomllib.load(f)["data"]
    (examples / "misra1b.toml").write_text(MISRA1B.format(X=data["X"], Y=data["Y"]))


@dataclass
class Step:
    """One case of a chain: which case, on which side (None: a peer), and its command given the chain's folder."""

    case: str
    side: Checkout | None
    command: object  # folder -> (argv, cwd, env)


def make_chains(sides):
    """The chains of one round: steps that must run in order, sharing one folder (output folder and cache)."""
    python = sys.executable
    chains = []
    for side in sides:
        chains.append([Step("a", side, symcompile("train", side, "digits.toml")),
                       Step("b", side, symcompile("train", side, "digits.toml")),
                       Step("h", side, symcompile("train", side, "digits.toml", out="new_out"))])  # fmt: skip
    chains.append([Step("c", None, lambda folder: ([python, str(HERE / "digits_jax.py")], THIS_CHECKOUT, None))])
    for side in sides:
        chains.append([Step("d", side, symcompile("fit", side, "misra1a.toml")),
                       Step("e", side, symcompile("fit", side, "misra1a.toml")),
                       Step("g", side, symcompile("fit", side, "misra1b.toml", events=True))])  # fmt: skip
    chains.append([Step("f", None, lambda folder: ([python, str(HERE / "misra1a_curve_fit.py")], THIS_CHECKOUT, None))])
    return chains


def symcompile(command, side, spec, events=False, out="out"):
    """A step's command: `python -m symcompile COMMAND SPEC --out-dir FOLDER/out` with FOLDER/cache as Numba's
    cache, run in the side's checkout; with `events`, through compile_events.py."""
    program = [str(HERE / "compile_events.py")] if events else ["-m", "symcompile"]

    def argv(folder):
        line = [sys.executable, *program, command, str(side.examples / spec), "--out-dir", str(folder / out)]
        return line, side.root, side.env(cache=folder / "cache")

    return argv


def run_chain(chain, round_folder, results, round_index, rounds):
    """Run the chain's steps in order in a new folder; a failed step ends the chain (the next ones need it)."""
    round_folder.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=round_folder))
    for step in chain:
        argv, cwd, env = step.command(folder)
        start = time.perf_counter()
        done = run_process(argv, cwd, env)
        seconds = time.perf_counter() - start
        side = step.side.name if step.side else "peer"
        print(f"round {round_index + 1}/{rounds}  {step.case} {TITLES[step.case]:<40} {side:<6} {seconds:7.3f} s"
              + ("" if done.returncode == 0 else f"  FAILED (exit {done.returncode})"), file=sys.stderr)  # fmt: skip
        if done.returncode != 0:
            results.failures.setdefault((step.case, side), (argv, done.stdout[-1500:] + done.stderr[-3000:]))
            return
        results.add(step.case, side, seconds)
        if step.case == "g":
            results.events.setdefault(side, []).append(compile_events(done.stdout))


def run_process(argv, cwd, env):
    """The finished process; one that outlives PROCESS_TIMEOUT is killed and counts as failed."""
    try:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(argv, "timeout", stdout, f"killed after {PROCESS_TIMEOUT} s")


def compile_events(stdout):
    """The events compile_events.py printed as its JSON line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("COMPILE_EVENTS "):
            return json.loads(line.removeprefix("COMPILE_EVENTS "))
    return []


# --- the report ---------------------------------------------------------------------------------------------------


def report(results, sides, rounds, load_start, load_end):
    names = [side.name for side in sides]
    print()
    print(f"Start-up, whole fresh processes: {rounds} round(s), chains rotated each round; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"load average (1, 5, 15 min): at start {_load(load_start)}, at end {_load(load_end)}")
    print()
    print_table(results, names)
    print()
    print_targets(results, names)
    if len(names) == 2:
        print()
        print_before_after(results, *names)
    for side in names:
        print()
        print_events(side, results.events.get(side, []))
    for (case, side), (argv, output) in results.failures.items():
        print(f"\nFAILED: {case} ({TITLES[case]}) on {side}: {' '.join(argv)}\n{output}")


def _load(load):
    return ", ".join(f"{x:.2f}" for x in load)


def _median(results, case, side):
    values = results.seconds.get((case, side))
    return statistics.median(values) if values else None


def _cell(values):
    if not values:
        return "failed"
    return f"{statistics.median(values):7.3f} ({min(values):.3f}-{max(values):.3f})"


def print_table(results, names):
    """Cases by rows, sides by columns: median (min-max) seconds; peers in a column of their own."""
    columns = names + ["peer"]
    print(f"| case | {' | '.join(f'{c}: median (min-max) s' for c in columns)} |")
    print("|" + " --- |" * (len(columns) + 1))
    for case, title in TITLES.items():
        sides = names if case in SYMCOMPILE_CASES else ["peer"]
        if not any((case, side) in results.seconds or (case, side) in results.failures for side in sides):
            continue  # not run (--cases)
        cells = [_cell(results.seconds.get((case, c))) if c in sides else "" for c in columns]
        print(f"| {case} {title} | {' | '.join(cells)} |")


def _ratio(numerator, denominator):
    return f"{numerator / denominator:.2f}" if numerator is not None and denominator else "n/a"


def _verdict(value, limit, strict):
    if value is None:
        return "n/a"
    return "met" if (value < limit if strict else value <= limit) else "NOT met"


def print_targets(results, names):
    """Issue 20's targets next to each side's medians."""
    jax, curve_fit = _median(results, "c", "peer"), _median(results, "f", "peer")
    print("Targets (issue 20), on medians:")
    for side in names:
        a, b, d = (_median(results, case, side) for case in "abd")
        ratio = a / jax if a is not None and jax else None
        print(
            f"  {side:<6} digits empty cache / JAX script = {_ratio(a, jax)} "
            f"(target <= {DIGITS_VS_JAX}: {_verdict(ratio, DIGITS_VS_JAX, False)})"
        )
        h = _median(results, "h", side)
        print(
            f"  {side:<6} digits new model, runtime cached / JAX script = {_ratio(h, jax)} "
            f"(target <= {DIGITS_VS_JAX}: {_verdict(h / jax if h is not None and jax else None, DIGITS_VS_JAX, False)})"
        )
        print(
            f"  {side:<6} digits second run = {_seconds(b)} "
            f"(target < {DIGITS_SECOND_RUN} s: {_verdict(b, DIGITS_SECOND_RUN, True)})"
        )
        print(f"  {side:<6} misra1a empty cache = {_seconds(d)} "
              f"(target < {MISRA1A_EMPTY_CACHE} s: {_verdict(d, MISRA1A_EMPTY_CACHE, True)}); "
              f"/ curve_fit script = {_ratio(d, curve_fit)}, second run / curve_fit script = "
              f"{_ratio(_median(results, 'e', side), curve_fit)}")  # fmt: skip


def _seconds(value):
    return "n/a" if value is None else f"{value:.3f} s"


def print_before_after(results, before, after):
    print(f"{after} / {before} (medians; below 1: {after} is faster):")
    for case in SYMCOMPILE_CASES:
        print(f"  {case} {TITLES[case]:<40} {_ratio(_median(results, case, after), _median(results, case, before))}")


def print_events(side, runs):
    """(g)'s compile events: the count in each run, and the last run's functions (outermost compiles first)."""
    if not runs:
        print(f"(g) on {side}: no compile events recorded")
        return
    events = runs[-1]
    total = sum(e["seconds"] for e in events if e["depth"] == 0)
    kinds = {}
    for e in events:
        kinds.setdefault(_origin(e["function"]), []).append(e)
    print(f"(g) on {side}: functions Numba compiled in each run: {', '.join(str(len(run)) for run in runs)}; "
          f"the last run's, {total:.3f} s in all:")  # fmt: skip
    for origin in ("the generated module", "symcompile (the runtime)", "Numba's own library"):
        print(f"  {len(kinds.get(origin, []))} of {origin}")
    for e in events:
        if _origin(e["function"]) != "Numba's own library":
            print(f"    {'  ' * e['depth']}{e['seconds']:7.3f} s  {e['function']}")


def _origin(function):
    """Who wrote a compiled function: Numba (its overloads of NumPy and builtins), symcompile's own package (the
    runtime), or the generated module (registered under a name of its own, _symcompile_<digest>)."""
    if function.startswith("numba."):
        return "Numba's own library"
    return "symcompile (the runtime)" if function.startswith("symcompile.") else "the generated module"


if __name__ == "__main__":
    raise SystemExit(main())
