"""Issue 19, training semantics: one name for the update rule (items 1), divergence reported as such (5), the
history's rows aligned in mini-batch runs (6), and a run's recorded history bounded however long it runs (12).

The modules are the small examples (xor: 13 parameters, 4 samples; logistic: 3 parameters, 100 samples), built
once per module of tests; each rule trained compiles its loop once."""

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from symcompile import cli
from symcompile.data import split_rows
from symcompile.options import allowed
from symcompile.runtime import training
from symcompile.spec import load_spec_settings
from symcompile.writer import load_module

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
XOR, LOGISTIC, IRIS = (EXAMPLES / f"{name}.toml" for name in ("xor", "logistic", "iris"))


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("issue19_training")


def _built(spec, out_dir):
    assert cli.main(["build", str(spec), "--out-dir", str(out_dir)]) == 0
    return load_module(out_dir / f"{spec.stem}.py")


@pytest.fixture(scope="module")
def xor(out_dir):
    return _built(XOR, out_dir)


@pytest.fixture(scope="module")
def logistic(out_dir):
    return _built(LOGISTIC, out_dir)


def _train_cli(capsys, *arguments):
    """(exit status, stdout, stderr) of `python -m symcompile train ...`."""
    code = cli.main(["train", *map(str, arguments)])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *phrases):
    assert code == 2 and err.startswith("symcompile: error:") and err.count("\n") == 1, err
    for phrase in phrases:
        assert phrase in err, err


# --- item 1: optimizer names the rule; update is its older name, which must agree ---------------------------------


def test_cli_update_and_optimizer_that_disagree_are_one_line_errors(capsys, out_dir):
    code, out, err = _train_cli(capsys, IRIS, "--update", "adam", "--optimizer", "momentum", "--out-dir", out_dir)
    _one_line_error(code, err, "--optimizer 'momentum' and --update 'adam' name different update rules")
    assert out == ""  # refused before anything was built or run


def test_cli_update_outranks_the_spec_optimizer_and_is_read(capsys, out_dir):
    """iris's spec says optimizer = "adam"; --update newton used to run Adam. Now it names the rule, which
    this 67-parameter model's module does not have: refused, in one line, before building."""
    code, out, err = _train_cli(capsys, IRIS, "--update", "newton", "--out-dir", out_dir)
    _one_line_error(code, err, "optimizer newton needs the exact Hessian", "not 67")
    assert out == ""


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ('update = "sequential"\noptimizer = "adam"', "training.update: optimizer 'adam' and update 'sequential' name"),
        ('update = "simultaneous"\noptimizer = "momentum"', "name different update rules"),
    ],
)
def test_spec_update_and_optimizer_that_disagree_are_one_line_errors(tmp_path, training, expected):
    spec = tmp_path / "xor.toml"
    spec.write_text(XOR.read_text().replace('update = "simultaneous"', training))
    with pytest.raises(Exception, match=re.escape(expected)):
        load_spec_settings(spec)


def test_spec_update_names_the_rule_whose_settings_it_may_set(tmp_path):
    """[training] update = "momentum" with momentum = 0.9 (the rule update names reads it); gd is simultaneous."""
    spec = tmp_path / "xor.toml"
    spec.write_text(XOR.read_text().replace('update = "simultaneous"', 'update = "momentum"\nmomentum = 0.9'))
    assert load_spec_settings(spec)[1].optimizer == "momentum"
    spec.write_text(XOR.read_text().replace('update = "simultaneous"', 'update = "simultaneous"\noptimizer = "gd"'))
    assert load_spec_settings(spec)[1].optimizer == "simultaneous"


def test_module_update_and_optimizer_must_agree(xor):
    with pytest.raises(ValueError, match=r"optimizer='momentum' and update='adam' name different update rules"):
        xor.train(update="adam", optimizer="momentum", max_iter=2)
    with pytest.raises(ValueError, match=r"optimizer='gd' and update='sequential' name different update rules"):
        xor.train(update="sequential", optimizer="gd", max_iter=2)


