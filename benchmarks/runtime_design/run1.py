"""One fresh process: python run1.py VARIANT [--speed] -> JSON (seconds: import numba, import model, first call)."""

import importlib, json, sys, time

t0 = time.perf_counter()
import numba, numpy as np  # noqa: F401 (timed: the import is what is measured)
from numba.core import event

t1 = time.perf_counter()
compiled, stack = [], []  # real compiles (not cache loads): [module.function, s inclusive, s exclusive]


class L(event.Listener):
    def on_start(self, e):
        f = e.data["dispatcher"].py_func
        stack.append([f.__module__.split(".")[-1] + "." + f.__name__, time.perf_counter(), 0.0])

    def on_end(self, e):
        name, start, children = stack.pop()
        took = time.perf_counter() - start
        if stack:
            stack[-1][2] += took
        if took > 0.01:
            compiled.append([name, round(took, 3), round(took - children, 3)])


event.register("numba:compile", L())
variant = sys.argv[1]
m = importlib.import_module(
    {"b_twin": "model_b_twin", "e_copy": "model_b_copy"}.get(variant, "model_" + variant.split("_")[0])
)
t2 = time.perf_counter()
if variant in ("c", "d1", "d1_full"):  # the kernels passed from Python
    from rtproto import loops

    if variant.startswith("d1"):
        from rtproto import loops_ft
    fn = loops.train_c if variant == "c" else loops_ft.train_generic
    call = lambda *a: fn(m._loss_and_grad_kernel, m._accuracy_kernel, *a)
elif variant.startswith("a"):
    k = m._train_adam_batches_kernel
    call = lambda w, X, Y, lr, wd, betas, eps, tol, *rest: k(w, X, Y, lr, wd, 0.0, False, betas, eps, tol, *rest)
else:
    call = m.train


def run(X, Y, batch, iters, shuffle=True):
    w = np.array([0.1, 0.2, 0.8, 0.6, 0.4, 0.1, 0.5])
    e2 = np.empty((0, X.shape[1]))
    e1 = np.empty((0, 1))
    rng = np.array([7 if shuffle else 0], dtype=np.uint64)[: int(shuffle)]
    args = (
        w,
        X,
        Y,
        0.01,
        0.0,
        (0.9, 0.999),
        1e-8,
        0.0,
        batch,
        rng,
        np.arange(X.shape[0]),
        e2,
        e1,
        0,
        np.zeros((2, 7)),
        np.zeros(6),
        w.copy(),
        iters,
        iters,
        np.empty(iters),
        np.empty(iters),
        np.empty(iters),
    )
    s = time.perf_counter()
    status = call(*args)
    return time.perf_counter() - s, status, w


rs = np.random.default_rng(0)
Xm = rs.normal(size=(256, 2))
Ym = (Xm[:, :1] * Xm[:, 1:] > 0).astype(float)
first, status, w = run(Xm, Ym, 32, 1)
out = {"numba": t1 - t0, "import": t2 - t1, "first_call": first, "compiled": list(compiled)}
if "--speed" in sys.argv:
    out["w"] = run(Xm, Ym, 4, 50)[2].tolist()  # same arithmetic in every variant?
    out["ns_minibatch_step"] = min(run(Xm, Ym, 4, 500)[0] for _ in range(5)) / (500 * 64) * 1e9
    X1 = np.array([[0.35, 0.9]])
    Y1 = np.array([[1.0]])
    if variant == "d1_full":
        from rtproto import loops_ft

        k2 = loops_ft.train_full

        def call(w, X, Y, lr, wd, betas, eps, tol, batch, rng, order, *rest):
            return k2(m._loss_and_grad_kernel, m._accuracy_kernel, w, X, Y, lr, wd, 0.0, False, betas, eps, tol, *rest)

    if variant == "a_full":
        k = m._train_adam_kernel

        def call(w, X, Y, lr, wd, betas, eps, tol, batch, rng, order, *rest):
            return k(w, X, Y, lr, wd, 0.0, False, betas, eps, tol, *rest)

    run(X1, Y1, 1, 1, False)
    out["ns_fullbatch_iter_seed"] = min(run(X1, Y1, 1, 200000, False)[0] for _ in range(5)) / 200000 * 1e9
print(json.dumps(out))
