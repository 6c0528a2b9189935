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

A run directory holds ``config.json`` (spec, input fingerprint, versions), ``parts/`` (one table per
finished (seed, rho), written atomically) and ``results.parquet``; rerunning the same audit skips
finished parts, and a directory holding another audit is refused unless restarted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from softleak.simulate.audit_data import AuditData
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.optim import AdamConfig
from softleak.simulate.precision import DTYPES
from softleak.simulate.progress import student_bar
from softleak.simulate.protocol import lbfgs
from softleak.simulate.release import Release, default_settings, parse_release, release_soft_labels
from softleak.simulate.seeds import derive_seed
from softleak.simulate.train import fit

log = logging.getLogger(__name__)

__all__ = ["AuditSpec", "audit", "releases_for", "split_members"]

STUDENTS = ("linear", "mlp")
SOLVERS = ("adam", "lbfgs")
OUTPUTS = ("report",)  # besides the records every run directory holds
GRID = ("rho", "seeds")  # may grow or shrink in one directory: each (seed, rho) is a unit


@dataclass(frozen=True)
class AuditSpec:
    """What to audit and how the students train. Validated on construction."""

    rho: tuple[float, ...] = (0.25, 0.5, 0.75)  # fractions of the members a student trains on
    seeds: int = 5  # repetitions: each redraws the split, the student init and the release noise
    student: str = "linear"  # "linear" or "mlp"
    width: tuple[int, ...] = (256,)  # hidden widths of an MLP student (ignored when linear)
    bias: bool | None = None  # None: the paper's students (linear without, MLP with biases)
    tau: float = 1.0  # the temperature the soft labels are released at ("soft")
    settings: tuple[str, ...] | None = None  # release settings (None: default_settings(tau))
    solver: str = "auto"  # "adam" | "lbfgs" | "auto" (L-BFGS for linear students, else Adam)
    epochs: int | None = None  # Adam steps or L-BFGS iterations (None: 2,000 Adam, 500 L-BFGS)
    lr: float = 1e-2  # Adam learning rate
    warm_start: bool = True  # linear students start at the log-ratio least-squares fit
    certify: bool = True  # certified fractions for linear students (theory.certified)
    seed: int = 0  # base seed of every draw
    dtype: str = "float32"  # student arithmetic: float32 | float64
    device: str = "cpu"  # torch device of the students

    def __post_init__(self) -> None:
        rho = tuple(float(r) for r in np.atleast_1d(self.rho))
        if not rho or any(not 0 < r < 1 for r in rho):
            raise ValueError(f"rho must lie in (0, 1), got {self.rho}")
        object.__setattr__(self, "rho", tuple(sorted(set(rho))))
        if int(self.seeds) < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.student not in STUDENTS:
            raise ValueError(f"student must be one of {', '.join(STUDENTS)}, got {self.student!r}")
        width = tuple(int(w) for w in np.atleast_1d(self.width))
        if self.student == "mlp" and (not width or min(width) < 1):
            raise ValueError(f"an MLP student needs hidden widths >= 1, got {self.width}")
        object.__setattr__(self, "width", width if self.student == "mlp" else ())
        if not (np.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"tau must be finite and > 0, got {self.tau}")
        if self.solver == "auto":
            object.__setattr__(self, "solver", "lbfgs" if self.student == "linear" else "adam")
        if self.solver not in SOLVERS:
            raise ValueError(
                f"solver must be one of auto, {', '.join(SOLVERS)}, got {self.solver!r}"
            )
        if self.epochs is None:
            object.__setattr__(self, "epochs", 500 if self.solver == "lbfgs" else 2_000)
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.settings is None:
            object.__setattr__(self, "settings", default_settings(self.tau))
        names = [parse_release(s).name for s in self.settings]
        if not names:
            raise ValueError("give at least one release setting")
        if len(set(names)) != len(names):
            raise ValueError(f"release settings repeat: {', '.join(self.settings)}")
        object.__setattr__(self, "settings", tuple(names))

    @property
    def has_bias(self) -> bool:
        return self.student == "mlp" if self.bias is None else bool(self.bias)

    @property
    def student_name(self) -> str:
        return "linear" if self.student == "linear" else "mlp:" + ",".join(map(str, self.width))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_id(self, fingerprint: str) -> str:
        """What determines the numbers: every field but the device, plus the input data."""
        from softleak.simulate.rundir import digest

        settings = {k: v for k, v in self.to_dict().items() if k != "device"}
        return digest({"spec": settings, "data": fingerprint})

    def identity(self, fingerprint: str) -> dict:
        """The run directory's identity: the settings but the device and the grid (rho, seeds),
        and the audited data's fingerprint."""
        settings = {k: v for k, v in self.to_dict().items() if k not in ("device", *GRID)}
        return {**settings, "data": fingerprint}

    def peak_bytes(self, n: int, d: int, c: int, n_holdout: int) -> int:
        """Rough peak memory of one (seed, rho) unit with one setting: the members' and
        non-members' arrays on the device, and a student's parameters, Adam state and
        activations on the members' rows."""
        b = 8 if self.dtype == "float64" else 4
        widths = [d, *self.width, c]
        params = sum(a * o for a, o in zip(widths[:-1], widths[1:], strict=True))
        acts = (n + n_holdout) * (sum(self.width) * 3 + c * 6)
        return int(1.25 * ((n + n_holdout) * (d + c) * (8 + b) + b * (5 * params + acts)))


