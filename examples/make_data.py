"""Write the example datasets in examples/data/ (run once; the small CSV files are committed).

Each dataset is drawn from a fixed seed (or copied from scikit-learn), so
running this again gives the same bytes:

    python examples/make_data.py

`iris.csv` and `digits.csv` come from scikit-learn's copies of the two
datasets (this script writes them when scikit-learn is installed); iris.csv
(3 kB) is committed, digits.csv (475 kB) is not.
"""

import sys
from pathlib import Path

import numpy as np

from symcompile.writer import write_atomically

DATA = Path(__file__).resolve().parent / "data"


def write_csv(name, header, rows):
    lines = [",".join(header)] + [",".join(f"{v:.6g}" for v in row) for row in rows]
    text = "\n".join(lines) + "\n"
    write_atomically(DATA / name, lambda f: f.write(text.encode("utf-8")))  # whole or not at all


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


def iris():
    """Fisher's iris flowers, as scikit-learn ships them: four measurements in cm and the species as a class label
    (0 setosa, 1 versicolor, 2 virginica), the form a user's own CSV usually has."""
    from sklearn.datasets import load_iris  # ships with scikit-learn: nothing is downloaded

    data = load_iris()
    header = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    write_csv("iris.csv", header, [[*x, label] for x, label in zip(data.data, data.target)])


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
        iris()
        digits()
    except ImportError:  # not a success: the README's `make_data.py && train examples/digits.toml` must stop here
        sys.exit(
            "make_data.py: scikit-learn is not installed (pip install scikit-learn): iris.csv and digits.csv not written"
        )
