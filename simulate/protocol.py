"""The random-data distillation protocol (paper sec. 5): teachers memorize random labels, students
learn from their soft labels on a rho fraction and are tested on the held-out rest.

Teachers of equal (d, c, n) train as one batched program (per-replica inputs, ``bmm``); with nested
data, all teachers of one seed share one input matrix and differ only in their sample masks. All
students of one teacher -- every rho, tau, shuffle, ablation and student seed -- share the teacher's
input matrix: each trains on its own mask of the rows, so one matrix multiply serves them all.

(A little over 500 lines, on purpose: the protocol's teachers and students are one concern that
shares the ``Teacher`` record and the run ids; the split of its long functions into named steps
added the lines.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from softleak.simulate.data import TeacherSet, make_teacher_set, make_validation, student_split
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective, normalized_weights
from softleak.simulate.models import ReplicaMLP, ReplicaModel
from softleak.simulate.optim import AdamConfig
from softleak.simulate.precision import DTYPES
from softleak.simulate.softlabels import (
    apply_ablation,
    focus_class,
    soft_targets,
    within_class_permutation,
)
from softleak.simulate.spec import SweepSpec
from softleak.simulate.student_metrics import student_metrics
from softleak.simulate.train import fit

log = logging.getLogger(__name__)


@dataclass
class Teacher:
    """One trained teacher with its data and outputs (numpy, float64 logits)."""

    key: tuple[int, int, int, int]  # (d, c, n, rep)
    data: TeacherSet
    X_val: np.ndarray
    y_val: np.ndarray
    model: ReplicaModel  # one replica
    logits: np.ndarray  # (n, k) on D_*^T
    logits_val: np.ndarray  # (n_val, k)
    train_acc: float
    val_acc: float
    wall_s: float
    record: dict = field(default_factory=dict)  # row columns of an exact teacher (svm, minnorm)


def predict(logits: torch.Tensor) -> torch.Tensor:
    """Class predictions from logits (..., k): sign for a single logit, argmax otherwise."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).long()
    return logits.argmax(-1)


def teacher_data(spec: SweepSpec, d: int, c: int, n: int, rep: int) -> TeacherSet:
    if spec.nested_data:
        n_max = max(nn for dd, cc, nn in spec.teacher_sizes() if (dd, cc) == (d, c))
        full = make_teacher_set(
            n_max, d, c, spec.data_seed(d, c, n, rep), standardize=spec.do_standardize, nested=True
        )
        return TeacherSet(full.X[:n], full.y[:n], c)
    return make_teacher_set(n, d, c, spec.data_seed(d, c, n, rep), standardize=spec.do_standardize)


def train_teachers(
    spec: SweepSpec,
    keys: list[tuple[int, int, int, int]],
    threads: int | None = None,
    states: dict | None = None,
) -> list[Teacher]:
    """Train the teachers ``keys`` (all with the same d and c) as one batch.

    Independent data (default): all keys must share n; inputs (R, n, d) go through ``bmm``.
    Nested data: the keys share one input matrix (the largest n) and train on prefix masks.
    ``states``: previously saved weights by key (those teachers are not retrained).
    """
    # exact teachers (svm, minnorm) are float64 throughout: see simulate.exact_teachers
    dtype = torch.float64 if spec.exact_teacher else DTYPES[spec.dtype]
    device = spec.device
    d, c = keys[0][0], keys[0][1]
    k = 1 if spec.single_logit else c
    t0 = time.perf_counter()
    datas = [teacher_data(spec, *key) for key in keys]
    seeds = [spec.teacher_seed(*key) for key in keys]
    model = replica_models(spec, seeds, d, k, spec.p_teacher, dtype)
    states = states or {}
    todo = [i for i, key in enumerate(keys) if key not in states]
    if todo and spec.exact_teacher:
        from softleak.simulate.exact_teachers import exact_weights

        for i in todo:
            w = exact_weights(spec.teacher_kind, datas[i].X, datas[i].y)
            model.params[0][i, 0] = torch.as_tensor(w, dtype=dtype, device=device)
    elif todo:
        _fit_teachers(spec, model, datas, todo, k, dtype, threads)
    for i, key in enumerate(keys):
        if key in states:
            for p, q in zip(model.params, states[key], strict=True):
                p[i] = q.to(device=device, dtype=dtype)
    wall = (time.perf_counter() - t0) / max(1, len(todo))
    return [
        _trained_teacher(spec, key, datas[i], model.select([i]), dtype, wall)
        for i, key in enumerate(keys)
    ]


