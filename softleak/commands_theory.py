"""``softleak theory ...``: closed-form thresholds and exact checks, without training anything.

Commands: ``cover`` (Cover's separability probability at one size), ``thresholds`` (alpha_id and
alpha_label^T for a student fraction rho), ``separable`` (an exact LP check on one random instance)
and ``leakage`` (the predicted held-out accuracy of the weak-leakage phase, ``theory.leakage``).
The ``theory`` modules are imported inside the handlers, so parsing stays cheap and torch is never
loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys

from softleak.args import (
    fraction,
    fraction_grid,
    nonnegative_int,
    positive_float,
    positive_grid,
    positive_int,
)
from softleak.errors import UsageError

# Largest instance ``separable`` builds (n * d float64 entries, ~400 MB); beyond that the LP would
# not finish in reasonable time anyway.
_MAX_ENTRIES = 50_000_000
# Largest (alpha x rho) grid ``leakage`` evaluates (a few seconds of numpy at most).
_MAX_GRID = 1_000_000


def _class_count(text: str) -> int:
    """An integer number of classes >= 2."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected a number of classes >= 2, got {text!r}")
    return value


#: The one-line help of ``softleak theory`` (the top-level --help lists it).
HELP = "closed-form thresholds and exact checks (no training)"


def register(groups) -> None:
    """Add the ``theory`` group and its commands to the top-level subparsers ``groups``."""
    theory = groups.add_parser(
        "theory",
        help=HELP,
        description=(
            "Closed-form thresholds and exact checks, no training: Cover's separability probability "
            "(cover), the identifiability and teacher-capacity thresholds for a student fraction "
            "rho (thresholds), and an exact LP separability check of one random instance "
            "(separable), and the predicted held-out accuracy of the weak-leakage phase (leakage)."
        ),
    )
    commands = theory.add_subparsers(dest="theory_cmd", metavar="COMMAND", required=True)
    _add_cover(commands)
    _add_thresholds(commands)
    _add_separable(commands)
    _add_leakage(commands)


def _add_cover(commands) -> None:
    """``theory cover``: Cover's separability probability at one size."""
    cover = commands.add_parser(
        "cover",
        help="Cover's probability that n random labels in d dimensions are linearly separable",
        description=(
            "Cover (1965): n Gaussian points in R^d with random binary labels are linearly "
            "separable with probability P(n, d) = 2^(1-n) sum_{k<d} binom(n-1, k). Prints P and "
            "log10 P (exact, even when P underflows), the alpha = n/d where P = 1/2 (the teacher's "
            "memorization capacity, 2 for large d) and the 10%-90% width of the transition in "
            "alpha (~3.62/sqrt(d))."
        ),
    )
    cover.add_argument("--d", type=positive_int, required=True, help="input dimension d")
    size = cover.add_mutually_exclusive_group(required=True)
    size.add_argument("--n", type=positive_int, help="number of points n")
    size.add_argument(
        "--alpha", type=positive_float, help="sample complexity alpha = n/d (n = round(alpha d))"
    )
    cover.add_argument(
        "--bias", action="store_true", help="affine classifier sign(w.x + b): d -> d + 1"
    )
    cover.add_argument("--json", action="store_true", help="print one JSON object")
    cover.set_defaults(handler=_cover)


def _add_thresholds(commands) -> None:
    """``theory thresholds``: alpha_id and alpha_label^T for a student fraction rho."""
    thresholds = commands.add_parser(
        "thresholds",
        help="identifiability and teacher-capacity thresholds for a student fraction rho",
        description=(
            "Thresholds of the linear teacher/student problem (paper section 5.1) in the "
            "experiment's alpha: n/d for c = 2 with one logit, n/(d c) for c logits through a "
            "softmax. alpha_id = 1/rho (one logit) or 1/(rho c): from there the student's rho n "
            "samples determine the teacher (Phuong & Lampert 2019). alpha_label_T: the teacher's "
            "memorization capacity, 2 for c = 2 (Cover 1965), ~1/(2 ln c) for many classes "
            "(heuristic). Each value comes with its provenance: exact, asymptotic or heuristic."
        ),
    )
    thresholds.add_argument(
        "--rho", type=fraction, required=True, help="student's training fraction, 0 < rho < 1"
    )
    thresholds.add_argument(
        "--c", type=_class_count, default=2, help="number of classes (default: 2)"
    )
    thresholds.add_argument(
        "--d", type=positive_int, help="input dimension, for the finite-d teacher capacity"
    )
    thresholds.add_argument(
        "--softmax",
        action="store_true",
        help="for c = 2: two logits through a softmax (alpha = n/(d c)) instead of one logit",
    )
    thresholds.add_argument(
        "--latex", action="store_true", help="also print the closed forms as LaTeX"
    )
    thresholds.add_argument("--json", action="store_true", help="print one JSON object")
    thresholds.set_defaults(handler=_thresholds)


