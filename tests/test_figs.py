"""Figure recipes: presets that validate, ``make`` on each recipe's tiny preset (its quick sweeps
shrunk to seconds, ``paper_figs.tiny``), ``softleak figs list``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from softleak.paper_figs.registry import MODULES, load_recipes, run_recipe
from softleak.simulate.canary_spec import CanarySpec
from softleak.simulate.estimate import work_of
from softleak.simulate.gpt2 import GPT2Spec
from softleak.simulate.modadd import ModAddSpec
from softleak.simulate.spec import SweepSpec
from softleak.simulate.toy2d import Toy2DSpec

RECIPES = load_recipes()


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
            assert isinstance(spec, SweepSpec | Toy2DSpec | ModAddSpec | GPT2Spec | CanarySpec)
            dataclasses.replace(spec)  # re-runs the spec's validation
            work = work_of(spec)
            assert work["teachers"] > 0 and work["students"] > 0 and work["flops"] > 0
    # the paper preset is never smaller than the quick one
    quick = sum(work_of(s)["flops"] for s in recipe.presets["quick"].sweeps.values())
    paper = sum(work_of(s)["flops"] for s in recipe.presets["paper"].sweeps.values())
    assert paper > quick


def drawn(ax) -> int:
    """How many data points an axes shows: line vertices, scatter/errorbar offsets, image pixels,
    bars and filled areas."""
    count = sum(len(line.get_xdata()) for line in ax.get_lines())
    for coll in ax.collections:
        offsets = coll.get_offsets()
        count += len(offsets) if len(offsets) else len(coll.get_paths())
    count += sum(im.get_array().size for im in ax.get_images())
    count += len(ax.patches)
    return count


@pytest.mark.parametrize("name", list(RECIPES))
def test_make_runs_on_the_tiny_preset(name, tmp_path, monkeypatch):
    """Every figure the recipe saves shows data in every panel that has axes drawn, with labelled
    axes; the data behind it is written beside it, and summary.json holds its numbers."""
    from softleak.compare import style

    recipe = RECIPES[name]
    tiny = recipe.preset("tiny")
    if any(isinstance(s, GPT2Spec) for s in tiny.sweeps.values()):
        pytest.importorskip("transformers")
    if any(isinstance(s, CanarySpec) for s in tiny.sweeps.values()):
        pytest.importorskip("sklearn")  # the bundled digits (extra "real")
    figures = {}
    real = style.save_figure

    def capture(fig, path, **kwargs):
        figures[Path(path).stem] = fig
        return real(fig, path, **kwargs)

    monkeypatch.setattr(style, "save_figure", capture)
    summary = run_recipe(recipe, "tiny", tmp_path, threads=1, progress=False)
    assert summary["figure"] == name and summary["preset"] == "tiny"
    assert isinstance(summary.get("text"), str) and summary["text"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["figure"] == name
    assert figures, "no figure drawn"
    for stem, fig in figures.items():
        panels = [ax for ax in fig.get_axes() if ax.axison and ax.get_label() != "<colorbar>"]
        assert panels, f"{stem}: no panel"
        for ax in panels:
            if ax.get_legend() is not None and not ax.get_xticks().size + drawn(ax):
                continue  # a cell that holds a legend only
            if ax.get_legend() is not None and drawn(ax) == 0 and not ax.get_xlabel():
                continue
            assert drawn(ax) > 0, f"{stem}: an empty panel ({ax.get_title()!r})"
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title(), f"{stem}: unlabelled"
        assert (tmp_path / f"{stem}.png").is_file() and (tmp_path / f"{stem}.pdf").is_file()
    assert list(tmp_path.glob("*.csv")), "no figure data written"
    assert not list(tmp_path.glob(".*.png")), "temporary file left behind"
    assert_claims(recipe, saved["claims"])


def assert_claims(recipe, claims: list[dict]) -> None:
    """Every declared claim judged by ``make`` (in declaration order), each record complete."""
    from softleak.compare.claims import VERDICTS

    assert [c["id"] for c in claims] == [c.id for c in recipe.claims]
    keys = {"id", "claim", "measured", "criterion", "paper", "verdict", "holds", "note"}
    for c in claims:
        assert set(c) == keys, c["id"]
        assert c["verdict"] in VERDICTS and c["holds"] == (c["verdict"] == "holds"), c
        assert c["criterion"], f"{c['id']}: no criterion"
        assert c["note"] != "not judged by this preset's run", f"{c['id']} was not judged"
        if c["verdict"] != "holds":
            assert c["note"], f"{c['id']} {c['verdict']} without a note saying why"


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_declares_its_claims(name):
    recipe = RECIPES[name]
    assert recipe.claims, f"{name} declares no claim"
    ids = [c.id for c in recipe.claims]
    assert len(set(ids)) == len(ids), f"{name}: repeated claim ids"
    for c in recipe.claims:
        assert c.id.startswith(f"{name}."), c.id
        assert len(c.claim) > 20 and c.claim.rstrip().endswith((".", ")")), c.id


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
