"""What a benchmark scenario measured: rows of timings in titled tables, printed and as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from benchmarks.bench.timing import Timing, format_seconds, load_average, machine


@dataclass
class Row:
    name: str  # the implementation or the cost measured
    timing: Timing | None  # None when it did not run; `note` says why
    update: str = ""  # "sequential" or "simultaneous", where it applies
    difference: float | None = None  # max |w - compiled w| after the same work (`compared_after`)
    compared_after: str = ""  # e.g. "20000 it."
    note: str = ""
    ratio: float | None = None  # median over the baseline's median (set by Table.compare_to)

    @property
    def remarks(self):
        if self.difference is None:
            return self.note
        check = f"max |w - compiled w| {self.difference:.1e} after {self.compared_after}"
        return "; ".join(r for r in (check, self.note) if r)


@dataclass
class Table:
    title: str
    unit: str  # "iteration", "epoch", "run" or "" (one-time costs)
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def compare_to(self, baselines):
        """Ratios to the baseline row with the same update rule ({update: Row})."""
        for row in self.rows:
            base = baselines.get(row.update)
            if row.timing and base is not None and base.timing:
                row.ratio = row.timing.median / base.timing.median

    def lines(self):
        per = f" (per {self.unit})" if self.unit else ""
        name_width = max([len(r.name) for r in self.rows] + [14])
        with_update = any(r.update for r in self.rows)
        with_ratio = any(r.ratio is not None for r in self.rows)

        def line(name, update, median, spread, ratio, remarks):
            cells = [f"{name:<{name_width}}"] + ([f"{update:<12}"] if with_update else [])
            cells += [f"{median:>9}", f"{spread:<21}"] + ([f"{ratio:>10}"] if with_ratio else [])
            return ("  " + "  ".join(cells + [remarks])).rstrip()

        out = [f"{self.title}{per}", line("", "update", "median", "min - max", "x compiled", "check / note")]
        for row in self.rows:
            if row.timing is None:
                out.append(line(row.name, row.update, "-", "", "", row.remarks))
                continue
            t = row.timing
            spread = f"{format_seconds(t.low)} - {format_seconds(t.high)}" if t.repeats > 1 else "(once)"
            ratio = "" if row.ratio is None else f"{row.ratio:.3g}"
            out.append(line(row.name, row.update, format_seconds(t.median), spread, ratio, row.remarks))
        return out


@dataclass
class Report:
    scenario: str
    model: str
    tables: list[Table] = field(default_factory=list)
    load_start: float | None = field(default_factory=load_average)
    load_end: float | None = None
    notes: list[str] = field(default_factory=list)

    def table(self, title, unit="") -> Table:
        self.tables.append(Table(title, unit))
        return self.tables[-1]

    def finish(self):
        self.load_end = load_average()
        return self

    def print(self, out=print):
        out(
            f"symcompile bench {self.scenario}: {self.model}  (load average {self.load_start} at start, {self.load_end} at end)"
        )
        for table in self.tables:
            out("")
            for line in table.lines():
                out(line)
        for note in self.notes:
            out(f"  note: {note}")

    def as_dict(self):
        return {
            "scenario": self.scenario,
            "model": self.model,
            "load_average": {"start": self.load_start, "end": self.load_end},
            "tables": [asdict(t) for t in self.tables],
            "notes": self.notes,
        }


class WeightCheck:
    """Row fields comparing a peer's weights with the compiled module's own train() after the same work."""

    def __init__(self, module, unit, **train_settings):
        self.module, self.unit, self.train_settings = module, unit, train_settings
        self._reference = {}  # (count, update) -> the compiled module's weights

    def __call__(self, weights, count, update="simultaneous"):
        key = (count, update)
        if key not in self._reference:
            run = self.module.train(max_iter=count, tol=0.0, update=update, **self.train_settings)
            self._reference[key] = run.w
        difference = float(np.max(np.abs(np.asarray(weights, dtype=float) - self._reference[key])))
        return {"difference": difference, "compared_after": f"{count} {self.unit}"}


def write_json(reports, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"machine": machine(), "scenarios": [r.as_dict() for r in reports]}, f, indent=2)
        f.write("\n")
