"""The leakage audit's report: per-setting leakage with confidence intervals, a verdict, a plot.

Reads the tidy per-student table that :func:`simulate.audit` writes (one row per trained student;
columns listed in :data:`REQUIRED_COLUMNS`) and turns it into

- :func:`summarize`: one row per (setting, rho): mean leakage over seeds with a confidence
  interval, mean member accuracy, baseline, utility and certified fractions;
- :func:`audit_report` -> :class:`AuditReport`: one headline row per release setting (its worst
  case over rho), a plain-language verdict naming the settings that keep leakage within a
  tolerance and the one that keeps the most utility, and the outputs (Markdown, JSON, CSV, plot).

Leakage is ``member_acc - baseline``: the student's accuracy on the held-out members (teacher
training points it did not see) minus its accuracy on non-members, or minus chance (the share of
the most frequent label among members) when no non-members were given.

The parts live in one module each, re-exported here: the numbers (validation, the confidence
interval, the summary and headlines; the interval is described in
:mod:`softleak.compare.audit_summary`), the verdict text (:mod:`softleak.compare.audit_verdict`)
and the privacy-utility plot (:mod:`softleak.compare.audit_plot`). This module holds the report
object and its outputs.

Imports pandas, numpy, scipy and matplotlib (lazily, in :meth:`AuditReport.plot`); never torch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from softleak.compare.audit_plot import (
    CONTROL_COLOR,
    LEAKAGE_LABEL,
    SAFE_COLOR,
    UNSAFE_COLOR,
    UTILITY_LABEL,
    privacy_utility,
)
from softleak.compare.audit_summary import (
    BASELINE_KINDS,
    CARRIED_COLUMNS,
    LEAKAGE_CHECK_TOL,
    REQUIRED_COLUMNS,
    _check_confidence,
    _check_tolerance,
    _headlines,
    leakage_interval,
    summarize,
)
from softleak.compare.audit_verdict import SOFT, _finite, _verdict
from softleak.compare.table import jsonable

log = logging.getLogger(__name__)

__all__ = [
    "BASELINE_KINDS",
    "CARRIED_COLUMNS",
    "CONTROL_COLOR",
    "JSON_KEYS",
    "LEAKAGE_CHECK_TOL",
    "LEAKAGE_LABEL",
    "REQUIRED_COLUMNS",
    "SAFE_COLOR",
    "SOFT",
    "UNSAFE_COLOR",
    "UTILITY_LABEL",
    "AuditReport",
    "audit_report",
    "leakage_interval",
    "summarize",
]

#: Keys of one setting in :meth:`AuditReport.to_json`, in order.
JSON_KEYS: tuple[str, ...] = (
    "setting",
    "leakage",
    "leakage_ci_low",
    "leakage_ci_high",
    "utility",
    "rho",
    "member_acc",
    "baseline",
    "baseline_kind",
    "control",
    "within_tolerance",
    "certified_leaked",
    "certified_hidden",
)


# ----------------------------------------------------------------------------------------------
# Report


def _fmt(x: Any) -> str:
    return f"{float(x):.3f}" if _finite(x) else "-"


@dataclass(frozen=True, eq=False)
class AuditReport:
    """The audit's report: per-(setting, rho) summary, per-setting headlines and a verdict.

    Build with :func:`audit_report`. ``settings`` has one row per setting in the user's order:
    the setting's worst case over rho (``rho`` is where it occurs) with ``within_tolerance`` =
    ``leakage_ci_high <= tolerance``.
    """

    per_rho: pd.DataFrame  # summarize(): one row per (setting, rho)
    settings: pd.DataFrame  # one headline row per setting, in the user's order
    verdict: str  # one plain-language paragraph
    tolerance: float  # largest acceptable upper bound of the leakage interval
    confidence: float  # two-sided coverage of the intervals

    def to_json(self) -> dict:
        """``{"settings": [{JSON_KEYS...}, ...], "verdict": str}``, NaN as None (JSON-safe)."""
        entries = [
            {key: jsonable(row[key]) for key in JSON_KEYS} for _, row in self.settings.iterrows()
        ]
        return {"settings": entries, "verdict": self.verdict}

    def markdown(self) -> str:
        """A Markdown table (numbers with 3 decimals, NaN as "-") followed by the verdict."""
        settings = self.settings
        certified = bool(
            np.isfinite(settings[["certified_leaked", "certified_hidden"]].to_numpy(float)).any()
        )
        pct = f"{self.confidence:.0%}"
        header = ["setting", f"leakage [{pct} CI]", "member acc", "baseline", "utility"]
        if certified:
            header.append("certified leaked / hidden")
        header += ["rho", "within tolerance"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, row in settings.iterrows():
            name = str(row["setting"]).replace("|", "\\|")
            if row["control"]:
                name += " (control)"
            baseline = _fmt(row["baseline"])
            if row["baseline_kind"] == "chance":
                baseline += " (chance)"
            cells = [
                name,
                f"{_fmt(row['leakage'])} [{_fmt(row['leakage_ci_low'])}, "
                f"{_fmt(row['leakage_ci_high'])}]",
                _fmt(row["member_acc"]),
                baseline,
                _fmt(row["utility"]),
            ]
            if certified:
                cells.append(f"{_fmt(row['certified_leaked'])} / {_fmt(row['certified_hidden'])}")
            cells += [_fmt(row["rho"]), "yes" if row["within_tolerance"] else "no"]
            lines.append("| " + " | ".join(cells) + " |")
        note = (
            f"Leakage = held-out member accuracy - baseline, at each setting's worst rho; "
            f"tolerance {self.tolerance:.3f} on the upper end of the interval."
        )
        return "\n".join(lines) + "\n\n" + note + "\n\n" + self.verdict + "\n"

    def plot(self, ax: Any = None) -> Any:
        """Privacy-utility plot: leakage (with interval) against utility, one point per setting.

        When any setting lacks a utility (no non-members given), draws leakage per setting as
        horizontal points with intervals instead, so no setting is dropped. Draws only.
        """
        return privacy_utility(self.settings, self.tolerance, ax)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.md``, ``report.json``, ``settings.csv``, ``per_rho.csv`` and
        ``privacy_utility.png`` / ``.pdf`` into ``out_dir`` (created), each atomically.

        Returns:
            ``{file name: path}`` for every file written.
        """
        from softleak.compare.style import new_figure, save_figure, write_text_atomic

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "report.md": write_text_atomic(out_dir / "report.md", self.markdown()),
            "report.json": write_text_atomic(
                out_dir / "report.json",
                json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n",
            ),
            "settings.csv": write_text_atomic(
                out_dir / "settings.csv", self.settings.to_csv(index=False)
            ),
            "per_rho.csv": write_text_atomic(
                out_dir / "per_rho.csv", self.per_rho.to_csv(index=False)
            ),
        }
        fig, (ax,) = new_figure(panel=(5.6, 4.2))
        self.plot(ax)
        for suffix in (".png", ".pdf"):
            name = "privacy_utility" + suffix
            paths[name] = save_figure(fig, out_dir / name)
        log.info("audit report written to %s", out_dir)
        return paths


def audit_report(
    rows: pd.DataFrame, tolerance: float = 0.02, confidence: float = 0.95
) -> AuditReport:
    """Summarize an audit table into an :class:`AuditReport`.

    Args:
        rows: the per-student audit table (columns :data:`REQUIRED_COLUMNS`).
        tolerance: largest acceptable leakage, as a fraction of accuracy (0.02 = 2 percentage
            points), applied to the upper end of each setting's interval.
        confidence: two-sided coverage of the intervals, in (0, 1).

    Raises:
        ValueError: missing columns, an empty or inconsistent table, or a bad tolerance or
            confidence (one clear message).
    """
    tolerance = _check_tolerance(tolerance)
    confidence = _check_confidence(confidence)
    per_rho = summarize(rows, confidence)
    settings = _headlines(per_rho, tolerance)
    verdict = _verdict(settings, tolerance, confidence, int(per_rho["rho"].nunique()))
    return AuditReport(
        per_rho=per_rho,
        settings=settings,
        verdict=verdict,
        tolerance=tolerance,
        confidence=confidence,
    )