def _fit_teachers(
    spec: SweepSpec,
    model: ReplicaModel,
    datas: list[TeacherSet],
    todo: list[int],
    k: int,
    dtype: torch.dtype,
    threads: int | None,
) -> None:
    """Train the replicas ``todo`` of ``model`` (on ``datas``, the batch's teacher sets) as one
    batch by ``fit`` and write their weights back into ``model``. Nested data: one input
    matrix (the largest set's) with a prefix mask per replica; else per-replica inputs."""
    device = spec.device
    n_max = max(x.n for x in datas)
    sub = model.select(todo)
    if spec.nested_data:
        X = torch.as_tensor(
            datas[int(np.argmax([x.n for x in datas]))].X, dtype=dtype, device=device
        )
        y = torch.as_tensor(max(datas, key=lambda x: x.n).y, device=device)
        mask = torch.zeros(len(todo), n_max, dtype=dtype, device=device)
        for r, i in enumerate(todo):
            mask[r, : datas[i].n] = 1
        weights, targets = normalized_weights(mask), y
    else:
        X = torch.as_tensor(np.stack([datas[i].X for i in todo]), dtype=dtype, device=device)
        targets = torch.as_tensor(np.stack([datas[i].y for i in todo]), device=device)
        weights = None
    kind = "bce" if k == 1 else "ce"
    if kind == "bce":
        targets = targets.to(dtype)
    step_flops = 3 * sub.flops_per_sample() * n_max * len(todo)
    with thread_count(threads_for(step_flops, threads)):
        fit(
            sub,
            X,
            Objective(kind, targets, weights),
            epochs=spec.teacher_epochs,
            optim=AdamConfig(lr=spec.teacher_lr),
            precision=spec.precision,
            compile=spec.compile,
        )
    for r, i in enumerate(todo):
        for p, q in zip(model.params, sub.params, strict=True):
            p[i] = q[r]


def _trained_teacher(
    spec: SweepSpec,
    key: tuple[int, int, int, int],
    data: TeacherSet,
    one: ReplicaModel,
    dtype: torch.dtype,
    wall: float,
) -> Teacher:
    """The :class:`Teacher` of ``key`` from its trained model ``one`` (one replica): its logits
    and accuracies on its data and on its validation set (drawn here), and an exact teacher's
    row columns."""
    device = spec.device
    d, c = key[0], key[1]
    X_val, y_val = make_validation(spec.n_val, d, c, spec.val_seed(*key), spec.val_kind)
    with torch.no_grad():
        z = one.forward(torch.as_tensor(data.X, dtype=dtype, device=device))[0]
        zv = one.forward(torch.as_tensor(X_val, dtype=dtype, device=device))[0]
    y_t = torch.as_tensor(data.y, device=device)
    record = {}
    if spec.exact_teacher:  # from the weights as stored: a resumed sweep writes the same rows
        from softleak.simulate.exact_teachers import teacher_record

        w = one.params[0][0, 0].double().cpu().numpy()
        record = teacher_record(spec.teacher_kind, data.X, data.y, w)
    return Teacher(
        key=key,
        data=data,
        X_val=X_val,
        y_val=y_val,
        model=one,
        logits=z.double().cpu().numpy(),
        logits_val=zv.double().cpu().numpy(),
        train_acc=float((predict(z) == y_t).double().mean()),
        val_acc=float((predict(zv).cpu() == torch.as_tensor(y_val)).double().mean()),
        wall_s=wall,
        record=record,
    )


def replica_models(
    spec: SweepSpec, seeds: list[int], d: int, k: int, widths: tuple[int, ...], dtype: torch.dtype
) -> ReplicaModel:
    """R models d -> widths -> k, one per seed, on the spec's device: the one place the sweep
    engine names its model class (``simulate.models.ReplicaModel`` is what it asks of one)."""
    return ReplicaMLP.init(seeds, d, k, widths, spec.has_bias, dtype, spec.device)


