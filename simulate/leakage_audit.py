"""The leakage audit: how much of a user's teacher's memorized training data would a student recover
from its soft labels, and which release setting stops it at what cost (beyond the paper).

The paper's protocol on the user's data. The teacher's training set (the *members*) is split per
seed, stratified by class, into a rho fraction the student trains on and the held-out rest. For each
release setting (``simulate.release``: the soft labels as they are, other temperatures, top-k,
rounding, logit noise, hard labels, and the within-class shuffle control) a student -- linear, or a
ReLU MLP -- learns the released labels of its rho fraction by full-batch Adam on the soft-label
cross-entropy (the one trainer, ``simulate.train.fit``). Then:

- ``member_acc``: its accuracy against the true labels on the held-out members;
- ``baseline``: its accuracy on non-members (the user's holdout) -- what it gets without having
  seen the point's label -- or, without a holdout, chance: the share of the most frequent label;
- ``leakage = member_acc - baseline``;
- ``utility``: its agreement with the teacher's predictions on the non-members (what distillation
  is for);
- for linear students, ``certified_leaked`` / ``certified_hidden`` from ``theory.certified``: the
  fractions of held-out members that every linear student reproducing the released labels exactly,
  and no larger than the smallest linear model of all members' released labels, classifies right
  (wrong). Defined only where such students exist (all released labels positive and the student's
  rows reproducible by a linear model, e.g. rho n <= d); NaN otherwise.

All settings of one (seed, rho) train as one replica batch on one shared input matrix, with the
same initialisation (common random numbers: settings differ only in their labels). The summary,
confidence intervals, verdict and plot are ``compare.audit_report``'s (the arrows run simulate ->
compare); :func:`audit` returns the per-student table.

Every student also scores each held-out member and non-member (its probability of the true label,
whether its argmax is right, its confidence): the per-example table of
``simulate.audit_result.AuditResult``, from which ``compare.audit_report`` computes the label-DP
epsilon bound and the membership-inference numbers.

A run directory holds ``config.json`` (spec, input fingerprint, versions), ``parts/`` (one table per
finished (seed, rho), written atomically) with its per-example scores in ``example_parts/``,
``results.parquet`` and ``examples.parquet``; rerunning the same audit skips finished parts (a part
written before per-example scores existed is recomputed), and a directory holding another audit is
refused unless restarted.

(About 540 lines, on purpose: one concern, the audit's run -- its units, the students' training,
scoring and certificates -- whose long driver was split into named steps; its spec, data, release
settings and results already live in modules of their own.)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from softleak.simulate.audit_data import AuditData
from softleak.simulate.audit_result import GROUPS, AuditResult, example_table

# The spec, its settings and its units live in audit_spec; they stay importable from here.
from softleak.simulate.audit_spec import GRID as GRID
from softleak.simulate.audit_spec import SOLVERS as SOLVERS
from softleak.simulate.audit_spec import STUDENTS as STUDENTS
from softleak.simulate.audit_spec import (
    AuditSpec,
    _Unit,
    fingerprint,
    releases_for,
    split_members,
    units_of,
)
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.module_engine import evaluating, replicas_of
from softleak.simulate.optim import AdamConfig
from softleak.simulate.precision import DTYPES
from softleak.simulate.progress import student_bar
from softleak.simulate.protocol import lbfgs
from softleak.simulate.release import Release, release_soft_labels
from softleak.simulate.seeds import derive_seed
from softleak.simulate.train import fit

log = logging.getLogger(__name__)

__all__ = ["AuditResult", "AuditSpec", "audit", "releases_for", "split_members"]

OUTPUTS = ("report",)  # besides the records every run directory holds

#: The fewest non-members an audit accepts as a baseline. With 30, the baseline's own 95% Wilson
#: interval spans at most +-0.18 (at accuracy 1/2; [0, 0.11] at 0); with fewer it is mostly noise
#: (1 non-member: [0, 0.79]) and an audit should compare with chance instead (no holdout). Above
#: the minimum the leakage interval carries the baseline's uncertainty (``compare.audit_summary``)
#: and the verdict says when it alone is wider than the tolerance.
MIN_NONMEMBERS = 30

#: (prediction, score, confidence) of R students on some rows, each (R, rows).
Scored = tuple[np.ndarray, np.ndarray, np.ndarray]


def audit(
    data: AuditData,
    spec: AuditSpec | None = None,
    *,
    out: str | Path | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
    inputs: tuple = (),
) -> AuditResult:
    """Audit ``data`` (a teacher's outputs, see ``AuditData``): one row per trained student and
    the per-example scores (``simulate.audit_result.AuditResult``).

    Summarise with ``compare.report_audit(result)`` (leakage per setting with confidence
    intervals, the label-DP epsilon bound, membership inference, the verdict, the plots)::

        result = simulate.audit(AuditData.from_files("z.npy", "y.npy", "x.npy"), AuditSpec(tau=4))
        verdict = compare.report_audit(result, tolerance=0.02).verdict  # a paragraph of text

    out: a run directory (resumable, see the module doc); None keeps everything in memory.
    threads: torch/BLAS threads (None: one for small work, see ``simulate.device.threads_for``).
    progress: a tqdm bar over students (None: only when stderr is a terminal).
    restart: start over, clearing ``out``'s records (a directory holding an audit of other
        settings or data is refused without it: ``simulate.rundir.IdentityMismatch``).
    inputs: the files ``data`` was read from: ``out`` may not be, lie inside, or hold one among
        its records (``simulate.nesting``).

    Columns: ``setting, order, control, rho, seed, student, tau, member_acc, n_member_test,
    baseline, baseline_kind, n_nonmember, leakage, utility, student_train_acc, certified_leaked,
    certified_hidden, model_seed, split_seed, wall_s`` (``result.rows``); ``result.examples``
    has the columns ``simulate.audit_result.EXAMPLE_COLUMNS``; ``result.config`` (also
    ``rows.attrs["config"]``) holds the run record (spec, fingerprint, data sizes, versions).
    """
    spec = spec or AuditSpec()
    check_holdout(data)
    releases = releases_for(spec, data.c)
    units = units_of(spec, data)
    fp = fingerprint(data)
    identity = spec.identity(fp, data)  # a module student is built once here: its shapes
    config = _config(spec, data, fp, threads, releases)
    config["units"] = [u.name for u in units]
    cache: dict = {}  # work shared by the units (the members' pseudo-inverse for certificates)
    if out is None:
        return _audit_in_memory(spec, data, releases, units, config, threads, progress, cache)
    from softleak.simulate.precision import require_precision
    from softleak.simulate.rundir import claim, resolve_out

    out = resolve_out(out)
    require_precision(spec.precision, spec.device)  # refused here, before any record
    _check_fits(spec, data, identity, releases)
    with claim(
        out,
        experiment="audit",
        identity=identity,
        restart=restart,
        legacy=lambda old: _legacy_identity(old, fp),
        outputs=OUTPUTS,
        inputs=inputs,
    ) as store:
        store.write_config(config)
        names = [u.name for u in units]
        # parts written before per-example scores existed lack them: recomputed
        done = store.finished(names, len(releases), need=("examples",))
        pending = [u for u in units if u.name not in done]
        for unit in student_bar_units(pending, releases, progress, total=len(units)):
            rows, scored = students_of_unit(spec, data, releases, unit, threads, cache)
            store.write_unit(unit.name, pd.DataFrame(rows), examples=scored)
        table = store.consolidate(names)
        from softleak.simulate.store import read_side_table

        return _finish(table, read_side_table(store.root, "examples", names), config)


def _audit_in_memory(
    spec: AuditSpec,
    data: AuditData,
    releases: list[Release],
    units: list[_Unit],
    config: dict,
    threads: int | None,
    progress: bool | None,
    cache: dict,
) -> AuditResult:
    """:func:`audit` without a run directory: every unit trained here, nothing written."""
    frames, examples = [], []
    for unit in student_bar_units(units, releases, progress):
        rows, scored = students_of_unit(spec, data, releases, unit, threads, cache)
        frames.append(pd.DataFrame(rows))
        examples.append(scored)
    return _finish(
        pd.concat(frames, ignore_index=True), pd.concat(examples, ignore_index=True), config
    )


def _check_fits(spec: AuditSpec, data: AuditData, identity: dict, releases: list[Release]) -> None:
    """Refuse (``simulate.rundir.check_fits``) an audit whose peak memory does not fit the
    device, or whose per-example scores do not fit in memory."""
    from softleak.simulate.rundir import check_fits

    n_holdout = 0 if data.holdout_labels is None else len(data.holdout_labels)
    check_fits(
        spec.peak_bytes(data.n, data.inputs.shape[1], data.c, n_holdout, _module_params(identity)),
        spec.device,
        f"an audit of {data.n} members",
    )
    check_fits(
        spec.examples_bytes(data.n, n_holdout, len(releases)),
        "cpu",
        f"the per-example scores of {len(releases)} settings x {spec.seeds} seeds x "
        f"{len(spec.rho)} rho on {data.n} members and {n_holdout} non-members",
    )


def check_holdout(data: AuditData) -> None:
    """ValueError (one line) for a holdout of fewer than :data:`MIN_NONMEMBERS` non-members."""
    n = 0 if data.holdout_labels is None else len(data.holdout_labels)
    if 0 < n < MIN_NONMEMBERS:
        raise ValueError(
            f"the holdout has {n} non-member{'s' if n > 1 else ''}; a baseline needs at least "
            f"{MIN_NONMEMBERS} (with fewer its own 95% interval is wider than +-0.18): give more "
            "non-members, or leave the holdout out to compare with chance"
        )


def student_bar_units(units, releases, progress, total: int | None = None):
    """Iterate ``units`` under one progress bar over their students."""
    total = len(units) if total is None else total
    bar = student_bar(
        total * len(releases), (total - len(units)) * len(releases), "audit", progress
    )
    try:
        for unit in units:
            yield unit
            bar.update(len(releases))
    finally:
        bar.close()


def _finish(table: pd.DataFrame, examples: pd.DataFrame, config: dict) -> AuditResult:
    table = table.sort_values(["seed", "rho", "order"], kind="stable").reset_index(drop=True)
    table.attrs["config"] = config
    return AuditResult(table, examples.reset_index(drop=True), config)


def _module_params(identity: dict) -> int:
    """Parameters of one module student, from its identity's shapes (0 for built-in students)."""
    student = identity.get("student")
    if not isinstance(student, dict):
        return 0
    return int(sum(np.prod(shape) for _, shape in student["params"]))


