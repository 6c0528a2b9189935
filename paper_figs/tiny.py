"""The ``tiny`` preset of every recipe: its quick sweeps shrunk to seconds (internal, for tests).

A recipe may declare ``presets["tiny"]`` itself; otherwise ``Recipe.preset("tiny")`` derives it
from the quick preset with :func:`shrink`, which keeps each sweep's structure (experiment, sweep
names, c, rho, shuffle) but shrinks d, the grids, the seeds and the epochs (with larger learning
rates so that small teachers still memorize), so that every ``make`` runs end to end in a few
seconds. ``softleak figs list`` does not show it. Shrinking is deterministic, so two recipes that
share a quick sweep (same name and spec) share its tiny sweep too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from softleak.simulate.canary_spec import CanarySpec
from softleak.simulate.gpt2 import GPT2Spec
from softleak.simulate.modadd import ModAddSpec
from softleak.simulate.toy2d import Toy2DSpec


def thin(values, keep: int) -> tuple:
    """``keep`` values spread over ``values`` (first and last included)."""
    values = tuple(values)
    if len(values) <= keep:
        return values
    idx = np.unique(np.linspace(0, len(values) - 1, keep).round().astype(int))
    return tuple(values[i] for i in idx)


# Two seeds, short training with large learning rates (small teachers still memorize).
SHORT_TRAINING = dict(
    seeds=2, teacher_epochs=150, teacher_lr=0.05, student_epochs=60, student_lr=0.05
)


def shrink(spec):
    """A seconds-sized version of ``spec``: small d, thinned grids, 2 seeds, short training."""
    if isinstance(spec, Toy2DSpec):
        return dataclasses.replace(
            spec, seeds=2, teacher_epochs=150, student_epochs=100, grid=16, teacher_lr=0.01
        )
    if isinstance(spec, GPT2Spec):
        return dataclasses.replace(spec, **TINY_GPT2)
    if isinstance(spec, CanarySpec):
        return dataclasses.replace(spec, **TINY_CANARIES)
    if isinstance(spec, ModAddSpec):
        return dataclasses.replace(
            spec, rho=thin(spec.rho, 2), tau=thin(spec.tau, 2), **TINY_MODADD
        )
    if spec.n is not None and spec.p_student:
        # MLP grids: keep the smallest sizes (every n has >= 2 per class at rho >= 0.2), d = 12.
        return dataclasses.replace(
            spec,
            d=(12,),
            n=thin(sorted(spec.n)[:4], 3),
            rho=thin([r for r in spec.rho if r >= 0.2] or spec.rho, 3),
            tau=thin(spec.tau, 3),
            curve_every=min(spec.curve_every, 20),
            **SHORT_TRAINING,
        )
    return _shrink_linear(spec)


# 60 sequences, 4 classes, a 1-layer width-16 GPT-2: the teacher memorizes in 40 epochs.
TINY_GPT2 = dict(
    n=60,
    vocab=20,
    c=4,
    n_val=20,
    pretrained=None,
    config="tiny",
    n_layer=1,
    n_embd=16,
    n_head=2,
    dropout=0.0,
    teacher_epochs=40,
    teacher_lr=1e-2,
    teacher_batch=16,
    student_epochs=10,
    student_lr=1e-2,
    student_batch=16,
)

# The canaries on their data set with 3 seeds (the claims' minimum), 20 canaries, narrow models.
TINY_CANARIES = dict(
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

# p = 13, a 16-wide transformer (or MLP [16]), two fixed checkpoints (2 rho x 2 tau students).
TINY_MODADD = dict(
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


def _shrink_linear(spec):
    d0 = spec.d[0]
    d = max(8, d0 // 10) if spec.single_logit else 12
    c = spec.c[0]
    alphas = (
        spec.alpha
        if spec.alpha is not None
        else tuple(sorted({spec.alpha_of(n, d0, c) for n in spec.n}))
    )
    rhos = thin([r for r in spec.rho if r >= 0.2] or spec.rho, 3)
    # Keep alphas whose student split has at least 2 samples per class at the smallest rho.
    per_class = [a * d * (1 if not spec.single_logit else 0.5) for a in alphas]
    alphas = tuple(a for a, m in zip(alphas, per_class, strict=True) if m * min(rhos) >= 2)
    if not alphas:
        raise ValueError(f"shrink(): no alpha of {spec.alpha} keeps 2 points per class")
    # one alpha per realized n at the small d (two alphas of one n would be refused as collapsed)
    by_n = {spec.n_of(a, d, c): a for a in reversed(thin(alphas, 6))}
    return dataclasses.replace(
        spec,
        d=(d,),
        alpha=tuple(sorted(by_n.values())),
        n=None,
        rho=rhos,
        tau=thin(spec.tau, 3),
        **SHORT_TRAINING,
    )
