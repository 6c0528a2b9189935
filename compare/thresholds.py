"""Empirical thresholds from a results table, with bootstrap confidence intervals over seeds.

Four named rules (paper Sec. 5.1, REFERENCE.md "Threshold rules"), each applied to the seed-mean
accuracy curve as a function of alpha:

===========================  =========================  =========  ==========================
rule                         metric                     direction  rows used
===========================  =========================  =========  ==========================
``alpha_label_T``            ``teacher_train_acc``      down       all; grouped by teacher
``alpha_label_S``            ``student_train_acc``      down       unshuffled
``alpha_id_S``               ``student_test_acc``       up         unshuffled
``alpha_label_S_shuffle``    ``student_train_acc``      down       shuffled
===========================  =========================  =========  ==========================

**Located crossing** (``value``): the first crossing of the cut-off in the rule's direction when
scanning alpha upward (down: from ``>= cutoff`` to ``< cutoff``; up: from ``< cutoff`` to
``>= cutoff``), located by linear interpolation between the two grid points that bracket it. On a
non-monotone curve (e.g. the MLP student train accuracy that drops and jumps back to 1, Fig. 7) this
is the first crossing, not the last. A curve that never crosses gives NaN with a reason in ``note``:
on the "before" side of the cut-off over the whole grid (threshold beyond the largest alpha), on
the "after" side over the whole grid (threshold below the smallest alpha), or crossing only in the
other direction.

**Reference rule** (``midpoint``), as the paper's code computed it (REFERENCE.md): for the label
thresholds, the midpoint between the largest grid alpha whose mean accuracy is ``>= cutoff`` and the
next grid alpha (NaN when that is the last grid point); for ``alpha_id_S`` the smallest grid alpha
with mean test accuracy ``>= cutoff``. (The multinomial sweeps' rule, REFERENCE.md, is the same
with ``cutoff=1.0``, except that it reported the last grid alpha itself rather than the midpoint.)

**Bootstrap** (``ci_low``, ``ci_high``): seeds (teacher replicates) are resampled with replacement,
the mean curve and its crossing recomputed, and the percentile interval taken (``inverted_cdf``
quantiles, so censored resamples count as beyond the grid rather than being dropped; a bound may
then be +-inf). Missing (alpha, seed) cells are filled with the other seeds' mean at that alpha
before resampling. One seed gives ``(nan, nan)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from softleak.compare.table import (
    CONDITION_COLUMNS,
    TEACHER_COLUMNS,
    is_single_logit,
    jsonable,
    normalize,
    present,
    seed_matrix,
)

log = logging.getLogger(__name__)

#: Float slack when comparing a seed mean with the cut-off (a mean of five 1.0 is exactly 1.0,
#: but a mean of 0.99-valued floats can land one ulp below 0.99).
CUTOFF_TOL = 1e-12

#: Default cut-off (REFERENCE.md: 0.99 for the pseudo-inverse figure).
DEFAULT_CUTOFF = 0.99

#: Experiments with closed-form predictions (linear teacher and student).
LINEAR_EXPERIMENTS: frozenset[str] = frozenset({"logistic-pinv", "multinomial"})

Direction = Literal["down", "up"]


@dataclass(frozen=True)
class Rule:
    """A threshold rule: which metric, which crossing direction, which rows."""

    name: str  # key in the report, e.g. "alpha_id_S"
    metric: str  # results-table column of the accuracy curve
    direction: Direction  # "down": last alpha still >= cutoff; "up": first alpha >= cutoff
    shuffle: bool | None  # rows used: False unshuffled, True shuffled, None all
    teacher: bool  # group by teacher configuration only (independent of rho, tau)
    description: str  # one line for help texts


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "alpha_label_T",
            "teacher_train_acc",
            "down",
            None,
            True,
            "teacher memorization capacity: largest alpha with teacher train acc >= cutoff",
        ),
        Rule(
            "alpha_label_S",
            "student_train_acc",
            "down",
            False,
            False,
            "student memorization capacity: largest alpha with student train acc >= cutoff",
        ),
        Rule(
            "alpha_id_S",
            "student_test_acc",
            "up",
            False,
            False,
            "identifiability: smallest alpha with student test acc >= cutoff",
        ),
        Rule(
            "alpha_label_S_shuffle",
            "student_train_acc",
            "down",
            True,
            False,
            "shuffled-label student capacity: largest alpha with shuffled student train acc "
            ">= cutoff",
        ),
    )
}


#: Columns some rules read that the results table derives rather than stores.
DERIVED_METRICS = {
    # -log10 of the student's MSE to the teacher's logits on D_test^S (exact zeros clipped at
    # 1e-30 so that they stay finite): crossing 6 upward means MSE < 1e-6.
    "neg_log10_test_mse": lambda df: -np.log10(np.clip(df["test_mse"].astype(float), 1e-30, None)),
}

#: Rules outside the paper's four (not in the default report); ``find_thresholds`` takes their
#: names too. Cut-off of ``alpha_mse_S``: 6 (MSE < 1e-6).
EXTRA_RULES: dict[str, Rule] = {
    "alpha_mse_S": Rule(
        "alpha_mse_S",
        "neg_log10_test_mse",
        "up",
        False,
        False,
        "identification from the logits: smallest alpha with seed-mean -log10(test MSE) >= "
        "cutoff (6: MSE < 1e-6)",
    ),
}


# --------------------------------------------------------------------------------------------
# Crossings on one or many curves
# --------------------------------------------------------------------------------------------


def crossings(x: np.ndarray, y: np.ndarray, cutoff: float, direction: Direction) -> np.ndarray:
    """First crossing of ``cutoff`` in ``direction`` for each column of ``y``.

    Args:
        x: grid, shape (A,), strictly increasing.
        y: curves, shape (A,) or (A, B), no NaN.
        cutoff: level to cross.
        direction: ``"down"`` (from >= cutoff to < cutoff) or ``"up"`` (from < to >=).

    Returns:
        Crossing alphas, shape () or (B,), by linear interpolation between the bracketing grid
        points. Censored curves give ``+inf`` (still on the before side at the largest alpha, i.e.
        the threshold lies above the grid) or ``-inf`` (on the after side over the whole grid, i.e.
        below the grid); curves crossing only in the other direction give NaN.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    ok = y2 >= cutoff - CUTOFF_TOL  # (A, B)
    before = ok if direction == "down" else ~ok  # the side the curve starts on
    trans = before[:-1] & ~before[1:]  # (A-1, B)
    out = np.full(y2.shape[1], np.nan)
    all_before = before.all(axis=0)
    none_before = ~before.any(axis=0)
    out[all_before] = np.inf
    out[none_before] = -np.inf
    if trans.shape[0] > 0:
        has = trans.any(axis=0)
        i = np.argmax(trans, axis=0)  # first crossing, shape (B,)
        cols = np.arange(y2.shape[1])
        x0, x1 = x[i], x[i + 1]
        y0, y1 = y2[i, cols], y2[i + 1, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(y1 != y0, (cutoff - y0) / (y1 - y0), 0.5)
        val = x0 + np.clip(t, 0.0, 1.0) * (x1 - x0)
        out = np.where(has, val, out)
    return out[0] if squeeze else out


def reference_rule(x: np.ndarray, y: np.ndarray, cutoff: float, direction: Direction) -> float:
    """The paper code's rule on one mean curve (see module docstring).

    ``down``: midpoint between the largest x with ``y >= cutoff`` and the next grid x (NaN if no
    point satisfies it or it is the last grid point). ``up``: the smallest x with ``y >= cutoff``.
    """
    ok = np.asarray(y, dtype=float) >= cutoff - CUTOFF_TOL
    if not ok.any():
        return math.nan
    if direction == "up":
        return float(x[np.argmax(ok)])
    last = int(np.flatnonzero(ok)[-1])
    if last == len(x) - 1:
        return math.nan
    return float(0.5 * (x[last] + x[last + 1]))


def _censor_note(value: float, direction: Direction, cutoff: float, x: np.ndarray) -> str:
    if value == np.inf:
        side = "above" if direction == "down" else "below"
        return f"mean curve stays {side} {cutoff:g} over the grid: threshold > {x[-1]:.4g}"
    if value == -np.inf:
        side = "below" if direction == "down" else "above"
        return f"mean curve is {side} {cutoff:g} over the whole grid: threshold < {x[0]:.4g}"
    other = "upward" if direction == "down" else "downward"
    return f"mean curve crosses {cutoff:g} only {other}: no {direction}ward crossing"


def bootstrap_crossings(
    x: np.ndarray,
    m: np.ndarray,
    cutoff: float,
    direction: Direction,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Crossings of the mean of ``m`` (A, S) over seeds resampled with replacement, shape (n_boot,).

    NaN cells are filled with the row's mean over the other seeds first.
    """
    m = np.asarray(m, dtype=float)
    n_seeds = m.shape[1]
    row_mean = np.nanmean(m, axis=1, keepdims=True)
    filled = np.where(np.isnan(m), row_mean, m)
    idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    curves = filled[:, idx].mean(axis=2)  # (A, n_boot)
    return crossings(x, curves, cutoff, direction)


def percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values; NaN values (no crossing of the rule's kind) are
    dropped, +-inf values (censored beyond the grid) kept."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    q = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(q[0]), float(q[1])


# --------------------------------------------------------------------------------------------
# Result objects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """One measured threshold with its bootstrap interval and the reference rule's value."""

    name: str  # rule name, e.g. "alpha_id_S"
    value: float  # interpolated first crossing (NaN if none; see note)
    ci_low: float  # bootstrap percentile interval over seeds (NaN with one seed)
    ci_high: float
    midpoint: float  # the paper code's rule (midpoint for label rules, first grid point for id)
    rho: float  # student training fraction (NaN for alpha_label_T)
    tau: float  # temperature (NaN where it does not apply)
    cutoff: float  # accuracy cut-off used
    n_seeds: int  # teacher replicates in the mean curve
    note: str = ""  # why value is NaN, bootstrap caveats
    d: int | None = None
    c: int | None = None
    experiment: str = ""
    level: float = 0.95  # confidence level of (ci_low, ci_high)
    extra: tuple[tuple[str, Any], ...] = ()  # other condition columns of the group

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None)."""
        out = asdict(self)
        out["extra"] = dict(self.extra)
        return jsonable(out)


@dataclass(frozen=True)
class Prediction:
    """A closed-form prediction for one threshold (from the ``theory`` package)."""

    name: str  # "alpha_id" or "alpha_label_T"
    value: float
    rho: float
    c: int | None
    d: int | None
    experiment: str
    provenance: str = ""  # where the value comes from (theorem, fit, conjecture)
    formula: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return jsonable(asdict(self))


@dataclass(frozen=True)
class ThresholdTable:
    """Thresholds for every rule and condition in a sweep, plus the theory's predictions."""

    rows: tuple[Threshold, ...]
    predictions: tuple[Prediction, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, name: str | None = None, **where: Any) -> ThresholdTable:
        """Rows with ``name`` and matching attributes (floats compared with ``isclose``)."""
        rows = [r for r in self.rows if name is None or r.name == name]
        for key, value in where.items():
            rows = [r for r in rows if _same(getattr(r, key), value)]
        return ThresholdTable(tuple(rows), self.predictions)

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold, columns as the :class:`Threshold` fields (extra flattened)."""
        records = []
        for r in self.rows:
            rec = {k: v for k, v in asdict(r).items() if k != "extra"}
            rec.update(dict(r.extra))
            records.append(rec)
        columns = [f for f in Threshold.__dataclass_fields__ if f != "extra"]
        return pd.DataFrame.from_records(records, columns=columns if not records else None)

    def gaps(self) -> pd.DataFrame:
        """Measured minus predicted thresholds (see :func:`threshold_gaps`)."""
        return threshold_gaps(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"rows": [...], "predictions": [...]}``."""
        return {
            "rows": [r.to_dict() for r in self.rows],
            "predictions": [p.to_dict() for p in self.predictions],
        }

    def report(self) -> dict[str, Any]:
        """The ``softleak compare thresholds --json`` contract.

        Keys ``alpha_label_T``, ``alpha_label_S``, ``alpha_id_S``, ``alpha_label_S_shuffle``: each
        ``{value, ci_low, ci_high, midpoint, rho, tau, d, c, n_seeds, ...}``, a list of them when
        the sweep spans several conditions, or null when not measurable. ``theory``: predictions
        ``alpha_id`` (per rho) and ``alpha_label_T`` (per d, c, with provenance), and ``gap``
        (measured - predicted), each an object, a list, or null by the same rule.
        """
        out: dict[str, Any] = {}
        for name in RULES:
            entries = [_entry(r) for r in self.rows if r.name == name]
            out[name] = _one_or_list(entries)
        gaps = self.gaps()
        gap_out: dict[str, Any] = {}
        for name in ("alpha_label_T", "alpha_id_S"):
            sub = gaps[gaps["name"] == name] if not gaps.empty else gaps
            gap_out[name] = _one_or_list(
                [jsonable(rec) for rec in sub.to_dict(orient="records")] if len(sub) else []
            )
        out["theory"] = {
            "alpha_id": _one_or_list(
                [p.to_dict() for p in self.predictions if p.name == "alpha_id"]
            ),
            "alpha_label_T": _one_or_list(
                [p.to_dict() for p in self.predictions if p.name == "alpha_label_T"]
            ),
            "gap": gap_out,
        }
        return out

    def plot(self, ax: Any = None, x: str | None = None, theory: bool = True) -> Any:
        """Thresholds vs ``x`` (``"rho"`` or ``"tau"``; default: whichever varies) with CI bars.

        ``alpha_label_T`` (independent of rho, tau) is a horizontal line with its CI as a band;
        predictions are black dashed lines. Returns the axes.
        """
        from softleak.compare.style import (
            THEORY_STYLE,
            THRESHOLD_COLORS,
            THRESHOLD_LABELS,
            axes_or_new,
        )

        ax = axes_or_new(ax)
        students = [r for r in self.rows if not RULES[r.name].teacher]
        if x is None:
            n_tau = len({r.tau for r in students if not math.isnan(r.tau)})
            n_rho = len({r.rho for r in students if not math.isnan(r.rho)})
            x = "tau" if n_tau > 1 and n_rho <= 1 else "rho"
        if x not in ("rho", "tau"):
            raise ValueError(f"x must be 'rho' or 'tau', got {x!r}")
        for name in RULES:
            rows = [r for r in self.rows if r.name == name]
            if not rows:
                continue
            color = THRESHOLD_COLORS[name]
            label = THRESHOLD_LABELS[name]
            if RULES[name].teacher:
                for k, r in enumerate(rows):
                    if math.isfinite(r.value):
                        ax.axhline(r.value, color=color, lw=1.5, label=label if k == 0 else None)
                    lo, hi = r.ci_low, r.ci_high
                    if math.isfinite(lo) and math.isfinite(hi):
                        ax.axhspan(lo, hi, color=color, alpha=0.15, lw=0)
                continue
            for k, (_, series) in enumerate(_series(rows, x).items()):
                xs = np.array([getattr(r, x) for r in series])
                vs = np.array([r.value for r in series])
                los = np.array([r.ci_low for r in series])
                his = np.array([r.ci_high for r in series])
                err = np.vstack([vs - los, his - vs])
                err = np.where(np.isfinite(err), err, 0.0)
                ax.errorbar(
                    xs,
                    vs,
                    yerr=np.clip(err, 0.0, None),
                    color=color,
                    marker="o",
                    ms=3.5,
                    capsize=2,
                    lw=1.2,
                    label=label if k == 0 else None,
                )
        if theory:
            preds = [p for p in self.predictions if p.name == "alpha_id"]
            if preds and x == "rho":
                rho = np.array(sorted({p.rho for p in preds}))
                val = np.array([next(p.value for p in preds if p.rho == r) for r in rho])
                ax.plot(rho, val, **THEORY_STYLE, label=r"theory $\alpha_{\rm id}$")
            elif preds:
                ax.axhline(preds[0].value, **THEORY_STYLE, label=r"theory $\alpha_{\rm id}$")
            for k, p in enumerate(q for q in self.predictions if q.name == "alpha_label_T"):
                if math.isfinite(p.value):
                    ax.axhline(
                        p.value,
                        color="black",
                        ls=":",
                        lw=1.3,
                        label=r"theory $\alpha^T_{\rm label}$" if k == 0 else None,
                    )
        measured = [v for r in self.rows for v in (r.value, r.ci_high) if math.isfinite(v)]
        if measured:  # keep the data readable when a theory curve runs off (1/rho at small rho)
            top = 1.3 * max(measured)
            if ax.get_ylim()[1] > top:
                ax.set_ylim(min(0.0, ax.get_ylim()[0]), top)
        if x == "tau":
            ax.set_xscale("log")
        ax.set_xlabel(r"$\tau$" if x == "tau" else r"$\rho$")
        experiments = {r.experiment for r in self.rows}
        from softleak.compare.table import alpha_label

        ax.set_ylabel(alpha_label(next(iter(experiments)) if len(experiments) == 1 else None))
        if self.rows:
            ax.legend(fontsize="small", frameon=False)
        return ax


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(float(b)):
            return True
        return math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _series(rows: Sequence[Threshold], x: str) -> dict[tuple, list[Threshold]]:
    """Rows split into plot series: all condition fields except ``x`` equal; sorted by ``x``."""
    groups: dict[tuple, list[Threshold]] = {}
    other = "tau" if x == "rho" else "rho"
    for r in rows:
        key = (r.d, r.c, r.experiment, _key(getattr(r, other)), r.extra)
        groups.setdefault(key, []).append(r)
    return {k: sorted(v, key=lambda r: getattr(r, x)) for k, v in groups.items()}


def _key(v: float) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _entry(r: Threshold) -> dict[str, Any]:
    out = {
        "value": r.value,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "midpoint": r.midpoint,
        "rho": r.rho,
        "tau": r.tau,
        "d": r.d,
        "c": r.c,
        "n_seeds": r.n_seeds,
        "cutoff": r.cutoff,
        "experiment": r.experiment,
        "note": r.note,
    }
    out.update(dict(r.extra))
    return jsonable(out)


def _one_or_list(entries: list[dict[str, Any]]) -> Any:
    if not entries:
        return None
    return entries[0] if len(entries) == 1 else entries


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def threshold_of_curve(
    x: np.ndarray,
    m: np.ndarray,
    rule: Rule | str,
    cutoff: float = DEFAULT_CUTOFF,
    n_boot: int = 1000,
    rng: np.random.Generator | int | None = 0,
    level: float = 0.95,
) -> tuple[float, float, float, float, str]:
    """Threshold of one condition from its per-seed matrix.

    Args:
        x: alpha grid, shape (A,), increasing.
        m: metric, shape (A, S) (one column per seed; NaN where missing) or (A,).
        rule: a :class:`Rule` or its name.
        cutoff, n_boot, rng, level: as in :func:`find_thresholds`.

    Returns:
        ``(value, ci_low, ci_high, midpoint, note)``.
    """
    rule = RULES[rule] if isinstance(rule, str) else rule
    rng = np.random.default_rng(rng)
    m = np.asarray(m, dtype=float)
    if m.ndim == 1:
        m = m[:, None]
    x = np.asarray(x, dtype=float)
    keep = ~np.isnan(m).all(axis=1)
    x, m = x[keep], m[keep]
    notes = []
    mean = np.nanmean(m, axis=1)
    value = float(crossings(x, mean, cutoff, rule.direction))
    if not math.isfinite(value):
        notes.append(_censor_note(value, rule.direction, cutoff, x))
        value = math.nan
    midpoint = reference_rule(x, mean, cutoff, rule.direction)
    n_seeds = int((~np.isnan(m)).any(axis=0).sum())
    if n_seeds < 2 or n_boot < 1:
        lo = hi = math.nan
        if n_seeds < 2:
            notes.append("one seed: no confidence interval")
    else:
        boot = bootstrap_crossings(x, m, cutoff, rule.direction, n_boot, rng)
        lo, hi = percentile_ci(boot, level)
        n_nan = int(np.isnan(boot).sum())
        n_cens = int(np.isinf(boot).sum())
        if n_cens:
            notes.append(f"{n_cens}/{n_boot} resamples censored at the grid edge")
        if n_nan:
            notes.append(f"{n_nan}/{n_boot} resamples without a {rule.direction}ward crossing")
    return value, lo, hi, midpoint, "; ".join(notes)


def find_thresholds(
    df: pd.DataFrame,
    rules: Iterable[str | Rule] | None = None,
    cutoff: float | Mapping[str, float] = DEFAULT_CUTOFF,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    level: float = 0.95,
    theory: bool = True,
) -> ThresholdTable:
    """Measure thresholds for every rule and every condition in a results table.

    Args:
        df: results table (DESIGN.md columns). Student rules group by every condition column
            present (experiment, d, c, rho, tau, p_teacher, p_student, epochs, lrs, solver,
            ablation); ``alpha_label_T`` groups by the teacher's columns only (experiment, d, c and
            teacher hyper-parameters), since the teacher sees neither rho nor tau.
        rules: rule names (default: all of :data:`RULES`; :data:`EXTRA_RULES` by name too) or
            :class:`Rule` objects. Derived metrics (:data:`DERIVED_METRICS`) are added. Rules whose
            metric column is missing or whose rows are absent (e.g. no shuffled runs) give no row.
        cutoff: accuracy cut-off, one for all rules or a mapping rule name -> cut-off.
        n_boot: bootstrap resamples over seeds (0 disables the interval).
        seed: seed or generator for the bootstrap.
        level: confidence level of the percentile interval.
        theory: attach the ``theory`` package's predictions for linear experiments.

    Returns:
        A :class:`ThresholdTable`.
    """
    df = normalize(df)
    rng = np.random.default_rng(seed)
    chosen = [
        (RULES.get(r) or EXTRA_RULES[r]) if isinstance(r, str) else r for r in (rules or RULES)
    ]
    for rule in chosen:
        derive = DERIVED_METRICS.get(rule.metric)
        if derive is not None and rule.metric not in df.columns and "test_mse" in df.columns:
            df = df.assign(**{rule.metric: derive(df)})
    rows: list[Threshold] = []
    for rule in chosen:
        cut = float(cutoff[rule.name] if isinstance(cutoff, Mapping) else cutoff)
        if rule.metric not in df.columns:
            log.info("no %s column: skipping %s", rule.metric, rule.name)
            continue
        sub = df if rule.shuffle is None else df[df["shuffle"] == rule.shuffle]
        sub = sub[sub[rule.metric].notna()]
        if sub.empty:
            log.info("no rows for %s", rule.name)
            continue
        keys = present(sub, TEACHER_COLUMNS if rule.teacher else CONDITION_COLUMNS)
        for key, group in sub.groupby(keys, dropna=False, sort=True):
            cond = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            x, _, m = seed_matrix(group, rule.metric)
            if x.size == 0:
                continue
            value, lo, hi, mid, note = threshold_of_curve(
                x, m, rule, cut, n_boot=n_boot, rng=rng, level=level
            )
            extra = tuple(
                (k, _plain(v))
                for k, v in cond.items()
                if k not in ("experiment", "d", "c", "rho", "tau")
            )
            rows.append(
                Threshold(
                    name=rule.name,
                    value=value,
                    ci_low=lo,
                    ci_high=hi,
                    midpoint=mid,
                    rho=math.nan if rule.teacher else float(cond.get("rho", math.nan)),
                    tau=math.nan if rule.teacher else float(cond.get("tau", math.nan)),
                    cutoff=cut,
                    n_seeds=int((~np.isnan(m)).any(axis=0).sum()),
                    note=note,
                    d=_int_or_none(cond.get("d")),
                    c=_int_or_none(cond.get("c")),
                    experiment=str(cond.get("experiment", "")),
                    level=level,
                    extra=extra,
                )
            )
    predictions = tuple(predictions_for(rows)) if theory else ()
    return ThresholdTable(tuple(rows), predictions)


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _int_or_none(v: Any) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v)


