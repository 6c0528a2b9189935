"""The benchmark suite's honesty rules (``benchmarks.common``; the rates file,
``benchmarks.rates_doc``), with injected fake clocks and timings: no speed is asserted anywhere
(timings are noisy)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is not installed: it runs from the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks import peaks, rates_doc, slice_specs  # noqa: E402
from benchmarks.common import (  # noqa: E402
    MEASUREMENT_ERROR,
    OK,
    UNMEASURABLE,
    Timing,
    judge,
    per_epoch,
    time_call,
)
from softleak.simulate import estimate as E  # noqa: E402
from softleak.simulate.spec import SweepSpec  # noqa: E402


class FakeClock:
    """A clock that only moves when the timed code says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


def test_a_short_call_is_repeated_until_each_timing_lasts_the_minimum():
    clock = FakeClock()
    t = time_call(lambda: clock.spend(0.01), clock=clock, min_s=0.5, timings=3)
    assert t.ok and t.seconds == pytest.approx(0.01)
    assert len(t.timings) == 3 and all(x >= 0.5 for x in t.timings)
    assert t.calls >= 50


def test_a_call_too_fast_to_time_is_unmeasurable_never_a_huge_rate():
    clock = FakeClock()  # the call takes no time at all
    t = time_call(lambda: None, clock=clock, min_s=0.5, max_calls=1000)
    assert not t.ok and t.seconds is None and "too fast" in t.note
    assert judge(None, 1e11) == UNMEASURABLE


def test_per_epoch_grows_the_long_run_until_the_difference_lasts_the_minimum():
    clock = FakeClock()
    calls = []

    def run(epochs: int) -> None:  # 0.3 s of set-up plus 1 ms per epoch
        calls.append(epochs)
        clock.spend(0.3 + 1e-3 * epochs)

    t = per_epoch(run, 1, 11, clock=clock, min_s=0.5)
    assert t.ok and t.seconds == pytest.approx(1e-3)
    longest = max(calls)
    assert (longest - 1) * 1e-3 >= 0.5  # the difference itself lasted >= 0.5 s
    assert "difference" in t.note


def test_per_epoch_without_a_measurable_difference_is_unmeasurable():
    clock = FakeClock()
    t = per_epoch(lambda e: clock.spend(0.6), 1, 21, clock=clock, min_s=0.5, rounds=3)
    assert not t.ok and t.seconds is None and "stayed below" in t.note
    # set-up noise that makes the long run *faster* is no rate either (never a clamp at 1e-9)
    clock2 = FakeClock()
    t = per_epoch(lambda e: clock2.spend(0.6 - 1e-4 * e), 1, 21, clock=clock2, max_epochs=500)
    assert not t.ok


def test_judge_flags_rates_above_the_gemm_peak():
    assert judge(5e10, 1e11) == OK
    assert judge(2e11, 1e11) == MEASUREMENT_ERROR
    assert judge(float("inf"), 1e11) == UNMEASURABLE
    assert judge(0.0, 1e11) == UNMEASURABLE


def _row(workload, part, precision, seconds, *, loop=None, flops=1e9, family="mlp", shared=True):
    geo = {"family": family, "flops": flops, "entries": 0, "bytes": 0, "steps": 1}
    geo["shared"] = shared
    return rates_doc.Row(
        workload,
        part,
        precision,
        2,
        flops,
        Timing(seconds, (0.6, 0.6, 0.6), 1, "fake"),
        geo,
        Timing(loop, (0.6,), 1, "fake") if loop else None,
        flops,
        "fake loop",
    )


GEMM = {"fp64": 50e9, "fp32": 100e9, "bf16": 300e9}


