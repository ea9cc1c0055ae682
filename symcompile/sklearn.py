"""scikit-learn estimators over symcompile's compiled modules: MLPClassifier, MLPRegressor, ExpressionRegressor.

The MLPs take scikit-learn's parameters with scikit-learn's meanings and reproduce its training run: the same
Glorot-uniform draws, the same shuffles and validation split (from the same `random_state`), the same Adam and
SGD formulas, L2 on the weights only with alpha divided by each batch's size, the loss curve with its L2 term,
and the same stopping rules (`tol` over `n_iter_no_change` epochs, early stopping on the validation score). The
network's arithmetic is a module compiled once per architecture (layer sizes, activations, output, loss) into
symcompile's module cache (`symcompile.module_cache`): everything else (alpha, learning rate, batch size, epochs,
the initial weights, the data) is a run-time argument, so a grid search compiles each architecture once, and a
new process loads it. An epoch is one call of the runtime's compiled mini-batch loop with this module's update
steps (scikit-learn's, through a function pointer, as `symcompile.runtime.rules`' steps are passed); Python
does what scikit-learn does between epochs. One parameter is symcompile's own: `dtype="float32"` compiles the
network's kernels in float32 (twice the SIMD width; the weights, the optimizer's state and the loss stay float64;
the predicted probabilities and values come back float32).

A fitted estimator pickles its weights and the architecture, not compiled code: after unpickling, the module is
found again in the cache (or rebuilt there) on the first prediction.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numba
import numpy as np

try:
    import scipy.optimize
    import sklearn  # noqa: F401
except ImportError as exc:  # an optional extra: say how to get it, in one line
    raise ImportError(f"symcompile.sklearn needs scikit-learn: pip install 'symcompile[sklearn]' ({exc})") from None
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, shuffle as shuffled
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from symcompile.errors import SymcompileError
from symcompile.module_cache import cache_dir, cached_module
from symcompile.options import BuildOptions
from symcompile.runtime import loops, rules
from symcompile.runtime.pointers import function_value
from symcompile.runtime.signatures import LOSS_AND_GRAD

# scikit-learn's names of the hidden activations -> symcompile.mlp's
HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# scikit-learn's three, and symcompile's AdamW (symcompile.runtime.rules: torch.optim.AdamW's formula, the weight
# decay `alpha` decoupled from the gradient and applied to every weight, intercepts included, at each step)
SOLVERS = ("adam", "sgd", "lbfgs", "adamw")

# ---- scikit-learn's update rules, as steps the runtime's compiled loop calls (signature rules.STEP) ----
#
# The hyperparameters' vector, as these steps read it (their own layout, not rules.slots()):
LR, BETA1, BETA2, EPSILON, MOMENTUM, NESTEROV, GRADIENT_SCALE = range(7)
# The state's rows: the L2 coefficient of each weight (alpha / batch size for a coefficient, 0 for an
# intercept: scikit-learn decays no intercept), the L2 term's running sum (in its first entry: the sum over the
# call's steps of 0.5 * sum(l2 * w**2), the penalty per sample each batch adds to the loss), then the rule's own.
L2_ROW, PENALTY_ROW, FIRST_MOMENT, SECOND_MOMENT = range(4)
VELOCITY = FIRST_MOMENT
STATE_ROWS = {"adam": 4, "sgd": 3, "adamw": 2}  # adamw: the runtime rule's own rows (its moments)

_njit = numba.njit(cache=True, error_model="numpy")


@_njit
def adam_step(w, grad, state, t, hyperparameters, previous, steps):
    """scikit-learn's AdamOptimizer: epsilon added to sqrt(v) before bias correction, which scales the step
    (torch's Adam, symcompile.runtime.rules, adds it after)."""
    lr, beta1, beta2 = hyperparameters[LR], hyperparameters[BETA1], hyperparameters[BETA2]
    epsilon, scale = hyperparameters[EPSILON], hyperparameters[GRADIENT_SCALE]
    l2, m, v = state[L2_ROW], state[FIRST_MOMENT], state[SECOND_MOMENT]
    count = float(t + 1)
    step_size = lr * math.sqrt(1.0 - beta2**count) / (1.0 - beta1**count)
    penalty = 0.0
    for j in range(w.shape[0]):
        penalty += l2[j] * w[j] * w[j]
        g = scale * grad[j] + l2[j] * w[j]
        m[j] = beta1 * m[j] + (1.0 - beta1) * g
        v[j] = beta2 * v[j] + (1.0 - beta2) * g * g
        previous[j] = w[j]
        steps[j] = step_size * m[j] / (math.sqrt(v[j]) + epsilon)
        w[j] -= steps[j]
    state[PENALTY_ROW, 0] += 0.5 * penalty


@_njit
def sgd_step(w, grad, state, t, hyperparameters, previous, steps):
    """scikit-learn's SGDOptimizer: velocity = momentum * velocity - lr * g; the update is the velocity, or with
    Nesterov's momentum momentum * velocity - lr * g."""
    lr, momentum, scale = hyperparameters[LR], hyperparameters[MOMENTUM], hyperparameters[GRADIENT_SCALE]
    nesterov = hyperparameters[NESTEROV] != 0.0
    l2, velocity = state[L2_ROW], state[VELOCITY]
    penalty = 0.0
    for j in range(w.shape[0]):
        penalty += l2[j] * w[j] * w[j]
        g = scale * grad[j] + l2[j] * w[j]
        velocity[j] = momentum * velocity[j] - lr * g
        update = momentum * velocity[j] - lr * g if nesterov else velocity[j]
        previous[j] = w[j]
        steps[j] = -update
        w[j] += update
    state[PENALTY_ROW, 0] += 0.5 * penalty


STEPS = {"adam": adam_step, "sgd": sgd_step, "adamw": rules.adamw_step}
SKLEARN_STEPS = ("adam", "sgd")  # the steps that read the L2 and penalty rows above


# ---- the compiled network ----

_MODULES = {}  # (architecture, cache folder) -> module: the cache's lookup digests the formula, done once here


def network_module(architecture):
    """The compiled module of `architecture` = (layer sizes, hidden activation, output activation, loss[, dtype]),
    from the module cache (built there the first time on this machine). Its initial weights are zeros, fixed, so
    that the module does not depend on the seed: the estimator passes its own."""
    key = (architecture, str(cache_dir()))
    if key not in _MODULES:
        from symcompile.mlp import mlp_model  # SymPy only when a module is looked up

        layers, hidden, output, loss, *dtype = architecture
        model = mlp_model("sklearn_mlp", list(layers), hidden_activation=hidden, output_activation=output, loss=loss,
                          init="zeros", seed=0, dtype=dtype[0] if dtype else "float64")  # fmt: skip
        _MODULES[key] = cached_module(model, BuildOptions(kernels="dense"), prefix="sklearn_mlp")
    return _MODULES[key]


def pack(coefs, intercepts):
    """The flat weights in symcompile.mlp's order: per layer, its coefficients source-major (coefs_[i] in C
    order: row = source neuron), then its intercepts."""
    return np.concatenate([part for c, b in zip(coefs, intercepts) for part in (c.ravel(), b)])


def unpack(w, layers):
    """(coefs_, intercepts_) from the flat weights (copies)."""
    coefs, intercepts, start = [], [], 0
    for n_in, n_out in zip(layers, layers[1:]):
        coefs.append(w[start : start + n_in * n_out].reshape(n_in, n_out).copy())
        start += n_in * n_out
        intercepts.append(w[start : start + n_out].copy())
        start += n_out
    return coefs, intercepts


def l2_mask(layers):
    """1 for each coefficient, 0 for each intercept, in the flat weights' order."""
    pairs = zip(layers, layers[1:])
    return np.concatenate([part for n_in, n_out in pairs for part in (np.ones(n_in * n_out), np.zeros(n_out))])


class _Epochs:
    """The runtime's compiled mini-batch loop, run one epoch per call on a module's loss-and-gradient kernel
    with scikit-learn's steps, carrying the optimizer's state between epochs (and partial_fit calls)."""

    def __init__(self, architecture, solver, n_params):
        self.architecture = architecture
        self.solver = solver
        self.state = np.zeros((STATE_ROWS[solver], n_params))
        self.updates = 0  # scikit-learn's optimizer's t (Adam's bias correction)

    def __getstate__(self):  # pickled with the estimator: the state, not the compiled code
        return {name: value for name, value in vars(self).items() if name != "_compiled"}

    def compiled(self):
        """(the kernels the loop takes, the module's MODEL.call_on_threads or None), looked up at the first epoch."""
        if not hasattr(self, "_compiled"):
            module = network_module(self.architecture)
            kernels = (
                function_value(module.MODEL.kernels["_loss_and_grad_kernel"], LOSS_AND_GRAD),
                function_value(loops.no_accuracy, loops.ACCURACY),
                function_value(STEPS[self.solver], rules.STEP),
                function_value(rules.no_model_step, rules.MODEL_STEP),
                False,
            )
            self._compiled = kernels, module.MODEL.call_on_threads
        return self._compiled

    def run(self, w, X, Y, batch_size, l2, hyperparameters):
        """One epoch over X, Y in order, in batches of batch_size (the last one smaller): w is updated in place.
        Returns (the mean data loss, the L2 term), each batch's values taken at the weights it started from."""
        if self.solver not in SKLEARN_STEPS:  # the runtime's rule: its weight decay is in the hyperparameters
            return self._call(w, X, Y, batch_size, hyperparameters), 0.0
        n_full = X.shape[0] // batch_size * batch_size
        parts = [(X[:n_full], Y[:n_full], batch_size)] if n_full else []
        if n_full < X.shape[0]:  # a smaller last batch: its alpha is divided by its own size
            parts.append((X[n_full:], Y[n_full:], X.shape[0] - n_full))
        data_loss = penalty = 0.0
        for X_part, Y_part, size in parts:
            self.state[L2_ROW] = l2 / size
            self.state[PENALTY_ROW, 0] = 0.0
            loss = self._call(w, X_part, Y_part, size, hyperparameters)
            data_loss += loss * X_part.shape[0]
            penalty += self.state[PENALTY_ROW, 0] * size
        return data_loss / X.shape[0], penalty / X.shape[0]

    def _call(self, w, X, Y, batch_size, hyperparameters):
        run = loops.new_run(updates=self.updates)
        run[loops.LOSS_SCALE] = np.inf  # never stop for a rising loss, as scikit-learn does not
        losses = np.empty(1)
        kernels, call = self.compiled()
        arguments = (*kernels, w, X, Y, hyperparameters, 0.0, batch_size, np.empty(0, np.uint64),
                     np.arange(X.shape[0]), np.empty((0, X.shape[1])), np.empty((0, Y.shape[1])), 0, self.state, run,
                     np.empty_like(w), 1, 2, losses, np.empty(0), np.empty(0))  # fmt: skip
        status = call(loops.train_mini_batches, None, *arguments) if call else loops.train_mini_batches(*arguments)
        if status == 2:  # non-finite: the loop restored the last finite weights
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need "
                "to be preprocessed."
            )
        self.updates = int(run[loops.UPDATES])
        return losses[0]


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: scikit-learn's BaseMultilayerPerceptron, on compiled kernels."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float64", "float32"})],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype="float64"):  # fmt: skip
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        # "float32": the dense kernels compute in float32 (symcompile.runtime.dense); the weights stay float64
        self.dtype = dtype

    # ---- what the subclasses say ----

    # The data loss scikit-learn reports is this times the module's (squared error: scikit-learn halves it).
    _LOSS_SCALE = 1.0

    def _gradient_scale(self):
        """What scikit-learn's gradient is, times the module's gradient of its loss."""
        return self._LOSS_SCALE

    def _output(self):
        """(output activation, loss) of the module, for the targets seen at the first fit."""
        raise NotImplementedError

    def _targets(self, X, y, incremental, reset):
        raise NotImplementedError

    def _validation_score(self, X, y):
        raise NotImplementedError

    # ---- fitting ----

    def fit(self, X, y):
        """Fit the network to X, y; returns self."""
        self._validate_params()
        return self._fit(X, y, incremental=False)

    def _fit(self, X, y, incremental):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if any(size <= 0 for size in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._targets(X, y, incremental, reset=first_pass)
        layers = (X.shape[1], *map(int, hidden), Y.shape[1])
        if not first_pass and tuple(self._layers) != layers:
            raise ValueError(f"the network has layers {self._layers}; these data need {list(layers)}")
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layers)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y)
        else:
            self._fit_stochastic(X, Y, incremental)
        return self

    def _initialize(self, layers):
        """Fitted attributes at the first fit, and scikit-learn's Glorot-uniform initial weights, drawn from the
        same generator in the same order (coefficients, then intercepts, layer by layer)."""
        self.n_iter_, self.t_ = 0, 0
        self.n_outputs_ = layers[-1]
        self.n_layers_ = len(layers)
        self._layers = list(layers)
        self.out_activation_ = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}[self._output()[0]]
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for n_in, n_out in zip(layers, layers[1:]):
            bound = np.sqrt(factor / (n_in + n_out))
            self.coefs_.append(self._random_state.uniform(-bound, bound, (n_in, n_out)))
            self.intercepts_.append(self._random_state.uniform(-bound, bound, n_out))
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self.best_loss_ = None if self.early_stopping else np.inf

    def _architecture(self):
        """What the compiled module depends on: (layer sizes, hidden activation, output activation, loss), and
        the dtype where it is float32."""
        hidden, (output, loss) = HIDDEN_ACTIVATIONS[self.activation], self._output()
        return (tuple(self._layers), hidden, output, loss) + ((self.dtype,) if self.dtype != "float64" else ())

    def _module(self):
        return network_module(self._architecture())

    def _hyperparameters(self, learning_rate):
        if self.solver == "adamw":  # in the runtime rules' layout
            betas = (self.beta_1, self.beta_2)
            return rules.vector({"lr": learning_rate, "weight_decay": self.alpha, "betas": betas, "eps": self.epsilon})
        return np.array([learning_rate, self.beta_1, self.beta_2, self.epsilon, self.momentum,
                         float(self.nesterovs_momentum), self._gradient_scale()])  # fmt: skip

    def _fit_stochastic(self, X, Y, incremental):
        w = pack(self.coefs_, self.intercepts_)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Epochs(self._architecture(), self.solver, w.shape[0])
            self._learning_rate = float(self.learning_rate_init)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_train, Y_train, X_val, y_val = self._split(X, Y)
        n_samples = X_train.shape[0]
        batch_size = min(200, n_samples) if self.batch_size == "auto" else self.batch_size
        if batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = n_samples
        l2 = self.alpha * l2_mask(self._layers)
        sample_idx = np.arange(n_samples)
        best_w = w.copy()
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                if self.shuffle:  # scikit-learn's shuffle of the previous order, from the same generator
                    sample_idx = shuffled(sample_idx, random_state=self._random_state)
                    X_epoch, Y_epoch = X_train[sample_idx], Y_train[sample_idx]
                else:
                    X_epoch, Y_epoch = X_train, Y_train
                data_loss, penalty = self._optimizer.run(w, X_epoch, Y_epoch, batch_size, l2,
                                                         self._hyperparameters(self._learning_rate))  # fmt: skip
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_ = self._LOSS_SCALE * data_loss + penalty
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if self._update_no_improvement_count(w, X_val, y_val):
                    best_w = w.copy()
                if self.learning_rate == "invscaling" and self.solver == "sgd":
                    self._learning_rate = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._stop_or_slow_down():
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the optimization hasn't "
                        "converged yet." % self.max_iter, ConvergenceWarning,
                    )  # fmt: skip
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        self.coefs_, self.intercepts_ = unpack(best_w if self.early_stopping else w, self._layers)

    def _split(self, X, Y):
        """(X_train, Y_train, X_val, y_val): scikit-learn's validation split for early stopping (the same
        train_test_split call on the same generator), or all of X, Y."""
        if not self.early_stopping:
            return X, Y, None, None
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        X_train, X_val, Y_train, Y_val = train_test_split(X, Y, random_state=self._random_state,
                                                          test_size=self.validation_fraction, stratify=stratify)  # fmt: skip
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        y_val = self._label_binarizer.inverse_transform(Y_val) if is_classifier(self) else Y_val
        return np.ascontiguousarray(X_train), np.ascontiguousarray(Y_train), X_val, y_val

    def _update_no_improvement_count(self, w, X_val, y_val):
        """scikit-learn's bookkeeping after an epoch; returns whether these weights are the best so far."""
        if self.early_stopping:
            score = self._validation_score(w, X_val, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            improved = score >= self.best_validation_score_ + self.tol
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                return True
            return False
        improved = self.loss_curve_[-1] <= self.best_loss_ - self.tol
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        return False

    def _stop_or_slow_down(self):
        """scikit-learn's trigger_stopping: stop, or (sgd, learning_rate="adaptive") divide the rate by 5."""
        what = "Validation score" if self.early_stopping else "Training loss"
        message = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        if self.solver == "sgd" and self.learning_rate == "adaptive" and self._learning_rate > 1e-6:
            self._learning_rate /= 5.0
            if self.verbose:
                print(message + " Setting learning rate to %f" % self._learning_rate)
            return False
        if self.verbose:
            print(message + " Stopping.")
        return True

    def _fit_lbfgs(self, X, Y):
        """scikit-learn's L-BFGS-B fit (SciPy's minimize, maxiter, maxfun, gtol=tol) on the compiled loss and
        gradient, plus the L2 term on the coefficients."""
        module, mask = self._module(), l2_mask(self._layers)
        loss_scale, gradient_scale, alpha, n = self._LOSS_SCALE, self._gradient_scale(), self.alpha, X.shape[0]

        def loss_and_grad(w):
            loss, grad = module.loss_and_grad(w, X, Y)
            penalty = 0.5 * alpha * np.dot(mask * w, w) / n
            return loss_scale * loss + penalty, gradient_scale * grad + alpha * mask * w / n

        result = scipy.optimize.minimize(loss_and_grad, pack(self.coefs_, self.intercepts_), method="L-BFGS-B",
                                         jac=True, options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                                            "gtol": self.tol})  # fmt: skip
        self.n_iter_ = result.nit
        if result.status != 0:
            message = f"lbfgs failed to converge after {result.nit} iterations: {result.message}"
            warnings.warn(message, ConvergenceWarning)
        self.loss_ = float(result.fun)
        self.coefs_, self.intercepts_ = unpack(result.x, self._layers)

    # ---- predicting ----

    def _forward(self, X):
        """The network's outputs, (N, n_outputs), at the fitted weights."""
        w = pack(self.coefs_, self.intercepts_)
        return self._forward_weights(w, X)

    def _forward_weights(self, w, X):
        out = self._module().forward(w, np.ascontiguousarray(X, dtype=np.float64))
        return out.reshape(X.shape[0], -1)

    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, reset=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's MLPClassifier on symcompile's compiled kernels: the same parameters, fitted attributes and
    training run (log loss; logistic output for binary and multilabel targets, softmax for multiclass)."""

    def _output(self):
        return ("softmax", "softmax_cross_entropy") if self._multiclass else ("sigmoid", "binary_cross_entropy")

    def _targets(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.float64, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                    f"Previously got {self.classes_}, `y` has {classes}"
                )
            if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        self._multiclass = self._label_binarizer.y_type_ == "multiclass"
        Y = self._label_binarizer.transform(y).astype(np.float64)
        return np.ascontiguousarray(X), np.ascontiguousarray(Y)

    def _validation_score(self, w, X, y):
        return accuracy_score(y, self._labels(self._forward_weights(w, X)))

    def _labels(self, out):
        return self._label_binarizer.inverse_transform(out.ravel() if out.shape[1] == 1 else out)

    def partial_fit(self, X, y, classes=None):
        """One epoch over X, y; the first call needs `classes` (all the labels), as scikit-learn's."""
        _check_stochastic(self.solver)
        self._validate_params()
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer().fit(y if type_of_target(y).startswith("multilabel") else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {self.classes_!r}"
            )
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """The predicted classes."""
        return self._labels(self._forward(self._validated(X)))

    def predict_proba(self, X):
        """The probability of each class (columns in the order of classes_)."""
        out = self._forward(self._validated(X))
        return np.hstack([1 - out, out]) if out.shape[1] == 1 else out

    def predict_log_proba(self, X):
        probabilities = self.predict_proba(X)
        return np.log(probabilities, out=probabilities)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's MLPRegressor on symcompile's compiled kernels: squared error halved, identity output."""

    _parameter_constraints: dict = {**_BaseMLP._parameter_constraints, "loss": [StrOptions({"squared_error"})]}
    # symcompile's mean_squared_error is the mean over outputs of (f - y)**2; scikit-learn's loss is half of it
    _LOSS_SCALE = 0.5

    def _gradient_scale(self):
        """scikit-learn's gradient is that of half the sum over the outputs (its delta is output - target), not
        of its loss, the mean over them: n_outputs / 2 times the module's."""
        return self.n_outputs_ / 2

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype="float64"):  # fmt: skip
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
        )  # fmt: skip
        self.loss = loss

    def _output(self):
        return "identity", "mean_squared_error"

    def _targets(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(len(y), -1).astype(np.float64)
        return np.ascontiguousarray(X), np.ascontiguousarray(Y)

    def _validation_score(self, w, X, y):
        out = self._forward_weights(w, X)
        if not np.isfinite(out).all():
            return np.nan
        return r2_score(y.reshape(out.shape) if y.ndim == 1 else y, out if out.shape[1] > 1 else out.ravel())

    def partial_fit(self, X, y):
        """One epoch over X, y."""
        _check_stochastic(self.solver)
        self._validate_params()
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """The predicted values: shape (N,) for one target, else (N, n_outputs)."""
        out = self._forward(self._validated(X))
        return out.ravel() if out.shape[1] == 1 else out


def _check_stochastic(solver):
    if solver not in STEPS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {solver} is not stochastic.")


# ---- a formula fitted by least squares ----


class ExpressionRegressor(RegressorMixin, BaseEstimator):
    """y = formula(inputs; params), fitted by the compiled Levenberg-Marquardt solver (the module's least_squares).

    formula: a string (parsed by symcompile.expression, which runs nothing) or a SymPy expression. params: the
    parameters to fit, a dict of starting values by name or a list of names (each starting at 1.0); None: every
    symbol that is not an input. inputs: the names of X's columns in order; None: the symbols that are not
    parameters, in alphabetical order (with params=None, the single symbol `x`). Fitted: params_ (a dict),
    stderr_ (a dict), covariance_, cost_ (0.5 * the residual sum of squares), status_, n_iter_.
    """

    _parameter_constraints: dict = {
        "formula": "no_validation",
        "params": [dict, list, tuple, None],
        "inputs": [list, tuple, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "xtol": [Interval(Real, 0, None, closed="left")],
        "ftol": [Interval(Real, 0, None, closed="left")],
        "gtol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, formula="a*x + b", params=None, inputs=None, *, max_iter=200, xtol=1e-10, ftol=1e-10,
                 gtol=1e-10):  # fmt: skip
        self.formula = formula
        self.params = params
        self.inputs = inputs
        self.max_iter = max_iter
        self.xtol = xtol
        self.ftol = ftol
        self.gtol = gtol

    def _model(self):
        """(the module, its parameter names, its input names): the formula compiled once per machine."""
        expression, names = _formula(self.formula)
        params, inputs = _roles(names, self.params, self.inputs)
        key = (str(expression), tuple(params), tuple(inputs), str(cache_dir()))
        if key not in _MODULES:
            import sympy as sp

            from symcompile.model import make_model

            symbols = {name: sp.Symbol(name, real=True) for name in names}
            target = sp.Symbol("_y_target", real=True) if "y" in names else sp.Symbol("y", real=True)
            expression = expression.subs({sp.Symbol(n): symbols[n] for n in names})
            model = make_model("sklearn_formula", expression, None, [symbols[p] for p in params],
                               [symbols[i] for i in inputs], [target], residual=expression - target)  # fmt: skip
            _MODULES[key] = cached_module(model, prefix="sklearn_formula")
        return _MODULES[key], params, inputs

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        module, params, inputs = self._model()
        if X.shape[1] != len(inputs):
            raise ValueError(f"X has {X.shape[1]} columns; the formula's inputs are {', '.join(inputs)}")
        starts = self.params if isinstance(self.params, dict) else {}
        w0 = np.array([float(starts.get(p, 1.0)) for p in params])
        fit = module.least_squares(w0, np.ascontiguousarray(X), y[:, None], max_iter=self.max_iter, xtol=self.xtol,
                                   ftol=self.ftol, gtol=self.gtol)  # fmt: skip
        if fit.status in ("non-finite", "improper input"):
            raise ValueError(f"least squares stopped: {fit.status} (try other starting values in params)")
        if fit.status == "max_iter":
            warnings.warn(f"least squares reached max_iter={self.max_iter} evaluations", ConvergenceWarning)
        self.coef_ = fit.w.copy()
        self.params_ = dict(zip(params, map(float, fit.w)))
        self.stderr_ = dict(zip(params, map(float, fit.stderr)))
        self.covariance_ = fit.covariance
        self.cost_, self.status_, self.n_iter_ = float(fit.cost), fit.status, fit.iterations
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        module, _, _ = self._model()
        return module.forward(self.coef_, np.ascontiguousarray(X)).reshape(X.shape[0])


def _formula(formula):
    """(SymPy expression, sorted names of its symbols) from a string or a SymPy expression."""
    import ast

    import sympy as sp

    from symcompile.expression import CONSTANTS, FUNCTIONS, ExpressionParser

    if isinstance(formula, sp.Basic):
        names = sorted(str(s) for s in formula.free_symbols)
        return formula, names
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string or a SymPy expression, not {type(formula).__name__}")
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as exc:
        raise SymcompileError(f"invalid formula {formula!r}: {exc.msg}") from None
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - set(FUNCTIONS) - set(CONSTANTS))
    expression = ExpressionParser({name: sp.Symbol(name) for name in names}).parse(formula)
    return expression, sorted(str(s) for s in expression.free_symbols)


def _roles(names, params, inputs):
    """(parameter names, input names) of a formula's symbols, from the estimator's `params` and `inputs`."""
    if params is not None:
        params = list(params)
    if inputs is not None:
        inputs = list(inputs)
    if params is None and inputs is None:
        inputs = ["x"] if "x" in names else None
        if inputs is None:
            raise ValueError(f"say which of {', '.join(names)} are inputs (inputs=[...]) or parameters (params=...)")
    if params is None:
        params = [n for n in names if n not in inputs]
    if inputs is None:
        inputs = [n for n in names if n not in params]
    for name in params + inputs:
        if name not in names:
            raise ValueError(f"{name!r} is not in the formula (its symbols: {', '.join(names)})")
    if set(params) & set(inputs):
        raise ValueError(f"{sorted(set(params) & set(inputs))} cannot be both parameters and inputs")
    missing = [n for n in names if n not in params and n not in inputs]
    if missing:
        raise ValueError(f"{', '.join(missing)} is neither a parameter nor an input")
    if not params:
        raise ValueError("the formula has no parameters to fit")
    if not inputs:
        raise ValueError("the formula has no inputs")
    return params, inputs
