"""Identifiers for generated code.

User symbols may be called anything SymPy accepts: `lambda`, `w_{1,2}`, `β`,
or `np`. Generated code gives each one a safe ASCII identifier that is not a
Python keyword, not a builtin, and not one of the module's own names, keeping
the original where it already is one (so the seed's code reads `w13`, not
`p2`). The original names survive in `PARAMS`, `INPUTS` and `TARGETS`.

The module's private globals (kernels, helpers such as `_sigmoid`) all start
with an underscore, and code names never do, so they cannot collide; the
public and local names the kernels use are listed in MODULE_NAMES (a test
checks the list against a generated module).
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re
import unicodedata

import sympy as sp

from symcompile import update_rules

# Names the generated module and its kernels use for themselves.
MODULE_NAMES = {
    "math", "np", "numba", "NamedTuple",
    "w", "X", "Y", "out", "grad", "steps", "n", "j", "loss", "scale", "lr", "tol", "max_iter",
    "sequential", "history", "status", "iteration", "previous", "slope", "finite", "limit", "t", "k", "correct",
    "hyperparameters", "types", "sys",
    "PARAMS", "INPUTS", "TARGETS", "INIT", "DEFAULTS", "MODEL_DIGEST", "TrainResult",
    "forward", "loss_and_grad", "train", "check_digest", "accuracy", "load_weights",
    "H", "i", "r", "J", "hessian", "residuals", "jacobian", "least_squares", "FitResult",  # second order, fitting
}  # fmt: skip
TAKEN = MODULE_NAMES | set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))


def reserved_names() -> set[str]:
    """Every name a user's symbol must not take: the module's own, Python's, and the update rules' hyperparameters
    (keywords of the module's `train`)."""
    return TAKEN | {h.name for h in update_rules.hyperparameters()}


def is_safe_code_name(name: str, reserved=None) -> bool:
    """Whether generated code may use `name` as it is (`reserved`: `reserved_names()`, when the caller has it)."""
    reserved = reserved_names() if reserved is None else reserved
    return name.isidentifier() and name.isascii() and not name.startswith("_") and name not in reserved


def _ascii_like(char: str) -> str:
    """`β` -> `beta`, `é` -> `e`; other characters are left for the caller to replace."""
    if char.isascii():
        return char
    words = unicodedata.name(char, "").split()
    if words[:1] == ["GREEK"] and "LETTER" in words:
        return "_" + (words[-1].capitalize() if "CAPITAL" in words else words[-1].lower()) + "_"
    return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or char


def _identifier_like(name: str) -> str:
    """An ASCII identifier resembling `name`; not yet checked for clashes."""
    candidate = re.sub(r"[^0-9A-Za-z]+", "_", "".join(map(_ascii_like, name))).strip("_") or "v"
    if candidate[0].isdigit():
        candidate = "v" + candidate
    return candidate


class NameTable:
    """Maps model symbols to code identifiers and hands out fresh internal names."""

    def __init__(self, symbols):
        reserved = reserved_names()
        self.taken = reserved | {s.name for s in symbols}
        self.code = {}
        for symbol in symbols:
            if is_safe_code_name(symbol.name, reserved):
                self.code[symbol] = symbol.name
        claimed = set(self.code.values())
        for symbol in symbols:
            if symbol not in self.code:
                self.code[symbol] = self._unique(_identifier_like(symbol.name), claimed)
                claimed.add(self.code[symbol])
        self.taken |= claimed

    def _unique(self, base, claimed):
        for suffix in itertools.chain([""], (f"_{k}" for k in itertools.count(1))):
            name = base + suffix
            if name not in self.taken and name not in claimed:
                return name

    def fresh(self, prefix):
        """Endless names prefix0, prefix1, ... that clash with nothing in the model or module."""
        return (f"{prefix}{k}" for k in itertools.count() if f"{prefix}{k}" not in self.taken)

    def new_temporaries(self):
        return (sp.Symbol(name) for name in self.fresh("t"))

    def code_name(self, symbol):
        return self.code.get(symbol, symbol.name)

    def module_symbol(self, name):
        """A symbol for one of the module's own names, such as the kernels' argument `lr`.

        A Dummy, so it never equals a user's symbol of the same name.
        """
        assert name in MODULE_NAMES, name
        symbol = sp.Dummy(name)
        self.code[symbol] = name
        return symbol

    def local_symbol(self, base):
        """A symbol for a new local of generated code, named `base` (or `base_1`, ... if taken)."""
        name = self._unique(_identifier_like(base), set())
        self.taken.add(name)
        symbol = sp.Dummy(name)
        self.code[symbol] = name
        return symbol
