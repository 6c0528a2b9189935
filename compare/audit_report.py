"""The leakage audit's report: per-setting leakage with confidence intervals, a verdict, a plot.

Reads the tidy per-student table that :func:`simulate.audit` writes (one row per trained student;
columns listed in :data:`REQUIRED_COLUMNS`) and turns it into

- :func:`summarize`: one row per (setting, rho): mean leakage over seeds with a confidence
  interval, mean member accuracy, baseline, utility and certified fractions;
- :func:`audit_report` -> :class:`AuditReport`: one headline row per release setting (the rho
  that decides its verdict), within tolerance after Holm's correction across the settings
  (:func:`softleak.compare.audit_summary.headlines`), a plain-language verdict naming the settings
  that keep leakage within a tolerance and the one that keeps the most utility, and the outputs
  (HTML, Markdown, JSON, CSV, plots).
- With the per-example scores of an ``AuditResult``: the privacy community's numbers per setting
  (:mod:`softleak.compare.audit_privacy`): an audited label-DP epsilon lower bound, membership
  inference through the student (AUC, TPR at low FPR, the ROC curve), the precision of the
  student's most confident predictions, per-class leakage and the most exposed members.

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
    roc_plot,
)
from softleak.compare.audit_privacy import (
    COVERAGES,
    FPRS,
    LABEL_PRIOR,
    POOLING,
    PRIOR_NOTE,
    PrivacyStats,
    empty_entry,
    key,
    privacy_stats,
)
from softleak.compare.audit_summary import (
    BASELINE_KINDS,
    CARRIED_COLUMNS,
    CORRECTION,
    LEAKAGE_CHECK_TOL,
    REQUIRED_COLUMNS,
    _check_confidence,
    _check_tolerance,
    headlines,
    leakage_interval,
    summarize,
)
from softleak.compare.audit_verdict import SOFT, _finite, _verdict, reference_row
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
    "PrivacyStats",
    "audit_report",
    "leakage_interval",
    "summarize",
]

#: Keys of one setting in :meth:`AuditReport.to_json`, in order (``epsilon_lb_vs_baseline``
#: only where non-members were given).
JSON_KEYS: tuple[str, ...] = (
    "setting",
    "leakage",
    "leakage_ci_low",
    "leakage_ci_high",
    "ci_confidence",
    "utility",
    "rho",
    "member_acc",
    "baseline",
    "baseline_kind",
    "control",
    "within_tolerance",
    "p_value",
    "p_holm",
    "certified_leaked",
    "certified_hidden",
    "epsilon_lb",
    "epsilon_lb_vs_baseline",
    "auc",
    "tpr_at_fpr",
    "precision_at_coverage",
    "mia_n_member",
    "mia_n_nonmember",
    "n_nonmember_distinct",
    "runs",
)
_ROW_KEYS = JSON_KEYS[: JSON_KEYS.index("epsilon_lb")]
PER_CLASS_SHOWN = 10  # classes listed at each end of the per-class table in the report


# ----------------------------------------------------------------------------------------------
# Report


def _fmt(x: Any, digits: int = 3) -> str:
    return f"{float(x):.{digits}f}" if _finite(x) else "-"


@dataclass(frozen=True, eq=False)
class AuditReport:
    """The audit's report: per-(setting, rho) summary, per-setting headlines, a verdict and, with
    per-example scores, the privacy numbers.

    Build with :func:`audit_report`. ``settings`` has one row per setting in the user's order,
    at the rho that decides its verdict, with ``within_tolerance`` after Holm's correction
    (``leakage_ci_*`` are the intervals the verdict used, at ``ci_confidence``).
    """

    per_rho: pd.DataFrame  # summarize(): one row per (setting, rho)
    settings: pd.DataFrame  # one headline row per setting, in the user's order
    verdict: str  # one plain-language paragraph
    tolerance: float  # largest acceptable upper bound of the leakage interval
    confidence: float  # two-sided coverage of the intervals before the correction
    privacy: PrivacyStats | None = None  # None without per-example scores
    examples: pd.DataFrame | None = None  # the per-example scores (AuditResult.examples)

    def to_json(self) -> dict:
        """``{"settings": [{JSON_KEYS...}, ...], "verdict", "correction", "tolerance",
        "confidence", "label_prior", "pooling", "notes"}``, NaN as None (JSON-safe)."""
        entries = []
        for _, row in self.settings.iterrows():
            entry = {k: jsonable(row[k]) for k in _ROW_KEYS}
            extra = self.privacy.entry(str(row["setting"])) if self.privacy else empty_entry()
            if row["baseline_kind"] == "chance":
                extra.pop("epsilon_lb_vs_baseline")
            entry.update(extra)
            entries.append({k: entry[k] for k in JSON_KEYS if k in entry})
        return {
            "settings": entries,
            "verdict": self.verdict,
            "correction": CORRECTION,
            "tolerance": self.tolerance,
            "confidence": self.confidence,
            "label_prior": LABEL_PRIOR,
            "pooling": dict(POOLING),
            "notes": [PRIOR_NOTE] if self.privacy is not None else [],
        }

    def markdown(self) -> str:
        """The report as Markdown (the same document as the HTML page)."""
        return self.document().to_markdown()

    def document(self, images: bool = False):
        """The report as a ``compare.document.Document``: the leakage table, the verdict, the
        privacy table and (with ``images``) the plots written by :meth:`write`."""
        from softleak.compare.document import Document

        doc = Document("softleak leakage audit")
        doc.heading("Leakage per release setting")
        columns, rows = self._leakage_table()
        doc.table(columns, rows)
        doc.paragraph(
            f"Leakage = held-out member accuracy - baseline, at the rho that decides each "
            f"setting's verdict; a setting is within the tolerance {self.tolerance:.3f} when the "
            f"upper end of its interval is at most that, each release setting's interval at the "
            f"confidence that {CORRECTION.capitalize()}'s correction across the settings assigns "
            f"it (column 'CI level'; the controls are outside the family)."
        )
        doc.heading("Verdict")
        doc.paragraph(self.verdict)
        if images:
            doc.image("privacy_utility.png", "leakage against utility, one point per setting")
        if self.privacy is not None:
            self._privacy_blocks(doc, images)
        return doc

    def _leakage_table(self) -> tuple[list[str], list[list[str]]]:
        settings = self.settings
        certified = bool(
            np.isfinite(settings[["certified_leaked", "certified_hidden"]].to_numpy(float)).any()
        )
        header = ["setting", "leakage [CI]", "CI level", "member acc", "baseline", "utility"]
        if certified:
            header.append("certified leaked / hidden")
        header += ["rho", "within tolerance"]
        rows = []
        for _, row in settings.iterrows():
            name = str(row["setting"])
            if row["control"]:
                name += " (control)"
            baseline = _fmt(row["baseline"])
            if row["baseline_kind"] == "chance":
                baseline += " (chance)"
            cells = [
                name,
                f"{_fmt(row['leakage'])} [{_fmt(row['leakage_ci_low'])}, "
                f"{_fmt(row['leakage_ci_high'])}]",
                f"{100 * float(row['ci_confidence']):.4g}%",
                _fmt(row["member_acc"]),
                baseline,
                _fmt(row["utility"]),
            ]
            if certified:
                cells.append(f"{_fmt(row['certified_leaked'])} / {_fmt(row['certified_hidden'])}")
            cells += [_fmt(row["rho"]), "yes" if row["within_tolerance"] else "no"]
            rows.append(cells)
        return header, rows

    def _privacy_blocks(self, doc, images: bool) -> None:
        privacy = self.privacy
        assert privacy is not None
        doc.heading("In privacy terms")
        doc.table(*self._privacy_table())
        first = privacy.settings.iloc[0] if len(privacy.settings) else None
        counts = ""
        if first is not None:
            counts = (
                f" At the worst rho: {int(first['mia_n_member'])} held-out member and "
                f"{int(first['mia_n_nonmember'])} non-member scores pooled over seeds "
                f"({int(first['n_nonmember_distinct'])} distinct non-members; TPR at an FPR "
                f"below 1/that is not reported)."
            )
        doc.paragraph(
            f"epsilon_lb: the largest label-DP epsilon ruled out at {self.confidence:.0%} "
            f"confidence (one-sided Clopper-Pearson bounds on each run's held-out member "
            f"accuracy, Bonferroni over the runs of the setting; label prior {LABEL_PRIOR}). "
            f"{PRIOR_NOTE} AUC and TPR: held-out members against non-members by the student's "
            f"probability of the true label. Precision of the top fraction: accuracy of the "
            f"student's most confident held-out-member predictions." + counts
        )
        if images and privacy.roc:
            doc.image("roc.png", "membership inference ROC through the student (log-log)")
        if not privacy.per_class.empty and privacy.reference is not None:
            self._per_class_block(doc)
        if not privacy.exposed.empty:
            self._exposed_block(doc)

    def _privacy_table(self) -> tuple[list[str], list[list[str]]]:
        """The privacy numbers per setting: header and rows."""
        privacy = self.privacy
        assert privacy is not None
        has_non = bool((self.settings["baseline_kind"] != "chance").any())
        header = ["setting", "rho", "epsilon_lb"]
        if has_non:
            header.append("epsilon_lb vs baseline (heuristic)")
        header += ["AUC"] + [f"TPR @ FPR {key(f)}" for f in FPRS]
        header += [f"precision of top {100 * v:g}%" for v in COVERAGES]
        rows = []
        for _, row in self.settings.iterrows():
            e = privacy.entry(str(row["setting"]))
            cells = [str(row["setting"]), _fmt(row["rho"]), _fmt(e["epsilon_lb"], 2)]
            if has_non:
                cells.append(_fmt(e["epsilon_lb_vs_baseline"], 2))
            cells.append(_fmt(e["auc"]))
            cells += [_fmt(e["tpr_at_fpr"][key(f)]) for f in FPRS]
            cells += [_fmt(e["precision_at_coverage"][key(v)]) for v in COVERAGES]
            rows.append(cells)
        return header, rows

    def _per_class_block(self, doc) -> None:
        """Per-class leakage of the reference setting (the most and least leaking classes when
        there are many)."""
        privacy = self.privacy
        assert privacy is not None
        part = privacy.per_class[privacy.per_class["setting"] == privacy.reference]
        doc.heading(f"Per-class leakage ({privacy.reference})", level=3)
        if len(part) > 2 * PER_CLASS_SHOWN:
            ranked = part.sort_values(["leakage", "label"], ascending=[False, True])
            doc.paragraph(
                f"The {PER_CLASS_SHOWN} most and {PER_CLASS_SHOWN} least leaking of "
                f"{len(part)} classes (all of them in per_class.csv)."
            )
            part = pd.concat([ranked.head(PER_CLASS_SHOWN), ranked.tail(PER_CLASS_SHOWN)])
        doc.table(
            [
                "label",
                "held-out member acc",
                "members",
                "non-member acc",
                "non-members",
                "leakage",
            ],
            [
                [
                    int(r.label),
                    _fmt(r.member_acc),
                    int(r.n_member) if _finite(r.n_member) else 0,
                    _fmt(r.nonmember_acc),
                    int(r.n_nonmember) if _finite(r.n_nonmember) else 0,
                    _fmt(r.leakage),
                ]
                for r in part.itertuples()
            ],
        )

    def _exposed_block(self, doc) -> None:
        """The reference setting's most exposed held-out members."""
        privacy = self.privacy
        assert privacy is not None
        doc.heading(f"Most exposed held-out members ({privacy.reference})", level=3)
        doc.table(
            ["member index", "label", "mean score", "times held out", "times recovered"],
            [
                [
                    int(r.index),
                    int(r.label),
                    _fmt(r.mean_score),
                    int(r.held_out),
                    int(r.recovered),
                ]
                for r in privacy.exposed.itertuples()
            ],
        )

    def plot(self, ax: Any = None) -> Any:
        """Privacy-utility plot: leakage (with interval) against utility, one point per setting.

        When any setting lacks a utility (no non-members given), draws leakage per setting as
        horizontal points with intervals instead, so no setting is dropped. Draws only.
        """
        return privacy_utility(self.settings, self.tolerance, ax)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.html``, ``report.md``, ``report.json``, ``settings.csv``,
        ``per_rho.csv``, ``privacy_utility.png`` / ``.pdf`` and, with per-example scores,
        ``examples.parquet``, ``runs.csv``, ``per_class.csv``, ``roc.png`` / ``.pdf`` into
        ``out_dir`` (created), each atomically.

        Returns:
            ``{file name: path}`` for every file written.
        """
        from softleak.compare.style import new_figure, save_figure, write_text_atomic

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        fig, (ax,) = new_figure(panel=(5.6, 4.2))
        self.plot(ax)
        for suffix in (".png", ".pdf"):
            name = "privacy_utility" + suffix
            paths[name] = save_figure(fig, out_dir / name)
        if self.privacy is not None:
            if self.privacy.roc:
                fig, (ax,) = new_figure(panel=(5.0, 4.2))
                roc_plot(self.privacy.roc, ax)
                for suffix in (".png", ".pdf"):
                    paths["roc" + suffix] = save_figure(fig, out_dir / ("roc" + suffix))
            for name, table in (
                ("runs.csv", self.privacy.runs),
                ("per_class.csv", self.privacy.per_class),
            ):
                paths[name] = write_text_atomic(out_dir / name, table.to_csv(index=False))
        if self.examples is not None:
            from softleak.simulate.store import atomic_write_parquet

            atomic_write_parquet(out_dir / "examples.parquet", self.examples)
            paths["examples.parquet"] = out_dir / "examples.parquet"
        paths.update(self.document(images=True).write(out_dir, "report"))
        paths["report.json"] = write_text_atomic(
            out_dir / "report.json", json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        )
        paths["settings.csv"] = write_text_atomic(
            out_dir / "settings.csv", self.settings.to_csv(index=False)
        )
        paths["per_rho.csv"] = write_text_atomic(
            out_dir / "per_rho.csv", self.per_rho.to_csv(index=False)
        )
        log.info("audit report written to %s", out_dir)
        return paths


def _unpack(result: Any) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """(rows, examples or None, config) of an ``AuditResult`` or a bare per-student table."""
    if isinstance(result, pd.DataFrame):
        return result, None, dict(result.attrs.get("config") or {})
    rows = getattr(result, "rows", None)
    if not isinstance(rows, pd.DataFrame):
        raise ValueError(
            f"the audit table must be a pandas DataFrame or an AuditResult, got "
            f"{type(result).__name__}"
        )
    examples = getattr(result, "examples", None)
    return rows, examples, dict(getattr(result, "config", None) or rows.attrs.get("config") or {})


def audit_report(
    result: Any, tolerance: float = 0.02, confidence: float = 0.95, c: int | None = None
) -> AuditReport:
    """Summarize an audit into an :class:`AuditReport`.

    Args:
        result: what ``simulate.audit`` returns (an ``AuditResult``: rows and per-example
            scores), or only its per-student table (columns :data:`REQUIRED_COLUMNS`; then the
            report has no privacy numbers).
        tolerance: largest acceptable leakage, as a fraction of accuracy (0.02 = 2 percentage
            points), applied to the upper end of each setting's interval.
        confidence: two-sided coverage of the intervals before Holm's correction (and the
            one-sided confidence of the epsilon bounds), in (0, 1).
        c: the number of classes (default: the run record's ``data.c``); needed with scores.

    Raises:
        ValueError: missing columns, an empty or inconsistent table, or a bad tolerance or
            confidence (one clear message).
    """
    tolerance = _check_tolerance(tolerance)
    confidence = _check_confidence(confidence)
    rows, examples, config = _unpack(result)
    per_rho = summarize(rows, confidence)
    settings = headlines(rows, per_rho, tolerance, confidence)
    privacy = None
    if examples is not None and len(examples):
        c = c if c is not None else (config.get("data") or {}).get("c")
        if c is None:
            raise ValueError("the number of classes is not recorded: pass c= to audit_report")
        row = reference_row(settings)
        reference = None if row is None else str(row["setting"])
        worst = dict(zip(settings["setting"], settings["rho"].astype(float), strict=True))
        privacy = privacy_stats(examples, int(c), worst, confidence, reference)
    verdict = _verdict(
        settings, tolerance, confidence, int(per_rho["rho"].nunique()), privacy=privacy
    )
    return AuditReport(
        per_rho=per_rho,
        settings=settings,
        verdict=verdict,
        tolerance=tolerance,
        confidence=confidence,
        privacy=privacy,
        examples=examples if examples is not None and len(examples) else None,
    )