def teacher_batches(spec: SweepSpec, keys: list[tuple[int, int, int, int]]) -> list[list]:
    """Group teacher keys into batches that train together (exact teachers are solved one at a
    time and gain nothing from a batch: one each, so each is saved as soon as it is solved)."""
    if spec.exact_teacher:
        return [[key] for key in keys]
    groups: dict[tuple, list] = {}
    for key in keys:
        d, c, n, rep = key
        group = (d, c, rep) if spec.nested_data else (d, c, n)
        groups.setdefault(group, []).append(key)
    return list(groups.values())


# ---------------------------------------------------------------------------------------------
# students
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudentRun:
    rho: float
    tau: float
    shuffle: bool
    ablation: str
    student_seed: int  # index s of the student replicate
    model_seed: int


def student_runs(spec: SweepSpec, key: tuple[int, int, int, int]) -> list[StudentRun]:
    runs = []
    for rho in spec.rho:
        for tau in spec.taus():
            for shuffle in spec.shuffles():
                for ablation in spec.ablation:
                    for s in range(spec.student_seeds):
                        # Shuffled and unshuffled students share their initialisation.
                        seed = spec.student_seed(*key, rho, tau, ablation, s)
                        runs.append(StudentRun(rho, tau, shuffle, ablation, s, seed))
    return runs


def unit_run_ids(spec: SweepSpec, key: tuple[int, int, int, int]) -> list[str]:
    """The run ids of one teacher's gradient students (what its part must hold)."""
    return [_run_id(key, run) for run in student_runs(spec, key)]


def _base_row(spec: SweepSpec, teacher: Teacher, run: StudentRun) -> dict:
    d, c, n, rep = teacher.key
    return {
        "experiment": spec.experiment,
        "d": d,
        "c": c,
        "n": n,
        "alpha": spec.alpha_of(n, d, c),
        "rho": run.rho,
        "tau": run.tau,
        "p_teacher": ",".join(map(str, spec.p_teacher)) or "0",
        "p_student": ",".join(map(str, spec.p_student)) or "0",
        "teacher_epochs": 0 if spec.exact_teacher else spec.teacher_epochs,
        "student_epochs": 0 if spec.single_logit else spec.student_epochs,
        "teacher_lr": float("nan") if spec.exact_teacher else spec.teacher_lr,
        "student_lr": float("nan") if spec.single_logit else spec.student_lr,
        "shuffle": run.shuffle,
        "ablation": run.ablation,
        "solver": "pinv" if spec.single_logit else spec.solver,
        "seed": rep,
        "student_seed": run.student_seed,
        "data_seed": spec.data_seed(d, c, n, rep),
        "teacher_seed": spec.teacher_seed(d, c, n, rep),
        "model_seed": run.model_seed,
        "nested_data": spec.nested_data,
        "precision": spec.precision,
        "teacher_train_acc": teacher.train_acc,
        "teacher_val_acc": teacher.val_acc,
        **teacher.record,
    }


def pinv_students(spec: SweepSpec, teacher: Teacher, threads: int | None = None) -> list[dict]:
    """Binary single-logit students w = pinv(X_S) z_S from the teacher's raw logits (float64).

    All shuffles of one rho share the pseudo-inverse: they are extra right-hand sides. The
    factorizations are small (min(m, d)^3 with d ~ 10^2-10^3): one BLAS thread by default.
    """
    with thread_count(threads or 1):
        return _pinv_students(spec, teacher)