def _legacy_identity(old: dict, fp: str) -> dict | None:
    """An audit folder written before identities: its spec, if it audited the same data."""
    from softleak.simulate.rundir import spec_from_dict

    if (old.get("data") or {}).get("fingerprint") != fp:
        return {"data": (old.get("data") or {}).get("fingerprint")}
    return spec_from_dict(AuditSpec, old["spec"]).identity(fp)


def _config(spec: AuditSpec, data: AuditData, fp: str, threads, releases) -> dict:
    from softleak import __version__

    return {
        "experiment": "audit",
        "run_id": spec.run_id(fp, data),
        "spec": spec.to_dict(),
        "settings": [r.name for r in releases],
        "data": {"fingerprint": fp, **data.describe()},
        "seeds": {
            "base": spec.seed,
            "split": [derive_seed(spec.seed, "audit-split", s) for s in range(spec.seeds)],
        },
        "softleak_version": __version__,
        "torch_version": torch.__version__,
        "threads": threads,
        "device": spec.device,
    }


def released_labels(
    spec: AuditSpec, data: AuditData, releases: list[Release], unit: _Unit
) -> np.ndarray:
    """(R, n, c) float64: every member's released labels under each setting, as the student of
    ``unit`` sees them (it trains on the rows ``unit.train``; the control permutes those)."""
    out = np.empty((len(releases), data.n, data.c))
    for r, rel in enumerate(releases):
        rng = np.random.default_rng(
            derive_seed(spec.seed, "audit-shuffle", unit.seed, unit.rho)
            if rel.control
            else derive_seed(spec.seed, "audit-release", unit.seed, rel.name)
        )
        out[r] = release_soft_labels(
            data.logits, rel, spec.tau, rng, labels=data.labels, train=unit.train
        )
    return out