def _add_separable(commands) -> None:
    """``theory separable``: an exact LP check of one random instance."""
    separable = commands.add_parser(
        "separable",
        help="exact LP check: is one random instance linearly separable?",
        description=(
            "Draws n Gaussian points in R^d with exactly balanced random labels over c classes "
            "(the paper's protocol; n must be a multiple of c) and decides by linear programming "
            "whether a linear model classifies all of them correctly (sign(w.x) for c = 2, "
            "argmax W x for c > 2). For c = 2 also prints Cover's probability for comparison."
        ),
    )
    separable.add_argument("--n", type=positive_int, required=True, help="number of points n")
    separable.add_argument("--d", type=positive_int, required=True, help="input dimension d")
    separable.add_argument(
        "--c", type=_class_count, default=2, help="number of classes (default: 2)"
    )
    separable.add_argument(
        "--seed", type=nonnegative_int, default=0, help="random seed of the instance (default: 0)"
    )
    separable.add_argument("--bias", action="store_true", help="allow a bias (affine model)")
    separable.add_argument("--json", action="store_true", help="print one JSON object")
    separable.set_defaults(handler=_separable)


def _add_leakage(commands) -> None:
    """``theory leakage``: the weak phase's predicted held-out accuracy on an (alpha, rho) grid."""
    leakage = commands.add_parser(
        "leakage",
        help="predicted held-out accuracy of the weak-leakage phase (max-margin teacher)",
        description=(
            "Binary linear problem (paper sec. 5.1): n = alpha d Gaussian inputs with random "
            "labels, the hard-margin l2 max-margin teacher (alpha < 2) and the pseudo-inverse "
            "student on a fraction rho of them. Prints, per (alpha, rho): Gardner's margin kappa "
            "(sqrt(d)/||w|| for x ~ N(0, I/d)), support vectors per dimension n_SV/d, the "
            "student's overlaps r = ||P_S w||^2/||w||^2 and g (the seen part of a held-out "
            "support vector's push), and the predicted held-out member accuracy Int Dt Phi([r t "
            "+ g (kappa - t)_+]/sqrt(r (1 - r))). A heuristic (cavity) derivation checked by "
            "simulation (docs/theory.md); 1 for rho alpha >= 1, empty for alpha > 2. Control: "
            "a square-loss min-norm teacher leaks nothing (exactly 1/2 for alpha < 1)."
        ),
    )
    leakage.add_argument(
        "--alpha",
        type=positive_grid,
        required=True,
        help="sample complexities n/d: a list 'a,b', a range 'start:stop:num' or 'log:a:b:num'",
    )
    leakage.add_argument(
        "--rho", type=fraction_grid, required=True, help="student fractions in (0, 1) (a grid)"
    )
    leakage.add_argument("--json", action="store_true", help="print one JSON list of rows")
    leakage.set_defaults(handler=_leakage)


# --------------------------------------------------------------------------------------------------
# output


