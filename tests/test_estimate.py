"""Time estimates of ``softleak figs list`` (``simulate.estimate``)."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from softleak.paper_figs.registry import load_recipes
from softleak.simulate import estimate as E
from softleak.simulate import protocol
from softleak.simulate.chunks import student_batches
from softleak.simulate.estimate import work_of
from softleak.simulate.spec import SweepSpec
from softleak.simulate.toy2d import Toy2DSpec

RECIPES = load_recipes()
UNIT_S = {"s": 1, "min": 60, "h": 3600, "days": 86400}
# Half a unit of the last printed digit: "42 s" -> 0.5 s, "4.2 min" -> 0.05 min, ...
PRINT_TOL = {"s": 0.5, "min": 0.05 * 60, "h": 0.05 * 3600, "days": 0.05 * 86400}

MLP = SweepSpec(
    "mlp",
    d=(20,),
    c=(10,),
    n=(200, 400),
    rho=(0.3, 0.6),
    tau=(5.0, 20.0),
    shuffle="both",
    seeds=2,
    p_teacher=(16,),
    p_student=(16,),
    teacher_epochs=300,
    student_epochs=500,
)
LINEAR = SweepSpec(
    "multinomial",
    d=(30,),
    c=(2,),
    n=(60, 120),
    rho=(0.5, 0.8),
    tau=(1.0, 10.0, 100.0),
    seeds=3,
    nested_data=True,
    teacher_epochs=200,
    student_epochs=400,
)
PINV = SweepSpec("logistic-pinv", d=(40,), n=(60, 80), rho=(0.3, 0.7), seeds=2, shuffle="both")
TOY = Toy2DSpec(c=3, n=30, hidden=(20,), seeds=2, teacher_epochs=300, student_epochs=200)


def _epochs(spec, factor: int):
    return dataclasses.replace(
        spec,
        teacher_epochs=spec.teacher_epochs * factor,
        student_epochs=spec.student_epochs * factor,
    )


@pytest.mark.parametrize("spec", [MLP, LINEAR, TOY], ids=["mlp", "linear", "toy2d"])
def test_estimate_is_proportional_to_epochs_for_gradient_training(spec):
    one, three = E.estimate(spec), E.estimate(_epochs(spec, 3))
    for key in ("cpu_s", "h200_s"):
        assert one[key] > 0
        assert three[key] == pytest.approx(3 * one[key], rel=1e-9)


@pytest.mark.parametrize(
    "spec",
    [PINV, dataclasses.replace(MLP, curve_every=50)],
    ids=["pinv students (no epochs)", "mlp with learning curves"],
)
def test_estimate_is_affine_in_epochs(spec):
    """Pinv students do not train for epochs, and a curve adds one evaluation at epoch 0: the
    estimate grows by the same amount for every added multiple of the epochs."""
    t = [E.estimate(_epochs(spec, f)) for f in (1, 2, 3)]
    for key in ("cpu_s", "h200_s"):
        assert t[2][key] - t[1][key] == pytest.approx(t[1][key] - t[0][key], rel=1e-9)
        assert t[1][key] - t[0][key] > 0


@pytest.mark.parametrize(
    "spec",
    [MLP, dataclasses.replace(MLP, p_student=(100,)), LINEAR, PINV],
    ids=["mlp (rows shared)", "wide mlp (one batch per rho)", "linear", "pinv"],
)
def test_parts_count_the_engines_batches_and_models(spec):
    spec = dataclasses.replace(spec, max_replicas=3)  # batch size set by the spec, not by memory
    parts = E.parts_of(spec)
    work = work_of(spec)
    assert sum(p.models for p in parts if p.role == "teachers") == work["teachers"]
    assert sum(p.models for p in parts if p.role != "teachers") == work["students"]
    keys = [(d, c, n, rep) for d, c, n in spec.teacher_sizes() for rep in range(spec.seeds)]
    assert len([p for p in parts if p.role == "teachers"]) == len(
        protocol.teacher_batches(spec, keys)
    )
    if not spec.single_logit:
        batches = sum(
            len(student_batches(spec, protocol.student_runs(spec, key), key)) for key in keys
        )
        assert len([p for p in parts if p.role == "students"]) == batches


def test_nested_teachers_read_the_largest_data_set():
    nested = E.parts_of(LINEAR)
    alone = E.parts_of(dataclasses.replace(LINEAR, n=(120,)))
    t_nested = [p for p in nested if p.role == "teachers"]
    t_alone = [p for p in alone if p.role == "teachers"]
    assert len(t_nested) == len(t_alone) == LINEAR.seeds  # one batch per seed
    # Two teachers per batch on the 120 rows: twice the work of one teacher on them.
    assert t_nested[0].flops == pytest.approx(2 * t_alone[0].flops)
    assert t_nested[0].bytes == pytest.approx(t_alone[0].bytes)  # X is read once per step


def test_h200_beats_this_cpu_on_every_big_paper_preset():
    big = 0
    for name, recipe in RECIPES.items():
        if "paper" not in recipe.presets:
            continue
        sweeps = recipe.presets["paper"].sweeps.values()
        if sum(work_of(s)["flops"] for s in sweeps) < 100e12:
            continue
        big += 1
        times = [E.estimate(s) for s in sweeps]
        cpu = sum(t["cpu_s"] for t in times)
        gpu = sum(t["h200_s"] for t in times)
        assert gpu < cpu, name
    assert big >= 3


def test_estimates_match_measured_anchors():
    """The model against run times measured on the development CPU (loose: the CPU is shared)."""
    # fig4 quick ran in ~28 s (pinv students and nested logistic teachers).
    fig4 = sum(E.estimate(s)["cpu_s"] for s in RECIPES["fig4"].presets["quick"].sweeps.values())
    assert 28 / 3 < fig4 < 28 * 3
    # One quick-scale MLP student at n = 1,000 (rho 0.65, 3,000 epochs) costs ~5 s.
    student = SweepSpec(
        "mlp",
        d=(100,),
        c=(100,),
        n=(1000,),
        rho=(0.65,),
        tau=(20.0,),
        p_teacher=(50,),
        p_student=(50,),
        teacher_epochs=1,
        student_epochs=3000,
    )
    cpu = sum(E.cpu_part_seconds(p) for p in E.parts_of(student) if p.role == "students")
    assert 5 / 3 < cpu < 5 * 3


def _seconds(value: str, unit: str) -> float:
    return float(value) * UNIT_S[unit]


def test_figs_list_prints_parsable_cpu_and_h200_columns(capsys, monkeypatch, tmp_path):
    from softleak.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no rates file: the built-in rates

    assert main(["figs", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"TFLOP\s+cpu\s+h200\s+note", out)
    duration = r"([\d.]+) (s|min|h|days)"
    for name, recipe in RECIPES.items():
        for preset, p in recipe.presets.items():
            row = re.search(
                rf"^{name}\s+{preset}\s+(\d+)\s+(\d+)\s+([\d.]+)\s+{duration}\s+{duration}  ",
                out,
                re.MULTILINE,
            )
            assert row, (name, preset)
            times = [E.estimate(s) for s in p.sweeps.values()]
            for (value, unit), key in zip(
                (row.group(4, 5), row.group(6, 7)), ("cpu_s", "h200_s"), strict=True
            ):
                want = sum(t[key] for t in times)
                assert abs(_seconds(value, unit) - want) <= PRINT_TOL[unit] + 1e-9, (name, key)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42.4, "42 s"),
        (59.4, "59 s"),
        (60, "1.0 min"),
        (252, "4.2 min"),
        (3599, "60.0 min"),
        (3600, "1.0 h"),
        (3 * 86400 - 1, "72.0 h"),
        (3 * 86400, "3.0 days"),
        (2.5 * 86400 * 10, "25.0 days"),
        (math.inf, "n/a"),
        (math.nan, "n/a"),
    ],
)
def test_hours_formatter_boundaries(seconds, text):
    assert E.hours(seconds) == text


# ---------------------------------------------------------------------------------------------
# measured rates (``benchmarks.run_all --json`` files)
# ---------------------------------------------------------------------------------------------
BIG_MLP = SweepSpec(
    "mlp",
    d=(1000,),
    c=(100,),
    n=(5000,),
    rho=(0.5, 0.9),
    tau=(20.0,),
    seeds=2,
    p_teacher=(500,),
    p_student=(500,),
    teacher_epochs=100,
    student_epochs=100,
)


def _row(workload, part, rate, family, shared, models=2, rows=16100, precision="fp32", **kw):
    flops = models * E.step_flops(1000, (500,), 100, rows)
    return {
        "workload": workload,
        "part": part,
        "precision": precision,
        "fused": False,
        "gflop_per_s": rate,
        "fraction_of_gemm": rate / 200,
        "speedup_vs_loop": None,
        "status": "ok",
        "slice": {
            "family": family,
            "flops": flops,
            "entries": models * rows * 600,
            "bytes": (1 if shared else models) * 2 * rows * 1000 * 4,
            "steps": 1,
            "shared": shared,
        },
        **kw,
    }


def _rates_doc(scale: float = 1.0, **extra_rows) -> dict:
    return {
        "device": "cpu",
        "gemm": {"fp64": 90.0, "fp32": 200.0, "bf16": 500.0},
        "workloads": [
            _row("mlp-paper-slice", "students", 80.0 * scale, "mlp", True),
            _row("mlp-paper-slice", "teachers", 60.0 * scale, "mlp", False, rows=2500),
            *extra_rows.values(),
        ],
    }


def _write(path, doc) -> str:
    import json

    path.write_text(json.dumps(doc))
    return str(path)


def test_doubled_rates_halve_the_cpu_estimate_of_a_compute_bound_spec(tmp_path):
    one = E.load_rates(_write(tmp_path / "one.json", _rates_doc(1.0)))
    two = E.load_rates(_write(tmp_path / "two.json", _rates_doc(2.0)))
    base, at_one, at_two = E.estimate(BIG_MLP), E.estimate(BIG_MLP, one), E.estimate(BIG_MLP, two)
    assert at_two["cpu_s"] == pytest.approx(at_one["cpu_s"] / 2, rel=1e-9)
    assert at_one["cpu_s"] != pytest.approx(base["cpu_s"], rel=1e-3)  # the rates are used
    # A CPU file leaves the GPU column alone; the speed is measured over modelled at the slice.
    assert at_one["h200_s"] == at_two["h200_s"] == base["h200_s"]
    cal = one.calibration("mlp")
    assert cal.workload == "mlp-paper-slice/students" and cal.measured == 80e9
    assert two.speed("mlp") == pytest.approx(2 * one.speed("mlp"))


def test_estimate_without_a_rates_file_keeps_the_built_in_numbers(tmp_path):
    empty = E.rates_from_dict({"gemm": {"fp32": 200.0}, "workloads": []})
    assert E.estimate(BIG_MLP, empty) == E.estimate(BIG_MLP)
    assert E.estimate(BIG_MLP, []) == E.estimate(BIG_MLP, None)


def test_a_rate_above_its_gemm_peak_or_measured_wrong_is_never_used():
    doc = _rates_doc()
    doc["workloads"][0]["gflop_per_s"] = 250.0  # above the 200 GFLOP/s fp32 peak
    doc["workloads"][1].update(status="measurement error", gflop_per_s=None)
    rates = E.rates_from_dict(doc)
    assert rates.calibrations == {}
    assert len(rates.rejected) == 2 and "above the GEMM peak" in rates.rejected[0]
    assert E.estimate(BIG_MLP, rates) == E.estimate(BIG_MLP)


def test_rates_files_name_their_precision_and_device():
    doc = _rates_doc(bf16=_row("mlp-paper-slice", "students", 240.0, "mlp", True, precision="bf16"))
    rates = E.rates_from_dict(doc)
    fp32, bf16 = rates.speed("mlp", "fp32"), rates.speed("mlp", "bf16")
    assert bf16 == pytest.approx(3 * fp32)
    assert rates.speed("mlp", "tf32") == fp32  # not measured: the fp32 rows
    bf16_spec = dataclasses.replace(BIG_MLP, precision="bf16")
    assert E.estimate(bf16_spec, rates)["cpu_s"] < E.estimate(BIG_MLP, rates)["cpu_s"]
    gpu = E.rates_from_dict({**_rates_doc(), "device": "cuda"})
    assert gpu.device == "cuda"
    assert E.estimate(BIG_MLP, gpu)["cpu_s"] == E.estimate(BIG_MLP)["cpu_s"]
    assert E.estimate(BIG_MLP, gpu)["h200_s"] != E.estimate(BIG_MLP)["h200_s"]
    # a gpu_check report holds its rates under "rates"
    nested = E.rates_from_dict({"device": "cuda", "checks": [], "rates": doc})
    assert nested.speed("mlp", "bf16") == pytest.approx(bf16)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"gemm": {"fp32": 1}}', '{"gemm": "x", "workloads": []}', None],
    ids=["not json", "a list", "no workloads", "no gemm table", "missing file"],
)
def test_a_malformed_or_missing_rates_file_is_a_one_line_error(content, tmp_path, capsys):
    from softleak.cli import main

    path = tmp_path / "rates.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(E.RatesError):
        E.load_rates(path)
    assert main(["figs", "list", "--rates", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err


def test_figs_list_reads_the_last_run_all_rates_by_default(tmp_path, monkeypatch, capsys):
    from softleak.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert E.default_rates_path() == tmp_path / "softleak" / "rates.json"
    assert main(["figs", "list"]) == 0
    built_in = capsys.readouterr().out
    assert f"built-in rates: {E.BUILT_IN_RATES}" in built_in
    E.default_rates_path().parent.mkdir(parents=True)
    _write(E.default_rates_path(), _rates_doc(4.0))
    assert main(["figs", "list"]) == 0
    measured = capsys.readouterr().out
    assert str(E.default_rates_path()) in measured and measured != built_in
    assert re.search(r"^total\s+quick\s", measured, re.MULTILINE)
    # an explicit file wins; a broken default file is a warning, not an error
    explicit = _write(tmp_path / "mine.json", _rates_doc(2.0))
    assert main(["figs", "list", "--rates", explicit]) == 0
    assert explicit in capsys.readouterr().out
    E.default_rates_path().write_text("{broken")
    assert main(["figs", "list"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and captured.out == built_in


def test_a_part_takes_the_measured_slice_nearest_its_size():
    quick = _row("mlp-quick-scale", "students", 30.0, "mlp", True, models=8, rows=1000)
    quick["slice"]["flops"] = 8 * E.step_flops(100, (50,), 100, 1000)
    rates = E.rates_from_dict(_rates_doc(quick=quick))
    small = rates.calibration("mlp", size=E.step_flops(100, (50,), 100, 1000))
    big = rates.calibration("mlp", size=E.step_flops(1000, (500,), 100, 16100))
    assert small.workload == "mlp-quick-scale/students"
    assert big.workload == rates.calibration("mlp").workload == "mlp-paper-slice/students"


def test_a_run_announces_its_time_from_the_measured_rates(tmp_path, monkeypatch):
    """The estimate a run logs before it starts is the one figs list shows (the cached rates)."""
    from softleak.simulate import experiments, rundir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    heard = []
    monkeypatch.setattr(rundir, "announce", lambda seconds, *_: heard.append(seconds))
    spec = BIG_MLP
    experiments.preflight(spec)
    assert heard[-1] == E.estimate(spec)["cpu_s"]
    E.default_rates_path().parent.mkdir(parents=True)
    _write(E.default_rates_path(), _rates_doc(1.0))
    assert len(E.cached_rates()) == 1
    experiments.preflight(spec)
    assert heard[-1] == E.estimate(spec, E.cached_rates())["cpu_s"] != heard[0]
    E.default_rates_path().write_text("{broken")
    assert E.cached_rates() == []


@pytest.mark.parametrize(
    "meta, busy",
    [
        ({"load_average": [0.3, 0.9], "cores": 2}, False),
        ({"load_average": [0.3, 3.3], "cores": 2}, True),  # busy during the run
        ({"load_average": 1.2, "cores": 2}, True),  # one number, above half the cores
        ({"load_average": [1.9], "cores": 4}, False),
        ({"busy": True}, True),
        ({}, False),  # a file that says nothing about its load
    ],
)
def test_rates_a_busy_machine_wrote_are_never_the_default(
    meta, busy, tmp_path, monkeypatch, capsys
):
    """A rates file measured under a load average above half the cores (before or during the
    run) is marked busy and skipped by default with one warning; --rates still reads it."""
    from softleak.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    E.default_rates_path().parent.mkdir(parents=True)
    path = _write(E.default_rates_path(), {**_rates_doc(1.0), **meta})
    assert (E.busy_reason(meta) is not None) == busy
    warned = []
    assert len(E.cached_rates(warned.append)) == (0 if busy else 1)
    assert len(warned) == int(busy) and (not busy or "busy machine" in warned[0])
    assert len(E.load_rates(path).calibrations) > 0  # explicitly asked for, it reads
    # figs list says where its CPU rates come from
    assert main(["figs", "list"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    if busy:
        assert f"built-in rates: {E.BUILT_IN_RATES}" in text and "busy machine" in text
    else:
        assert f"measured an unknown date on cpu ({path})" in text
