"""The benchmarks: measurements run from the checkout, never installed (benchmarks/README.md).

`python -m benchmarks` runs the scenarios of `benchmarks.bench`; the folders
beside it hold one question's scripts and results each. They compute with the
tests' references (tests/references/: the blog's loop, the NumPy network, NIST's
data), one copy shared with the tests, so that folder goes on the path here.
"""

import sys
from pathlib import Path

_REFERENCES_FOLDER = str(Path(__file__).resolve().parents[1] / "tests")
if _REFERENCES_FOLDER not in sys.path:
    sys.path.append(_REFERENCES_FOLDER)
