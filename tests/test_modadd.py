"""Modular addition (``simulate.transformer``, ``simulate.modadd``, ``softleak simulate modadd``).

Oracles: the data split is a partition of floor(frac p^2) / rest and the student splits are nested
partitions; the last-position forward equals a straightforward full causal forward; Nanda et al.'s
init scales (sample standard deviations); batched students equal students trained alone (padding
rows carry no weight); a checkpoint taken mid-run equals a teacher trained exactly that long; saved
weights reload (``weights_only=True``) to the same logits; a small task is memorized first
(held-out accuracy 0: each held-out label is the one label a row never shows) and then generalizes;
a finished directory reruns without training; bad input exits 2 and writes nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import softleak.simulate.modadd.run as modadd_run
import softleak.simulate.modadd.students as modadd_students
import softleak.simulate.modadd.teacher as modadd_teacher
from softleak.cli import main
from softleak.simulate.data import permutation_split
from softleak.simulate.modadd import (
    ModAddSpec,
    all_pairs,
    load_state,
    make_data,
    make_model,
    model_from_state,
    model_inputs,
    parse_rule,
    run_modadd,
    save_state,
    student_runs,
    teacher_logits,
    train_students,
    train_teacher,
)
from softleak.simulate.rundir import IdentityMismatch
from softleak.simulate.transformer import ReplicaTransformer

#: The shortcut and the full forward do the same float64 arithmetic in another order (measured
#: difference ~1e-15).
FORWARD_ATOL = 1e-6

#: Batched vs one at a time in float64: per-replica products are independent, so they agree to
#: round-off; a few AdamW steps keep that far below this.
BATCH_ATOL = 1e-9

#: A tiny transformer: each test stays around a second.
TINY_TRANSFORMER = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32)


def tiny(seed: int = 0, **overrides) -> ModAddSpec:
    """A seconds-sized spec: p = 7, a 16-wide transformer, few epochs, float64."""
    base = dict(
        p=7,
        train_frac=0.6,
        teacher_epochs=30,
        checkpoints=(10, 30),
        rho=(0.4, 0.7),
        tau=(1.0, 10.0),
        student_epochs=20,
        student_seeds=1,
        teacher_lr=1e-2,
        student_lr=1e-2,
        teacher_curve_every=5,
        curve_every=10,
        seed=seed,
        dtype="float64",
        **TINY_TRANSFORMER,
    )
    return ModAddSpec(**(base | overrides))


def full_causal_forward(model: ReplicaTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """The textbook forward: queries, attention (causal mask), MLP and unembedding at every
    position; logits read at the last."""
    x = model.embed(tokens)  # (R, n, ctx, d)
    R, n, ctx, _ = x.shape
    H, dh = model.n_heads, model.d_head

    def heads(W):
        return torch.einsum("rnpd,rde->rnpe", x, W).view(R, n, ctx, H, dh)

    q, k, v = heads(model["W_Q"]), heads(model["W_K"]), heads(model["W_V"])
    scores = torch.einsum("rnqhe,rnkhe->rnhqk", q, k) / math.sqrt(dh)
    causal = torch.tril(torch.ones(ctx, ctx, dtype=torch.bool))
    attn = torch.softmax(scores.masked_fill(~causal, -math.inf), -1)
    z = torch.einsum("rnhqk,rnkhe->rnqhe", attn, v).reshape(R, n, ctx, H * dh)
    resid = x + torch.einsum("rnqf,rfd->rnqd", z, model["W_O"])
    pre = torch.einsum("rnqd,rdm->rnqm", resid, model["W_in"]) + model["b_in"][:, None, None]
    out = torch.einsum("rnqm,rmd->rnqd", torch.relu(pre), model["W_out"])
    resid = resid + out + model["b_out"][:, None, None]
    return torch.einsum("rnqd,rdp->rnqp", resid, model["W_U"])[:, :, -1]


# data ----------------------------------------------------------------------------------------
def test_pairs_tokens_and_labels():
    tokens, labels = all_pairs(7)
    assert tokens.shape == (49, 3) and (tokens[:, 2] == 7).all()  # "=" is token p
    a, b = tokens[:, 0], tokens[:, 1]
    assert ((a * 7 + b) == np.arange(49)).all()
    assert ((a + b) % 7 == labels).all() and labels.max() == 6


@pytest.mark.parametrize("p, frac, n", [(113, 0.3, 3_830), (113, 0.5, 6_384), (7, 0.6, 29)])
def test_teacher_split_sizes_and_reproducibility(p, frac, n, global_seed):
    spec = ModAddSpec(p=p, train_frac=frac, seed=global_seed, rho=(0.5,), checkpoints=(1,))
    assert spec.n == n  # floor(frac p^2), as Nanda et al.'s int(frac * len(pairs))
    data = make_data(spec)
    assert len(data.teacher) == n and len(data.val) == p * p - n
    assert np.array_equal(np.sort(np.concatenate([data.teacher, data.val])), np.arange(p * p))
    again = make_data(spec)
    assert np.array_equal(data.teacher, again.teacher)
    other = make_data(ModAddSpec(p=p, train_frac=frac, seed=global_seed + 1, checkpoints=(1,)))
    assert not np.array_equal(data.teacher, other.teacher)


def test_student_splits_are_nested_partitions(global_seed):
    n = 200
    previous = np.array([], dtype=int)
    for rho in (0.1, 0.35, 0.7, 0.9):
        train, test = permutation_split(n, rho, global_seed)
        assert len(train) == round(rho * n)
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
        assert np.isin(previous, train).all()  # one seed's training sets grow with rho
        previous = train


# spec and rules ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"model": "cnn"},
        {"p": 1},
        {"train_frac": 0.0},
        {"train_frac": 1.0},
        {"train_frac": 0.01},  # n = 0
        {"rho": (1.0,)},
        {"rho": (0.001,)},  # round(rho n) = 0
        {"rho": (0.5, 0.5)},
        {"tau": (0.0,)},
        {"tau": (math.inf,)},
        {"checkpoints": (0,)},
        {"checkpoints": (10, 10)},
        {"checkpoints": (40,)},  # beyond teacher_epochs = 30
        {"checkpoints": (), "stop_rules": ()},
        {"stop_rules": ("nonsense",)},
        {"stop_rules": ("x:val_acc=>1",)},
        {"stop_rules": ("x:speed>1",)},
        {"stop_rules": ("grokked", "grokked")},
        {"stop_rules": ("e10:val_acc>0.5",)},  # clashes with the fixed checkpoint e10
        {"student_epochs": 0},
        {"teacher_weight_decay": -1.0},
        {"betas": (0.9, 1.0)},
        {"hidden": ()},
        {"batch_by": "tau"},
        {"dtype": "float16"},
    ],
)
def test_spec_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        tiny(**bad)


def test_spec_defaults_are_the_papers():
    spec = ModAddSpec()
    assert (spec.p, spec.n, spec.model) == (113, 3_830, "transformer")
    assert spec.checkpoints == (2_500, 5_000, 10_000) and spec.teacher_epochs == 10_000
    assert ModAddSpec(model="mlp").checkpoints == (5_000, 10_000, 20_000)
    assert ModAddSpec(stop_rules=("grokked",), teacher_epochs=100).checkpoints == ()
    with pytest.raises(ValueError):  # only rules: the length of training must be given
        ModAddSpec(stop_rules=("grokked",))
    assert len(student_runs(spec)) == 9 * 3 * 3
    assert ModAddSpec(rho=[0.5], tau=[1]) == ModAddSpec(rho=(0.5,), tau=(1.0,))


def test_stop_rules():
    rule = parse_rule("memorized")
    assert rule.holds({"train_acc": 1.0, "val_acc": 0.01})
    assert not rule.holds({"train_acc": 0.99, "val_acc": 0.01})
    assert not rule.holds({"train_acc": 1.0, "val_acc": 0.05})
    custom = parse_rule("late:epoch>=100 & val_loss<2")
    assert custom.name == "late"
    assert custom.holds({"epoch": 100, "val_loss": 1.0})
    assert not custom.holds({"epoch": 99, "val_loss": 1.0})


# the transformer -----------------------------------------------------------------------------
def test_transformer_shapes_and_parameter_count():
    p, R, n = 11, 3, 17
    model = ReplicaTransformer.init(range(R), p, **TINY_TRANSFORMER)
    shared = torch.randint(0, p + 1, (n, 3))
    assert model.forward(shared).shape == (R, n, p)
    assert model.forward(shared.expand(R, n, 3)).shape == (R, n, p)
    torch.testing.assert_close(model.forward(shared), model.forward(shared.expand(R, n, 3)))
    d, hd, m, V = 16, 16, 32, p + 1
    expected = V * d + 3 * d + 3 * d * hd + hd * d + d * m + m + m * d + d + d * p
    assert model.n_params() == expected
    # Nanda et al.'s size at p = 113: ~225k parameters
    assert ReplicaTransformer.init([0], 113).n_params() == 113 * 128 + 128 * 114 + 3 * 128 + (
        4 * 128 * 128 + 2 * 128 * 512 + 512 + 128
    )


def test_last_position_shortcut_equals_full_causal_forward(global_seed):
    p, R = 11, 3
    model = ReplicaTransformer.init(
        [global_seed + i for i in range(R)], p, dtype=torch.float64, **TINY_TRANSFORMER
    )
    g = torch.Generator().manual_seed(global_seed)
    for name in ("b_in", "b_out"):  # zero at init: make them count
        model[name].copy_(torch.randn(model[name].shape, generator=g, dtype=torch.float64))
    for tokens in (
        torch.randint(0, p + 1, (40, 3), generator=g),
        torch.randint(0, p + 1, (R, 40, 3), generator=g),
    ):
        fast, full = model.forward(tokens), full_causal_forward(model, tokens)
        torch.testing.assert_close(fast, full, atol=FORWARD_ATOL, rtol=0)


def test_init_is_per_replica_and_has_nandas_scales(global_seed):
    a = ReplicaTransformer.init([global_seed, global_seed + 1], 113)
    b = ReplicaTransformer.init([global_seed + 1], 113)
    for x, y in zip(a.select([1]).params, b.params, strict=True):
        torch.testing.assert_close(x, y, atol=0, rtol=0)
    # randn / sqrt(fan): ~1.5e4-6.6e4 samples each, so the sample std is within ~2% (5 sigma)
    for name, fan in [("W_E", 128), ("W_Q", 128), ("W_out", 128), ("W_U", 114)]:
        std = float(a[name][0].std())
        assert abs(std * math.sqrt(fan) - 1) < 0.03, name
    assert not a["b_in"].any() and not a["b_out"].any()


# training -------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["transformer", "mlp"])
def test_batched_students_equal_students_trained_alone(model, global_seed):
    # One batch mixes rho (rows padded to the largest set) and tau; alone, nothing is padded.
    spec = tiny(global_seed, model=model, student_epochs=6, hidden=(16,), batch_by="checkpoint")
    data = make_data(spec)
    teacher = make_model(spec, [spec.teacher_seed()])
    z = teacher_logits(spec, teacher.state(), data)
    runs = student_runs(spec)
    metrics, _, batched = train_students(spec, data, z, runs, threads=1)
    for r, run in enumerate(runs):
        alone_metrics, _, alone = train_students(spec, data, z, [run], threads=1)
        for x, y in zip(batched.params, alone.params, strict=True):
            torch.testing.assert_close(x[r], y[0], atol=BATCH_ATOL, rtol=0)
        for key in ("student_train_acc", "student_test_acc", "student_val_acc", "train_ce"):
            assert metrics[r][key] == pytest.approx(alone_metrics[0][key], abs=BATCH_ATOL)


def test_checkpoint_mid_run_equals_teacher_trained_that_long(global_seed):
    spec = tiny(global_seed)
    data = make_data(spec)
    checkpoints, curves, _ = train_teacher(spec, data, threads=1)
    assert [c.name for c in checkpoints] == ["e10", "e30"]
    short, _, _ = train_teacher(tiny(global_seed, teacher_epochs=10, checkpoints=(10,)), data)
    for key, value in short[0].state.items():
        torch.testing.assert_close(checkpoints[0].state[key], value, atol=0, rtol=0)
    at10 = curves.set_index("epoch").loc[10]
    assert checkpoints[0].train_acc == at10.train_acc and checkpoints[0].val_acc == at10.val_acc
    assert list(curves.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]


@pytest.mark.parametrize("model", ["transformer", "mlp"])
def test_checkpoint_round_trip_with_weights_only(model, tmp_path, global_seed):
    spec = tiny(global_seed, model=model)
    data = make_data(spec)
    net = make_model(spec, [spec.teacher_seed()])
    save_state(tmp_path / "t.pt", net.state())
    state = torch.load(tmp_path / "t.pt", weights_only=True)  # plain tensors only
    assert state.keys() == net.state().keys()
    X = model_inputs(spec, torch.as_tensor(data.tokens))
    torch.testing.assert_close(
        model_from_state(spec, load_state(tmp_path / "t.pt")).forward(X),
        net.forward(X),
        atol=0,
        rtol=0,
    )


def test_small_task_is_memorized_then_generalizes(global_seed):
    # p = 23, 80% of the pairs, an MLP with strong weight decay: train acc 1 by epoch ~100 with
    # val acc 0 (a memorizing net predicts labels its rows show; the held-out label is the one they
    # never show), then val acc rises (measured over 16 seeds: 0.90-1.00 at epoch 600; ~1 s).
    spec = ModAddSpec(
        model="mlp",
        p=23,
        train_frac=0.8,
        hidden=(128, 128),
        teacher_lr=3e-3,
        teacher_weight_decay=3.0,
        teacher_epochs=800,
        stop_rules=("memorized", "half:val_acc>=0.5"),
        rho=(0.5,),
        seed=global_seed,
    )
    (memorized, half), curves, _ = train_teacher(spec, make_data(spec), threads=1)
    chance = 1 / spec.p
    assert memorized.epoch is not None and memorized.val_acc < chance
    assert half.epoch is not None and half.epoch > memorized.epoch and half.train_acc == 1.0
    assert half.val_acc >= 0.5 > 10 * chance


# the run directory ---------------------------------------------------------------------------
def test_run_directory_resumes_and_refuses_other_settings(tmp_path, monkeypatch, global_seed):
    spec, out = tiny(global_seed), tmp_path / "run"
    table = run_modadd(spec, out, threads=1)
    assert len(table) == 2 * len(student_runs(spec))
    assert (out / "checkpoints" / "e10.pt").exists() and (out / "teacher_curves.parquet").exists()
    assert set(table.checkpoint) == {"e10", "e30"} and not table.run_id.duplicated().any()
    curves = pd.read_parquet(out / "curves.parquet")
    assert set(curves.run_id) == set(table.run_id)
    assert set(curves.epoch) == {0, 10, 20}

    def refuse(*args, **kwargs):
        raise AssertionError("trained on resume")

    # A finished directory: nothing trains, same table (``fit`` is looked up where it is called).
    monkeypatch.setattr(modadd_teacher, "fit", refuse)
    monkeypatch.setattr(modadd_students, "fit", refuse)
    pd.testing.assert_frame_equal(run_modadd(spec, out, threads=1), table)
    monkeypatch.undo()
    # A lost checkpoint part: its students retrain from the saved teacher, which is not retrained.
    (out / "parts" / "e30.parquet").unlink()
    monkeypatch.setattr(modadd_run, "train_teacher", refuse)  # run_modadd looks it up there
    again = run_modadd(spec, out, threads=1)
    pd.testing.assert_frame_equal(again.drop(columns="wall_s"), table.drop(columns="wall_s"))
    # Other settings: refused before anything is written; restart starts over.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    other = tiny(global_seed, tau=(2.0,))
    with pytest.raises(IdentityMismatch):
        run_modadd(other, out, threads=1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    monkeypatch.undo()
    restarted = run_modadd(other, out, threads=1, restart=True)
    assert set(restarted.tau) == {2.0}


# command line --------------------------------------------------------------------------------
TINY_ARGS = [
    "simulate", "modadd", "--p", "7", "--train-frac", "0.6", "--d-model", "16", "--n-heads", "2",
    "--d-head", "8", "--d-mlp", "32", "--checkpoints", "10", "--rho", "0.5", "--tau", "1",
    "--student-epochs", "10", "--student-seeds", "1", "--curve-every", "5", "--threads", "1",
    "--no-progress", "--device", "cpu",
]  # fmt: skip


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's errors (one line, code 2)
        return int(stop.code)


@pytest.mark.parametrize(
    "bad",
    [
        ["--p", "0"],
        ["--p", "1"],
        ["--train-frac", "1.5"],
        ["--rho", "0.5,1.2"],
        ["--tau", "-1"],
        ["--stop-rule", "sometimes"],
        ["--checkpoints", "20", "--teacher-epochs", "10"],
        ["--model", "cnn"],
        ["--weight-decay", "-1"],
        ["--device", "tpu"],
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(bad, tmp_path, capsys):
    out = tmp_path / "out"
    assert _exit_code([*TINY_ARGS, *bad, "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_cli_runs_resumes_and_refuses_changed_settings(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main([*TINY_ARGS, "--out", out]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("1 student runs in")
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(table) == 1 and table.teacher_epoch.iloc[0] == 10
    assert main([*TINY_ARGS, "--out", out]) == 0  # resumes: nothing to do
    assert _exit_code([*TINY_ARGS, "--tau", "3", "--out", out]) == 2
    assert "other settings" in capsys.readouterr().err
