"""Closed-form threshold predictions from the ``theory`` package for the linear experiments.

``alpha_id`` (identifiability, exact) per rho and ``alpha_label_T`` (the teacher's memorization
capacity, with its provenance) per (d, c); :func:`predictions_for` those matching measured rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from softleak.compare.table import is_single_logit, jsonable

if TYPE_CHECKING:
    from softleak.compare.threshold_types import Threshold

log = logging.getLogger(__name__)

#: Experiments with closed-form predictions (linear teacher and student).
LINEAR_EXPERIMENTS: frozenset[str] = frozenset({"logistic-pinv", "multinomial"})


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
