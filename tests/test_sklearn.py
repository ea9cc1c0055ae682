"""symcompile.sklearn: scikit-learn's estimator checks, and scikit-learn's own MLPs as the reference.

With the same random_state, symcompile's MLPClassifier and MLPRegressor draw the same initial weights, shuffle
the same way and take the same steps as scikit-learn's, so their weights agree to rounding; the accuracy test
compares the two on four datasets over five seeds. ExpressionRegressor is checked against NIST's certified
values. Each architecture compiles once per test session, into a temporary module cache.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.peers
sklearn = pytest.importorskip("sklearn", reason="needs the sklearn extra (pip install '.[sklearn]')")

from sklearn import datasets  # noqa: E402
from sklearn import neural_network as reference  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from symcompile import module_cache  # noqa: E402
from references.nist_strd import BOXBOD, DANWOOD, MISRA1A  # noqa: E402
from symcompile.sklearn import ExpressionRegressor, MLPClassifier, MLPRegressor  # noqa: E402

CACHE_VARIABLE = module_cache.ENVIRONMENT_VARIABLE


@pytest.fixture(scope="module", autouse=True)
def module_cache_folder(tmp_path_factory):
    """One cache folder for this file's modules: each architecture compiles once here."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("sklearn_cache")
        patch.setenv(CACHE_VARIABLE, str(folder))
        yield folder


# ---- scikit-learn's estimator checks ----

# A formula takes the inputs it names: the checks' data have 1 to 10 columns, and every check that fits a
# regressor on several columns fails with "X has N columns; the formula's inputs are x". These are expected.
FORMULA_TAKES_ONE_COLUMN = "the formula y = a*x + b takes one input column; the check's X has several"
EXPRESSION_EXPECTED_FAILURES = {
    name: FORMULA_TAKES_ONE_COLUMN
    for name in (
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
        "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
        "check_estimators_pickle(readonly_memmap=True)", "check_f_contiguous_array_estimator", "check_regressors_train",
        "check_regressors_train(readonly_memmap=True)", "check_regressors_train(readonly_memmap=True,X_dtype=float32)",
        "check_regressor_data_not_an_array", "check_regressors_no_decision_function", "check_supervised_y_2d",
        "check_regressors_int", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
        "check_fit2d_1sample", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
        "check_n_features_in", "check_fit2d_predict1d", "check_non_transformer_estimators_n_iter",
    )
}  # fmt: skip


def expected_failed_checks(estimator):
    return EXPRESSION_EXPECTED_FAILURES if isinstance(estimator, ExpressionRegressor) else {}


