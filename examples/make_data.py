"""Write the example datasets in examples/data/ (run once; the small CSV files are committed).

Each dataset is drawn from a fixed seed (or copied from scikit-learn), so
running this again gives the same bytes:

    python examples/make_data.py

`digits.csv` (scikit-learn's 8x8 handwritten digits, 475 kB) is not committed;
this script writes it when scikit-learn is installed.
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


def digits():
    """scikit-learn's 1797 handwritten digits: 64 pixels scaled to [0, 1] (x1..x64), one-hot y1..y10, and the label."""
    from sklearn.datasets import load_digits  # ships with scikit-learn: nothing is downloaded

    data = load_digits()
    pixels = data.data / 16.0  # the pixels are 0..16; k/16 is exact in 6 significant digits
    rows = [[*x, *np.eye(10)[label], label] for x, label in zip(pixels, data.target)]
    header = [f"x{j + 1}" for j in range(64)] + [f"y{k + 1}" for k in range(10)] + ["label"]
    write_csv("digits.csv", header, rows)


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    students()
    three_blobs()
    decay()
    try:
        digits()
    except ImportError:
        print("scikit-learn is not installed: examples/data/digits.csv not written")