@pytest.mark.slow
def test_module_gd_is_plain_descent_and_update_is_its_alias(xor):
    """One step of gradient descent by hand, w - lr * gradient, from each way of naming it."""
    lr = 0.5
    loss, gradient = xor.loss_and_grad(xor.INIT)
    by_hand = xor.INIT - lr * gradient
    for names in ({}, {"optimizer": "gd"}, {"update": "simultaneous"}, {"update": "simultaneous", "optimizer": "gd"}):
        result = xor.train(lr=lr, max_iter=1, **names)
        np.testing.assert_allclose(result.w, by_hand, rtol=1e-14, atol=1e-16)
        assert result.loss_history[0] == loss


@pytest.mark.slow
def test_gd_is_plain_descent_on_a_model_whose_default_is_sequential(seed_module):
    """The seed's default rule is the blog's sequential one: optimizer="gd" used to run it too."""
    lr = seed_module.DEFAULTS["lr"]
    by_hand = seed_module.INIT - lr * seed_module.loss_and_grad(seed_module.INIT)[1]
    np.testing.assert_allclose(seed_module.train(optimizer="gd", max_iter=1).w, by_hand, rtol=1e-14, atol=1e-16)
    assert not np.allclose(seed_module.train(max_iter=1).w, by_hand, rtol=1e-9)  # the default: sequential


def test_docs_table_and_cli_help_list_the_same_rules():
    page = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")  # the [training] table
    train_help = " ".join(cli.parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for flag, option in (("--optimizer", "optimizer"), ("--update", "update")):
        row = next(line for line in page.splitlines() if line.startswith(f"| `{flag}`"))
        listed = list(dict.fromkeys(re.findall(r"`([a-z_]+)`", row.split("|")[4])))  # each once, in order
        assert listed == list(allowed(option)), (flag, listed)
        assert ", ".join(allowed(option)) in train_help, flag


# --- item 5: a run that ends far above where it started is "diverged" ---------------------------------------------


def _limit(module, X=None, Y=None):
    return 10 * (1 + abs(module.loss(module.INIT, X, Y)))


@pytest.mark.slow
def test_full_batch_run_ending_far_above_its_start_is_diverged(xor):
    """lr=1e4 on xor ends about 1e4 times above its first loss without passing the 1e6 limit: it was 'max_iter'."""
    result = xor.train(lr=1e4, max_iter=2000)
    assert xor.loss(result.w) > _limit(xor)  # the final loss, from the weights returned
    assert result.status == "diverged" and not result.converged


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        dict(lr=1e10, batch_size=32),
        dict(optimizer="adam", lr=1e300, batch_size=32),
        dict(optimizer="momentum", momentum=0.9, lr=1e10, batch_size=32),
    ],
    ids=["gd", "adam", "momentum"],
)
def test_mini_batch_runs_that_blow_up_are_diverged(logistic, settings):
    """The divergence limit comes from the loss at the start, not from the first epoch's mean (already huge)."""
    result = logistic.train(max_iter=50, **settings)
    first = logistic.loss(logistic.INIT)
    assert result.status in ("diverged", "non-finite"), (result.status, result.loss_history[-1], first)
    assert result.status == "diverged" or not np.isfinite(result.loss_history[-1])


def test_a_run_that_learns_is_not_diverged(xor):
    result = xor.train()
    assert result.status == "max_iter" and result.loss_history[-1] < xor.loss(xor.INIT)


def test_cli_reports_divergence_and_exits_1(capsys, out_dir):
    code, out, err = _train_cli(capsys, XOR, "--lr", "1e4", "--out-dir", out_dir)
    assert "(diverged)" in out
    assert code == 1 and err.startswith("symcompile: training diverged") and err.count("\n") == 1


# --- item 6: --history rows in mini-batch runs ---------------------------------------------------------------------


