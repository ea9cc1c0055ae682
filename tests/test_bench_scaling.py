"""The scaling benchmark runs end to end on a tiny network and reports what it measured or skipped."""

import numpy as np
import pytest

from benchmarks.bench import main
from benchmarks.bench.scenario_scaling import format_table, n_params, run_scaling, scaling_model


def test_parameter_count_matches_the_built_network():
    for layers in ((2, 4, 1), (2, 8, 8, 1), (4, 16, 16, 1)):
        assert n_params(layers) == len(scaling_model(layers).params)
    assert n_params((4, 16, 16, 1)) == 369


@pytest.mark.slow
def test_run_scaling_measures_and_skips(tmp_path):
    rows = run_scaling(
        [(1, 2, 1)], ("diff", "reverse"), max_params={"diff": 6}, repeats=1, out_dir=tmp_path, warm_up=False
    )
    skipped, measured = rows
    assert (skipped["method"], skipped["params"], skipped["skipped"]) == ("diff", 7, "skipped: diff above 6 params")
    assert (measured["method"], measured["layout"], measured["params"]) == ("reverse", "unrolled", 7)
    assert set(measured["stage_s"]) == {"rewrite", "differentiate", "optimize", "emit", "write"}
    assert measured["lines"] == len((tmp_path / "scaling_1_2_1_reverse_auto.py").read_text().splitlines())
    assert measured["compile_grad_s"] > 0 and 0 < measured["gradient_s"] < 1
    np.testing.assert_array_equal(measured["grad"].shape, (7,))
    table = format_table(rows).splitlines()
    assert table[0].startswith("| network | method | layout | params |")
    assert "skipped: diff above 6 params" in table[2] and table[3].startswith("| 1-2-1 | reverse | unrolled | 7 |")


def test_main_rejects_unknown_methods(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--scenario", "scaling", "--methods", "diff,forward"])
    assert stop.value.code == 2
    assert "unknown gradient method 'forward'" in capsys.readouterr().err
