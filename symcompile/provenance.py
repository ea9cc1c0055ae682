"""Provenance: what a generated module records about how it was built, written and read back in one place.

A module's header (templates/header.py.j2) carries the versions that built
it, the build's options, a digest of the model it was built from (so `train`
notices an edited spec or data file) and a digest of its own body (the text
below the header's last line, so a hand edit or a truncated file is noticed).
No timestamp: the same model always gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from symcompile.writer import data_digest, data_file, holds_data  # the write stage owns the data file

MODEL_LINE = "# Model: sha256:"
DIGEST_LINE = "# Digest: sha256:"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_digest(model) -> str:
    """SHA-256 of everything the model holds, so a module can record what it was built from.

    Symbols and numbers go in as `srepr` (names, assumptions, exact values),
    the arrays with their shapes, so two models share a digest only when they
    are equal.
    """
    from symcompile import __version__

    network = [] if model.network is None else [repr(model.network)]  # kept out for other models: their digests stay
    parts = [
        __version__, model.name, model.description, repr(vars(model.training)), *network,
        *expression_digests(model.params + model.inputs + model.targets + model.outputs + (model.loss,)),
        *(_array_text(a, hashed=model.network is not None) for a in (model.init, model.X, model.Y)),
    ]  # fmt: skip
    if model.classifier:
        parts.append(f"classifier={model.classifier}")
    if model.dtype != "float64":  # only then: float64 models keep the digests they had
        parts.append(f"dtype={model.dtype}")
    if model.residuals:  # only then, so that other models keep the digests they had
        parts += ["residuals", *expression_digests(model.residuals)]
    return sha256("\n".join(parts))


def weights_digest(model) -> str:
    """SHA-256 of what a model's weights mean: its parameters, inputs, targets, outputs and loss (not its
    defaults). Saved weights carry it, so a module loads only weights trained for its own formula."""
    symbols = model.params + model.inputs + model.targets
    return sha256("\n".join(expression_digests(symbols + model.outputs + (model.loss,))))


def _array_text(array, hashed):
    """An array as digest input: its shape and bytes, or (for networks: millions of weights) its bytes' SHA-256,
    an order of magnitude faster than spelling them in hex. Other models keep the hex, and so their digests."""
    data = hashlib.sha256(array.tobytes()).hexdigest() if hashed else array.tobytes().hex()
    return f"{array.shape}:{data}"


def expression_digests(exprs):
    """A digest per expression, computed once per distinct subexpression.

    Networks repeat whole layers inside every neuron after them, so the tree
    (what `srepr` would spell out) can be thousands of times larger than the
    distinct subexpressions this visits.
    """
    import sympy as sp  # here: versions() below serves train's shortcut, which imports no SymPy (current_module.py)

    memo = {}

    def digest(expr):
        if expr not in memo:
            text = f"{type(expr).__name__}({','.join(map(digest, expr.args))})" if expr.args else sp.srepr(expr)
            memo[expr] = sha256(text)
        return memo[expr]

    return [digest(e) for e in exprs]


def versions() -> dict[str, str]:
    from symcompile import __version__

    return {"symcompile": __version__} | {pkg: metadata.version(pkg) for pkg in ("sympy", "numba", "numpy")}


@dataclass(frozen=True)
class Provenance:
    """What the header records: versions, the build's choices (gradient method, layout, rewrites applied), the
    model's digest, the body's digest, and the command that rebuilds the module."""

    versions: dict
    gradient: str
    layout: str
    rewrites: tuple[str, ...]
    model_digest: str
    body_digest: str
    rebuild_command: str
    kernels: str = "scalar"  # or "dense": an MLP's layers as loops over weight matrices (symcompile/dense.py)

    def options_text(self) -> str:
        """The `# Options:` line. `cse=on` is always so, and the original layout, unrolled, goes unmentioned:
        both keep the bytes of modules built before they could vary."""
        if self.kernels == "dense":
            return f"kernels=dense, {self.layout}, rewrites={'+'.join(self.rewrites) or 'none'}"
        options = {"gradient": self.gradient, "cse": "on", "rewrites": "+".join(self.rewrites) or "none"}
        if self.layout != "unrolled":
            options["layout"] = self.layout
        return ", ".join(f"{k}={v}" for k, v in options.items())

    def header_fields(self) -> dict:
        """The header template's variables that come from provenance."""
        return {
            "versions": self.versions,
            "options": self.options_text(),
            "model_digest": self.model_digest,
            "digest": self.body_digest,
        }


@dataclass(frozen=True)
class Recorded:
    """What a module's header says: the digests (None where a line is missing) and the body below the header."""

    model_digest: str | None
    body_digest: str | None
    body: str | None


def read_header(path) -> Recorded:
    """The digests a module at `path` records, and its body; lines the header lacks read as None."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    model = digest = body = None
    position = 0
    for line in text.splitlines(keepends=True):
        position += len(line)
        if line.startswith(MODEL_LINE):
            model = line[len(MODEL_LINE) :].split()[0]
        if line.startswith(DIGEST_LINE):
            # The header ends with the digest line and one blank line (templates/header.py.j2); the body follows.
            digest, body = line[len(DIGEST_LINE) :].split()[0], text[position:].removeprefix("\n")
            break  # the header's formula comment can be long; the digests end it
    return Recorded(model, digest, body)


def why_rebuild(path, model) -> str | None:
    """Why the module at `path` must be (re)built for `model`, or None when it is current."""
    path = Path(path)
    if not path.is_file():
        return "not built yet"
    if read_header(path).model_digest != model_digest(model):
        return "was built from a different model"
    return verify_module(path) or data_file_problem(path, model)


def data_file_problem(path, model) -> str | None:
    """What is wrong with the data file beside the module at `path`, for a model whose data lives in one."""
    if data_file(model) and not holds_data(path.parent / data_file(model), data_digest(model.X, model.Y)):
        return f"is missing its data file {data_file(model)}, or that file holds other data"
    return None


def verify_module(path) -> str | None:
    """What is wrong with the module at `path` (hand-edited, truncated, no header), or None when its body is the
    one its header's digest records."""
    recorded = read_header(path)
    if recorded.body_digest is None:
        return "has no symcompile header with a digest"
    if sha256(recorded.body) != recorded.body_digest:
        return "was changed after it was generated (its body does not match the digest in its header)"
    return None