def test_mini_batch_history_rows_start_at_the_initial_loss_and_pair_the_same_epoch(capsys, out_dir, logistic, tmp_path):
    history = tmp_path / "h.csv"
    code, out, _ = _train_cli(capsys, LOGISTIC, "--batch-size", "16", "--validation-split", "0.25", "--max-iter", "3",
                              "--history", history, "--out-dir", out_dir)  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(history.open(newline="")))
    printed_initial = float(re.search(r"initial\s+loss (\S+),", out).group(1))
    train_rows, val_rows = split_rows(len(logistic.X), 0.25, 0)
    X, Y, X_val, Y_val = logistic.X[train_rows], logistic.Y[train_rows], logistic.X[val_rows], logistic.Y[val_rows]
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[0]["loss"]) == pytest.approx(printed_initial, rel=1e-14)
    assert float(rows[0]["loss"]) == logistic.loss(logistic.INIT, X, Y)
    for epoch in (1, 2, 3):  # the run's first `epoch` epochs, again: its epoch mean and the weights it ended at
        again = logistic.train(logistic.INIT, X, Y, lr=0.1, max_iter=epoch, batch_size=16)
        row = rows[epoch]
        assert float(row["val_loss"]) == logistic.loss(again.w, X_val, Y_val)  # after epoch `epoch`
        # training loss: epoch `epoch`'s mean over its batches; the last row the final loss at the weights returned
        expected = logistic.loss(again.w, X, Y) if epoch == 3 else again.loss_history[-2]
        assert float(row["loss"]) == expected


# --- item 12: bounded history ------------------------------------------------------------------------------------


def test_a_long_run_keeps_every_kth_loss_within_the_bound(xor):
    """10**6 iterations: at most MAX_RECORDED losses kept (it kept all 10**6 + 1), every k-th iteration's."""
    n = 10**6
    result = xor.train(lr=0.5, max_iter=n)
    k = result.record_every
    assert k == math.ceil(n / training.MAX_RECORDED) and len(result.loss_history) <= training.MAX_RECORDED + 1
    assert len(result.loss_history) == n // k + 1  # iterations 0, k, 2k, ... (n is not a multiple), and the final
    reference = xor.train(lr=0.5, max_iter=3 * k)
    np.testing.assert_array_equal(result.loss_history[:3], reference.loss_history[0 : 3 * k : k])
    assert result.loss_history[-1] == xor.loss(result.w)


def test_thinned_histories_in_chunks_and_with_validation(xor, monkeypatch):
    """A small bound, and chunks of one iteration: losses at 0, 5, 10, 15 and the final (20), validation after
    iterations 5, 10, 15, 20; each the value a run stopped there gives."""
    monkeypatch.setattr(training, "MAX_RECORDED", 4)
    monkeypatch.setattr(training, "FIRST_GUESS", 1e3)
    monkeypatch.setattr(training, "CHUNK_SECONDS", 1e-12)
    X_val, Y_val = xor.X[:3], xor.Y[:3]
    result = xor.train(lr=0.5, max_iter=20, X_val=X_val, Y_val=Y_val)
    monkeypatch.undo()
    assert result.record_every == 5
    at = {t: xor.train(lr=0.5, max_iter=t).w for t in (5, 10, 15, 20)}
    expected = [xor.loss(xor.INIT), *(xor.loss(at[t]) for t in (5, 10, 15, 20))]
    np.testing.assert_array_equal(result.loss_history, expected)
    np.testing.assert_array_equal(result.val_loss_history, [xor.loss(at[t], X_val, Y_val) for t in (5, 10, 15, 20)])


def test_cli_history_of_a_thinned_run_has_its_rows(capsys, out_dir, xor, tmp_path):
    history = tmp_path / "h.csv"
    code, _, _ = _train_cli(capsys, XOR, "--max-iter", str(2 * 2**16 + 1), "--history", history, "--out-dir", out_dir)
    assert code == 0
    iterations = [int(r["iteration"]) for r in csv.DictReader(history.open(newline=""))]
    assert iterations == [*range(0, 2 * 2**16 + 1, 3), 2 * 2**16 + 1]
