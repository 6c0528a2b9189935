"""The modadd family (modular addition, ``simulate.modadd``) as the registry
(``simulate.families``) reads it: its runner, parts, tiny preset, GPU-check runs and command
line."""

from __future__ import annotations

import dataclasses
from typing import Any

from softleak.simulate.families import Family, thin
from softleak.simulate.modadd.spec import ModAddSpec, student_batches, student_runs

DESCRIPTION = (
    "modular addition (paper sec. 4, Fig. 3; appendix C, Figs. 10-11): a teacher learns (a + b) "
    "mod p from a seeded share of the p^2 pairs (tokens a, b, '='), is saved at checkpoints "
    "(fixed epochs or the first epoch a stop rule holds), and per checkpoint students of the same "
    "architecture learn its soft labels at temperature tau on a rho share of its data; they are "
    "tested on the rest of its data (held-out memorized pairs) and on the unseen pairs. "
    "Defaults are the paper's: p = 113, 30% teacher data, the 1-layer transformer of Nanda et "
    "al. (2023) (Fig. 11: --model mlp), AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), "
    "10-step warm-up, full batch; teachers at 2,500/5,000/10,000 epochs (MLP 5,000/10,000/20,000); "
    "students 40,000 epochs, rho 0.05...0.9, tau 0.1,1,10, 3 repetitions. That is a GPU job "
    "(on a 2-core CPU a teacher epoch takes ~0.15 s, a student epoch ~rho x 0.13 s). On a CPU, "
    "e.g. --train-frac 0.4 --teacher-lr 3e-3 --checkpoints 100 --stop-rule 'half:val_acc>=0.5' "
    "--stop-rule grokked --teacher-epochs 1500 memorizes by epoch 100 (val acc ~0.15) and "
    "groks by ~550 (~1.5 min), with a small student grid. Re-running the same command resumes; "
    "a directory holding other settings is refused unless --restart."
)

#: The tiny preset: p = 13, a 16-wide transformer (or MLP [16]), two fixed checkpoints (2 rho x 2
#: tau students).
TINY: dict[str, Any] = dict(
    p=13,
    train_frac=0.5,
    d_model=16,
    n_heads=2,
    d_head=8,
    d_mlp=32,
    hidden=(16,),
    checkpoints=(20, 60),
    stop_rules=(),
    teacher_epochs=60,
    teacher_lr=1e-2,
    student_epochs=40,
    student_seeds=2,
    student_lr=1e-2,
    curve_every=10,
)


class ModAddFamily(Family):
    name = "modadd"
    spec_type = ModAddSpec
    help = "modular addition with transformers or MLPs (Figs. 3, 10, 11)"
    description = DESCRIPTION

    def run(self, spec, out, *, threads=None, progress=None, restart=False, **kwargs):
        from softleak.simulate.modadd.run import run_modadd

        return run_modadd(spec, out, threads=threads, progress=progress, restart=restart, **kwargs)

    def parts(self, spec: ModAddSpec, *, free_bytes: float, device: str) -> list:
        """The teacher (n rows per step, evaluated on all p^2 pairs every
        ``teacher_curve_every`` epochs, to ``teacher_epochs``: an upper bound when stop rules end
        it early), then per checkpoint the replica batches of ``student_batches`` (rows padded to
        the batch's largest rho; evaluated on all p^2 pairs every ``curve_every`` epochs). FLOPs
        as ``ModAddSpec.work``; the transformer runs at its own measured rate, the MLP variant as
        an MLP with per-replica one-hot inputs."""
        from softleak.simulate.estimate import DTYPE_BYTES, Part

        if str(device).startswith("cuda") and spec.batch_by != "checkpoint":
            spec = dataclasses.replace(spec, batch_by="checkpoint")  # what a GPU run chooses
        fps, P, b = spec.flops_per_sample(), spec.p**2, DTYPE_BYTES[spec.dtype]
        family = "transformer" if spec.model == "transformer" else "mlp"
        width = sum(spec.hidden) + spec.p if family == "mlp" else 0
        d_in = 2 * spec.p

        def part(role, rows, replicas, epochs, every):
            evals = epochs // every + 1 if every else 1
            return Part(
                role,
                family,
                3.0 * fps * rows * replicas * epochs + fps * P * replicas * evals,
                (rows * epochs + P * evals) * replicas * width,
                (rows * epochs + P * evals) * replicas * d_in * b if family == "mlp" else 0.0,
                epochs + evals,
                family != "mlp",
                replicas,
            )

        parts = [part("teachers", spec.n, 1, spec.teacher_epochs, spec.teacher_curve_every)]
        for _ in range(len(spec.checkpoints) + len(spec.stop_rules)):
            for batch in student_batches(spec, student_runs(spec)):
                m = max(spec.n_train(r.rho) for r in batch)
                parts.append(part("students", m, len(batch), spec.student_epochs, spec.curve_every))
        return parts

    def tiny(self, spec: ModAddSpec) -> ModAddSpec:
        return dataclasses.replace(spec, rho=thin(spec.rho, 2), tau=thin(spec.tau, 2), **TINY)

    def check_spec(self, command: str, kind: str, *, scale: float, seeds: int) -> ModAddSpec:
        long = kind == "float32"
        e = lambda n: max(10, int(n * scale))  # noqa: E731 - epochs at this scale
        epochs = e(400 if long else 60)
        return ModAddSpec(
            **{
                **TINY,
                "rho": (0.5,),
                "tau": (1.0, 10.0),
                "student_seeds": seeds if long else 2,
                "checkpoints": (epochs,),
                "teacher_epochs": epochs,
                "student_epochs": e(300 if long else 40),
                "curve_every": 0,
                "dtype": "float64" if kind == "float64" else "float32",
            }
        )

    def summary(self, spec: ModAddSpec, table) -> list[str]:
        if not len(table):
            return []
        summary = table.groupby("checkpoint", sort=False).agg(
            epoch=("teacher_epoch", "first"),
            teacher_train=("teacher_train_acc", "first"),
            teacher_val=("teacher_val_acc", "first"),
            test=("student_test_acc", "mean"),
            val=("student_val_acc", "mean"),
        )
        return [
            f"teacher {name} (epoch {int(row.epoch)}: train acc {row.teacher_train:.3f}, val acc "
            f"{row.teacher_val:.3f}): students' mean held-out acc {row.test:.3f}, val acc "
            f"{row.val:.3f}"
            for name, row in summary.iterrows()
        ]


FAMILY = ModAddFamily()
