"""The command line generated from the specs' declared fields (``simulate.params``,
``softleak.spec_args``): every declared field is an option, the command line's defaults are the
spec's (one place), values round-trip into the spec, and bad values are one line with exit 2."""

from __future__ import annotations

import dataclasses

import pytest

from softleak.cli import build_parser
from softleak.commands_simulate import family_spec_from_args, spec_from_args
from softleak.simulate.families import families
from softleak.simulate.params import declared, flag_of
from softleak.simulate.spec import EXPERIMENT_OPTIONS, SweepSpec

# every registered family's command but the sweeps' (whose experiments hide fields and change
# defaults: EXPERIMENT_OPTIONS, tested on their own below)
FAMILIES = {
    command: family.spec_type
    for family in families()
    if family.name != "sweep"
    for command in family.commands()
}


def parse(argv: list[str]):
    return build_parser().parse_args(["simulate", *argv, "--out", "x", "--device", "cpu"])


def test_every_family_has_its_commands():
    assert set(FAMILIES) >= {"toy2d", "modadd", "gpt2", "canaries"}
    commands = [c for family in families() for c in family.commands()]
    assert len(commands) == len(set(commands)) and set(EXPERIMENT_OPTIONS) <= set(commands)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_command_lines_defaults_are_the_specs(family):
    spec = family_spec_from_args(parse([family]))
    assert spec == dataclasses.replace(FAMILIES[family](), device="cpu")


@pytest.mark.parametrize("experiment", list(EXPERIMENT_OPTIONS))
def test_a_sweep_experiments_defaults_are_its_declared_ones(experiment):
    spec = spec_from_args(parse([experiment]))
    options = EXPERIMENT_OPTIONS[experiment]
    want = {**options["hidden"], **options["defaults"]}
    if want.get("p_student", ()) is None:
        want["p_student"] = want["p_teacher"]
    expected = SweepSpec(experiment=experiment, device="cpu", **want)
    assert spec == expected


@pytest.mark.parametrize("family", [*FAMILIES, *EXPERIMENT_OPTIONS])
def test_every_declared_field_is_an_option(family, capsys):
    cls = FAMILIES.get(family, SweepSpec)
    hidden = EXPERIMENT_OPTIONS.get(family, {}).get("hidden", {})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", family, "--help"])
    text = capsys.readouterr().out
    for f, p in declared(cls):
        if f.name not in hidden:
            assert flag_of(f, p) in text, f"{family}: {f.name}"
    for name in hidden:
        field = {f.name: (f, p) for f, p in declared(cls)}[name]
        assert flag_of(*field) + " " not in text, f"{family} shows {name}"


def test_values_round_trip_into_the_spec():
    args = parse(
        ["mlp", "--d", "10,20", "--n", "40,80", "--rho", "0.2:0.8:4", "--tau", "log:0:1:2",
         "--p-teacher", "8,4", "--ablation", "none,top_k:1", "--standardize", "--nested-data"]
    )  # fmt: skip
    spec = spec_from_args(args)
    assert spec.d == (10, 20) and spec.n == (40, 80) and spec.alpha is None
    assert spec.rho == (0.2, 0.4, 0.6, 0.8) and spec.tau == (1.0, 10.0)
    assert spec.p_teacher == (8, 4) and spec.p_student == (8, 4)  # the teacher's by default
    assert spec.ablation == ("none", "top_k:1") and spec.standardize is True and spec.nested_data
    m = family_spec_from_args(
        parse(["modadd", "--stop-rule", "grokked", "--stop-rule", "memorized",
               "--teacher-epochs", "50", "--weight-decay", "0.5", "--hidden", "16"])
    )  # fmt: skip
    assert m.stop_rules == ("grokked", "memorized") and m.teacher_weight_decay == 0.5
    assert m.hidden == (16,) and m.checkpoints == ()
    g = family_spec_from_args(
        parse(["gpt2", "--independent-init", "--precision", "bf16", "--n-layer", "2"])
    )
    assert g.shared_init is False and g.precision == "bf16" and g.n_layer == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["multinomial", "--seeds", "0"],
        ["multinomial", "--rho", "1.5"],
        ["multinomial", "--tau", "-1"],
        ["multinomial", "--d", "2.5"],
        ["mlp", "--p-teacher", "0"],
        ["multinomial", "--shuffle", "maybe"],
        ["multinomial", "--alpha", "1", "--n", "10"],
        ["toy2d", "--rho", "0"],
        ["modadd", "--weight-decay", "-1"],
        ["gpt2", "--dropout", "-0.1"],
        ["multinomial", "--alpha", "log:400:401:2"],  # no overflow warnings before the line
        ["multinomial", "--seed", "1.5"],
        ["multinomial", "--d", "1e5000"],
        ["multinomial", "--seeds", "nan"],
    ],
)
def test_bad_values_are_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        parse(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0], err
