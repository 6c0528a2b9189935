"""The stop-rule language: named criteria on the teacher's evaluated metrics that choose its
checkpoints (``ModAddSpec.stop_rules``)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

#: Named stop rules (``stop_rules`` also takes ``"name:cond&cond"`` with conditions on ``epoch``,
#: ``train_acc``, ``val_acc``, ``train_loss``, ``val_loss`` and operators ``>=, <=, >, <``).
RULE_PRESETS = {
    "memorized": "train_acc>=1&val_acc<0.05",  # fits D_*^T, has not generalized
    "grokked": "val_acc>0.99",  # generalizes
}
RULE_METRICS = ("epoch", "train_acc", "val_acc", "train_loss", "val_loss")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class StopRule:
    """A named criterion on the teacher's evaluated metrics; all conditions must hold."""

    name: str
    conditions: tuple[tuple[str, str, float], ...]  # (metric, operator, value)

    def holds(self, metrics: dict[str, float]) -> bool:
        return all(_OPS[op](metrics[m], v) for m, op, v in self.conditions)


def parse_rule(text: str) -> StopRule:
    """``"memorized"``, ``"grokked"`` (presets) or ``"name:metric op value&..."``."""
    text = text.strip()
    if text in RULE_PRESETS:
        name, body = text, RULE_PRESETS[text]
    else:
        name, sep, body = text.partition(":")
        if not sep:
            raise ValueError(
                f"unknown stop rule {text!r}: use {', '.join(RULE_PRESETS)} or "
                "'name:metric>=value&...'"
            )
    name = name.strip()
    if not _NAME.match(name):
        raise ValueError(f"stop rule name {name!r} must be a letter then letters, digits, _ or -")
    conditions = []
    for part in body.split("&"):
        match = _CONDITION.match(part)
        if match is None:
            raise ValueError(f"bad condition {part!r} in stop rule {text!r}: use e.g. val_acc>0.99")
        metric, op, value = match.groups()
        if metric not in RULE_METRICS:
            raise ValueError(f"unknown metric {metric!r} in stop rule {text!r}: {RULE_METRICS}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"bad number {value!r} in stop rule {text!r}") from None
        conditions.append((metric, op, number))
    return StopRule(name, tuple(conditions))