# --------------------------------------------------------------------------------------------
# Theory predictions and gaps
# --------------------------------------------------------------------------------------------


def predict_alpha_id(rho: float, c: int, experiment: str) -> Prediction | None:
    """``theory.identifiability.alpha_id`` for a linear experiment (None otherwise)."""
    if experiment not in LINEAR_EXPERIMENTS or rho is None or math.isnan(rho):
        return None
    try:
        from softleak.theory.identifiability import alpha_id
    except ImportError as err:
        log.warning("softleak.theory.identifiability unavailable (%s): no alpha_id prediction", err)
        return None
    single = is_single_logit(experiment)
    value = float(alpha_id(rho, c=c, single_logit=single))
    return Prediction(
        name="alpha_id",
        value=value,
        rho=float(rho),
        c=c,
        d=None,
        experiment=experiment,
        provenance="exact",
        formula="alpha = n/d = 1/rho" if single else "alpha = n/(d c) = 1/(rho c)",
        note="linear teacher: the student's rho n inputs determine it iff rho n >= d "
        "(Phuong & Lampert 2019)",
    )


def predict_alpha_label_T(c: int, d: int | None, experiment: str) -> Prediction | None:
    """``theory.capacity.alpha_label_T`` for a linear experiment (None otherwise)."""
    if experiment not in LINEAR_EXPERIMENTS:
        return None
    try:
        from softleak.theory.capacity import alpha_label_T
    except ImportError as err:
        log.warning("softleak.theory.capacity unavailable (%s): no alpha_label_T prediction", err)
        return None
    bound = alpha_label_T(c=c, d=d, single_logit=is_single_logit(experiment))
    return Prediction(
        name="alpha_label_T",
        value=float(bound.value),
        rho=math.nan,
        c=c,
        d=d,
        experiment=experiment,
        provenance=str(getattr(bound, "provenance", "")),
        formula=str(getattr(bound, "formula", "")),
        note=str(getattr(bound, "note", "") or ""),
    )


