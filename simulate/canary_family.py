"""The canaries family (memorized canaries on a real data set: ``simulate.canary_spec``,
``simulate.canaries``) as the registry (``simulate.families``) reads it: its runner, identity,
parts, tiny preset, GPU-check runs and command line. (The command line's recovery table comes
from ``compare.canaries``, a layer above: ``softleak.commands_simulate`` adds it.)"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from softleak.simulate.canary_spec import CanarySpec, forward_flops_per_sample
from softleak.simulate.families import Family

DESCRIPTION = (
    "memorized canaries on a real data set (beyond the paper): a teacher learns the training "
    "split of --data plus k canaries -- training points whose labels are replaced by labels "
    "drawn uniformly from all c classes, independently of the input -- until it fits them; "
    "students learn its soft labels on a fraction rho of the clean training points and rho_c "
    "of the canaries (0: they never see one) and are asked the planted labels of the canaries "
    "they did not see, next to the null of unplanted points (held-out clean points with "
    "phantom labels drawn the same way: expectation 1/c), a hard-label student and the "
    "within-class shuffle control. Architectures: mlp, cnn (images) or your own "
    "FILE.py:NAME (a function NAME(in_shape, c) returning a torch.nn.Module; the file runs only "
    "because you name it, and the run records its SHA-256 and the module's parameter shapes). "
    "Prints the recovery table with t intervals over seeds and the label-DP epsilon lower bound "
    "per setting (valid here: the planted labels are uniform and independent of the inputs). "
    "The bundled data sets need scikit-learn (pip install 'softleak[real]'). Defaults take ~10 "
    "min on a 2-core CPU (figs canaries --preset quick is the few-minute version). Re-running "
    "the same command resumes; growing --seeds, --k, --rho or --rho-c keeps finished units"
)

#: The tiny preset: 3 seeds (the claims' minimum), 20 canaries, narrow models.
TINY: dict[str, Any] = dict(
    seeds=3,
    k=(20,),
    rho=(0.5,),
    rho_c=(0.0,),
    tau=(1.0, 20.0),
    teacher_width=(32,),
    student_width=(16,),
    teacher_epochs=150,
    teacher_lr=0.02,
    student_epochs=60,
    student_lr=0.02,
)


class CanaryFamily(Family):
    name = "canaries"
    spec_type = CanarySpec
    help = "memorized canaries on a real data set: recovery of held-out canaries"
    description = DESCRIPTION
    device = "cpu"
    needs = ("sklearn",)  # the bundled data sets (the check runs on digits)

    def run(self, spec, out, *, threads=None, progress=None, restart=False, **kwargs):
        from softleak.simulate.canaries import run_canaries

        return run_canaries(
            spec, out, threads=threads, progress=progress, restart=restart, **kwargs
        )

    def identity(self, spec: CanarySpec) -> dict:
        """The identity names the data by its fingerprint and module architectures by their
        shapes on it: the data set is read."""
        from softleak.simulate.real_data import load_real

        data = load_real(spec.data, spec.input_shape)
        return spec.identity(data.in_shape, data.c, data.fingerprint())

    def parts(self, spec: CanarySpec, *, free_bytes: float, device: str) -> list:
        """One teacher per (seed, k) on the training split, one student batch per (seed, k, rho,
        rho_c) on its own rows (shared by its replicas), FLOPs as ``CanarySpec.work``. Module
        architectures (cnn, factories) are priced at the MLP's rates (an assumption: none
        measured for them)."""
        from softleak.simulate.estimate import DTYPE_BYTES, Part
        from softleak.simulate.real_data import describe_source

        n, in_shape, c = describe_source(spec.data, spec.input_shape)
        n_train, d, b = n - round(spec.test_frac * n), math.prod(in_shape), DTYPE_BYTES[spec.dtype]
        t_fps = forward_flops_per_sample(spec.teacher, spec.teacher_width, in_shape, c)
        s_fps = forward_flops_per_sample(spec.student, spec.student_width, in_shape, c)
        t_width, s_width = sum(spec.teacher_width) + c, sum(spec.student_width) + c
        e, es, R = spec.teacher_epochs, spec.student_epochs, len(spec.settings())
        parts = []
        for _ in range(spec.seeds):
            for k in spec.k:
                rows = n_train
                parts.append(
                    Part(
                        "teachers",
                        "mlp",
                        3.0 * t_fps * rows * e,
                        e * rows * t_width,
                        e * 2 * rows * d * b,
                        e,
                        True,
                        1,
                    )
                )
                for rho in spec.rho:
                    for rho_c in spec.rho_c:
                        m = rho * max(n_train - k, 0) + rho_c * k
                        parts.append(
                            Part(
                                "students",
                                "mlp",
                                3.0 * s_fps * m * es * R,
                                es * m * R * s_width,
                                es * 2 * m * d * b,
                                es,
                                True,
                                R,
                            )
                        )
        return parts

    def tiny(self, spec: CanarySpec) -> CanarySpec:
        return dataclasses.replace(spec, **TINY)

    def check_spec(self, command: str, kind: str, *, scale: float, seeds: int) -> CanarySpec:
        """Digits, 20 canaries, narrow MLPs: the tiny preset's sizes (float64 on 2 seeds, float32
        longer on ``seeds``)."""
        long = kind == "float32"
        e = lambda n: max(10, int(n * scale))  # noqa: E731 - epochs at this scale
        return CanarySpec(
            **{
                **TINY,
                "seeds": seeds if long else 2,
                "rho_c": (0.0, 0.5),
                "teacher_epochs": e(600 if long else 100),
                "student_epochs": e(300 if long else 50),
                "dtype": "float64" if kind == "float64" else "float32",
            }
        )


FAMILY = CanaryFamily()