@dataclass(frozen=True)
class _Unit:
    """One replica batch: all settings' students of one seed and one rho."""

    seed: int
    rho: float
    train: np.ndarray = field(repr=False)  # member indices the students train on
    test: np.ndarray = field(repr=False)  # held-out member indices

    @property
    def name(self) -> str:
        return f"seed{self.seed}-rho{self.rho:g}"


def releases_for(spec: AuditSpec, c: int) -> list[Release]:
    """The spec's settings parsed for c classes; ``top_k:K`` with K >= c (= ``soft``) is dropped
    from the defaults and rejected when given explicitly."""
    out = []
    for name in spec.settings:
        kind, _, arg = name.partition(":")
        if kind == "top_k" and int(arg) >= c:
            if spec.settings == default_settings(spec.tau):
                continue
            raise ValueError(f"release setting {name}: K must be below c = {c} (K >= c is 'soft')")
        out.append(parse_release(name, c))
    return out


def split_members(labels: np.ndarray, rho: tuple[float, ...], seed: int) -> dict[float, tuple]:
    """Stratified random splits of the members, nested in rho: in each class a seeded permutation,
    of which the first ``floor(rho * count)`` train the student. Returns {rho: (train, test)} of
    sorted index arrays."""
    rng = np.random.default_rng(seed)
    orders = {cls: rng.permutation(np.flatnonzero(labels == cls)) for cls in np.unique(labels)}
    out = {}
    for r in rho:
        train = np.concatenate([idx[: int(r * len(idx))] for idx in orders.values()])
        mask = np.zeros(len(labels), dtype=bool)
        mask[train] = True
        out[r] = (np.flatnonzero(mask), np.flatnonzero(~mask))
    return out