def _finite(value):
    """JSON-safe value: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _print_lines(rows: list[tuple[str, object]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {_fmt(value)}")


def _print_json(record: dict) -> None:
    print(json.dumps(_finite(record), allow_nan=False))


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send whatever native code writes to file descriptor 1 (solver banners) to stderr meanwhile,
    so that stdout carries only this command's output (one JSON object with ``--json``)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (embedded interpreter): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --------------------------------------------------------------------------------------------------
# handlers


def _cover(args: argparse.Namespace) -> int:
    from softleak.theory import cover

    d = args.d
    if args.n is not None:
        n = args.n
    else:
        raw = args.alpha * d
        if not math.isfinite(raw):
            raise UsageError(f"alpha * d = {args.alpha:g} x {d} overflows; use a smaller alpha")
        n = int(math.floor(raw + 0.5))
        if n < 1:
            raise UsageError(f"alpha * d = {args.alpha * d:g} rounds to n = 0; use a larger alpha")
    try:
        log_p = float(cover.log_p_separable(n, d, bias=args.bias))
        record = {
            "d": d,
            "n": n,
            "alpha": n / d,
            "bias": bool(args.bias),
            "p_separable": float(cover.p_separable(n, d, bias=args.bias)),
            "log10_p_separable": log_p / math.log(10.0),
            "alpha_half": cover.alpha_half(d, bias=args.bias),
            "width_10_90": cover.transition_width(d, bias=args.bias),
        }
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        _print_json(record)
        return 0
    _print_lines(
        [
            ("n, d", f"{n}, {d}" + (" (with bias)" if args.bias else "")),
            ("alpha = n/d", record["alpha"]),
            ("P(separable)", record["p_separable"]),
            ("log10 P(separable)", record["log10_p_separable"]),
            ("alpha at P = 1/2", record["alpha_half"]),
            ("width in alpha 10%-90%", record["width_10_90"]),
        ]
    )
    return 0


def _thresholds(args: argparse.Namespace) -> int:
    from softleak.theory import capacity, identifiability

    c = args.c
    if args.softmax and c != 2:
        raise UsageError("--softmax only applies to c = 2 (c > 2 always uses a softmax)")
    single = c == 2 and not args.softmax
    try:
        scale = identifiability.alpha_scale(c, single)
        a_id = capacity.alpha_id_bound(args.rho, c, single)
        a_t = capacity.alpha_label_T(c, None, single)
        a_t_d = capacity.alpha_label_T(c, args.d, single) if args.d is not None and c == 2 else None
    except ValueError as err:
        raise UsageError(str(err)) from None
    record = {
        "rho": args.rho,
        "c": c,
        "d": args.d,
        "alpha_scale": scale,
        "alpha_id": a_id.value,
        "alpha_label_T": a_t.value,
        "alpha_label_T_finite_d": None if a_t_d is None else a_t_d.value,
        "provenance": {
            "alpha_id": a_id.provenance,
            "alpha_label_T": a_t.provenance,
            "alpha_label_T_finite_d": None if a_t_d is None else a_t_d.provenance,
        },
    }
    latex = None
    if args.latex:
        from softleak.theory import symbolic

        latex = {name: symbolic.latex(name) for name in ("alpha_id", "alpha_label_T")}
        record["latex"] = latex
    if args.json:
        _print_json(record)
        return 0
    rows: list[tuple[str, object]] = [
        ("alpha scale", scale),
        (f"alpha_id(rho={args.rho:g})", f"{a_id.value:.10g}  [{a_id.provenance}: {a_id.formula}]"),
        ("alpha_label_T", f"{a_t.value:.10g}  [{a_t.provenance}: {a_t.formula}]"),
    ]
    if a_t_d is not None:
        rows.append(
            (f"alpha_label_T(d={args.d})", f"{a_t_d.value:.10g}  [{a_t_d.provenance}: P = 1/2]")
        )
    if latex is not None:
        rows += [(f"latex {name}", text) for name, text in latex.items()]
    _print_lines(rows)
    return 0


def _separable(args: argparse.Namespace) -> int:
    n, d, c = args.n, args.d, args.c
    if n % c != 0:
        raise UsageError(f"n must be a multiple of c (balanced classes), got n = {n}, c = {c}")
    if n * d > _MAX_ENTRIES:
        raise UsageError(f"instance too large: n * d = {n * d} > {_MAX_ENTRIES}")
    import numpy as np

    from softleak.theory import feasibility

    X, y = feasibility.random_instance(n, d, c=c, seed=args.seed)
    with _stdout_to_stderr():
        if c == 2:
            result = feasibility.linearly_separable(X, y, bias=args.bias)
        else:
            if args.bias:  # an affine model in R^d is a homogeneous one on [X, 1]
                X = np.hstack([X, np.ones((n, 1))])
            result = feasibility.multiclass_separable(X, y, c)
    record = {
        "n": n,
        "d": d,
        "c": c,
        "seed": args.seed,
        "bias": bool(args.bias),
        "separable": bool(result.feasible),
        "solver": str(result.solver),
        "solve_s": float(result.solve_s),
    }
    if c == 2:
        from softleak.theory import cover

        record["p_separable_cover"] = float(cover.p_separable(n, d, bias=args.bias))
    if args.json:
        _print_json(record)
        return 0
    rows: list[tuple[str, object]] = [
        ("instance", f"n={n} d={d} c={c} seed={args.seed}" + (" bias" if args.bias else "")),
        ("separable", bool(result.feasible)),
        ("solver", f"{result.solver} ({result.solve_s:.3g} s)"),
    ]
    if c == 2:
        rows.append(("Cover P(separable)", record["p_separable_cover"]))
    _print_lines(rows)
    return 0


def _leakage(args: argparse.Namespace) -> int:
    import numpy as np

    from softleak.theory.leakage import leakage_prediction

    size = len(args.alpha) * len(args.rho)
    if size > _MAX_GRID:
        raise UsageError(f"grid too large: {size} (alpha, rho) points > {_MAX_GRID}")
    alpha, rho = np.meshgrid(args.alpha, args.rho, indexing="ij")
    rows = [_finite(r) for r in leakage_prediction(alpha, rho).rows()]
    if args.json:
        print(json.dumps(rows, allow_nan=False))
        return 0
    names = ("alpha", "rho", "kappa", "support_density", "r", "g", "accuracy")
    print("  ".join(f"{n:>15s}" for n in names))
    for row in rows:
        print("  ".join(f"{_fmt(row[n]):>15s}" for n in names))
    return 0
