"""What the workload slices share between ``benchmarks.run_all`` (this CPU) and
``benchmarks.gpu_check`` (a CUDA device): the Fig. 5A temperatures, a slice's geometry for
``simulate.estimate`` (``linear_slice``), the hook for fused (torch.compile'd) steps and the
modadd-transformer workload's spec."""

from __future__ import annotations

import dataclasses

import numpy as np

from softleak.simulate.estimate import step_flops

TAUS_5A = tuple(float(f"{t:.6g}") for t in np.logspace(-0.5, 3.5, 40))


def linear_slice(models: int, d: int, k: int, rows: int, shared: bool, hidden=()) -> dict:
    """One step's geometry (``simulate.estimate.Part`` fields) of ``models`` d -> hidden -> k
    models on ``rows`` rows each (float32 inputs)."""
    family = "mlp" if hidden else "linear"
    return {
        "family": family,
        "flops": models * step_flops(d, tuple(hidden), k, rows),
        "entries": models * rows * (sum(hidden) + k),
        "bytes": (1 if shared else models) * 2 * rows * d * 4,
        "steps": 1,
        "shared": shared,
        "d": d,
        "hidden": list(hidden),
        "k": k,
        "rows": rows,
        "models": models,
    }


# ---------------------------------------------------------------------------------------------
# the hook for fused (torch.compile'd) steps
# ---------------------------------------------------------------------------------------------
#: Spec fields that switch compiled (fused) training steps on or off, in the order looked for
#: (``bool | None``: None lets the engine decide by step size).
FUSED_FIELDS = ("compile", "fused", "torch_compile")


def _fused_field(spec) -> str | None:
    fields = {f.name: f for f in dataclasses.fields(spec)}
    for name in FUSED_FIELDS:
        f = fields.get(name)
        if f is not None and (f.default is None or isinstance(f.default, bool)):
            return name
    return None


def fused_variant(spec):
    """HOOK for fused steps: ``spec`` with torch.compile'd steps switched on, or None while
    ``softleak.simulate`` offers no such switch (a ``bool | None`` spec field named in
    ``FUSED_FIELDS``). The suite times ``"fused": true`` rows only where this returns a spec."""
    name = _fused_field(spec)
    return dataclasses.replace(spec, **{name: True}) if name else None


def eager(spec):
    """``spec`` with compiled steps off where it has the switch: ``"fused": false`` rows time the
    eager steps, whatever the engine's default would choose for their size."""
    name = _fused_field(spec)
    return dataclasses.replace(spec, **{name: False}) if name else spec


def modadd_bench_spec(students: int, **changes):
    """The modadd-transformer workload's spec: ``students`` students at rho 0.5, tau 1 of a
    one-epoch teacher checkpoint (only the students are timed), eager steps; ``changes`` set sizes
    (``gpu_check``'s profiles), the precision or the device."""
    from softleak.simulate.modadd import ModAddSpec

    spec = ModAddSpec(
        **{
            "rho": (0.5,),
            "tau": (1.0,),
            "student_seeds": students,
            "checkpoints": (1,),
            "teacher_epochs": 1,
            "curve_every": 0,
            **changes,
        }
    )
    return eager(spec)


def eager_fit_kwargs(fit) -> dict:
    """Keyword arguments that keep ``fit`` (``simulate.train.fit``) eager where it can compile."""
    import inspect

    return {"compile": False} if "compile" in inspect.signature(fit).parameters else {}