def students_of_unit(
    spec: AuditSpec,
    data: AuditData,
    releases: list[Release],
    unit: _Unit,
    threads: int | None = None,
    cache: dict | None = None,
) -> tuple[list[dict], pd.DataFrame]:
    """Train one student per setting on ``unit.train`` as one replica batch; their rows and
    their per-example scores of the held-out members and the non-members
    (``simulate.audit_result.example_table``).

    cache: a dict kept across the units of one audit for work they share (filled here)."""
    t0 = time.perf_counter()
    R = len(releases)
    released = released_labels(spec, data, releases, unit)  # (R, n, c)
    model_seed = derive_seed(spec.seed, "audit-student", unit.seed, unit.rho)
    pred_train, test, hold = _train_and_predict(
        spec, data, unit, released[:, unit.train], model_seed, threads
    )
    member_acc = (test[0] == data.labels[unit.test]).mean(1)  # (R,)
    baseline, utility, kind, n_non = _baseline(data, None if hold is None else hold[0], R)
    certified = (
        _certify(spec, data, releases, unit, released, {} if cache is None else cache)
        if spec.certify and spec.student == "linear"
        else [(np.nan, np.nan)] * R
    )
    wall = (time.perf_counter() - t0) / R
    y_train = data.labels[unit.train]
    rows = []
    for r, rel in enumerate(releases):
        rows.append(
            {
                "setting": rel.name,
                "order": r,
                "control": rel.control,
                "rho": unit.rho,
                "seed": unit.seed,
                "student": spec.student_name,
                "precision": spec.precision,
                "tau": spec.tau,
                "member_acc": float(member_acc[r]),
                "n_member_test": int(len(unit.test)),
                "baseline": float(baseline[r]),
                "baseline_kind": kind,
                "n_nonmember": n_non,
                "leakage": float(member_acc[r] - baseline[r]),
                "utility": float(utility[r]),
                "student_train_acc": float((pred_train[r] == y_train).mean()),
                "certified_leaked": certified[r][0],
                "certified_hidden": certified[r][1],
                "model_seed": model_seed,
                "split_seed": derive_seed(spec.seed, "audit-split", unit.seed),
                "wall_s": wall,
            }
        )
    names = [rel.name for rel in releases]
    scored = [
        example_table(
            GROUPS[0], unit.test, data.labels[unit.test], test, names, unit.seed, unit.rho
        )
    ]
    if hold is not None:
        index = np.arange(len(data.holdout_labels))
        scored.append(
            example_table(GROUPS[1], index, data.holdout_labels, hold, names, unit.seed, unit.rho)
        )
    return rows, pd.concat(scored, ignore_index=True)


