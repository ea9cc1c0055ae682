"""A generated module's model as the runtime sees it, and the module's public functions, written once.

A module builds one `Model` from its constants and compiled kernels; its `forward`, `loss_and_grad`, `loss`,
`accuracy`, `train` and `load_weights` are thin functions that call the Model's methods of the same name.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from . import checks, loops, rules, targets, training, weights
from .pointers import function_value
from .signatures import LOSS_AND_GRAD

# The kernels a Model takes, by their names in the generated module.
KERNELS = ("_forward_kernel", "_loss_and_grad_kernel", "_accuracy_kernel", "_sequential_step_kernel", "_newton_step_kernel",
           "_train_full_batch_kernel", "_train_one_sample_sweep_kernel")  # fmt: skip


class Model:
    """The model of one generated module: names, defaults, data and compiled kernels.

    `kernels` maps the names in KERNELS to the module's compiled functions (those it has). `call_on_threads`:
    the dense modules' `_dense_call(kernel, threads, *arguments)`, which runs a kernel (or a loop calling it)
    on a number of Numba's threads; None where the kernels are serial. `missing`: why a kernel is absent, by
    its name (Newton's step without the Hessian). `dtype`: "float32" for a module whose dense kernels compute in
    float32 (its forward returns float32; weights, data and gradients stay float64 here).
    """

    def __init__(self, *, params, inputs, targets, n_outputs, init, X, Y, defaults, digest, target_loss, classifier,
                 kernels, call_on_threads=None, missing=None, dtype="float64"):  # fmt: skip
        self.params, self.inputs, self.targets = tuple(params), tuple(inputs), tuple(targets)
        self.n_outputs = n_outputs  # the training function's outputs: as many as the targets, except where the loss
        # combines several outputs into one target
        self.init, self.X, self.Y, self.defaults, self.digest = init, X, Y, defaults, digest
        self.target_loss, self.classifier = target_loss, classifier
        self.kernels, self.missing = kernels, missing or {}
        self.call_on_threads = call_on_threads
        self.residuals_per_sample = 0  # a residual model's module sets it (and adds _residuals_and_jacobian)
        self.dtype = dtype

    # ---- argument checks ----

    def weights(self, w):
        what = f"w (one value per parameter: {', '.join(self.params)})"
        if isinstance(w, np.ndarray) and w.ndim == 2:  # a table: samples passed where the weights go
            raise ValueError(
                f"{what} must have shape ({len(self.params)},), got {w.shape}: samples go in X, as in forward(w, X) or forward(X=X)"
            )
        return checks.real_array(self.init if w is None else w, what, (len(self.params),))

    def samples(self, X):
        what = f"X (one row per sample, one column per input: {', '.join(self.inputs)})"
        X = checks.real_array(self.X if X is None else X, what, (None, len(self.inputs)), kinds="iufb")
        if X.shape[0] == 0:
            raise ValueError("X has no samples")
        return X

    def target_rows(self, Y, n_samples, name="Y"):
        """Targets checked as symcompile checks a spec's: integer class labels of shape (N,) become one-hot rows,
        and targets outside the loss's domain are refused."""
        if Y is None:  # the module's own data (made one-hot when it was built)
            Y = self.Y
        elif targets.is_label_vector(Y, len(self.targets)):
            Y = targets.one_hot(Y, len(self.targets), name)
        what = f"{name} (one row per sample, one column per target: {', '.join(self.targets)})" if name == "Y" else name
        Y = checks.real_array(Y, what, (n_samples, len(self.targets)), kinds="iufb")
        targets.check_targets(self.target_loss, Y, name)
        return Y

    def validation(self, X_val, Y_val):
        """The validation samples, checked; empty arrays when there are none."""
        if X_val is None and Y_val is None:
            return np.empty((0, len(self.inputs))), np.empty((0, len(self.targets)))
        if X_val is None or Y_val is None:
            raise ValueError("give both X_val and Y_val, or neither")
        X_val = checks.real_array(X_val, "X_val", (None, len(self.inputs)), kinds="iufb")
        return X_val, self.target_rows(Y_val, X_val.shape[0], "Y_val")

    def threads(self, threads):
        return checks.threads(threads, numba.config.NUMBA_NUM_THREADS)

    def run(self, kernel, threads, *arguments):
        """kernel(*arguments), on `threads` of Numba's threads where the kernels are parallel."""
        if self.call_on_threads is None:
            return kernel(*arguments)
        return self.call_on_threads(kernel, threads, *arguments)

    # ---- the module's functions ----

    def forward(self, w=None, X=None):
        w, X = self.weights(w), self.samples(X)
        out = np.empty((X.shape[0], self.n_outputs))
        self.kernels["_forward_kernel"](w, X, out)
        if self.dtype == "float32":  # its outputs are float32 numbers (computed in float64 from float32 z)
            out = out.astype(np.float32)
        return out[:, 0] if out.shape[1] == 1 else out

    def loss_and_grad(self, w=None, X=None, Y=None, threads=None):
        w, X = self.weights(w), self.samples(X)
        Y = self.target_rows(Y, X.shape[0])
        grad = np.empty_like(w)
        value = self.run(self.kernels["_loss_and_grad_kernel"], self.threads(threads), w, X, Y, grad)
        if not math.isfinite(value):
            warnings.warn(f"the loss is {value} at these weights: the model divides by zero or overflows there",
                          RuntimeWarning, stacklevel=3)  # fmt: skip
        return value, grad

    def accuracy(self, w=None, X=None, Y=None):
        w, X = self.weights(w), self.samples(X)
        Y = self.target_rows(Y, X.shape[0])
        return float(self.kernels["_accuracy_kernel"](w, X, Y, np.empty((X.shape[0], self.n_outputs))))

    def load_weights(self, path):
        return self.weights(weights.load(path, self.params, self.digest))

    def save(self, path, w):
        weights.save(path, w, self.params, self.digest)

    # ---- training ----

    def optimizer(self, optimizer, update, hyperparameters):
        """The update rule to run and its hyperparameters, checked. `optimizer` names the rule, and `update` is its
        older name: given both, they must name the same rule ("gd" is rules.GD_RULE); neither, the module's
        default. A setting that the rule does not read must keep its default."""
        names = ("gd", *rules.RULES)
        if optimizer is not None and optimizer not in names:
            raise ValueError(f"optimizer must be one of {', '.join(names)}, not {optimizer!r}")
        if update is not None and update not in rules.RULES:
            raise ValueError(f"unknown update rule {update!r}; choose one of {', '.join(rules.RULES)}")
        if optimizer is not None and update is not None and rules.rule_of(optimizer) != update:
            raise ValueError(
                f"optimizer={optimizer!r} and update={update!r} name different update rules; give optimizer alone "
                "(update is its older name)"
            )
        optimizer = optimizer if optimizer is not None else update if update is not None else self.defaults["update"]
        rule = rules.RULES[rules.rule_of(optimizer)]
        if rule.model_kernel and rule.model_kernel not in self.kernels:
            raise ValueError(
                f"optimizer {optimizer!r} is not available: {self.missing.get(rule.model_kernel, 'not built')}"
            )
        reads = tuple(h.name for h in rule.hyperparameters)
        values = {}
        for h in rules.hyperparameters():
            value = hyperparameters.get(h.name, self.default(h))
            if h.name in reads:
                values[h.name] = h.value(value)
            elif value != self.default(h):
                h.value(value)  # a wrong value first gets the message that says what is allowed
                raise ValueError(f"{h.name} does not apply to optimizer {optimizer!r} (it reads {', '.join(reads)})")
        if values.get("nesterov") and not values.get("momentum"):
            raise ValueError("nesterov=True needs a momentum above 0")
        return rule, values

    def default(self, hyperparameter):
        """A hyperparameter's default: the module's (its training settings: lr), else the rule registry's."""
        return self.defaults.get(hyperparameter.name, hyperparameter.default)

    def train(self, w, X, Y, *, max_iter, tol, update, optimizer, hyperparameters, batch_size, shuffle, seed,
              X_val, Y_val, patience, record_every, progress, threads, result_type):  # fmt: skip
        """A module's `train`: from `w` (default the module's INIT) on X, Y (default its data); `w` is not modified.

        optimizer: the update rule (default: the module's DEFAULTS["update"]): "gd" or "simultaneous" (ordinary
        gradient descent), "sequential" (the parameters one by one in PARAMS order, each new value feeding the
        next derivative); "momentum" (with `momentum`, `nesterov`), "adam" and "adamw" (with `betas`, `eps`)
        follow torch.optim.SGD, Adam and AdamW; "newton" (small models built with the Hessian). `weight_decay` is
        an L2 term added to the gradient (AdamW: decoupled). A setting the optimizer does not read must keep its
        default. `update` is optimizer's older name, taking the rules' names ("simultaneous" for "gd"): given
        both, they must name the same rule. `hyperparameters` holds the module's keyword values by name.

        batch_size=None trains full-batch: one iteration is one step on all samples. An integer trains in
        mini-batches of that size (the last one smaller), one iteration being one epoch; with shuffle=True each
        epoch visits the samples in an order drawn from a generator seeded with `seed` (the same seed, the same
        run). The loss recorded for an epoch is the mean of its batches' losses, each weighted by its batch's
        size and taken at the weights that batch started from.

        Stops after max_iter iterations; after the first iteration in which every |step| < tol (tol=0 never
        stops early); with X_val, Y_val and patience, after `patience` epochs without a lower validation loss,
        returning the best weights (as scikit-learn's early stopping does, also when max_iter comes first);
        or at Ctrl-C, keeping the weights reached. record_every=k keeps every k-th iteration's loss and
        validation values (0: none); a run of more than 2**16 * k iterations keeps every (k * m)-th, the
        smallest m that keeps each history within 2**16 values, so memory is bounded however long the run (the
        result's record_every says which were kept). progress=True shows a tqdm bar (a plain line without
        tqdm). threads: how many of Numba's threads the dense kernels use (None: Numba's default; the result is
        the same for any number); checked, and unused, by the scalar kernels (they are serial).
        """
        w, X = self.weights(w).copy(), self.samples(X)
        Y = self.target_rows(Y, X.shape[0])
        rule, values = self.optimizer(optimizer, update, hyperparameters)
        max_iter = checks.integer("max_iter", max_iter, 1, 2**62)
        tol = checks.tolerance("tol", tol)
        batch_size = checks.integer("batch_size", batch_size, 1, none=X.shape[0])
        seed = checks.integer("seed", seed, 0, 2**64 - 1)
        patience = checks.integer("patience", patience, 1, none=0)
        record_every = training.recording_stride(checks.integer("record_every", record_every, 0), max_iter)
        X_val, Y_val = self.validation(X_val, Y_val)
        if patience and not X_val.shape[0]:
            raise ValueError("patience needs validation data: give X_val and Y_val")
        checks.flag("shuffle", shuffle)
        if progress is not False:
            checks.flag("progress", progress)
        threads = self.threads(threads)
        best_w = w.copy()
        run = loops.new_run()
        if batch_size < X.shape[0]:  # the order of the samples, and SplitMix64's state (none: no shuffling)
            loop = loops.train_mini_batches
            batches = (batch_size, np.array([seed] if shuffle else [], dtype=np.uint64), np.arange(X.shape[0]))
            kernels = self.loop_kernels(rule, X_val.shape[0] > 0)
        else:
            (loop, *kernels), batches = self.full_batch_loop(rule, X_val.shape[0] > 0, X.shape[0], values), ()
        arguments = (*kernels, w, X, Y, rules.vector(values), tol, *batches, X_val, Y_val, patience,
                     rules.init(rule, w.shape[0]), run, best_w)  # fmt: skip
        first_guess = training.FIRST_GUESS * (X.shape[0] + X_val.shape[0]) * w.shape[0]
        status, losses, val_losses, accuracies = training.train_in_chunks(
            lambda *a: self.run(loop, threads, *a), arguments, run, max_iter, record_every, first_guess, progress
        )
        if not self.classifier:
            accuracies = np.empty(0)
        if patience or status == loops.INTERRUPTED:  # the final loss at the weights returned
            if patience:
                w[:] = best_w
            if record_every:
                losses[-1] = self.kernels["_loss_and_grad_kernel"](w, X, Y, np.empty_like(w))
        return result_type(w, int(run[loops.ITERATION]), losses, status == 1, loops.STATUS[status], val_losses, accuracies,
                           best_w if X_val.shape[0] else w, record_every)  # fmt: skip

    def full_batch_loop(self, rule, validating, n_samples, values):
        """(the full-batch loop, the kernel arguments it takes first): the module's own loop with its kernels
        inlined where it has one (small models) and it runs `rule` (plain or sequential descent, no accuracy to
        record), else the runtime's, with `loop_kernels`. The sequential rule on one sample without weight decay
        (the blog's run) takes the loop that calls the straight-line sweep directly, where the module has one."""
        inlined = self.kernels.get("_train_full_batch_kernel")
        plain = rule.step is rules.gradient_descent_step
        if (
            inlined is not None
            and (plain or rule.model_kernel == "_sequential_step_kernel")
            and not (validating and self.classifier)
        ):
            one_sample = self.kernels.get("_train_one_sample_sweep_kernel")
            if not plain and one_sample is not None and n_samples == 1 and values.get("weight_decay", 0.0) == 0.0:
                return one_sample, True
            return inlined, not plain
        return loops.train_full_batch, *self.loop_kernels(rule, validating)

    def loop_kernels(self, rule, validating):
        """The function pointers a compiled loop takes for `rule`: loss and gradient, accuracy, the rule's step,
        the model's step, and whether the model's step is the one to take."""
        accuracy = self.kernels["_accuracy_kernel"] if validating and self.classifier else loops.no_accuracy
        step, model_step = (
            (rules.no_step, self.kernels[rule.model_kernel]) if rule.model_kernel else (rule.step, rules.no_model_step)
        )
        return (function_value(self.kernels["_loss_and_grad_kernel"], LOSS_AND_GRAD), function_value(accuracy, loops.ACCURACY),
                function_value(step, rules.STEP), function_value(model_step, rules.MODEL_STEP), bool(rule.model_kernel))  # fmt: skip
