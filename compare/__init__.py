"""compare: read sweep result tables, measure thresholds, classify phases, scale, overlay theory.

Every analysis computes once and returns a small frozen result object with ``.plot(ax=None)`` (draw
only) and ``.to_dict()`` (JSON-ready). Imports pandas, numpy, scipy, matplotlib (lazily, inside
``plot``) and ``theory``; never torch.

A name of this package means one thing: ``softleak.compare.<module>`` is always the module (no
function is exported under a module's name). The functions of the modules ``overlay``,
``audit_report`` and ``class_collapse`` are exported as :func:`overlay_theory`,
:func:`report_audit` and :func:`collapse_classes`; the crossing primitive stays in its module
(``compare.crossings.crossings``) beside the threshold rule, exported as
:func:`threshold_crossing`.
"""

from softleak.compare.audit_report import AuditReport, leakage_interval
from softleak.compare.audit_report import audit_report as report_audit
from softleak.compare.audit_report import summarize as summarize_audit
from softleak.compare.boundaries import Accuracy, DecisionMaps, decision_maps
from softleak.compare.canaries import CanaryRecovery, canary_recovery
from softleak.compare.class_collapse import SCALINGS, ClassCollapse
from softleak.compare.class_collapse import class_collapse as collapse_classes
from softleak.compare.crossings import Crossing, threshold_crossing
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
from softleak.compare.overlay import Overlay, mean_curves
from softleak.compare.overlay import overlay as overlay_theory
from softleak.compare.phases import PHASES, PhaseDiagram, TheoryLine, classify, phase_diagram
from softleak.compare.table import Sweep, load_sweep, select
from softleak.compare.thresholds import (
    EXTRA_RULES,
    RULES,
    Prediction,
    Rule,
    Threshold,
    ThresholdTable,
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
    "Crossing",
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
    "canary_recovery",
    "classify",
    "collapse",
    "collapse_classes",
    "curve_agreement",
    "decision_maps",
    "find_thresholds",
    "fit_threshold_scaling",
    "fit_thresholds_by_d",
    "format_table",
    "load_sweep",
    "leakage_interval",
    "mean_curves",
    "overlay_theory",
    "phase_diagram",
    "quality",
    "reference_rule",
    "report_audit",
    "select",
    "summarize_audit",
    "threshold_crossing",
    "threshold_gaps",
    "thresholds_by_d",
]
