"""``CanarySpec``: the memorized-canary experiment on a real data set (``simulate.canaries`` runs
it): its settings, identity, seeds, units and counted work.

A teacher learns the real training split of a data set (``simulate.real_data``) in which k
training points -- the *canaries* -- carry labels drawn uniformly from all c classes,
independently of their inputs, until it fits them. Students learn its soft labels on a fraction
rho of the clean training points and a fraction rho_c of the canaries (rho_c = 0: a student never
sees a canary) and are asked the planted labels of the canaries they did not see. Each (seed, k,
rho, rho_c) is one unit: one replica batch of students (soft labels at every tau, the within-class
shuffle control at every tau, and a hard-label student) on one teacher, which is saved and shared
by the units of its (seed, k).

Architectures are named: ``mlp`` (the replica-batched ReLU MLP of ``simulate.models``, widths
``teacher_width`` / ``student_width``), ``cnn`` (``simulate.factories.small_cnn``) or a factory --
``FILE.py:NAME`` on the command line, a callable or ``Factory`` from Python -- which trains
through ``simulate.module_engine``. Module architectures run in fp32 only in this release.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from softleak.simulate.params import compile_field, param
from softleak.simulate.precision import check_precision
from softleak.simulate.run_spec import RunSpec
from softleak.simulate.seeds import derive_seed

__all__ = ["KINDS", "CanarySpec", "CanaryUnit"]

#: Student kinds of every unit: soft labels (per tau), the within-class shuffle control (per tau)
#: and hard labels (tau does not apply).
KINDS = ("soft", "shuffle", "hard")
ENGINE_HELP = (
    "how module replicas run: vmap (torch.func over stacked parameters), loop (one after "
    "another) or auto (the faster measured: loop on a CPU, vmap on CUDA); round-off only, not "
    "part of the run's identity"
)
ARCH_HELP = "mlp, cnn (images) or FILE.py:NAME, a function NAME(in_shape, c) -> torch.nn.Module"


@dataclass(frozen=True)
class CanaryUnit:
    """One replica batch: the students of one teacher (seed, k) at one (rho, rho_c)."""

    seed: int
    k: int
    rho: float
    rho_c: float

    @property
    def name(self) -> str:
        return f"seed{self.seed}-k{self.k}-rho{self.rho:g}-rhoc{self.rho_c:g}"

    @property
    def teacher(self) -> str:
        return f"seed{self.seed}-k{self.k}"


@dataclass(frozen=True)
class CanarySpec(RunSpec):
    family: ClassVar[str] = "canaries"

    experiment: str = "canaries"  # fixed
    data: str = param(
        "digits",
        help="the data set: digits, breast_cancer, wine (scikit-learn's bundled ones) or your "
        "FILE.npz (arrays inputs, labels) / FILE.parquet (a labels column and an inputs list "
        "column or numeric feature columns)",
        kind="text",
        group="data",
    )
    input_shape: tuple[int, ...] = param(
        (),
        help="the shape of one input when a file stores it flat, e.g. 1,8,8 (default: as stored)",
        kind="widths",
        group="data",
        metavar="C,H,W",
    )
    test_frac: float = param(
        0.2,
        help="share of each class held out as the clean test split",
        kind="fraction",
        group="data",
    )
    k: tuple[int, ...] = param(
        (100,),
        help="canaries per teacher: training points whose labels are replaced by labels drawn "
        "uniformly from all c classes (nested: the k = 50 canaries are among the k = 100 ones)",
        kind="int_grid",
        group="grid",
    )
    rho: tuple[float, ...] = param(
        (0.5,),
        help="fraction of the clean training points a student learns (stratified by class)",
        kind="fraction_grid",
        group="grid",
    )
    rho_c: tuple[float, ...] = param(
        (0.0, 0.5),
        help="fraction of the canaries a student learns (0: it never sees one)",
        kind="fraction0_grid",
        group="grid",
    )
    tau: tuple[float, ...] = param(
        (1.0, 4.0, 20.0),
        help="soft-label temperatures (the shuffle control runs at each)",
        kind="positive_grid",
        group="grid",
    )
    seeds: int = param(
        5,
        help="repetitions: each redraws the split, the canaries, their labels, teacher and students",
        kind="count",
        group="grid",
    )
    teacher: str = param(
        "mlp", help=f"teacher architecture: {ARCH_HELP}", kind="text", group="models"
    )
    teacher_width: tuple[int, ...] = param(
        (512,), help="hidden widths of an mlp teacher", kind="widths", group="models"
    )
    student: str = param(
        "mlp", help=f"student architecture: {ARCH_HELP}", kind="text", group="models"
    )
    student_width: tuple[int, ...] = param(
        (256,), help="hidden widths of an mlp student", kind="widths", group="models"
    )
    teacher_epochs: int = param(
        3_000, help="teacher full-batch Adam steps", kind="count", group="training"
    )
    teacher_lr: float = param(1e-3, help="teacher Adam lr", kind="positive", group="training")
    student_epochs: int = param(
        2_000, help="student full-batch Adam steps", kind="count", group="training"
    )
    student_lr: float = param(1e-3, help="student Adam lr", kind="positive", group="training")
    dtype: str = param(
        "float32",
        help="arithmetic",
        kind="choice",
        choices=("float32", "float64"),
        group="training",
    )
    compile: bool | None = compile_field()
    engine: str = param(
        "auto",
        help=ENGINE_HELP,
        kind="choice",
        choices=("auto", "vmap", "loop"),
        group="execution",
    )

    def validate(self) -> None:
        """Architectures resolved, own bounds, sorted grids (the declared kinds are checked
        already)."""
        from softleak.simulate.factories import Factory

        if self.experiment != "canaries":
            raise ValueError("CanarySpec is the canaries experiment")
        for name in ("teacher", "student"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value.strip() == "mlp"):
                value = Factory.of(value)
            self.put(name, value)
            width = f"{name}_width"
            widths = tuple(int(w) for w in getattr(self, width))
            if value == "mlp" and not widths:  # (each width >= 1: its declared kind)
                raise ValueError(f"an mlp {name} needs hidden widths >= 1, got {widths}")
            self.put(width, widths if value == "mlp" else ())
        check_precision(self.precision, self.device, self.dtype)
        if self.precision != "fp32" and self.modules:
            raise ValueError(
                f"precision {self.precision} is not available for module teachers or students "
                "(cnn, FILE.py:NAME) in this release: use fp32"
            )
        for name in ("k", "rho", "rho_c", "tau"):  # each value once (checked), sorted
            kind = int if name == "k" else float
            self.put(name, tuple(sorted(kind(v) for v in getattr(self, name))))
        self.put("input_shape", tuple(int(v) for v in self.input_shape))

    @property
    def modules(self) -> list:
        """The architectures that are factories (trained by ``simulate.module_engine``)."""
        return [a for a in (self.teacher, self.student) if a != "mlp"]

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for name in ("teacher", "student"):
            value = getattr(self, name)
            out[name] = value if value == "mlp" else value.describe()
        return out

    def identity(self, in_shape: tuple[int, ...], c: int, data_fingerprint: str) -> dict:
        """The run directory's identity: every setting but the device, the execution options and
        the grid axes that are units (seeds, k, rho, rho_c); factories by name, SHA-256 and
        parameter shapes; the data by its fingerprint."""
        from softleak.simulate.factories import factory_identity
        from softleak.simulate.rundir import settled

        skip = ("device", "extra", "compile", "engine", "seeds", "k", "rho", "rho_c")
        out = {k: v for k, v in self.to_dict().items() if k not in skip}
        for name in ("teacher", "student"):
            value = getattr(self, name)
            if value != "mlp":
                out[name] = factory_identity(value, in_shape, c)
        return {**settled(out), "data_fingerprint": data_fingerprint}

    def run_id(self, identity: dict) -> str:
        from softleak.simulate.rundir import digest

        return digest(identity)

    # units and seeds ----------------------------------------------------------------------------
    def units(self) -> list[CanaryUnit]:
        return [
            CanaryUnit(s, k, r, rc)
            for s in range(self.seeds)
            for k in self.k
            for r in self.rho
            for rc in self.rho_c
        ]

    def settings(self) -> list[tuple[str, float]]:
        """The students of a unit in replica order: (kind, tau), tau NaN for hard labels."""
        return (
            [("soft", t) for t in self.tau]
            + [("shuffle", t) for t in self.tau]
            + [("hard", float("nan"))]
        )

    def seed_of(self, role: str, *config) -> int:
        return derive_seed(self.seed, f"canary-{role}", *config)

    # counted work -------------------------------------------------------------------------------
    def work(self) -> dict:
        """Counted work: teachers, students and training FLOPs (3 x forward per row and step;
        ``simulate.estimate`` counts the parts)."""
        from softleak.simulate.estimate import parts_of

        flops = sum(p.flops for p in parts_of(self))
        students = len(self.units()) * len(self.settings())
        return {"teachers": self.seeds * len(self.k), "students": students, "flops": flops}


def forward_flops_per_sample(arch, widths: tuple[int, ...], in_shape: tuple, c: int) -> int:
    """FLOPs of one forward pass on one sample: 2 x weights for ``mlp``, torch's flop counter on
    a built module for a factory."""
    d = math.prod(in_shape)
    if arch == "mlp":
        sizes = [d, *widths, c]
        return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    import torch

    from softleak.simulate.factories import built_module
    from softleak.simulate.module_engine import module_flops

    with torch.random.fork_rng(devices=[]):
        return module_flops(built_module(arch, in_shape, c, 0), tuple(in_shape))
