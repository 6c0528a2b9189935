"""logistic-pinv's exact teachers (``--teacher svm|minnorm``): weights computed by
``theory.maxmargin`` instead of trained, and the per-seed record of what each teacher is.

- ``svm``: the hard-margin l2 max-margin separator without bias (NNLS, KKT-checked). Where the
  labels are not linearly separable (any alpha near 2 at finite d; all of them past 2 as d grows)
  no such teacher exists: the teacher is w = 0 (every logit 0, train accuracy 1/2), recorded as
  ``teacher_status = "not_separable"``; its rows are counted in the table (they are what the
  teacher does) and left out of the theory comparisons (``compare.leakage``), which say how many.
- ``minnorm``: w = X^+ y; for alpha >= 1 it no longer interpolates and is the least-squares fit,
  recorded as ``"not_interpolating"`` and counted.

Exact teachers live in float64 (model, logits, saved weights): the margins of a near-capacity
separator need it. What a row records about its teacher is computed from the weights as stored,
so a resumed sweep (teachers read back from disk) writes the same rows as an uninterrupted one.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

#: What a row's teacher did when it is not the exact teacher its kind names (one line each).
STATUS_TEXT = {
    "not_separable": "labels not linearly separable: no max-margin teacher, w = 0 (train "
    "accuracy 1/2)",
    "kkt_failed": "the solution misses the KKT tolerance (kept, flagged)",
    "not_interpolating": "alpha >= 1: the least-squares fit, which does not interpolate",
}

#: FLOPs per n k^2 of the NNLS active-set solve (``scipy.optimize.nnls``), k = n_SV:
#: fitted to d = 1600, alpha = 1.8 (n = 2,880, n_SV ~ 1,500) taking ~17 s at ``CPU_PINV_RATE``
#: (1 thread, load ~1.5); d = 400 and d = 1600 at alpha = 1 run within 2x of it.
NNLS_FLOPS_PER_NK2 = 116.0


def signed(y01: np.ndarray) -> np.ndarray:
    """Labels 0/1 -> -1/+1 (class 1 is the positive logit)."""
    return 2.0 * np.asarray(y01, dtype=np.float64) - 1.0


def exact_weights(kind: str, X: np.ndarray, y01: np.ndarray) -> np.ndarray:
    """(d,) float64 weights of the ``kind`` teacher (``svm`` or ``minnorm``) on X (n, d), labels
    0/1 (n,)."""
    from softleak.theory.maxmargin import max_margin, min_norm

    if kind == "svm":
        fit = max_margin(X, signed(y01))
        if fit.status == "not_separable":
            log.info("svm teacher: n = %d labels in d = %d not separable; w = 0", *X.shape)
    elif kind == "minnorm":
        fit = min_norm(X, signed(y01))
    else:
        raise ValueError(f"no exact teacher {kind!r}")
    return fit.w


def teacher_record(kind: str, X: np.ndarray, y01: np.ndarray, w: np.ndarray) -> dict:
    """What a row says about an exact teacher with weights w (d,), from the weights alone.

    ``teacher_status``: svm ``ok`` / ``kkt_failed`` (the KKT certificate of
    ``theory.maxmargin.kkt_certificate`` within ``KKT_TOL`` or not) / ``not_separable`` (w = 0);
    minnorm ``ok`` / ``not_interpolating``. ``teacher_kkt``: svm the certificate's largest
    relative residual, minnorm max |x.w - y|. ``teacher_kappa``: the margin in Gardner's units,
    1 / (||w|| sigma_x) with sigma_x^2 the mean squared input entry (sqrt(d) / ||w|| for x ~ N(0,
    I/d); svm only). ``teacher_support``: active constraints per input dimension, n_SV / d (svm).
    """
    from softleak.theory.maxmargin import INTERPOLATION_TOL, KKT_TOL, kkt_certificate

    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    y = signed(y01)
    nan = float("nan")
    out = {"teacher": kind, "teacher_kappa": nan, "teacher_support": nan}
    if kind == "minnorm":
        residual = float(np.max(np.abs(X @ w - y), initial=0.0))
        ok = residual <= INTERPOLATION_TOL
        return {
            **out,
            "teacher_status": "ok" if ok else "not_interpolating",
            "teacher_kkt": residual,
        }
    if not np.any(w):
        return {**out, "teacher_status": "not_separable", "teacher_kkt": nan}
    kkt, active = kkt_certificate(X, y, w)
    sigma = float(np.sqrt(np.mean(X * X)))
    return {
        **out,
        "teacher_status": "ok" if kkt.ok(KKT_TOL) else "kkt_failed",
        "teacher_kkt": kkt.worst,
        "teacher_kappa": 1.0 / (float(np.linalg.norm(w)) * sigma),
        "teacher_support": active / X.shape[1],
    }


def exact_teacher_flops(kind: str, n: int, d: int) -> float:
    """Estimated float64 FLOPs of solving one exact teacher on n points in d dimensions (for
    ``simulate.estimate``): NNLS with n_SV = d * Gardner's support density for svm, one
    least-squares factorization and solve for minnorm."""
    from softleak.simulate.estimate import pinv_flops
    from softleak.theory.leakage import ALPHA_SEPARABLE, support_density

    if kind == "minnorm":
        return pinv_flops(n, d, 1, n)
    alpha = min(n / d, ALPHA_SEPARABLE)
    k = min(n, d, max(1.0, float(support_density(alpha)) * d))
    return NNLS_FLOPS_PER_NK2 * n * k * k


def status_line(table) -> str:
    """One line on a sweep's exact teachers: how many seeds are not the exact teacher of their
    kind, what they do, and that their rows are counted in the table but left out of the theory
    comparisons (``compare.leakage``)."""
    teachers = table.groupby(["d", "n", "seed"])["teacher_status"].first()
    bad = teachers[teachers != "ok"]
    if bad.empty:
        return f"all {len(teachers)} exact teachers ok (KKT / interpolation checked)"
    parts = [f"{k}: {STATUS_TEXT.get(k, k)}" for k in sorted(bad.unique())]
    return (
        f"{len(bad)} of {len(teachers)} teachers not exact ({'; '.join(parts)}); their rows stay "
        "in the table (teacher_status) and are left out of theory comparisons"
    )
