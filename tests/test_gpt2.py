"""GPT-2 classifiers on random sequences (``simulate.gpt2``): data, tokenizer, local loading,
errors, resume, and a tiny end-to-end run. Skipped when transformers is not installed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from softleak.simulate.rundir import IdentityMismatch

pytest.importorskip("transformers")

from softleak.simulate import gpt2  # noqa: E402
from softleak.simulate.gpt2 import (  # noqa: E402
    GPT2Error,
    GPT2Spec,
    check_pretrained,
    make_model,
    make_sequences,
    run_gpt2,
    sequence_tokenizer,
)
from softleak.simulate.gpt2 import run as gpt2_run  # noqa: E402  (where run_gpt2 looks names up)
from softleak.simulate.gpt2.family import TINY as FAMILY_TINY  # noqa: E402
from softleak.simulate.minibatch import MinibatchConfig, fit_minibatch  # noqa: E402

#: The family's tiny preset (60 sequences, 4 classes, a 1-layer width-16 GPT-2 at a large lr),
#: with a longer teacher (it memorizes in ~40 epochs) and shorter students.
TINY = GPT2Spec(**{**FAMILY_TINY, "rho": (0.5,), "teacher_epochs": 60, "student_epochs": 5})


def test_sequences_are_reproducible_distinct_and_in_range(global_seed):
    a = make_sequences(3_000, 500, 30, 10, global_seed)
    b = make_sequences(3_000, 500, 30, 10, global_seed)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(a.y, b.y)
    other = make_sequences(3_000, 500, 30, 10, global_seed + 1)
    assert not np.array_equal(a.numbers, other.numbers)
    both = np.concatenate([a.numbers, a.val_numbers])
    assert both.shape == (3_500, 3) and both.min() >= 1 and both.max() <= 30
    assert len({tuple(r) for r in both}) == 3_500  # distinct, D_val disjoint from D_*^T
    assert set(np.unique(a.y)) <= set(range(10)) and len(a.y_val) == 500
    # i.i.d. uniform classes: every count within 6 binomial standard deviations of n/c
    counts = np.bincount(a.y, minlength=10)
    sd = np.sqrt(3_000 * 0.1 * 0.9)
    assert np.all(np.abs(counts - 300) < 6 * sd)
    assert a.texts[0] == "_".join(map(str, a.numbers[0]))


def test_tokenizer_round_trip_vocabulary_and_padding(global_seed):
    tok = sequence_tokenizer(100)
    assert len(tok) == 100 + 3  # "0".."100", "_", eos
    assert tok.padding_side == "left"
    assert tok.pad_token_id == tok.eos_token_id == 102
    rng = np.random.default_rng(global_seed)
    texts = ["_".join(map(str, r)) for r in rng.integers(1, 101, (50, 3))]
    enc = tok(texts)
    for text, ids in zip(texts, enc["input_ids"], strict=True):
        a, b, c = map(int, text.split("_"))
        assert ids == [a, 101, b, 101, c]  # token id k is the number k
        assert tok.decode(ids) == text
    # left padding with eos when lengths differ
    batch = tok(["1_2_3", "4"], padding="longest")
    assert batch["input_ids"][1] == [102] * 4 + [4]
    assert batch["attention_mask"][1] == [0] * 4 + [1]


def _save_tiny_hf_model(folder, c=3):
    """A tiny GPT-2 classifier and its tokenizer in the Hugging Face layout."""
    import transformers

    tok = sequence_tokenizer(20)
    config = transformers.GPT2Config(
        vocab_size=len(tok),
        n_positions=16,
        n_layer=1,
        n_embd=16,
        n_head=2,
        num_labels=c,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = transformers.GPT2ForSequenceClassification(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


def test_pretrained_folder_loads_weights_and_tokenizer(tmp_path):
    saved = _save_tiny_hf_model(tmp_path / "hf", c=3)
    spec = dataclasses.replace(TINY, pretrained=str(tmp_path / "hf"), c=4)
    tok = gpt2.load_tokenizer(spec)
    assert tok.padding_side == "left" and len(tok) == 23
    model = make_model(spec, tok, seed=1)
    assert model.score.weight.shape == (4, 16)  # a new head for c = 4 classes
    body = {k: v for k, v in saved.state_dict().items() if not k.startswith("score")}
    loaded = model.state_dict()
    for key, value in body.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    # the same seed gives the same head; another seed another one
    again = make_model(spec, tok, seed=1)
    torch.testing.assert_close(again.score.weight, model.score.weight, rtol=0, atol=0)
    assert not torch.equal(make_model(spec, tok, seed=2).score.weight, model.score.weight)


def test_missing_or_incomplete_folder_is_one_clear_error(tmp_path, capsys):
    from softleak.cli import main

    with pytest.raises(GPT2Error, match="no such folder"):
        check_pretrained(tmp_path / "nowhere")
    only_tokenizer = tmp_path / "tok"
    sequence_tokenizer(20).save_pretrained(only_tokenizer)
    with pytest.raises(GPT2Error, match="config.json"):
        check_pretrained(only_tokenizer)
    for folder in (tmp_path / "nowhere", only_tokenizer):
        out = tmp_path / "out"
        code = main(["simulate", "gpt2", "--pretrained", str(folder), "--out", str(out)])
        assert code == 2 and not out.exists()
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(folder) in err


def test_cli_rejects_bad_input(tmp_path, capsys):
    from softleak.cli import main

    out = tmp_path / "out"
    args = ["simulate", "gpt2", "--config", "tiny", "--out", str(out)]

    def code(extra):
        try:
            return main([*args, *extra])
        except SystemExit as exc:  # argparse's own errors
            return exc.code

    assert code(["--n-embd", "130"]) == 2  # not a multiple of 4 heads
    assert code(["--rho", "0.5,1.5"]) == 2
    assert code(["--n", "1000", "--vocab", "5"]) == 2  # too few distinct sequences
    assert not out.exists()
    for err in capsys.readouterr().err.strip().splitlines():
        assert "error" in err


def test_minibatch_fit_is_seeded_and_leaves_global_rng_alone(global_seed):
    torch.manual_seed(global_seed)
    X = torch.randn(40, 5)
    y = torch.randint(0, 3, (40,))

    def train():
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.3))
        torch.nn.init.zeros_(model[0].bias)
        with torch.no_grad():
            model[0].weight.copy_(torch.linspace(-1, 1, 40).reshape(8, 5))
        state = torch.get_rng_state()
        config = MinibatchConfig(epochs=3, batch_size=16, lr=1e-2)
        result = fit_minibatch(_Wrap(model), {"x": X}, y, config, seed=global_seed)
        assert torch.equal(torch.get_rng_state(), state)
        assert result.steps == 3 * 3 and len(result.epoch_loss) == 3
        return model[0].weight.detach().clone()

    torch.testing.assert_close(train(), train(), rtol=0, atol=0)


class _Wrap(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def test_tiny_run_memorizes_and_a_rerun_trains_nothing(tmp_path, monkeypatch):
    out = tmp_path / "run"
    table = run_gpt2(TINY, out, threads=1, progress=False)
    assert len(table) == 1
    row = table.iloc[0]
    assert row.experiment == "gpt2" and row.n == 60 and row.c == 4 and row.rho == 0.5
    assert row.teacher_train_acc == 1.0  # the teacher memorizes its 60 sequences
    for col in ("student_train_acc", "student_test_acc", "student_val_acc"):
        assert 0 <= row[col] <= 1
    saved = pd.read_parquet(out / "data.parquet")
    assert (saved["set"] == "teacher").sum() == 60 and (saved["set"] == "val").sum() == 20
    config = json.loads((out / "config.json").read_text())
    assert config["run_id"] == TINY.run_id()
    assert config["model_config"]["n_layer"] == 1 and config["spec"]["n_embd"] == 16
    state = torch.load(out / "teacher.pt", weights_only=True)
    assert "score.weight" in state

    def boom(*args, **kwargs):
        raise AssertionError("a rerun must not train")

    monkeypatch.setattr(gpt2_run, "train_teacher", boom)
    monkeypatch.setattr(gpt2_run, "train_student", boom)
    again = run_gpt2(TINY, out, threads=1, progress=False)
    pd.testing.assert_frame_equal(again, table)
    # other teacher settings on the same directory: refused
    with pytest.raises(IdentityMismatch, match="teacher_epochs"):
        run_gpt2(dataclasses.replace(TINY, teacher_epochs=3), out, threads=1, progress=False)
    # a grown student grid keeps the teacher and the finished students: only the new ones train
    trained = []
    monkeypatch.setattr(gpt2_run, "train_student", lambda *a, **k: trained.append(a[5]) or boom())
    with pytest.raises(AssertionError):
        run_gpt2(dataclasses.replace(TINY, rho=(*TINY.rho, 0.9)), out, threads=1, progress=False)
    assert trained == [0.9]


def test_saved_teacher_is_reused_by_new_students(tmp_path, monkeypatch):
    """A killed run (teacher saved, no student done) resumes without retraining the teacher."""
    out = tmp_path / "run"
    spec = dataclasses.replace(TINY, teacher_epochs=2, student_epochs=1)
    run_gpt2(spec, out, threads=1, progress=False)
    for part in (out / "parts").glob("*.parquet"):
        part.unlink()
    (out / "results.parquet").unlink()

    def boom(*args, **kwargs):
        raise AssertionError("the saved teacher must be reused")

    monkeypatch.setattr(gpt2_run, "train_teacher", boom)
    table = run_gpt2(spec, out, threads=1, progress=False)
    assert len(table) == 1