def _pinv_students(spec: SweepSpec, teacher: Teacher) -> list[dict]:
    from softleak.theory.pinv import pinv_student

    X, y, z = teacher.data.X, teacher.data.y, teacher.logits[:, 0]
    d, c, n, rep = teacher.key
    rows = []
    by_rho: dict[float, list[StudentRun]] = {}
    for run in student_runs(spec, teacher.key):
        by_rho.setdefault(run.rho, []).append(run)
    for rho, runs in by_rho.items():
        t0 = time.perf_counter()
        train, test = student_split(y, rho, c)
        rhs = []
        for run in runs:
            if run.shuffle:
                rng = np.random.default_rng(spec.shuffle_seed(d, c, n, rep, rho, run.student_seed))
                perm = within_class_permutation(y, train, rng)
                rhs.append(z[perm][train])
            else:
                rhs.append(z[train])
        W = pinv_student(X[train], np.stack(rhs, 1))  # (d, runs)
        Z = X @ W  # (n, runs)
        Zv = teacher.X_val @ W
        wall = (time.perf_counter() - t0) / len(runs)
        for j, run in enumerate(runs):
            pred, t_pred = (Z[:, j] > 0).astype(int), (z > 0).astype(int)
            row = _base_row(spec, teacher, run)
            row.update(
                student_train_acc=float((pred[train] == y[train]).mean()),
                student_test_acc=_mean(pred[test] == y[test]),
                student_val_acc=float(((Zv[:, j] > 0).astype(int) == teacher.y_val).mean()),
                match_teacher_train_acc=float((pred[train] == t_pred[train]).mean()),
                match_teacher_test_acc=_mean(pred[test] == t_pred[test]),
                train_mse=float(np.mean((Z[train, j] - z[train]) ** 2)),
                test_mse=_mean((Z[test, j] - z[test]) ** 2),
                train_ce=float("nan"),
                test_ce=float("nan"),
                wall_s=wall,
            )
            rows.append(row)
    return rows


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def gradient_students(
    spec: SweepSpec, teacher: Teacher, runs: list[StudentRun], threads: int | None = None
) -> tuple[list[dict], list[dict], ReplicaModel]:
    """Train ``runs`` (students of one teacher) as one batch on the teacher's shared inputs.

    Returns (rows, curve records in long form, the trained students).
    """
    dtype, device = DTYPES[spec.dtype], spec.device
    d, c, n, rep = teacher.key
    R = len(runs)
    t0 = time.perf_counter()
    # Row set: the union of all students' training sets = the train set of the largest rho.
    splits = {rho: student_split(teacher.data.y, rho, c) for rho in {r.rho for r in runs}}
    rows_idx = splits[max(splits)][0]
    X_full = torch.as_tensor(teacher.data.X, dtype=dtype, device=device)
    X_S = X_full[torch.as_tensor(rows_idx, device=device)]  # (m, d) shared by all R students
    y_full = torch.as_tensor(teacher.data.y, device=device)
    z_full = torch.as_tensor(teacher.logits, device=device)  # float64 teacher logits (n, c)
    m = len(rows_idx)
    model = replica_models(spec, [r.model_seed for r in runs], d, c, spec.p_student, dtype)
    if spec.student_init == "zero":
        for p in model.params:
            p.zero_()
    t = _student_targets(spec, teacher, runs, model, splits, rows_idx, y_full, z_full)
    objective = Objective("soft", t.targets, normalized_weights(t.mask))
    X_val = torch.as_tensor(teacher.X_val, dtype=dtype, device=device)
    y_val = torch.as_tensor(teacher.y_val, device=device)

    def evaluate(mdl, epoch: int) -> dict:
        z = mdl.forward(X_full)  # (R, n, c)
        return student_metrics(
            z, None, y_full, z_full, t.full_targets, t.train_masks, t.test_masks, with_mse=False
        )

    step_flops = 3 * model.flops_per_sample() * m * R
    with thread_count(threads_for(step_flops, threads)):
        curves = _fit_students(spec, model, X_S, objective, evaluate)
        with torch.no_grad():
            metrics = student_metrics(
                model.forward(X_full),
                model.forward(X_val),
                y_full,
                z_full,
                t.full_targets,
                t.train_masks,
                t.test_masks,
                y_val=y_val,
                taus=torch.tensor([r.tau for r in runs], device=device),
                focus=t.focus,
            )
    wall = (time.perf_counter() - t0) / R
    rows, long = _student_records(spec, teacher, runs, metrics, t.focus, curves, wall)
    return rows, long, model


@dataclass
class _StudentTargets:
    """What a batch of gradient students trains on and is measured against."""

    targets: torch.Tensor  # (R, m, c) soft labels on the shared rows, in the logits' layout
    mask: torch.Tensor  # (R, m) 1 where a row is in that student's training set
    train_masks: torch.Tensor  # (R, n) bool, each student's training rows (ablation applied)
    test_masks: torch.Tensor  # (R, n) bool, its held-out rows
    full_targets: torch.Tensor  # (R, n, c) float64 soft labels (ablated, unshuffled) on all rows
    focus: torch.Tensor  # (R,) the focus class of each run's ablation