def _train_and_predict(
    spec: AuditSpec,
    data: AuditData,
    unit: _Unit,
    soft: np.ndarray,
    model_seed: int,
    threads: int | None,
) -> tuple[np.ndarray, Scored, Scored | None]:
    """Train the unit's students on their released labels ``soft`` (R, m, c) as one replica batch;
    their class predictions (R, rows) on the training members, and their scores (``_scores``)
    of the held-out members and of the holdout (None without one)."""
    dtype, device = DTYPES[spec.dtype], spec.device
    R, c = soft.shape[0], data.c
    model = replicas_of(
        spec.student,
        [model_seed] * R,
        data.input_shape,
        c,
        widths=spec.width,
        bias=spec.has_bias,
        dtype=dtype,
        device=device,
        engine=spec.engine,
    )
    X_S = torch.as_tensor(data.inputs[unit.train], dtype=dtype, device=device)  # (m, d) shared
    m = X_S.shape[0]
    targets = model.empty_like_logits(m, c, dtype=dtype, device=device)  # (R, m, c)
    targets.copy_(torch.as_tensor(soft, dtype=dtype, device=device))
    step_flops = 3 * model.flops_per_sample() * m * R
    with thread_count(threads_for(step_flops, threads)):
        objective = Objective("soft", targets)
        if spec.student == "linear" and spec.warm_start:
            warm_start(model, data.inputs[unit.train], soft)
        if spec.solver == "lbfgs":
            lbfgs(model, X_S, objective, spec.epochs)
        else:
            fit(
                model,
                X_S,
                objective,
                epochs=spec.epochs,
                optim=AdamConfig(lr=spec.lr),
                precision=spec.precision,
            )
        with torch.no_grad(), evaluating(model):
            X_train, X_test = data.inputs[unit.train], data.inputs[unit.test]
            pred_train = _scores(model, X_train, data.labels[unit.train], dtype, device)[0]
            test = _scores(model, X_test, data.labels[unit.test], dtype, device)  # (R, t) each
            hold = (
                _scores(model, data.holdout_inputs, data.holdout_labels, dtype, device)
                if data.has_holdout
                else None
            )
    return pred_train, test, hold


