"""The fit report and the confidence band against lmfit; `fit --report`, the fit options as flags and [fit] keys.

References: lmfit's ModelResult (fit_report's numbers, eval_uncertainty, dely_predicted) for the same fit, run to
tight tolerances so both sides stop at the same point (lmfit differentiates by finite differences: its standard
errors agree to ~4e-8, its band to ~3e-9); symcompile.curve_fit and scipy.optimize.curve_fit for the command line's
fits with the same options. One formula module and one spec module are built for the whole file.
"""

import re

import numpy as np
import pytest

from symcompile import module_cache
from symcompile.cli import main
from symcompile.curve_fitting import curve_fit, curve_fit_report

lmfit = pytest.importorskip("lmfit", reason="the report is checked against lmfit (the test extra)")

TIGHT = {"xtol": 1e-14, "ftol": 1e-14}
X = np.linspace(-3.0, 5.0, 60)
SIGMA = 0.05 + 0.02 * np.abs(X)  # 1-D sigma, not constant
Y = 3.0 * np.exp(-((X - 1.2) ** 2) / (2 * 0.8**2)) + 0.3 + np.sin(7.1 * X) * SIGMA
NAMES = ("amp", "cen", "wid", "off")
START = [1.0, 1.0, 1.0, 0.0]


def gauss(x, amp, cen, wid, off):
    return amp * np.exp(-((x - cen) ** 2) / (2 * wid**2)) + off