# Few epochs, as scikit-learn's own test suite runs its MLPs' checks (max_iter=100)
@pytest.mark.slow
@parametrize_with_checks(
    [
        MLPClassifier(max_iter=100, random_state=0),
        MLPRegressor(max_iter=100, random_state=0),
        ExpressionRegressor("a*x + b"),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---- the same run as scikit-learn's ----


def _standardized(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _largest_difference(ours, theirs):
    return max(np.abs(a - b).max() for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_))


SAME_RUN = [
    dict(),
    dict(solver="sgd", batch_size=32),
    dict(solver="sgd", nesterovs_momentum=False, learning_rate="invscaling"),
    dict(early_stopping=True, activation="tanh"),
    dict(solver="lbfgs", activation="logistic"),
]


@pytest.mark.slow
@pytest.mark.parametrize("settings", SAME_RUN, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "adam")
def test_the_classifier_runs_as_sklearns(settings):
    """Weights, loss curve and probabilities as scikit-learn's to rounding, string labels included."""
    X, y = _standardized(datasets.load_iris)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    common = dict(hidden_layer_sizes=(10,), max_iter=30, random_state=3, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPClassifier(**common).fit(X, labels), reference.MLPClassifier(**common).fit(X, labels)
    # L-BFGS's line search amplifies the last bits of the gradients' sums, summed in another order
    tolerance = 1e-6 if settings.get("solver") == "lbfgs" else 1e-9
    assert _largest_difference(ours, theirs) < tolerance
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=tolerance)
    assert list(ours.classes_) == list(theirs.classes_) and list(ours.predict(X)) == list(theirs.predict(X))
    if settings.get("solver") != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if settings.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert ours.best_loss_ is None and theirs.best_loss_ is None


@pytest.mark.slow
@pytest.mark.parametrize("target", ["binary", "multilabel"])
def test_binary_and_multilabel_targets_as_sklearns(target):
    X, y = _standardized(datasets.load_iris)
    Y = (y == 2) if target == "binary" else np.c_[y == 0, y == 2, X[:, 0] > 0].astype(int)
    common = dict(hidden_layer_sizes=(6,), max_iter=20, random_state=0, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPClassifier(**common).fit(X, Y), reference.MLPClassifier(**common).fit(X, Y)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.slow
@pytest.mark.parametrize("settings", [dict(), dict(solver="sgd", learning_rate="adaptive"), dict(solver="lbfgs")],
                         ids=["adam", "sgd-adaptive", "lbfgs"])  # fmt: skip
def test_the_regressor_runs_as_sklearns(settings):
    """Squared error halved as scikit-learn's, alpha on the coefficients only, one and two targets."""
    X, y = datasets.make_regression(200, 5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std()
    for target in (y[:, 0], y):
        common = dict(hidden_layer_sizes=(7, 4), alpha=0.1, max_iter=40, random_state=1, **settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours, theirs = MLPRegressor(**common).fit(X, target), reference.MLPRegressor(**common).fit(X, target)
        tolerance = 1e-6 if settings.get("solver") == "lbfgs" else 1e-9  # (as in the classifier's test)
        assert _largest_difference(ours, theirs) < tolerance
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=tolerance)
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=tolerance)


@pytest.mark.slow
def test_partial_fit_carries_the_optimizer_as_sklearns():
    X, y = _standardized(datasets.load_wine)
    ours, theirs = (cls(hidden_layer_sizes=(5,), random_state=0) for cls in (MLPClassifier, reference.MLPClassifier))
    for start in range(0, 150, 50):
        for model in (ours, theirs):
            model.partial_fit(X[start : start + 50], y[start : start + 50], classes=np.unique(y))
    assert _largest_difference(ours, theirs) < 1e-10
    assert ours.t_ == theirs.t_ and ours.n_iter_ == theirs.n_iter_


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_adamw_runs_as_the_modules_own_train():
    """solver="adamw" (symcompile's, torch's formula) takes the steps the module's train(optimizer="adamw") takes."""
    X, y = _standardized(datasets.load_iris)
    settings = dict(hidden_layer_sizes=(6,), solver="adamw", alpha=0.01, batch_size=50, shuffle=False, tol=0.0)
    model = MLPClassifier(max_iter=5, random_state=0, **settings).fit(X, y)
    rng, initial = np.random.RandomState(0), []  # scikit-learn's Glorot draws, as the estimator makes them
    for n_in, n_out in [(4, 6), (6, 3)]:
        bound = np.sqrt(6.0 / (n_in + n_out))
        coef, intercept = rng.uniform(-bound, bound, (n_in, n_out)), rng.uniform(-bound, bound, n_out)
        initial += [coef.ravel(), intercept]
    module = model._module()
    run = module.train(np.concatenate(initial), X, np.eye(3)[y], optimizer="adamw", lr=0.001, weight_decay=0.01,
                       batch_size=50, shuffle=False, max_iter=5, tol=0.0)  # fmt: skip
    trained = np.concatenate([part for c, b in zip(model.coefs_, model.intercepts_) for part in (c.ravel(), b)])
    np.testing.assert_allclose(trained, run.w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.loss_curve_, run.loss_history[:5], rtol=1e-12)


# ---- accuracy on four datasets against scikit-learn's, five seeds ----

DATASETS = {"iris": datasets.load_iris, "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer,
            "digits": datasets.load_digits}  # fmt: skip


def _accuracies(name, seeds, max_iter):
    """Mean test accuracy of both classifiers, scikit-learn's defaults (adam, batch min(200, n), alpha 1e-4,
    Glorot init, shuffling) with one hidden layer of 32, over the seeds."""
    X, y = DATASETS[name](return_X_y=True)
    ours, theirs = [], []
    for seed in seeds:
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        for cls, scores in ((MLPClassifier, ours), (reference.MLPClassifier, theirs)):
            model = make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(32,), max_iter=max_iter, random_state=seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                scores.append(model.fit(X_train, y_train).score(X_test, y_test))
    return np.mean(ours), np.mean(theirs)


# digits' five seeds take about 15 s: marked slow, with one seed of 50 epochs as its quick version
FIVE_SEEDS = ["iris", "wine", "breast_cancer", pytest.param("digits", marks=pytest.mark.slow)]


@pytest.mark.slow
@pytest.mark.parametrize("name", FIVE_SEEDS)
def test_accuracy_within_a_point_of_sklearns_five_seeds(name):
    ours, theirs = _accuracies(name, range(5), max_iter=200)
    assert abs(ours - theirs) <= 0.01


@pytest.mark.slow
def test_accuracy_within_a_point_of_sklearns_on_digits_quick():
    ours, theirs = _accuracies("digits", range(1), max_iter=50)
    assert abs(ours - theirs) <= 0.01


# ---- compiled once, pickled, in pipelines ----


@pytest.mark.slow
def test_a_grid_search_compiles_the_architecture_once(module_cache_folder):
    X, y = _standardized(datasets.load_iris)
    before = set(module_cache_folder.glob("sklearn_mlp_*.py"))
    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(11,), max_iter=20, random_state=0),
                          {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2]}, cv=3)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert len(set(module_cache_folder.glob("sklearn_mlp_*.py")) - before) == 1  # 13 fits, one 4-11-3 module
    assert search.best_score_ > 0.8


