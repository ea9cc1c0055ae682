"""Write the example datasets in examples/data/ (run once; the CSV files are committed).

Each dataset is drawn from a fixed seed, so running this again gives the same
bytes:

    python examples/make_data.py
"""

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def write_csv(name, header, rows):
    lines = [",".join(header)] + [",".join(f"{v:.6g}" for v in row) for row in rows]
    (DATA / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def students(n=100, seed=1):
    """Exam results: the chance of passing grows with hours studied and hours slept (a logistic model)."""
    rng = np.random.default_rng(seed)
    studied = rng.uniform(0, 10, n)
    slept = rng.uniform(4, 9, n)
    chance = 1 / (1 + np.exp(-(1.2 * (studied - 5) + 0.8 * (slept - 6.5))))
    passed = (rng.uniform(size=n) < chance).astype(float)
    # The student column is there to show that the spec picks its columns by name.
    write_csv("students.csv", ["student", "hours_studied", "hours_slept", "passed"],
              zip(range(1, n + 1), studied, slept, passed))  # fmt: skip


def three_blobs(per_class=30, seed=2):
    """Three classes of points around three centres, with one-hot targets y1, y2, y3 (and the class as `label`)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    rows = []
    for label, centre in enumerate(centres):
        for x in centre + rng.normal(0, 0.9, (per_class, 2)):
            rows.append([*x, *np.eye(3)[label], label])
    write_csv("three_blobs.csv", ["x1", "x2", "y1", "y2", "y3", "label"], rows)


def decay(n=25, seed=3):
    """Noisy samples of y = 2.5 exp(-1.3 x) + 0.5."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 4, n)
    y = 2.5 * np.exp(-1.3 * x) + 0.5 + rng.normal(0, 0.03, n)
    write_csv("decay.csv", ["x", "y"], zip(x, y))


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    students()
    three_blobs()
    decay()