@pytest.fixture(scope="module", autouse=True)
def cache_folder(tmp_path_factory):
    """One module cache for this file: the Gaussian's formula compiled once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(module_cache.ENVIRONMENT_VARIABLE, str(tmp_path_factory.mktemp("fit_report_cache")))
        yield


def lmfit_fit(absolute_sigma=False, fixed=None):
    params = lmfit.Parameters()
    for name, value in zip(NAMES, START):
        params.add(name, value=(fixed or {}).get(name, value), vary=name not in (fixed or {}))
    model = lmfit.Model(gauss)
    return model.fit(Y, params, x=X, weights=1 / SIGMA, scale_covar=not absolute_sigma,
                     fit_kws=dict(TIGHT, epsfcn=1e-14))  # fmt: skip


@pytest.fixture(scope="module", params=[False, True], ids=["scaled", "absolute_sigma"])
def both(request):
    """(symcompile's report, lmfit's ModelResult) of the weighted Gaussian fit, errors scaled or absolute."""
    ours = curve_fit_report(gauss, X, Y, p0=START, sigma=SIGMA, absolute_sigma=request.param, **TIGHT)
    return ours, lmfit_fit(absolute_sigma=request.param)


@pytest.mark.slow
def test_the_reports_numbers_are_lmfits(both):
    ours, theirs = both
    assert (ours.ndata, ours.nvarys) == (theirs.ndata, theirs.nvarys) == (60, 4)
    for name in ("chisqr", "redchi", "aic", "bic", "rsquared"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-10), name
    values = [theirs.params[n].value for n in NAMES]
    stderr = [theirs.params[n].stderr for n in NAMES]
    np.testing.assert_allclose(ours.values, values, rtol=1e-8)
    np.testing.assert_allclose(ours.stderr, stderr, rtol=1e-6)
    np.testing.assert_allclose(ours.relative_errors, 100 * np.abs(np.array(stderr) / values), rtol=1e-6)
    np.testing.assert_allclose(ours.covariance, theirs.covar, rtol=1e-6, atol=1e-6 * np.abs(theirs.covar).max())
    expected = {(a, b): theirs.params[a].correl[b] for i, a in enumerate(NAMES) for b in NAMES[i + 1 :]
                if abs(theirs.params[a].correl[b]) > 0.1}  # fmt: skip
    pairs = ours.correlations_above()
    assert [(a, b) for a, b, _ in pairs] == sorted(expected, key=lambda k: -abs(expected[k]))
    for a, b, value in pairs:
        assert value == pytest.approx(expected[a, b], abs=1e-7)


def test_the_report_text_has_lmfits_lines(both):
    ours, theirs = both
    text, reference = ours.fit_report(), theirs.fit_report()
    for line in ("# data points      = 60", "# variables        = 4", "[[Variables]]",
                 "[[Correlations]] (unreported correlations are < 0.100)"):  # fmt: skip
        assert line in text and line in reference
    for label in ("chi-square", "reduced chi-square", "Akaike info crit", "Bayesian info crit", "R-squared"):
        pattern = rf"^    {re.escape(label)}\s+= (\S+)$"
        assert re.search(pattern, text, re.M).group(1) == re.search(pattern, reference, re.M).group(1), label
    ours_correlations = re.findall(r"^    C\(.*$", text, re.M)
    assert ours_correlations == re.findall(r"^    C\(.*$", reference, re.M)
    assert re.search(r"^    amp: +\S+ \+/- +\S+ \(\d+\.\d\d%\) \(init = 1\)$", text, re.M)
    assert "stop               = " in text and str(ours) == text


@pytest.mark.parametrize("sigma", [1, 2, 3, 0.9])
def test_the_band_is_lmfits_eval_uncertainty(both, sigma):
    ours, theirs = both
    x = np.linspace(-4.0, 6.0, 41)  # beyond the data too
    band = theirs.eval_uncertainty(x=x, sigma=sigma)
    np.testing.assert_allclose(ours.eval_uncertainty(x, sigma=sigma), band, rtol=0, atol=1e-6 * band.max())
    np.testing.assert_allclose(ours.eval_uncertainty(x, sigma=sigma, predicted=True), theirs.dely_predicted,
                               rtol=0, atol=1e-6 * theirs.dely_predicted.max())  # fmt: skip
    np.testing.assert_allclose(ours.eval(x), theirs.eval(x=x), rtol=1e-8)
    np.testing.assert_allclose(ours.eval_uncertainty(), theirs.eval_uncertainty(x=X, sigma=1), rtol=1e-6)


def test_a_fixed_parameter_is_lmfits_vary_false():
    ours = curve_fit_report(gauss, X, Y, p0=START, sigma=SIGMA, fixed={"off": 0.3}, **TIGHT)
    theirs = lmfit_fit(fixed={"off": 0.3})
    assert ours.nvarys == theirs.nvarys == 3 and list(ours.vary) == [True, True, True, False]
    np.testing.assert_allclose(ours.stderr[:3], [theirs.params[n].stderr for n in NAMES[:3]], rtol=1e-6)
    assert ours.stderr[3] == 0 and ours.aic == pytest.approx(theirs.aic, rel=1e-10)
    assert re.search(r"^    off: +0\.3 \(fixed\)$", ours.fit_report(), re.M)
    band = theirs.eval_uncertainty(x=X)
    np.testing.assert_allclose(ours.eval_uncertainty(X), band, rtol=0, atol=1e-6 * band.max())


def test_the_report_is_curve_fits_popt_and_pcov():
    report = curve_fit_report(gauss, X, Y, p0=START, sigma=SIGMA)
    popt, pcov = curve_fit(gauss, X, Y, p0=START, sigma=SIGMA)
    np.testing.assert_array_equal(report.values, popt)
    np.testing.assert_allclose(report.covariance, pcov, rtol=1e-10)
    assert report.converged and report.status in ("ftol", "xtol", "ftol+xtol", "gtol")


def test_bad_band_arguments_are_one_line_errors():
    report = curve_fit_report(gauss, X, Y, p0=START, sigma=SIGMA)
    for x, sigma, error, said in [
        (np.ones((2, 3)), 1, ValueError, "shape"),
        (X, 0, ValueError, "> 0"),
        (X, float("nan"), ValueError, "> 0"),
        (X, "1", TypeError, "number"),
        ([np.nan], 1, ValueError, "finite"),
    ]:
        with pytest.raises(error, match=said) as raised:
            report.eval_uncertainty(x, sigma=sigma)
        assert "\n" not in str(raised.value)


# --- the command line --------------------------------------------------------------------------------------------

CLI_X = np.linspace(0.0, 4.0, 30)
CLI_S = 0.02 + 0.01 * CLI_X
CLI_Y = 2.5 * np.exp(-1.3 * CLI_X) + 0.5 + 2 * np.cos(5.3 * CLI_X) * CLI_S
CLI_Y[7] += 0.4  # an outlier, for the robust losses
SPEC = """kind = "expression"
name = "report_decay"
params = ["a", "b", "c"]
inputs = ["x"]
targets = ["y"]
init = [1.0, 1.0, 0.0]
output = "a*exp(-b*x) + c"
residual = "a*exp(-b*x) + c - y"

