"""theory: closed forms and exact checks that the simulations are compared against.

Pure functions (numpy, scipy, sympy, cvxpy); importing ``theory`` never imports torch or matplotlib.
Submodules: ``cover`` (Cover 1965 counting), ``identifiability`` (alpha_id = 1/rho), ``capacity``
(capacity bounds with provenance), ``pinv`` (pseudo-inverse student), ``feasibility`` (LP/convex
separability and soft-label consistency), ``certified`` (certified leakage), ``class_scaling``
(fits of thresholds vs c), ``symbolic`` (sympy forms), ``leakage`` (the weak-leakage curve of
the max-margin teacher), ``maxmargin`` (exact max-margin and min-norm teachers). Every name loads
its submodule on first use, so ``softleak theory ...`` pays only for what it uses.
"""

from __future__ import annotations

import importlib

_LAZY = {
    **dict.fromkeys(
        [
            "Bound",
            "alpha_id_bound",
            "alpha_label_T",
            "mlp_identifiability_alpha",
            "mlp_identifiability_rho_n",
            "mlp_memorization_alpha",
            "mlp_memorization_n",
            "mlp_widest_identifiable",
            "mlp_param_count",
        ],
        "softleak.theory.capacity",
    ),
    **dict.fromkeys(
        ["ClassScalingFit", "ScalingModel", "fit_class_scaling"], "softleak.theory.class_scaling"
    ),
    **dict.fromkeys(
        [
            "alpha_at_p",
            "alpha_half",
            "cover_count_exact",
            "log10_p_separable",
            "log_cover_count",
            "log_p_separable",
            "p_separable",
            "p_separable_normal",
            "transition_width",
        ],
        "softleak.theory.cover",
    ),
    **dict.fromkeys(
        ["SoftmaxLimits", "alpha_id", "alpha_scale", "softmax_limits"],
        "softleak.theory.identifiability",
    ),
    **dict.fromkeys(
        ["factorize", "nullspace_component", "pinv_student", "project_rowspace"],
        "softleak.theory.pinv",
    ),
    "FeasibilityResult": "softleak.theory.feasibility",
    "available_solvers": "softleak.theory.feasibility",
    "random_instance": "softleak.theory.feasibility",
    "linearly_separable": "softleak.theory.feasibility",
    "multiclass_separable": "softleak.theory.feasibility",
    "softlabel_consistent": "softleak.theory.feasibility",
    **dict.fromkeys(
        [
            "LeakagePrediction",
            "gardner_kappa",
            "leakage_prediction",
            "minnorm_accuracy",
            "predicted_accuracy",
            "support_density",
        ],
        "softleak.theory.leakage",
    ),
    **dict.fromkeys(["kkt_certificate", "max_margin", "min_norm"], "softleak.theory.maxmargin"),
    "CertifiedLeakage": "softleak.theory.certified",
    "certified_leakage": "softleak.theory.certified",
    "latex": "softleak.theory.symbolic",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'softleak.theory' has no attribute {name!r}")


__all__ = sorted(_LAZY)