def _student_targets(
    spec: SweepSpec,
    teacher: Teacher,
    runs: list[StudentRun],
    model: ReplicaModel,
    splits: dict,
    rows_idx: np.ndarray,
    y_full: torch.Tensor,
    z_full: torch.Tensor,
) -> _StudentTargets:
    """Targets and masks in the layout of the students' logits (elementwise ops stay contiguous)."""
    dtype, device = DTYPES[spec.dtype], spec.device
    d, c, n, rep = teacher.key
    y_np = teacher.data.y
    R, m = len(runs), len(rows_idx)
    pos = np.full(n, -1)
    pos[rows_idx] = np.arange(len(rows_idx))
    targets = model.empty_like_logits(m, c, dtype=dtype, device=device)
    mask = model.empty_like_logits(m, 1, dtype=dtype, device=device)[..., 0].zero_()
    train_masks = torch.zeros(R, n, dtype=torch.bool, device=device)
    test_masks = torch.zeros(R, n, dtype=torch.bool, device=device)
    full_targets = torch.empty(R, n, c, dtype=torch.float64, device=device)
    focus = torch.tensor([focus_class(r.ablation) for r in runs], device=device)  # (R,)
    for r, run in enumerate(runs):
        train, test = splits[run.rho]
        soft = soft_targets(z_full, run.tau)  # (n, c) float64
        soft, drop = apply_ablation(soft, y_full, run.ablation)
        full_targets[r] = soft
        if run.shuffle:
            rng = np.random.default_rng(spec.shuffle_seed(d, c, n, rep, run.rho, run.student_seed))
            soft = soft[torch.as_tensor(within_class_permutation(y_np, train, rng), device=device)]
        targets[r] = soft[torch.as_tensor(rows_idx, device=device)].to(dtype)
        keep = train if drop is None else train[y_np[train] != drop]
        mask[r, torch.as_tensor(pos[keep], device=device)] = 1
        train_masks[r, torch.as_tensor(keep, device=device)] = True
        test_masks[r, torch.as_tensor(test, device=device)] = True
    return _StudentTargets(targets, mask, train_masks, test_masks, full_targets, focus)


def _fit_students(
    spec: SweepSpec, model: ReplicaModel, X_S: torch.Tensor, objective: Objective, evaluate
) -> list:
    """Train the students with the spec's solver; returns the learning-curve records."""
    if spec.solver == "lbfgs":
        return lbfgs(model, X_S, objective, spec.student_epochs)
    result = fit(
        model,
        X_S,
        objective,
        epochs=spec.student_epochs,
        optim=AdamConfig(lr=spec.student_lr),
        precision=spec.precision,
        compile=spec.compile,
        curve_every=spec.curve_every,
        evaluate=evaluate,
    )
    return result.curves


def _student_records(
    spec: SweepSpec,
    teacher: Teacher,
    runs: list[StudentRun],
    metrics: dict,
    focus: torch.Tensor,
    curves: list,
    wall: float,
) -> tuple[list[dict], list[dict]]:
    """The students' results rows and their learning curves in long form."""
    rows, long = [], []
    for r, run in enumerate(runs):
        row = _base_row(spec, teacher, run)
        row.update({k: float(v[r]) for k, v in metrics.items()}, wall_s=wall)
        row["focus_class"] = int(focus[r])
        row["run_id"] = _run_id(teacher.key, run)  # the key of this run's learning curves
        rows.append(row)
        run_id = row["run_id"]
        for rec in curves:
            for metric, values in rec.items():
                if metric != "epoch":
                    long.append(
                        {
                            "run_id": run_id,
                            "epoch": rec["epoch"],
                            "metric": metric,
                            "value": float(values[r]),
                        }
                    )
    return rows, long


def _run_id(key: tuple, run: StudentRun) -> str:
    d, c, n, rep = key
    return (
        f"d{d}-c{c}-n{n}-s{rep}-rho{run.rho:g}-tau{run.tau:g}-sh{int(run.shuffle)}-"
        f"{run.ablation}-ss{run.student_seed}"
    )


def lbfgs(model: ReplicaModel, X: torch.Tensor, objective: Objective, max_iter: int) -> list:
    """Solve the convex linear-student problem to convergence with L-BFGS (strong Wolfe).

    The replicas' losses are independent, so minimising their sum minimises each one.
    """
    params = [p.requires_grad_(True) for p in model.params]
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=max_iter,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = objective.value(model.forward(X)).sum()
        loss.backward()
        return loss

    opt.step(closure)
    for p in params:
        p.requires_grad_(False)
        p.grad = None
    return []
