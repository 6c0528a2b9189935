"""Memorized canaries on a real data set: what a student recovers from a teacher's soft labels
about canaries it never saw (``CanarySpec``; ``softleak simulate canaries``).

Per seed: a stratified train/test split of the data (``simulate.real_data``), a seeded order of
the training points whose first k are the canaries, their planted labels (uniform over all c
classes, independent of everything else) and a *phantom* label per training point drawn the same
way. Per (seed, k) a teacher (``teacher``, one replica) learns the training split with the
canaries' labels replaced by the planted ones, by full-batch Adam on the cross-entropy (the one
trainer), and is saved (``DIR/teachers/<seed>-<k>.pt``: its logits on the training and test rows).

Per unit (seed, k, rho, rho_c): the student set is a rho fraction of the clean training points
(stratified by class) and a rho_c fraction of the canaries (stratified by planted label; both
nested in their fraction, as in the audit's ``split_members``). One replica batch on exactly
these rows -- never rows of other students, so a module with batch statistics sees only its own
set (``simulate.module_engine``) -- trains one student per setting of ``CanarySpec.settings``
from one initialisation (common random numbers): the soft labels softmax(z / tau) of its rows
(``simulate.release``), the same permuted within the teacher's predicted class among its rows
(the audit's shuffle control: a derangement, so each input carries another input's dark
knowledge of the same class), and the teacher's hard labels. Measured per student, in eval mode:

- ``canary_recovery``: the share of held-out canaries predicted with their planted label
  (``canary_hits`` of ``n_canary_test``);
- ``null_recovery``: the same for held-out clean training points and their phantom labels
  (``null_hits`` of ``n_null``) -- a student that does not leak predicts an unseen point's label
  independently of a label drawn independently of everything, so both have expectation 1/c;
- ``seen_canary_recovery`` (canaries in its set), ``student_train_acc`` (its own labels),
  ``heldout_clean_acc`` (held-out clean points, true labels), ``student_test_acc`` (the test
  split) and ``match_teacher_test_acc`` (agreement with the teacher there);
- the teacher's ``teacher_canary_acc``, ``teacher_clean_train_acc`` and ``teacher_test_acc``.

Because planted labels are uniform and independent of the inputs, the held-out canaries are the
i.i.d. uniform trials under which ``compare.privacy.epsilon_lower_bound`` holds (no caveat):
``compare.canaries`` reports the label-DP epsilon lower bound per setting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from softleak.simulate.audit_spec import split_members
from softleak.simulate.canary_spec import CanarySpec, CanaryUnit
from softleak.simulate.device import thread_count, threads_for
from softleak.simulate.losses import Objective
from softleak.simulate.module_engine import evaluating, replicas_of
from softleak.simulate.optim import AdamConfig
from softleak.simulate.precision import DTYPES
from softleak.simulate.real_data import RealData, load_real, stratified_split
from softleak.simulate.release import parse_release, release_soft_labels
from softleak.simulate.train import fit

log = logging.getLogger(__name__)

__all__ = ["CanarySpec", "run_canaries", "teacher_audit_data", "train_unit"]

OUTPUTS = ()  # besides the records every run directory holds (parts, teachers, results)


@dataclass(frozen=True)
class Setup:
    """One seed's draws: the split, the canary order and labels, the phantom labels."""

    train: np.ndarray  # (n_train,) data indices of the training split
    test: np.ndarray  # (n_test,) data indices of the test split
    order: np.ndarray  # (k_max,) positions (into train) of the canaries, in draw order
    planted: np.ndarray  # (k_max,) their planted labels
    phantom: np.ndarray  # (n_train,) a uniform label per training position (the null)

    def labels(self, data: RealData, k: int) -> np.ndarray:
        """(n_train,) the teacher's training labels with k canaries."""
        y = data.labels[self.train].copy()
        y[self.order[:k]] = self.planted[:k]
        return y


def setup_of(spec: CanarySpec, data: RealData, seed: int) -> Setup:
    """Seed ``seed``'s split and draws (each from its own derived seed)."""
    train, test = stratified_split(data.labels, spec.test_frac, spec.seed_of("split", seed))
    k_max = max(spec.k)
    if k_max >= len(train):
        raise ValueError(f"k = {k_max} canaries need more than the {len(train)} training points")
    rng = np.random.default_rng(spec.seed_of("pick", seed))
    order = rng.permutation(len(train))[:k_max]
    planted = np.random.default_rng(spec.seed_of("label", seed)).integers(0, data.c, k_max)
    phantom = np.random.default_rng(spec.seed_of("phantom", seed)).integers(0, data.c, len(train))
    return Setup(train, test, order, planted, phantom)


