"""Issue 19's must-shows for items 10 and 11, in fresh processes (slow: about 5 minutes on 2 busy cores).

- Ctrl-C at 32 moments spread over the start, build, Numba compile and run of `train`, `fit` and `fit --many`
  (with a fresh or a filled cache): every one exits 130, with one line on stderr and no traceback, and fit
  --many's --out is the previous file or the fits reached.
- kill -9 during `train --save`, `predict --out` and `fit --many --out`, at random moments and while the file is
  being written: the file is always the old one or the new one, whole.

`python benchmarks/robustness/ctrl_c.py` and `kill_writes.py` print the tables (benchmarks/robustness/RESULTS.md).
"""

import random
import sys
from pathlib import Path

import pytest

# One implementation of each measurement: the scripts in benchmarks/robustness/, which print the tables of
# RESULTS.md; these slow tests run them and require every case to pass.
ROBUSTNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "robustness"
sys.path.insert(0, str(ROBUSTNESS))
import ctrl_c  # noqa: E402
import kill_writes  # noqa: E402

KILLS = 6  # per output: half at random moments, half while the file is being written (the script polls for it)


@pytest.mark.slow
@pytest.mark.measurement
def test_ctrl_c_at_moments_of_train_fit_and_fit_many_exits_130_in_one_line(tmp_path):
    failed = [row for row, ok in ctrl_c.checked_rows(tmp_path) if not ok]
    assert not failed, failed


@pytest.mark.slow
@pytest.mark.measurement
def test_kill_9_during_an_output_leaves_the_old_file_or_the_new_one(tmp_path):
    rows = kill_writes.kill_rows(tmp_path, KILLS, random.Random(19))
    for name, _, kills, old, new, bad, by_moment, _ in rows:
        assert bad == 0 and old + new == kills, (name, by_moment)
        assert "writing: " in by_moment, (name, by_moment)  # some kills landed while the file was being written
