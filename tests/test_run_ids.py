"""Run ids do not move: every spec a recipe runs (its quick, paper and tiny presets) and each
family's default spec keep the ids that their folders on disk carry.

``fixtures/run_ids.json`` holds the ids as the code computed them before the family registry and
the shared spec base (issue 26, item 3) reshaped the specs: per spec the hash of its whole
settled dictionary (``digest(settled(to_dict()))``), its run directory's fingerprint (what
``config.json`` records and a resume compares), its family's run id, every unit id of a sweep,
its counted work and the parts the cost model prices (their geometry, on a CPU and on a GPU:
not seconds, which move whenever the rates are calibrated). A moved id would refuse a finished
folder (or adopt one of other settings); a moved tiny preset would silently change what the
tests run. The ids are computed here through each family's own public methods, not through the
registry, so the pin does not depend on the code it checks.

Regenerate only when an id is meant to change (say so in the CHANGELOG)::

    PYTHONPATH=$PWD python tests/test_run_ids.py --write tests/fixtures/run_ids.json
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest

PINNED = Path(__file__).with_name("fixtures") / "run_ids.json"


def _folder(experiment: str, identity: dict) -> str:
    from softleak.simulate.rundir import digest, jsonable

    return digest({"experiment": experiment, **jsonable(identity)})


def family_ids(spec) -> dict:
    """The ids of one spec, computed through its family's own methods."""
    from softleak.simulate.rundir import digest, settled

    kind = type(spec).__name__
    out: dict = {"kind": kind, "spec": digest(settled(spec.to_dict()))}
    if kind == "SweepSpec":
        from softleak.simulate.sweep import sweep_identity, units_of

        out["folder"] = _folder(spec.experiment, sweep_identity(spec))
        out["units"] = digest([uid for _, uid in units_of(spec)])
        out["teachers"] = digest([spec.teacher_id(*key) for key, _ in units_of(spec)])
    elif kind == "CanarySpec":
        from softleak.simulate.real_data import load_real

        data = load_real(spec.data, spec.input_shape)
        identity = spec.identity(data.in_shape, data.c, data.fingerprint())
        out["folder"] = _folder(spec.experiment, identity)
        out["run_id"] = spec.run_id(identity)
    else:  # Toy2DSpec, ModAddSpec, GPT2Spec
        out["folder"] = _folder(spec.experiment, spec.identity())
        out["run_id"] = spec.run_id()
    return out


def cost(spec) -> dict:
    """Counted work, and a digest of the parts the cost model prices on a CPU and on a GPU."""
    from softleak.simulate import estimate as E
    from softleak.simulate.rundir import digest

    def parts(**where) -> str:
        # (before the registry, GPT-2's parts came from estimate._gpt2_parts: same parts)
        return digest([list(dataclasses.astuple(p)) for p in E.parts_of(spec, **where)])

    gpu = {"free_bytes": E.H200_FREE_BYTES, "device": "cuda"}
    return {**E.work_of(spec), "parts_cpu": parts(), "parts_gpu": parts(**gpu)}


def default_specs() -> dict:
    """Each family's default spec (each sweep experiment as its command line builds it), and a
    few settings that change what the identities leave out or rename."""
    from softleak.simulate.audit_spec import AuditSpec
    from softleak.simulate.canary_spec import CanarySpec
    from softleak.simulate.gpt2 import GPT2Spec
    from softleak.simulate.modadd import ModAddSpec
    from softleak.simulate.spec import EXPERIMENT_OPTIONS, SweepSpec
    from softleak.simulate.toy2d import Toy2DSpec

    out: dict = {}
    for experiment, options in EXPERIMENT_OPTIONS.items():
        values = {**options["hidden"], **options["defaults"]}
        if values.get("p_student", ()) is None:
            values["p_student"] = values["p_teacher"]
        out[f"default/{experiment}"] = SweepSpec(experiment, **values)
    out["variant/svm"] = SweepSpec("logistic-pinv", alpha=(0.5, 2.0), teacher_kind="svm")
    out["variant/bf16"] = SweepSpec("mlp", n=(40, 80), p_teacher=(8,), precision="bf16")
    out["variant/nested"] = SweepSpec(
        "multinomial", d=(20, 30), c=(2, 5), n=(40, 80), nested_data=True, standardize=True
    )
    out["default/toy2d"] = Toy2DSpec()
    out["variant/toy2d"] = Toy2DSpec(c=20, hidden=(300,), teacher_stop_acc=0.999, compile=True)
    out["default/modadd"] = ModAddSpec()
    out["variant/modadd"] = ModAddSpec(
        model="mlp", stop_rules=("grokked",), teacher_epochs=500, batch_by="checkpoint"
    )
    out["default/gpt2"] = GPT2Spec()
    out["variant/gpt2"] = GPT2Spec(pretrained="/nowhere/gpt2", shared_init=False, eval_batch=64)
    out["default/canaries"] = CanarySpec()
    out["variant/canaries"] = CanarySpec(teacher="cnn", student="cnn", engine="loop")
    for name, audit in {
        "default/audit": AuditSpec(),
        "variant/audit": AuditSpec(student="mlp", tau=4.0, seeds=2, settings=("soft", "hard")),
    }.items():
        out[name] = audit
    return out