def fingerprint(data: AuditData) -> str:
    """A hash of the audited arrays (float64 / int64 bytes), recorded with the run."""
    h = hashlib.sha256()
    for name in (
        "logits",
        "labels",
        "inputs",
        "holdout_logits",
        "holdout_labels",
        "holdout_inputs",
    ):
        value = getattr(data, name)
        h.update(name.encode())
        if value is not None:
            h.update(str(value.shape).encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def units_of(spec: AuditSpec, data: AuditData) -> list[_Unit]:
    units = []
    for s in range(spec.seeds):
        splits = split_members(data.labels, spec.rho, derive_seed(spec.seed, "audit-split", s))
        for r in spec.rho:
            train, test = splits[r]
            if len(train) == 0 or len(test) == 0:
                raise ValueError(
                    f"rho = {r:g} leaves {len(train)} training and {len(test)} held-out members "
                    f"of {data.n}; choose rho so both are non-empty"
                )
            units.append(_Unit(s, r, train, test))
    return units


def audit(
    data: AuditData,
    spec: AuditSpec | None = None,
    *,
    out: str | Path | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
) -> pd.DataFrame:
    """Audit ``data`` (a teacher's outputs, see ``AuditData``): one row per trained student.

    Summarise with ``compare.audit_report(rows)`` (leakage per setting with confidence intervals,
    the verdict, the privacy-utility plot)::

        rows = simulate.audit(AuditData.from_files("z.npy", "y.npy", "x.npy"), AuditSpec(tau=4))
        verdict = compare.audit_report(rows, tolerance=0.02).verdict  # a paragraph of text

    out: a run directory (resumable, see the module doc); None keeps everything in memory.
    threads: torch/BLAS threads (None: one for small work, see ``simulate.device.threads_for``).
    progress: a tqdm bar over students (None: only when stderr is a terminal).
    restart: start over, clearing ``out``'s records (a directory holding an audit of other
        settings or data is refused without it: ``simulate.rundir.IdentityMismatch``).

    Columns: ``setting, order, control, rho, seed, student, tau, member_acc, n_member_test,
    baseline, baseline_kind, n_nonmember, leakage, utility, student_train_acc, certified_leaked,
    certified_hidden, model_seed, split_seed, wall_s``. ``rows.attrs["config"]`` holds the run
    record (spec, fingerprint, data sizes, versions).
    """
    spec = spec or AuditSpec()
    releases = releases_for(spec, data.c)
    units = units_of(spec, data)
    fp = fingerprint(data)
    config = _config(spec, data, fp, threads, releases)
    config["units"] = [u.name for u in units]
    cache: dict = {}  # work shared by the units (the members' pseudo-inverse for certificates)
    if out is None:
        frames = []
        for unit in student_bar_units(units, releases, progress):
            rows = students_of_unit(spec, data, releases, unit, threads, cache)
            frames.append(pd.DataFrame(rows))
        table = pd.concat(frames, ignore_index=True)
        return _finish(table, config)
    from softleak.simulate.rundir import check_fits, claim, resolve_out

    out = resolve_out(out)
    n_holdout = 0 if data.holdout_labels is None else len(data.holdout_labels)
    check_fits(
        spec.peak_bytes(data.n, data.inputs.shape[1], data.c, n_holdout),
        spec.device,
        f"an audit of {data.n} members",
    )
    with claim(
        out,
        experiment="audit",
        identity=spec.identity(fp),
        restart=restart,
        legacy=lambda old: _legacy_identity(old, fp),
        outputs=OUTPUTS,
    ) as store:
        store.write_config(config)
        names = [u.name for u in units]
        done = store.finished(names, len(releases))
        pending = [u for u in units if u.name not in done]
        for unit in student_bar_units(pending, releases, progress, total=len(units)):
            rows = pd.DataFrame(students_of_unit(spec, data, releases, unit, threads, cache))
            store.write_unit(unit.name, rows)
        return _finish(store.consolidate(names), config)


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


def _finish(table: pd.DataFrame, config: dict) -> pd.DataFrame:
    table = table.sort_values(["seed", "rho", "order"], kind="stable").reset_index(drop=True)
    table.attrs["config"] = config
    return table


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
        "run_id": spec.run_id(fp),
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
) -> list[dict]:
    """Train one student per setting on ``unit.train`` as one replica batch; their rows.

    cache: a dict kept across the units of one audit for work they share (filled here)."""
    dtype, device = DTYPES[spec.dtype], spec.device
    t0 = time.perf_counter()
    R, c = len(releases), data.c
    released = released_labels(spec, data, releases, unit)  # (R, n, c)
    soft = released[:, unit.train]  # (R, m, c): what the students train on
    model_seed = derive_seed(spec.seed, "audit-student", unit.seed, unit.rho)
    model = ReplicaMLP.init([model_seed] * R, data.d, c, spec.width, spec.has_bias, dtype, device)
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
            fit(model, X_S, objective, epochs=spec.epochs, optim=AdamConfig(lr=spec.lr))
        with torch.no_grad():
            pred_train = _predict(model, data.inputs[unit.train], dtype, device)  # (R, m)
            pred_test = _predict(model, data.inputs[unit.test], dtype, device)  # (R, t)
            pred_hold = (
                _predict(model, data.holdout_inputs, dtype, device) if data.has_holdout else None
            )
    y_train, y_test = data.labels[unit.train], data.labels[unit.test]
    member_acc = (pred_test == y_test).mean(1)  # (R,)
    if pred_hold is not None:
        baseline = (pred_hold == data.holdout_labels).mean(1)
        utility = (pred_hold == data.holdout_logits.argmax(1)).mean(1)
        kind, n_non = "non-members", int(len(data.holdout_labels))
    else:
        share = np.bincount(data.labels, minlength=c).max() / data.n
        baseline = np.full(R, share)
        utility = np.full(R, np.nan)
        kind, n_non = "chance", 0
    certified = (
        _certify(spec, data, releases, unit, released, {} if cache is None else cache)
        if spec.certify and spec.student == "linear"
        else [(np.nan, np.nan)] * R
    )
    wall = (time.perf_counter() - t0) / R
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
    return rows


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


def _predict(model: ReplicaMLP, X: np.ndarray, dtype, device, chunk: int = 65_536) -> np.ndarray:
    """Class predictions (R, rows) of every replica, in row chunks."""
    parts = []
    for i in range(0, X.shape[0], chunk):
        xb = torch.as_tensor(X[i : i + chunk], dtype=dtype, device=device)
        parts.append(model.forward(xb).argmax(-1).cpu().numpy())
    return np.concatenate(parts, axis=1)


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
