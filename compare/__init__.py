"""compare: read sweep result tables, measure thresholds, classify phases, scale, overlay theory.

Every analysis computes once and returns a small frozen result object with ``.plot(ax=None)`` (draw
only) and ``.to_dict()`` (JSON-ready). Imports pandas, numpy, scipy, matplotlib (lazily, inside
``plot``) and ``theory``; never torch.
"""

from softleak.compare.audit_report import AuditReport, audit_report, leakage_interval
from softleak.compare.audit_report import summarize as summarize_audit
from softleak.compare.boundaries import Accuracy, DecisionMaps, decision_maps
from softleak.compare.canaries import CanaryRecovery, canary_recovery
from softleak.compare.class_collapse import SCALINGS, ClassCollapse, class_collapse
from softleak.compare.fss import (
    Collapse,
    FSSFit,
    collapse,
    fit_threshold_scaling,
    fit_thresholds_by_d,
    quality,
    thresholds_by_d,
)
from softleak.compare.leakage import CurveAgreement, curve_agreement
from softleak.compare.overlay import Overlay, mean_curves, overlay
from softleak.compare.phases import PHASES, PhaseDiagram, TheoryLine, classify, phase_diagram
from softleak.compare.table import Sweep, load_sweep, select
from softleak.compare.thresholds import (
    EXTRA_RULES,
    RULES,
    Prediction,
    Rule,
    Threshold,
    ThresholdTable,
    crossings,
    find_thresholds,
    format_table,
    reference_rule,
    threshold_gaps,
)

__all__ = [
    "EXTRA_RULES",
    "PHASES",
    "RULES",
    "SCALINGS",
    "Accuracy",
    "AuditReport",
    "CanaryRecovery",
    "ClassCollapse",
    "Collapse",
    "CurveAgreement",
    "DecisionMaps",
    "FSSFit",
    "Overlay",
    "PhaseDiagram",
    "Prediction",
    "Rule",
    "Sweep",
    "TheoryLine",
    "Threshold",
    "ThresholdTable",
    "audit_report",
    "canary_recovery",
    "class_collapse",
    "classify",
    "collapse",
    "crossings",
    "curve_agreement",
    "decision_maps",
    "find_thresholds",
    "fit_threshold_scaling",
    "fit_thresholds_by_d",
    "format_table",
    "load_sweep",
    "leakage_interval",
    "mean_curves",
    "overlay",
    "phase_diagram",
    "quality",
    "reference_rule",
    "select",
    "summarize_audit",
    "threshold_gaps",
    "thresholds_by_d",
]