def student_rows(
    spec: CanarySpec, data: RealData, setup: Setup, unit: CanaryUnit
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(student set, held-out canaries, held-out clean points) of ``unit``, positions into the
    training split, sorted."""
    canaries = setup.order[: unit.k]
    is_canary = np.zeros(len(setup.train), dtype=bool)
    is_canary[canaries] = True
    clean = np.flatnonzero(~is_canary)
    y = data.labels[setup.train]
    seed = spec.seed_of("student-split", unit.seed, unit.k)
    clean_in = clean[split_members(y[clean], (unit.rho,), seed)[unit.rho][0]]
    if unit.rho_c > 0:
        chosen = split_members(setup.planted[: unit.k], (unit.rho_c,), seed)[unit.rho_c][0]
        canary_in = canaries[chosen]
    else:
        canary_in = canaries[:0]
    rows = np.sort(np.concatenate([clean_in, canary_in]))
    held_canaries = np.setdiff1d(canaries, canary_in)
    held_clean = np.setdiff1d(clean, clean_in)
    return rows, held_canaries, held_clean


def _tensor(a: np.ndarray, spec: CanarySpec) -> torch.Tensor:
    return torch.as_tensor(a, dtype=DTYPES[spec.dtype], device=spec.device)


def train_teacher(
    spec: CanarySpec, data: RealData, setup: Setup, seed: int, k: int, threads: int | None
) -> dict[str, torch.Tensor]:
    """The teacher of (seed, k): ``{"train_logits": (n_train, c), "test_logits": (n_test, c)}``
    float64 on the CPU, computed in eval mode after training."""
    y = setup.labels(data, k)
    X = _tensor(data.inputs[setup.train], spec)
    model = _models(
        spec, spec.teacher, spec.teacher_width, [spec.seed_of("teacher", seed, k)], data
    )
    objective = Objective("ce", torch.as_tensor(y, device=spec.device))
    with _trained(spec, model, X, objective, spec.teacher_epochs, spec.teacher_lr, threads):
        train = _logits(model, data.inputs[setup.train], spec)[0]
        test = _logits(model, data.inputs[setup.test], spec)[0]
    return {"train_logits": train, "test_logits": test}


def _models(spec: CanarySpec, arch, widths, seeds: list[int], data: RealData):
    """One replica per seed of ``arch`` (``simulate.module_engine.replicas_of``)."""
    return replicas_of(
        arch,
        seeds,
        data.in_shape,
        data.c,
        widths=widths,
        dtype=DTYPES[spec.dtype],
        device=spec.device,
        engine=spec.engine,
    )


@contextlib.contextmanager
def _trained(spec, model, X, objective, epochs: int, lr: float, threads) -> Iterator:
    """Train ``model`` on ``X`` (the one trainer, full-batch Adam) under the thread count its
    step size calls for; the block then runs with that thread count, in eval mode, without
    gradients (for the evaluations)."""
    flops = 3 * model.flops_per_sample() * X.shape[0] * model.replicas
    with thread_count(threads_for(flops, threads)):
        fit(
            model,
            X,
            objective,
            epochs=epochs,
            optim=AdamConfig(lr=lr),
            precision=spec.precision,
            compile=spec.compile,
        )
        with torch.no_grad(), evaluating(model):
            yield


def _logits(model, X: np.ndarray, spec: CanarySpec, chunk: int = 4096) -> torch.Tensor:
    """(R, rows, c) float64 logits on the CPU, in row chunks (call in eval mode, no grad)."""
    parts = [
        model.forward(_tensor(X[i : i + chunk], spec)).double().cpu()
        for i in range(0, X.shape[0], chunk)
    ]
    return torch.cat(parts, dim=1)


def train_unit(
    spec: CanarySpec,
    data: RealData,
    setup: Setup,
    unit: CanaryUnit,
    teacher: dict[str, torch.Tensor],
    threads: int | None = None,
) -> pd.DataFrame:
    """The students of ``unit`` on ``teacher``'s outputs, as one replica batch: one row each."""
    t0 = time.perf_counter()
    rows, held_canaries, held_clean = student_rows(spec, data, setup, unit)
    z = teacher["train_logits"].numpy()  # (n_train, c)
    z_test = teacher["test_logits"].numpy()
    predicted = z.argmax(1)
    settings = spec.settings()
    soft = np.stack(
        [_released(spec, z, predicted, rows, unit, kind, tau) for kind, tau in settings]
    )
    seeds = [spec.seed_of("student", unit.seed, unit.k, unit.rho, unit.rho_c)] * len(settings)
    model = _models(spec, spec.student, spec.student_width, seeds, data)
    X_S = _tensor(data.inputs[setup.train[rows]], spec)  # (m, d): only this batch's own rows
    targets = model.empty_like_logits(len(rows), data.c, dtype=X_S.dtype, device=X_S.device)
    targets.copy_(_tensor(soft, spec))
    objective = Objective("soft", targets)
    with _trained(spec, model, X_S, objective, spec.student_epochs, spec.student_lr, threads):
        pred = _logits(model, data.inputs[setup.train], spec).argmax(-1).numpy()
        pred_test = _logits(model, data.inputs[setup.test], spec).argmax(-1).numpy()
    wall = (time.perf_counter() - t0) / len(settings)
    y_teacher = setup.labels(data, unit.k)
    planted = y_teacher  # at canary positions the teacher's label is the planted one
    y_true, y_test = data.labels[setup.train], data.labels[setup.test]
    teacher_cols = _teacher_columns(setup, unit.k, predicted, z_test, y_teacher, y_test)
    seen = np.intersect1d(rows, setup.order[: unit.k])
    out = []
    for r, (kind, tau) in enumerate(settings):
        p = pred[r]
        out.append(
            {
                "experiment": "canaries",
                "data": data.name,
                "c": data.c,
                "n": len(setup.train),
                "n_test": len(setup.test),
                "k": unit.k,
                "rho": unit.rho,
                "rho_c": unit.rho_c,
                "tau": tau,
                "kind": kind,
                "seed": unit.seed,
                "teacher": _arch_name(spec.teacher, spec.teacher_width),
                "student": _arch_name(spec.student, spec.student_width),
                "precision": spec.precision,
                "canary_hits": int((p[held_canaries] == planted[held_canaries]).sum()),
                "n_canary_test": int(len(held_canaries)),
                "canary_recovery": _share(p[held_canaries] == planted[held_canaries]),
                "null_hits": int((p[held_clean] == setup.phantom[held_clean]).sum()),
                "n_null": int(len(held_clean)),
                "null_recovery": _share(p[held_clean] == setup.phantom[held_clean]),
                "seen_canary_recovery": _share(p[seen] == planted[seen]),
                "n_canary_train": int(len(seen)),
                "student_train_acc": _share(p[rows] == y_teacher[rows]),
                "heldout_clean_acc": _share(p[held_clean] == y_true[held_clean]),
                "student_test_acc": _share(pred_test[r] == y_test),
                "match_teacher_test_acc": _share(pred_test[r] == z_test.argmax(1)),
                "n_student_rows": int(len(rows)),
                **teacher_cols,
                "teacher_epochs": spec.teacher_epochs,
                "student_epochs": spec.student_epochs,
                "model_seed": spec.seed_of("student", unit.seed, unit.k, unit.rho, unit.rho_c),
                "teacher_seed": spec.seed_of("teacher", unit.seed, unit.k),
                "split_seed": spec.seed_of("split", unit.seed),
                "engine": getattr(model, "engine", "replica_mlp"),
                "wall_s": wall,
            }
        )
    return pd.DataFrame(out)


def _released(spec, z, predicted, rows, unit, kind: str, tau: float) -> np.ndarray:
    """(m, c) the released labels of the student's rows for one setting."""
    if kind == "hard":
        return release_soft_labels(z, parse_release("hard"), 1.0)[rows]
    if kind == "soft":
        return release_soft_labels(z, parse_release("soft"), tau)[rows]
    rng = np.random.default_rng(spec.seed_of("shuffle", unit.seed, unit.k, unit.rho, unit.rho_c))
    released = release_soft_labels(
        z, parse_release("shuffle"), tau, rng, labels=predicted, train=rows
    )
    return released[rows]


def _teacher_columns(setup, k, predicted, z_test, y_teacher, y_test) -> dict:
    canaries = setup.order[:k]
    clean = np.setdiff1d(np.arange(len(setup.train)), canaries)
    return {
        "teacher_canary_acc": _share(predicted[canaries] == y_teacher[canaries]),
        "teacher_clean_train_acc": _share(predicted[clean] == y_teacher[clean]),
        "teacher_test_acc": _share(z_test.argmax(1) == y_test),
    }


def _share(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else float("nan")


def _arch_name(arch, widths) -> str:
    return "mlp:" + ",".join(map(str, widths)) if arch == "mlp" else arch.name


def run_canaries(
    spec: CanarySpec,
    out: str | Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
) -> pd.DataFrame:
    """Run (or resume) ``spec`` into the run directory ``out``; returns its table (one row per
    student). Teachers are saved and reused; each finished (seed, k, rho, rho_c) is a part, so
    growing seeds, k, rho or rho_c keeps every finished unit (``simulate.rundir``'s contract)."""
    from softleak.simulate.precision import require_precision
    from softleak.simulate.progress import student_bar
    from softleak.simulate.rundir import check_fits, claim, resolve_out, run_config
    from softleak.simulate.store import save_state

    out = resolve_out(out)
    require_precision(spec.precision, spec.device)  # refused here, before any record
    data = load_real(spec.data, spec.input_shape)
    check_fits(peak_bytes(spec, data), spec.device, f"canaries on {data.n} points of {data.name}")
    identity = spec.identity(data.in_shape, data.c, data.fingerprint())
    units = spec.units()
    names = [u.name for u in units]
    R = len(spec.settings())
    with claim(out, experiment="canaries", identity=identity, restart=restart) as store:
        config = run_config(spec, threads)
        config.update(
            run_id=spec.run_id(identity),
            units=names,
            data={"name": data.name, "n": data.n, "c": data.c, "in_shape": list(data.in_shape)},
        )
        store.write_config(config)
        done = store.finished(names, R)
        pending = [u for u in units if u.name not in done]
        bar = student_bar(len(units) * R, len(done) * R, "canaries", progress)
        setups: dict[int, Setup] = {}
        try:
            for unit in pending:
                setup = setups.get(unit.seed) or setups.setdefault(
                    unit.seed, setup_of(spec, data, unit.seed)
                )
                path = store.teacher_path(unit.teacher)
                teacher = store.load_state(path)
                if teacher is None or set(teacher) != {"train_logits", "test_logits"}:
                    teacher = train_teacher(spec, data, setup, unit.seed, unit.k, threads)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    save_state(path, teacher)
                store.write_unit(unit.name, train_unit(spec, data, setup, unit, teacher, threads))
                bar.update(R)
        finally:
            bar.close()
        return store.consolidate(names)


def peak_bytes(spec: CanarySpec, data: RealData) -> int:
    """Rough peak memory of one unit: the data (float64 and the float32 rows on the device), and
    a replica batch's targets, logits and activations on all training rows (mlp widths; a module
    architecture's activations are not counted)."""
    b = 8 if spec.dtype == "float64" else 4
    R = len(spec.settings())
    per_row = sum(spec.student_width) + sum(spec.teacher_width) + 4 * data.c
    return int(1.25 * (data.inputs.nbytes * 2 + data.n * R * per_row * b * 3))


def teacher_audit_data(spec: CanarySpec, out: str | Path, seed: int = 0, k: int | None = None):
    """One saved teacher of a canary run as ``simulate.AuditData`` for ``simulate.audit``: its
    training split (canaries with their planted labels) as the members, the test split as the
    non-members, inputs with their ``input_shape``. ``k``: default the largest."""
    from softleak.simulate.audit_data import AuditData
    from softleak.simulate.rundir import jsonable
    from softleak.simulate.store import load_state

    k = max(spec.k) if k is None else int(k)
    if k not in spec.k or not 0 <= seed < spec.seeds:
        raise ValueError(f"no teacher seed {seed}, k = {k} in this spec")
    path = Path(out) / "teachers" / f"{CanaryUnit(seed, k, 0.5, 0.0).teacher}.pt"
    if not path.is_file():
        raise ValueError(f"{path} is missing: run the spec into {out} first")
    data = load_real(spec.data, spec.input_shape)
    config = json.loads((Path(out) / "config.json").read_text())
    if config.get("identity") != jsonable(spec.identity(data.in_shape, data.c, data.fingerprint())):
        raise ValueError(f"{out} holds a canary run of other settings than this spec")
    setup = setup_of(spec, data, seed)
    teacher = load_state(path)
    return AuditData(
        teacher["train_logits"].numpy(),
        setup.labels(data, k),
        data.inputs[setup.train],
        teacher["test_logits"].numpy(),
        data.labels[setup.test],
        data.inputs[setup.test],
        input_shape=data.in_shape,
    )