[data]
csv = "data.csv"
"""
CLI_SETTINGS = {"max_iter": 200, "xtol": 1e-10, "ftol": 1e-10, "gtol": 1e-10}  # fit's defaults
FORMULA = "a*exp(-b*x) + c"
B_IN_0_12 = ([-np.inf, 0, -np.inf], [np.inf, 1.2, np.inf])  # --bound b=0:1.2 as curve_fit's bounds


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """(spec folder, out dir): the spec and its CSV (columns x, y, s), its module built once for every CLI test."""
    folder = tmp_path_factory.mktemp("fit_cli")
    rows = "\n".join(f"{x!r},{y!r},{s!r}" for x, y, s in zip(CLI_X.tolist(), CLI_Y.tolist(), CLI_S.tolist()))
    (folder / "data.csv").write_text(f"x,y,s\n{rows}\n")
    (folder / "decay.toml").write_text(SPEC)
    out = folder / "out"
    assert main(["build", str(folder / "decay.toml"), "--out-dir", str(out)]) == 0
    return folder, out


def run_fit(cli, capsys, *flags, fit_table=""):
    folder, out = cli
    spec = folder / "decay.toml"
    if fit_table:
        spec = folder / f"with_fit_{abs(hash(fit_table))}.toml"
        spec.write_text(SPEC + "\n[fit]\n" + fit_table)
    status = main(["fit", str(spec), "--out-dir", str(out), *flags])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def printed_values(out):
    return np.array([float(v) for v in re.findall(r"^  [abc]  (\S+)\s", out, re.M)])


def printed_errors(out):
    return {name: float(e) for name, e in re.findall(r"^  ([abc])  \S+\s+\+- (\S+)", out, re.M)}


@pytest.mark.peers
def test_fit_report_prints_lmfits_numbers_for_the_spec(cli, capsys):
    status, out, _ = run_fit(cli, capsys, "--report")
    assert status == 0 and "building" not in out  # the module of the fixture, up to date
    report = curve_fit_report(FORMULA, CLI_X, CLI_Y, p0=[1.0, 1.0, 0.0], **CLI_SETTINGS)
    for label, value in [("chi-square", report.chisqr), ("reduced chi-square", report.redchi),
                         ("Akaike info crit", report.aic), ("Bayesian info crit", report.bic)]:  # fmt: skip
        printed = float(re.search(rf"^      {re.escape(label)}\s+= (\S+)$", out, re.M).group(1))
        assert printed == pytest.approx(value, rel=1e-6), label
    errors = dict(re.findall(r"^      ([abc]): +\S+ \+/- +(\S+)", out, re.M))
    np.testing.assert_allclose([float(errors[n]) for n in "abc"], report.stderr, rtol=1e-6)
    theirs = lmfit.Model(lambda x, a, b, c: a * np.exp(-b * x) + c).fit(CLI_Y, x=CLI_X, a=1.0, b=1.0, c=0.0)
    assert report.aic == pytest.approx(theirs.aic, rel=1e-8)
    assert "[[Correlations]]" in out and "stop               = " in out


@pytest.mark.peers
def test_a_modules_fit_has_lmfits_report_and_band(cli):
    from symcompile.fit_report import from_least_squares
    from symcompile.writer import load_module

    _, out = cli
    module = load_module(out / "report_decay.py")
    report = from_least_squares(module, module.least_squares(xtol=1e-14, ftol=1e-14, gtol=0.0, max_iter=2000))
    theirs = lmfit.Model(lambda x, a, b, c: a * np.exp(-b * x) + c).fit(CLI_Y, x=CLI_X, a=1.0, b=1.0, c=0.0,
                                                                       fit_kws=dict(TIGHT, epsfcn=1e-14))  # fmt: skip
    for name in ("chisqr", "redchi", "aic", "bic", "rsquared"):
        assert getattr(report, name) == pytest.approx(getattr(theirs, name), rel=1e-10), name
    np.testing.assert_allclose(report.stderr, [theirs.params[n].stderr for n in "abc"], rtol=1e-6)
    x = np.linspace(-0.5, 5.0, 23)
    band = theirs.eval_uncertainty(x=x, sigma=2)
    np.testing.assert_allclose(report.eval_uncertainty(x.reshape(-1, 1), sigma=2), band, rtol=0, atol=1e-6 * band.max())
    np.testing.assert_allclose(report.eval_uncertainty(x, sigma=2), band, rtol=0, atol=1e-6 * band.max())  # (N,)


def test_residuals_other_than_output_minus_target_have_no_band(cli, capsys, tmp_path):
    folder, out = cli
    spec = folder / "scaled.toml"
    spec.write_text(SPEC.replace('name = "report_decay"', 'name = "scaled_decay"')
                    .replace('residual = "a*exp(-b*x) + c - y"', 'residual = "2*(a*exp(-b*x) + c - y)"'))  # fmt: skip
    try:  # the plot extra: --plot says why it draws no band
        import matplotlib  # noqa: F401

        plot = ["--plot", str(tmp_path / "no_band.png")]
    except ImportError:
        plot = []
    status = main(["fit", str(spec), "--out-dir", str(out), "--report", *plot])
    printed = capsys.readouterr().out
    assert status == 0 and "R-squared" not in printed and "chi-square" in printed
    if plot:
        assert "(no band: the confidence band needs residuals of the form output - target" in printed
    from symcompile.fit_report import from_least_squares
    from symcompile.writer import load_module

    module = load_module(out / "scaled_decay.py")
    report = from_least_squares(module, module.least_squares())
    assert report.rsquared is None
    with pytest.raises(ValueError, match="output - target"):
        report.eval_uncertainty()


def test_flags_fit_as_curve_fit_and_scipy_with_the_same_options(cli, capsys):
    flags = ["--bound", "b=0:1.2", "--fix", "c=0.5", "--loss", "soft_l1", "--f-scale", "0.1", "--sigma-column", "s"]
    status, out, _ = run_fit(cli, capsys, *flags)
    assert status == 0
    assert "options    b in [0, 1.2]; c fixed at 0.5; sigma from column 's'; loss soft_l1 (f_scale 0.1)" in out
    popt, pcov = curve_fit(FORMULA, CLI_X, CLI_Y, p0=[1.0, 1.0, 0.5], sigma=CLI_S, bounds=B_IN_0_12, fixed={"c": 0.5},
                           loss="soft_l1", f_scale=0.1, **CLI_SETTINGS)  # fmt: skip
    np.testing.assert_allclose(printed_values(out), popt, rtol=1e-9)
    errors = printed_errors(out)
    np.testing.assert_allclose([errors["a"], errors["b"]], np.sqrt(np.diag(pcov))[:2], rtol=1e-5)
    assert re.search(r"^  c  0\.5\s+\(fixed\)$", out, re.M)


@pytest.mark.peers
def test_a_sigma_column_fit_is_scipys(cli, capsys):
    scipy_optimize = pytest.importorskip("scipy.optimize", reason="needs the test extra (pip install '.[test]')")
    status, out, _ = run_fit(cli, capsys, "--sigma-column", "s", "--absolute-sigma")
    assert status == 0
    popt, pcov = scipy_optimize.curve_fit(lambda x, a, b, c: a * np.exp(-b * x) + c, CLI_X, CLI_Y, p0=[1.0, 1.0, 0.0],
                                          sigma=CLI_S, absolute_sigma=True, xtol=1e-12, ftol=1e-12)  # fmt: skip
    np.testing.assert_allclose(printed_values(out), popt, rtol=1e-7)
    errors = printed_errors(out)
    np.testing.assert_allclose([errors[n] for n in "abc"], np.sqrt(np.diag(pcov)), rtol=1e-5)
    assert "(standard error, absolute sigma)" in out


def test_the_fit_table_gives_the_flags_fit(cli, capsys):
    flags = ["--bound", "b=0:1.2", "--fix", "c=0.5", "--loss", "cauchy", "--f-scale", "0.2", "--sigma-column", "s"]
    _, by_flags, _ = run_fit(cli, capsys, *flags)
    table = 'bounds = { b = [0, 1.2] }\nfixed = { c = 0.5 }\nloss = "cauchy"\nf_scale = 0.2\nsigma_column = "s"\n'
    status, by_spec, _ = run_fit(cli, capsys, fit_table=table)
    assert status == 0
    np.testing.assert_array_equal(printed_values(by_spec), printed_values(by_flags))
    assert printed_errors(by_spec) == printed_errors(by_flags)
    inline = f'sigma = {CLI_S.tolist()!r}\nabsolute_sigma = true\nfixed = ["c"]\nbounds = {{ a = [-inf, 10] }}\n'
    status, out, _ = run_fit(cli, capsys, fit_table=inline)
    assert status == 0 and "a in [-inf, 10]; c fixed; sigma from fit.sigma; absolute sigma" in out
    popt, pcov = curve_fit(FORMULA, CLI_X, CLI_Y, p0=[1.0, 1.0, 0.0], sigma=CLI_S, absolute_sigma=True,
                           fixed={"c": 0.0}, bounds=(-np.inf, [10, np.inf, np.inf]), **CLI_SETTINGS)  # fmt: skip
    np.testing.assert_allclose(printed_values(out), popt, rtol=1e-9)
    np.testing.assert_allclose([printed_errors(out)[n] for n in "ab"], np.sqrt(np.diag(pcov))[:2], rtol=1e-5)


def test_a_flag_outranks_the_spec(cli, capsys):
    status, out, _ = run_fit(cli, capsys, "--loss", "huber", fit_table='loss = "cauchy"\nf_scale = 0.3\n')
    assert status == 0 and "loss huber (f_scale 0.3)" in out


def test_fit_plot_draws_the_band(cli, capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="needs the plot extra (pip install '.[plot]')")  # the plot extra
    plot = tmp_path / "band.png"
    status, out, _ = run_fit(cli, capsys, "--plot", str(plot), "--sigma-column", "s")
    assert status == 0 and f"plot       {plot} (with the 1-sigma confidence band)" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_many_fits_each_file_with_the_options(cli, capsys, tmp_path):
    data = tmp_path / "files"
    data.mkdir()
    ys = {"one.csv": CLI_Y, "two.csv": 1.5 * np.exp(-0.7 * CLI_X) + 0.5 + 0.01 * np.sin(9 * CLI_X)}
    for name, y in ys.items():
        (data / name).write_text("x,y\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(CLI_X.tolist(), y.tolist())) + "\n")
    out = tmp_path / "fits.csv"
    status, _, _ = run_fit(cli, capsys, "--many", str(data), "--out", str(out), "--fix", "c=0.5", "--bound", "b=0:1.2",
                           "--loss", "huber", "--f-scale", "0.05")  # fmt: skip
    assert status == 0
    rows = {line.split(",")[0]: line.split(",") for line in out.read_text().splitlines()[1:]}
    for name, y in ys.items():
        popt, _ = curve_fit(FORMULA, CLI_X, y, p0=[1.0, 1.0, 0.5], fixed={"c": 0.5}, loss="huber", f_scale=0.05,
                            bounds=B_IN_0_12, **CLI_SETTINGS)  # fmt: skip
        np.testing.assert_allclose([float(v) for v in rows[name][1:4]], popt, rtol=1e-9)


@pytest.mark.parametrize(
    "flags, fit_table, said",
    [
        (["--bound", "d=0:1"], "", "'d' is not a parameter"),
        (["--bound", "a=1"], "", "NAME=LOWER:UPPER"),
        (["--bound", "a=2:1"], "", "not below its upper bound"),
        (["--bound", "a=0:1", "--bound", "a=0:2"], "", "bounded twice"),
        (["--bound", "b=5:10"], "", "outside [5, 10]"),
        (["--bound", "a=x:1"], "", "'x' is not a number"),
        (["--fix", "a", "--bound", "a=0:3"], "", "both fixed"),
        (["--fix", "a=x"], "", "not a number"),
        (["--fix", "a", "--fix", "b", "--fix", "c"], "", "every parameter is fixed"),
        (["--f-scale", "0.1"], "", "never reads it"),
        (["--loss", "soft_l1", "--f-scale", "-1"], "", "> 0"),
        (["--sigma-column", "nope"], "", "no column 'nope'"),
        (["--sigma-column", "x"], "", "sample 0 has 0"),
        ([], "bound = { a = [0, 1] }\n", "did you mean 'bounds'"),
        ([], 'sigma = [1.0]\nsigma_column = "s"\n', "not both"),
        ([], "sigma = [1.0, 2.0]\n", "2 values for the data's 30 samples"),
        ([], "bounds = { d = [0, 1] }\n", "fit.bounds.d: not a parameter"),
        ([], "bounds = { a = [0] }\n", "[lower, upper]"),
        ([], "fixed = { a = true }\n", "finite number"),
        ([], 'loss = "l1"\n', "must be one of linear"),
        ([], "f_scale = 0.5\n", "never reads it"),
        ([], "absolute_sigma = 1\n", "true or false"),
        (["--many", "."], 'sigma_column = "s"\n', "not to fit --many"),
        (["--many", ".", "--report"], "", "not to fit --many"),
    ],
)
def test_bad_fit_options_are_one_line_errors(cli, capsys, flags, fit_table, said):
    status, out, err = run_fit(cli, capsys, *flags, fit_table=fit_table)
    assert status == 2, out
    assert err.startswith("symcompile: error: ") and err.count("\n") == 1 and said in err, err


def test_an_unknown_loss_flag_is_argparses_one_line_error(cli, capsys):
    with pytest.raises(SystemExit) as exited:
        run_fit(cli, capsys, "--loss", "l1")
    assert exited.value.code == 2
    assert "invalid choice: 'l1'" in capsys.readouterr().err


def test_every_command_checks_the_fit_table(cli, capsys):
    folder, out = cli
    spec = folder / "typo.toml"
    spec.write_text(SPEC + '\n[fit]\nsigma_colum = "s"\n')
    assert main(["build", str(spec), "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'sigma_colum' in [fit]; did you mean 'sigma_column'?" in err and err.count("\n") == 1