@pytest.mark.slow
def test_a_pickled_estimator_predicts_the_same_in_a_new_process(tmp_path, module_cache_folder):
    X, y = _standardized(datasets.load_iris)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    blob = pickle.dumps(model)
    assert b"numba" not in blob and len(blob) < 20_000  # the weights and the architecture, no compiled code
    (tmp_path / "model.pkl").write_bytes(blob)
    np.save(tmp_path / "X.npy", X)
    script = (
        "import pickle, sys, numpy as np; model = pickle.load(open(sys.argv[1], 'rb'));"
        "np.save(sys.argv[2], model.predict_proba(np.load(sys.argv[3])))"
    )
    subprocess.run([sys.executable, "-c", script, tmp_path / "model.pkl", tmp_path / "p.npy", tmp_path / "X.npy"],
                   check=True, env={**__import__("os").environ, CACHE_VARIABLE: str(module_cache_folder)})  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), model.predict_proba(X))
    assert clone(model).get_params() == model.get_params()


def test_bad_parameters_get_sklearns_one_line_errors():
    X, y = _standardized(datasets.load_iris)
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="softsign").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))


# ---- ExpressionRegressor ----


@pytest.mark.parametrize("problem", [MISRA1A, DANWOOD, BOXBOD], ids=lambda p: p.name)
def test_expression_regressor_gives_nists_certified_values(problem):
    X, y = np.array(problem.x)[:, None], np.array(problem.y)
    start = dict(zip(problem.parameters, problem.start2))
    model = ExpressionRegressor(problem.model, params=start, max_iter=1000, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    model.fit(X, y)
    np.testing.assert_allclose(list(model.params_.values()), problem.certified, rtol=1e-6)
    np.testing.assert_allclose(list(model.stderr_.values()), problem.certified_stderr, rtol=1e-4)
    assert 2 * model.cost_ == pytest.approx(problem.certified_rss, rel=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(model.covariance_)), list(model.stderr_.values()))


def test_expression_regressor_takes_sympy_and_several_inputs():
    sp = pytest.importorskip("sympy")
    a, b, u, v = sp.symbols("a b u v")
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (50, 2))
    y = 2.0 * X[:, 0] + np.exp(-0.5 * X[:, 1])
    model = ExpressionRegressor(a * u + sp.exp(-b * v), inputs=["u", "v"]).fit(X, y)
    assert model.params_ == pytest.approx({"a": 2.0, "b": 0.5})
    assert model.score(X, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="columns"):
        model.fit(X[:, :1], y)
    with pytest.raises(ValueError, match="not in the formula"):
        ExpressionRegressor("a*x", params=["c"]).fit(X[:, :1], y)
