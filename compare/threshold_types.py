"""Threshold result types: the rules, one measured threshold, the table of them with its views.

:data:`RULES` (the paper's four) and :data:`EXTRA_RULES` name which metric crosses which way on
which rows (see ``compare.thresholds``); :class:`Threshold` is one measured threshold,
:class:`ThresholdTable` all of a sweep with the theory's predictions, its JSON report, plot and
gaps (:func:`threshold_gaps`: measured minus predicted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.crossings import Direction
from softleak.compare.predictions import Prediction
from softleak.compare.table import jsonable


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
    # where value is NaN because the mean curve does not cross on the grid: "above" (past the
    # largest alpha) or "below" (at or before the smallest), and that grid end (compare.crossings)
    censored: str | None = None
    bound: float = math.nan

    @property
    def bounded(self) -> float:
        """``value``, or the grid end a censored threshold lies beyond (``bound``): the reading
        claims judge (``compare.crossings.Crossing.bounded``)."""
        return self.value if self.censored is None else self.bound

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None)."""
        out = asdict(self)
        out["extra"] = dict(self.extra)
        return jsonable(out)


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

    def one(self, name: str, **where: Any) -> Threshold | None:
        """The one row with ``name`` and matching attributes (as :meth:`select`); None when there
        is none.

        Raises:
            ValueError: when several rows match (name the condition that tells them apart).
        """
        rows = self.select(name, **where).rows
        if len(rows) > 1:
            raise ValueError(f"{len(rows)} {name} thresholds match {where}: select one")
        return rows[0] if rows else None

    def value(self, name: str, *, bounded: bool = False, **where: Any) -> float:
        """The value of :meth:`one` (NaN when there is no such row); ``bounded``: a censored
        threshold as the grid end it lies beyond (:attr:`Threshold.bounded`)."""
        row = self.one(name, **where)
        if row is None:
            return math.nan
        return row.bounded if bounded else row.value

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
        from softleak.compare.style import THRESHOLD_COLORS, THRESHOLD_LABELS, axes_or_new

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
            self._theory_lines(ax, x)
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

    def _theory_lines(self, ax: Any, x: str) -> None:
        """Theory's alpha_id (dashed, against rho or flat) and alpha_label^T (dotted) in black."""
        from softleak.compare.style import THEORY_STYLE

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
        "censored": r.censored,
        "bound": r.bound,
        "note": r.note,
    }
    out.update(dict(r.extra))
    return jsonable(out)


def _one_or_list(entries: list[dict[str, Any]]) -> Any:
    if not entries:
        return None
    return entries[0] if len(entries) == 1 else entries


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