def test_rows_above_peak_are_flagged_and_excluded_from_projections(tmp_path):
    rows = [
        _row("mlp-paper-slice", "students", "fp32", 1e-3, loop=0.1),  # 1 TFLOP/s > 100 G peak
        _row("mlp-paper-slice", "students", "bf16", 0.02),  # 50 GFLOP/s: fine
        _row("mlp-quick-scale", "students", "fp32", None, loop=0.1),  # unmeasurable
        _row("multinomial-tau", "students", "fp32", 0.02, loop=0.1, family="linear"),
    ]
    doc = rates_doc.rates_document(rows, GEMM, {"bf16-tensors": 1e12}, meta={"device": "cpu"})
    assert set(doc["gemm"]) == {"fp64", "fp32", "bf16"}
    table = {(r["workload"], r["precision"]): r for r in doc["workloads"]}
    bad = table[("mlp-paper-slice", "fp32")]
    assert bad["status"] == MEASUREMENT_ERROR and bad["gflop_per_s"] is None
    assert bad["fraction_of_gemm"] is None and bad["speedup_vs_loop"] is None
    assert bad["measured_gflop_per_s"] == pytest.approx(1000)
    assert table[("mlp-quick-scale", "fp32")]["status"] == UNMEASURABLE
    good = table[("multinomial-tau", "fp32")]
    assert good["status"] == OK and good["gflop_per_s"] == pytest.approx(50)
    assert good["fraction_of_gemm"] == pytest.approx(0.5)
    assert good["speedup_vs_loop"] == pytest.approx(5)  # against the fp32 loop of the slice
    # a bf16 row's speed-up is against the fp32 loop of its slice (the fp32 engine row being
    # measured wrong does not matter: the loop was timed right)
    assert table[("mlp-paper-slice", "bf16")]["speedup_vs_loop"] == pytest.approx(5)
    for r in doc["workloads"]:
        assert {
            "workload",
            "part",
            "precision",
            "fused",
            "gflop_per_s",
            "fraction_of_gemm",
            "speedup_vs_loop",
        } <= set(r)
    # the cost model reads the same document: only the usable rows calibrate it
    rates = E.rates_from_dict(doc)
    assert rates.calibration("mlp", "fp32") is None  # the fp32 MLP rows were both unusable
    assert rates.calibration("mlp", "bf16").workload == "mlp-paper-slice/students"
    assert rates.calibration("linear").measured == pytest.approx(50e9)
    spec = SweepSpec("mlp", d=(20,), c=(10,), n=(200,), p_teacher=(16,), p_student=(16,))
    assert E.estimate(spec, rates)["cpu_s"] == pytest.approx(E.estimate(spec)["cpu_s"])
    path = tmp_path / "rates.json"
    rates_doc.write_rates(doc, [path])
    assert E.load_rates(path).calibrations.keys() == rates.calibrations.keys()


def test_a_speedup_needs_a_loop_that_was_measured_right():
    rows = [_row("multinomial-tau", "students", "fp32", 0.02, loop=1e-4, family="linear")]
    (row,) = rates_doc.workload_rows(rows, GEMM)  # loop at 10 TFLOP/s: above the fp32 peak
    assert row["status"] == OK and row["speedup_vs_loop"] is None
    assert row["loop_status"] == MEASUREMENT_ERROR


def test_a_precision_without_a_peak_is_unverified_and_unused():
    rows = [_row("mlp-paper-slice", "students", "tf32", 0.02)]
    (row,) = rates_doc.workload_rows(rows, GEMM)
    assert row["status"].startswith("unverified") and row["gflop_per_s"] is None


def test_best_peaks_keeps_the_larger_measurement_and_none_for_failures():
    best = peaks.best_peaks({"fp32": 1e11, "bf16": None}, {"fp32": 2e11, "bf16": None})
    assert best == {"bf16": None, "fp32": 2e11}


def test_the_fused_hook_switches_compiled_steps_only_where_a_spec_offers_them():
    spec = SweepSpec("multinomial", d=(10,), c=(2,), n=(20,))
    name = slice_specs._fused_field(spec)
    if name is None:  # no compiled steps in softleak.simulate yet: no fused rows
        assert slice_specs.fused_variant(spec) is None and slice_specs.eager(spec) is spec
    else:
        assert getattr(slice_specs.fused_variant(spec), name) is True
        assert getattr(slice_specs.eager(spec), name) is False


def test_the_timing_record_is_finite_or_none():
    for t in (Timing(None), Timing(0.0), Timing(math.inf)):
        assert not t.ok
    assert Timing(1e-3).ok


def test_the_precision_benchmark_times_every_mechanism_this_machine_has(tmp_path, capsys):
    """Every mechanism the probe offers here (and the emulation) is timed beside float32, and the
    record says what the probe found."""
    from benchmarks import bench_precision
    from softleak.simulate.precision_probe import probe

    out = tmp_path / "record.json"
    assert bench_precision.main(["--quick", "--repeats", "1", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    modes = set(bench_precision.mechanisms())
    assert "fp32" in modes and any(m.startswith("bf16:") for m in modes)
    assert any(m.startswith("bf16r:") for m in modes)
    assert set(record["gemm_gflop_per_s"]["256"]) == modes | {"bf16-tensors (reference)"}
    (step,) = record["step_ms"].values()
    assert set(step) == modes and all(v > 0 for v in step.values())
    assert record["probe"]["outcome"] == probe("cpu").outcome