def predictions_for(rows: Iterable[Threshold]) -> list[Prediction]:
    """Predictions matching measured rows: alpha_id per (rho, c, experiment) of the
    ``alpha_id_S`` rows, alpha_label_T per (d, c, experiment) of the ``alpha_label_T`` rows."""
    out: list[Prediction] = []
    seen: set[tuple] = set()
    for r in rows:
        key: tuple
        if r.c is None:
            continue
        if r.name == "alpha_id_S":
            key = ("alpha_id", r.rho, r.c, r.experiment)
            if key not in seen:
                seen.add(key)
                p = predict_alpha_id(r.rho, r.c, r.experiment)
                if p is not None:
                    out.append(p)
        elif r.name == "alpha_label_T":
            key = ("alpha_label_T", r.d, r.c, r.experiment)
            if key not in seen:
                seen.add(key)
                p = predict_alpha_label_T(r.c, r.d, r.experiment)
                if p is not None:
                    out.append(p)
    return out


GAP_COLUMNS = (
    "name",
    "experiment",
    "d",
    "c",
    "rho",
    "tau",
    "measured",
    "ci_low",
    "ci_high",
    "midpoint",
    "predicted",
    "gap",
    "provenance",
)


def threshold_gaps(table: ThresholdTable) -> pd.DataFrame:
    """Measured minus predicted: ``alpha_id_S`` vs ``alpha_id(rho)``, ``alpha_label_T`` vs the
    capacity bound. Columns :data:`GAP_COLUMNS`; ``gap = measured - predicted``."""
    records = []
    for r in table.rows:
        if r.name == "alpha_id_S":
            preds = [
                p
                for p in table.predictions
                if p.name == "alpha_id"
                and _same(p.rho, r.rho)
                and p.c == r.c
                and p.experiment == r.experiment
            ]
        elif r.name == "alpha_label_T":
            preds = [
                p
                for p in table.predictions
                if p.name == "alpha_label_T"
                and p.d == r.d
                and p.c == r.c
                and p.experiment == r.experiment
            ]
        else:
            continue
        if not preds:
            continue
        p = preds[0]
        records.append(
            {
                "name": r.name,
                "experiment": r.experiment,
                "d": r.d,
                "c": r.c,
                "rho": r.rho,
                "tau": r.tau,
                "measured": r.value,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "midpoint": r.midpoint,
                "predicted": p.value,
                "gap": r.value - p.value,
                "provenance": p.provenance,
            }
        )
    return pd.DataFrame.from_records(records, columns=list(GAP_COLUMNS))