def _baseline(
    data: AuditData, pred_hold: np.ndarray | None, R: int
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(baseline, utility, baseline kind, non-members) of R students: their accuracy on the
    non-members and agreement there with the teacher, or without a holdout chance (the share of
    the most frequent label) and NaN."""
    if pred_hold is not None:
        baseline = (pred_hold == data.holdout_labels).mean(1)
        utility = (pred_hold == data.holdout_logits.argmax(1)).mean(1)
        return baseline, utility, "non-members", int(len(data.holdout_labels))
    share = np.bincount(data.labels, minlength=data.c).max() / data.n
    return np.full(R, share), np.full(R, np.nan), "chance", 0


def warm_start(model: ReplicaMLP, X: np.ndarray, soft: np.ndarray) -> None:
    """Start linear students at the minimum-norm least-squares fit of the centered log released
    labels, ``W = (X^+ log q)^T`` (with a constant input for the bias), where every released
    probability is positive; others keep their initialisation.

    Why: soft labels at a low temperature hold the teacher's log-ratios in probabilities like
    e^-20, where the cross-entropy is flat; gradient training from a random start recovers them
    slowly (measured: a linear teacher with logit std 10.6 at tau = 1, d = 40, 60 training rows:
    held-out member accuracy 0.22-0.44 after 3,000 Adam/L-BFGS steps although these rows identify
    the teacher). Where a linear model reproduces the labels, this start is the cross-entropy's
    minimum-norm minimiser -- the limit of gradient descent from zero -- so the audited student is
    the strongest one; elsewhere it is a start the solver refines.
    """
    W, b = model.layer(0)  # (R, c, d), (R, c) or None
    feats = np.hstack([X, np.ones((X.shape[0], 1))]) if b is not None else X
    positive = [r for r in range(soft.shape[0]) if np.all(soft[r] > 0)]
    if not positive:
        return
    logs = np.log(soft[positive])  # (R', m, c)
    logs -= logs.mean(-1, keepdims=True)
    with thread_count(1):
        coef = np.linalg.pinv(feats) @ logs  # (R', d', c)
    coef = torch.as_tensor(coef, dtype=W.dtype, device=W.device).transpose(1, 2)  # (R', c, d')
    idx = torch.as_tensor(positive, device=W.device)
    W[idx] = coef[..., : W.shape[-1]]
    if b is not None:
        b[idx] = coef[..., -1]


#: Float64 probabilities held at once when scoring (R x rows x c; 256 MiB).
SCORE_BUDGET = 2**25


def _out_features(model: ReplicaMLP) -> int:
    return int(model.layer(model.n_layers - 1)[0].shape[1])


def _scores(model, X: np.ndarray, labels: np.ndarray, dtype, device, chunk: int = 65_536) -> Scored:
    """Every replica's (prediction, probability of ``labels``, largest probability), each
    (R, rows), in row chunks of at most ``chunk`` rows and :data:`SCORE_BUDGET` probabilities
    (float64, so that a probability near 1 keeps its distance from 1: a score's rank at low
    false-positive rates depends on it)."""
    R, c = model.replicas, int(getattr(model, "n_classes", 0) or _out_features(model))
    chunk = max(1, min(chunk, SCORE_BUDGET // max(R * c, 1)))
    preds, scores, confidences = [], [], []
    for i in range(0, X.shape[0], chunk):
        xb = torch.as_tensor(X[i : i + chunk], dtype=dtype, device=device)
        proba = torch.softmax(model.forward(xb).to(torch.float64), -1)  # (R, b, c)
        yb = torch.as_tensor(labels[i : i + chunk], dtype=torch.long, device=device)
        index = yb.view(1, -1, 1).expand(proba.shape[0], -1, 1)
        top, pred = proba.max(-1)
        preds.append(pred.cpu().numpy())
        scores.append(proba.gather(-1, index)[..., 0].cpu().numpy())
        confidences.append(top.cpu().numpy())
    return (
        np.concatenate(preds, axis=1),
        np.concatenate(scores, axis=1),
        np.concatenate(confidences, axis=1),
    )


def _certify(
    spec: AuditSpec,
    data: AuditData,
    releases: list[Release],
    unit: _Unit,
    released: np.ndarray,
    cache: dict,
) -> list[tuple[float, float]]:
    """(certified leaked, certified hidden) fraction of the held-out members per setting.

    Students: linear maps (with a constant input when the students have biases) reproducing the
    centered log released labels of the training rows exactly, of norm at most the larger of
    their minimum and the minimum-norm least-squares model of ALL members' released labels
    (``released`` (R, n, c), as the student sees them). NaN where no such student exists (a zero
    released probability, or training rows no linear model reproduces).
    """
    from softleak.theory.certified import certified_leakage, minimum_bound

    def features(X: np.ndarray) -> np.ndarray:
        return np.hstack([X, np.ones((X.shape[0], 1))]) if spec.has_bias else X

    X_all = features(data.inputs)
    X_S, X_T = X_all[unit.train], X_all[unit.test]
    out = []
    with thread_count(1):
        for r, rel in enumerate(releases):
            if np.any(released[r] <= 0):
                out.append((np.nan, np.nan))
                continue
            logs = np.log(released[r])  # (n, c)
            outputs = logs[unit.train]
            # The bound: the smallest linear model of every member's released labels, fitted by
            # least squares.
            logs -= logs.mean(1, keepdims=True)
            if "pinv" not in cache:
                cache["pinv"] = np.linalg.pinv(X_all)  # (d', n), once per audit
            bound_all = float(np.linalg.norm(cache["pinv"] @ logs))
            try:
                bound = max(bound_all, minimum_bound(X_S, outputs))
                cert = certified_leakage(X_S, outputs, X_T, data.labels[unit.test], bound)
            except ValueError as err:
                log.debug("no certificate for %s at %s: %s", rel.name, unit.name, err)
                out.append((np.nan, np.nan))
                continue
            out.append((cert.leaked_fraction, cert.hidden_fraction))
    return out
