"""The sizes of a ``benchmarks.gpu_check`` run: ``GPU`` on a CUDA device, ``DRY`` (``--dry-run``)
on the CPU at tiny sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Sizes of one check run: ``GPU`` on a CUDA device, ``DRY`` on the CPU."""

    name: str
    scale: float  # epochs multiplier of the agreement runs
    seeds: int  # seeds of the float32 outcome runs
    min_s: float  # shortest trusted timing (s)
    timings: int
    gemm_size: int
    paper: tuple  # (d, p, c, n, rho, R) of the MLP paper slice
    quick: tuple  # (d, p, c, n, rho, R) of the MLP quick scale
    multi: tuple  # (d, c, n, taus) of the multinomial-tau slice
    logistic: tuple  # (d, n, seeds) of the logistic teachers
    mlp_teachers: tuple  # (d, p, c, n, teachers)
    modadd: dict  # ModAddSpec overrides of the transformer slice
    modadd_students: int
    max_replicas: int  # memory check: most students asked for


GPU = Profile(
    "gpu",
    1.0,
    4,
    0.5,
    3,
    8192,
    (1000, 500, 100, 17000, 0.95, 16),
    (100, 50, 100, 1600, 0.65, 32),
    (1000, 2, 2500, 40),
    (1600, 2400, 5),
    (1000, 500, 100, 2500, 5),
    {},
    8,
    512,
)
DRY = Profile(
    "dry-run",
    0.2,
    3,
    0.05,
    3,
    256,
    (40, 32, 10, 400, 0.9, 2),
    (20, 16, 10, 200, 0.65, 4),
    (40, 2, 200, 8),
    (40, 100, 3),
    (40, 32, 10, 200, 2),
    dict(p=13, train_frac=0.5, d_model=16, n_heads=2, d_head=8, d_mlp=32),
    2,
    16,
)