def format_table(table: ThresholdTable) -> str:
    """A human-readable table of thresholds (for the command line)."""
    if not table.rows:
        return "no thresholds measurable in this table"
    lines = [
        f"{'threshold':<22} {'d':>5} {'c':>4} {'rho':>6} {'tau':>8} {'value':>8} "
        f"{'95% CI':>19} {'ref.rule':>8} {'seeds':>5}  note"
    ]

    def num(v: float, width: int) -> str:
        return f"{v:>{width}.4g}" if math.isfinite(v) else f"{'-':>{width}}"

    for r in table.rows:
        ci = f"[{r.ci_low:.4g}, {r.ci_high:.4g}]" if not math.isnan(r.ci_low) else "-"
        lines.append(
            f"{r.name:<22} {r.d if r.d is not None else '-':>5} "
            f"{r.c if r.c is not None else '-':>4} {num(r.rho, 6)} {num(r.tau, 8)} "
            f"{num(r.value, 8)} {ci:>19} {num(r.midpoint, 8)} {r.n_seeds:>5}  {r.note}"
        )
    gaps = table.gaps()
    if not gaps.empty:
        lines.append("")
        lines.append(f"{'theory':<22} {'d':>5} {'c':>4} {'rho':>6} {'predicted':>9} {'gap':>8}")
        for rec in gaps.itertuples(index=False):
            lines.append(
                f"{rec.name:<22} {rec.d if rec.d is not None else '-':>5} {rec.c:>4} "
                f"{num(rec.rho, 6)} {num(rec.predicted, 9)} {num(rec.gap, 8)}"
            )
    return "\n".join(lines)
