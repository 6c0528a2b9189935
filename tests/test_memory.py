"""Replica batches sized to free memory (mocked), the batches a sweep trains, and the precision
switch: batch sizes change speed, never the table."""

import dataclasses

import pandas as pd
import pytest
import torch

from softleak.simulate import memory, protocol, sweep
from softleak.simulate.chunks import student_batches
from softleak.simulate.memory import replicas_that_fit, shared_bytes, student_bytes
from softleak.simulate.spec import SweepSpec
from softleak.simulate.sweep import run_sweep

GB = 2**30


def _spec(**kw):
    base = dict(
        experiment="multinomial",
        d=(1000,),
        c=(100,),
        n=(250_000,),
        rho=(0.05, 0.95),
        tau=(20.0,),
        p_teacher=(500,),
        p_student=(500,),
        teacher_epochs=1,
        student_epochs=1,
    )
    base.update(kw)
    return SweepSpec(**base)


def test_student_bytes_counts_the_big_tensors():
    # MLP student of the paper's largest grid point: m = 0.95 * 250,000 rows of 500 hidden units.
    spec = _spec()
    m = 0.95 * 250_000
    hidden = m * 500 * (4 * 4 + 1)  # activations, pre-activations, dL/dh, product, ReLU mask
    got = student_bytes(spec, 1000, 100, 250_000)
    assert hidden < got < 3 * hidden  # the hidden layer dominates; the rest is not 2x more
    linear = dataclasses.replace(spec, p_student=(), p_teacher=())
    assert student_bytes(linear, 1000, 100, 250_000) < got / 2
    float64 = dataclasses.replace(spec, dtype="float64")
    assert student_bytes(float64, 1000, 100, 250_000) > 1.5 * got


@pytest.mark.parametrize("device, fraction", [("cpu", 0.5), ("cuda", 0.8)])
def test_replicas_fill_the_budgeted_fraction_of_free_memory(device, fraction):
    spec = _spec(device=device)
    per, shared = student_bytes(spec, 1000, 100, 250_000), shared_bytes(spec, 1000, 100, 250_000)
    for free in (10 * GB, 40 * GB, 140 * GB):
        k = replicas_that_fit(spec, 1000, 100, 250_000, free=free)
        assert k == max(1, int((fraction * free - shared) // per))
        assert shared + k * per <= fraction * free or k == 1
        assert shared + (k + 1) * per > fraction * free
    # Too little memory for even one student: one at a time (with a warning), never zero.
    assert replicas_that_fit(spec, 1000, 100, 250_000, free=GB // 10) == 1
    assert replicas_that_fit(spec, 1000, 100, 250_000, free=40 * GB) < replicas_that_fit(
        spec, 1000, 100, 250_000, free=140 * GB
    )


def test_free_bytes_reads_cuda_free_plus_cached(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (30 * GB, 140 * GB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 12 * GB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2 * GB)
    assert memory.free_bytes("cuda") == 40 * GB  # free + reserved-but-unused by our allocator
    spec = _spec(device="cuda")
    k = replicas_that_fit(spec, 1000, 100, 250_000)
    assert k == replicas_that_fit(spec, 1000, 100, 250_000, free=40 * GB)


def test_free_bytes_reads_memavailable(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  24000000 kB\nMemFree:  1000 kB\nMemAvailable:  8000000 kB\n")
    assert memory._meminfo_available(str(meminfo)) == 8_000_000 * 1024
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 8 * GB)
    assert memory.free_bytes("cpu") == 8 * GB
    monkeypatch.setattr(memory, "_dask_worker_memory_limit", lambda: 3 * GB)
    assert memory.free_bytes("cpu") == 3 * GB  # a Dask worker keeps to its memory limit


def test_wide_students_train_per_rho_narrow_ones_share_rows(monkeypatch):
    monkeypatch.setattr(memory, "free_bytes", lambda device="cpu": 1000 * GB)
    wide = _spec(rho=(0.05, 0.5, 0.95), tau=(10.0, 20.0), n=(2500,))
    runs = protocol.student_runs(wide, (1000, 100, 2500, 0))
    batches = student_batches(wide, runs, (1000, 100, 2500, 0))
    assert [len(b) for b in batches] == [2, 2, 2]
    assert all(len({r.rho for r in b}) == 1 for b in batches)
    narrow = _spec(c=(2,), n=(2500,), p_student=(), p_teacher=(), rho=(0.5, 0.8), tau=(1.0, 2.0))
    runs = protocol.student_runs(narrow, (1000, 2, 2500, 0))
    assert student_batches(narrow, runs, (1000, 2, 2500, 0)) == [runs]
    # The batch is min(max_replicas, what fits).
    capped = dataclasses.replace(narrow, max_replicas=3)
    assert [len(b) for b in student_batches(capped, runs, (1000, 2, 2500, 0))] == [3, 1]
    monkeypatch.setattr(memory, "free_bytes", lambda device="cpu": 0)
    assert [len(b) for b in student_batches(narrow, runs, (1000, 2, 2500, 0))] == [1] * 4


def test_run_sweep_batches_by_free_memory_and_the_table_does_not_change(
    tmp_path, monkeypatch, global_seed
):
    spec = SweepSpec(
        "multinomial",
        d=(12,),
        c=(3,),
        n=(18,),
        rho=(0.3, 0.7),
        tau=(0.5, 4.0),
        shuffle="both",
        teacher_epochs=200,
        student_epochs=150,
        student_lr=1e-2,
        dtype="float64",
        seed=global_seed,
    )
    whole = run_sweep(spec, tmp_path / "whole").drop(columns="wall_s")
    per = student_bytes(spec, 12, 3, 18)
    budget = shared_bytes(spec, 12, 3, 18) + 3 * per
    monkeypatch.setattr(memory, "free_bytes", lambda device="cpu": budget / 0.5)
    # The faked free memory is below what the teacher's own data takes (its 1,000 validation
    # inputs): the size check before the run would refuse it, which is not what this test is about.
    monkeypatch.setattr(sweep, "check_sizes", lambda spec: None)
    sizes = []
    real = protocol.gradient_students

    def spy(spec, teacher, runs, threads=None):
        sizes.append(len(runs))
        return real(spec, teacher, runs, threads)

    monkeypatch.setattr(protocol, "gradient_students", spy)
    split = run_sweep(spec, tmp_path / "split").drop(columns="wall_s")
    assert sizes == [3, 3, 2]
    pd.testing.assert_frame_equal(whole, split, rtol=1e-9, atol=1e-12)