def current_ids() -> dict:
    """Every pinned entry: ``recipe/preset/sweep`` and ``default/...``, ``variant/...``."""
    from softleak.paper_figs.registry import load_recipes

    out: dict = {}
    for name, spec in default_specs().items():
        if type(spec).__name__ == "AuditSpec":
            out[name] = {
                "kind": "AuditSpec",
                "run_id": spec.run_id("f" * 16),
                "folder": _folder("audit", spec.identity("f" * 16)),
            }
        else:
            out[name] = {**family_ids(spec), **cost(spec)}
    for recipe in load_recipes().values():
        for preset in (*recipe.presets, "tiny"):
            for sweep, spec in recipe.preset(preset).sweeps.items():
                out[f"{recipe.name}/{preset}/{sweep}"] = {**family_ids(spec), **cost(spec)}
    return out


def _differences(pinned: dict, now: dict) -> list[str]:
    out = []
    for key in sorted(set(pinned) | set(now)):
        a, b = pinned.get(key), now.get(key)
        if a is None or b is None:
            out.append(f"{key}: {'new' if a is None else 'gone'}")
            continue
        for field in sorted(set(a) | set(b)):
            x, y = a.get(field), b.get(field)
            same = (
                math.isclose(x, y, rel_tol=1e-9)
                if isinstance(x, float) and isinstance(y, float)
                else x == y
            )
            if not same:
                out.append(f"{key} {field}: {x} pinned, {y} now")
    return out


def test_every_run_id_and_preset_is_as_pinned():
    pytest.importorskip("sklearn")  # the canary recipes' data set
    pinned = json.loads(PINNED.read_text())
    diff = _differences(pinned, current_ids())
    assert not diff, f"{len(diff)} ids moved:\n" + "\n".join(diff[:40])


def test_the_pin_covers_every_recipe_and_family():
    from softleak.paper_figs.registry import load_recipes

    pinned = json.loads(PINNED.read_text())
    kinds = {entry["kind"] for entry in pinned.values()}
    assert kinds >= {"SweepSpec", "Toy2DSpec", "ModAddSpec", "GPT2Spec", "CanarySpec", "AuditSpec"}
    for recipe in load_recipes().values():
        for preset in ("quick", "paper", "tiny"):
            assert any(k.startswith(f"{recipe.name}/{preset}/") for k in pinned), (recipe, preset)


def test_a_moved_id_is_reported():
    """The comparison itself: an id that differs, a lost entry and changed work show."""
    pinned = {"a": {"spec": "x", "flops": 1.0}, "b": {"spec": "y"}}
    now = {"a": {"spec": "x", "flops": 1.0 + 1e-6}, "c": {"spec": "z"}}
    assert _differences(pinned, now) == ["a flops: 1.0 pinned, 1.000001 now", "b: gone", "c: new"]
    assert _differences(pinned, json.loads(json.dumps(pinned))) == []


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write":
        raise SystemExit("usage: python tests/test_run_ids.py --write FILE")
    Path(sys.argv[2]).write_text(json.dumps(current_ids(), indent=1, sort_keys=True) + "\n")
