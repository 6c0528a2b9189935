"""Figure recipes: presets that validate, ``make`` on tiny simulated sweeps, ``softleak figs list``.

The tiny sweeps keep each recipe's structure (experiment, sweeps, c, rho, shuffle) but shrink d,
the grids, the seeds and the epochs (with larger learning rates so that small teachers still
memorize), so that every ``make`` runs end to end through ``run_recipe`` in a few seconds.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from softleak.paper_figs.registry import MODULES, Recipe, load_recipes, run_recipe
from softleak.simulate.estimate import work_of
from softleak.simulate.gpt2 import GPT2Spec
from softleak.simulate.modadd import ModAddSpec
from softleak.simulate.spec import SweepSpec
from softleak.simulate.toy2d import Toy2DSpec

RECIPES = load_recipes()


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


def tiny(spec):
    """A seconds-sized version of ``spec``: small d, thinned grids, 2 seeds, short training."""
    if isinstance(spec, Toy2DSpec):
        return dataclasses.replace(
            spec, seeds=2, teacher_epochs=150, student_epochs=100, grid=16, teacher_lr=0.01
        )
    if isinstance(spec, GPT2Spec):
        # 60 sequences, 4 classes, a 1-layer width-16 GPT-2: the teacher memorizes in 40 epochs.
        pytest.importorskip("transformers")
        return dataclasses.replace(
            spec,
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
    if isinstance(spec, ModAddSpec):
        # p = 13, a 16-wide transformer (or MLP [16]), two fixed checkpoints, 2 rho x 2 tau.
        return dataclasses.replace(
            spec,
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
            rho=thin(spec.rho, 2),
            tau=thin(spec.tau, 2),
            student_epochs=40,
            student_seeds=2,
            student_lr=1e-2,
            curve_every=10,
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
    assert alphas, "tiny(): no alpha left"
    return dataclasses.replace(
        spec,
        d=(d,),
        alpha=thin(alphas, 6),
        n=None,
        rho=rhos,
        tau=thin(spec.tau, 3),
        **SHORT_TRAINING,
    )


def test_every_module_has_a_recipe():
    assert set(RECIPES) == set(MODULES)
    assert list(RECIPES) == list(MODULES)  # the paper's order


@pytest.mark.parametrize("name", list(RECIPES))
def test_presets_validate_and_have_work(name):
    recipe = RECIPES[name]
    assert recipe.name == name and recipe.title
    assert {"quick", "paper"} <= set(recipe.presets)
    for preset in ("quick", "paper"):
        p = recipe.presets[preset]
        assert p.note and p.sweeps
        for spec in p.sweeps.values():
            assert isinstance(spec, SweepSpec | Toy2DSpec | ModAddSpec | GPT2Spec)
            dataclasses.replace(spec)  # re-runs the spec's validation
            work = work_of(spec)
            assert work["teachers"] > 0 and work["students"] > 0 and work["flops"] > 0
    # the paper preset is never smaller than the quick one
    quick = sum(work_of(s)["flops"] for s in recipe.presets["quick"].sweeps.values())
    paper = sum(work_of(s)["flops"] for s in recipe.presets["paper"].sweeps.values())
    assert paper > quick


@pytest.mark.parametrize("name", list(RECIPES))
def test_make_runs_on_a_tiny_sweep(name, tmp_path):
    recipe = RECIPES[name]
    sweeps = {k: tiny(s) for k, s in recipe.presets["quick"].sweeps.items()}
    small = dataclasses.replace(
        recipe, presets={"quick": dataclasses.replace(recipe.presets["quick"], sweeps=sweeps)}
    )
    assert isinstance(small, Recipe)
    summary = run_recipe(small, "quick", tmp_path, threads=1, progress=False)
    assert summary["figure"] == name and summary["preset"] == "quick"
    assert isinstance(summary.get("text"), str) and summary["text"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["figure"] == name
    pngs = sorted(tmp_path.glob("*.png"))
    assert pngs, "no figure written"
    for png in pngs:
        assert png.stat().st_size > 5000
        assert png.with_suffix(".pdf").is_file()
    assert list(tmp_path.glob("*.csv")), "no figure data written"
    assert not list(tmp_path.glob(".*.png")), "temporary file left behind"


def test_figs_list_prints_every_figure(capsys):
    from softleak.cli import main

    assert main(["figs", "list"]) == 0
    out = capsys.readouterr().out
    for name, recipe in RECIPES.items():
        rows = [line.split() for line in out.splitlines() if line.startswith(f"{name:8s} ")]
        assert {row[1] for row in rows} >= {"quick", "paper"}, name
        for row in rows:  # teachers, students and TFLOP are numbers
            assert int(row[2]) > 0 and int(row[3]) > 0 and float(row[4]) > 0
        assert recipe.title in out


def test_work_counts_match_a_hand_count():
    from softleak.simulate.estimate import work_of

    # logistic-pinv: teachers only train; one step = forward + 2 backward products of n x d x 1.
    spec = SweepSpec(
        "logistic-pinv", d=(10,), n=(20, 40), rho=(0.5, 0.8), seeds=3, teacher_epochs=100
    )
    work = work_of(spec)
    assert work["teachers"] == 6 and work["students"] == 6 * 2
    assert work["flops"] == 3 * 3 * 2 * 10 * (20 + 40) * 100
    # multinomial: students add rho-weighted passes over their rows, c outputs each.
    spec = SweepSpec(
        "multinomial",
        d=(10,),
        c=(2,),
        n=(20,),
        rho=(0.5,),
        tau=(1.0, 2.0),
        seeds=1,
        teacher_epochs=10,
        student_epochs=30,
    )
    teacher = 3 * 2 * 10 * 2 * 20 * 10
    students = 2 * 3 * 2 * 10 * 2 * 0.5 * 20 * 30
    assert work_of(spec)["flops"] == teacher + students


def test_unknown_figure_is_a_usage_error(capsys):
    from softleak.cli import main

    assert main(["figs", "fig99", "--out", "nowhere"]) == 2
    assert "fig99" in capsys.readouterr().err
