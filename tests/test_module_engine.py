"""Any torch module as students (``simulate.module_engine``, ``simulate.factories``), in the
trainer and in the audit.

Oracles: a hand-written MLP module given the weights ``ReplicaMLP`` draws trains to the same
weights as ``ReplicaMLP`` (float32 round-off), through the trainer and through the whole audit
(``--student mlp``); vmap == loop; batched == one replica at a time, for a module with dropout
(its own generator per replica) and one with batch norm; a batch-norm student's training never
sees held-out rows; wrong shapes and eval-mode cross-sample modules are refused in one line.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from softleak.cli import main
from softleak.simulate.audit_data import AuditData
from softleak.simulate.device import thread_count
from softleak.simulate.factories import _LOADED, Factory, factory_identity
from softleak.simulate.leakage_audit import AuditSpec, _train_and_predict, audit, units_of
from softleak.simulate.losses import Objective
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.module_engine import ModuleReplicas
from softleak.simulate.optim import AdamConfig
from softleak.simulate.train import fit

D, C, H = 12, 4, 8
# Float32 round-off through a short Adam run: parameters agree to ~1e-6 after 60 steps at lr
# 1e-2 (measured 2e-7); 1e-4 leaves room and still catches any real difference (a wrong bias,
# a transposed weight: O(1e-1)).
ROUND_OFF = 1e-4


def hand_mlp(in_shape, c):
    """A one-hidden-layer ReLU MLP written by hand as a module."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(int(np.prod(in_shape)), H), nn.ReLU(), nn.Linear(H, c)
    )


def replica_like_mlp(in_shape, c):
    """``hand_mlp`` initialised with the weights ``ReplicaMLP.init`` draws for the seed the
    factory is built under (``built_module`` seeds torch with it)."""
    module = hand_mlp(in_shape, c)
    ref = ReplicaMLP.init([torch.initial_seed()], int(np.prod(in_shape)), c, (H,), True)
    with torch.no_grad():
        for p, v in zip(module.parameters(), ref.params, strict=True):
            p.copy_(v[0])
    return module


def dropout_mlp(in_shape, c):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(np.prod(in_shape)), H),
        nn.Dropout(0.3),
        nn.ReLU(),
        nn.Linear(H, c),
    )


def batchnorm_mlp(in_shape, c):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(np.prod(in_shape)), H),
        nn.BatchNorm1d(H),
        nn.ReLU(),
        nn.Linear(H, c),
    )


class Branchy(nn.Module):
    """Data-dependent control flow: vmap cannot run it."""

    def __init__(self, d, c):
        super().__init__()
        self.lin = nn.Linear(d, c)

    def forward(self, x):
        z = self.lin(x.flatten(1))
        return z if z.sum() > 0 else -z


class BatchCentred(nn.Module):
    """Subtracts the batch mean in eval mode too: a prediction depends on the other rows."""

    def __init__(self, d, c):
        super().__init__()
        self.lin = nn.Linear(d, c)

    def forward(self, x):
        z = self.lin(x.flatten(1))
        return z - z.mean(0)


def data(seed, n=60):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, D, generator=g)
    return X, torch.randint(0, C, (n,), generator=g)


def _fit(model, X, y, epochs=60):
    with thread_count(1):  # tiny steps: two threads on a shared CPU are ~10x slower
        fit(model, X, Objective("ce", y), epochs=epochs, optim=AdamConfig(lr=1e-2))


@pytest.mark.parametrize("engine", ["vmap", "loop"])
def test_a_hand_written_mlp_given_replica_mlp_weights_trains_like_it(engine, global_seed):
    X, y = data(global_seed)
    seeds = [global_seed, global_seed + 1, global_seed + 2]
    ref = ReplicaMLP.init(seeds, D, C, (H,), True)
    model = ModuleReplicas.init(hand_mlp, seeds, (D,), C, engine=engine)
    model.load([p.clone() for p in ref.params])
    assert model.engine == engine
    _fit(ref, X, y)
    _fit(model, X, y)
    for a, b in zip(model.params, ref.params, strict=True):
        assert torch.allclose(a, b, atol=ROUND_OFF, rtol=ROUND_OFF)
    assert torch.allclose(model.forward(X), ref.forward(X), atol=10 * ROUND_OFF)


@pytest.mark.parametrize("factory", [batchnorm_mlp, dropout_mlp])
@pytest.mark.parametrize("engine", ["vmap", "loop"])
def test_batched_equals_one_replica_at_a_time(factory, engine, global_seed):
    X, y = data(global_seed)
    seeds = [global_seed, global_seed + 7, global_seed + 9]
    batch = ModuleReplicas.init(factory, seeds, (D,), C, engine=engine)
    _fit(batch, X, y, epochs=30)
    for r, seed in enumerate(seeds):
        alone = ModuleReplicas.init(factory, [seed], (D,), C, engine=engine)
        _fit(alone, X, y, epochs=30)
        for a, b in zip(batch.params, alone.params, strict=True):
            assert torch.allclose(a[r], b[0], atol=ROUND_OFF, rtol=ROUND_OFF)
    assert batch.cross_sample == (factory is batchnorm_mlp)
    if factory is dropout_mlp:  # replicas draw their own noise: never vmapped
        assert batch.engine == "loop"


def test_vmap_and_loop_agree_with_batch_norm():
    """Compared by their training-mode logits: the first layer's bias, which batch norm cancels,
    has a gradient of pure round-off that Adam turns into lr-sized steps, differently per
    engine, without changing the function."""
    X, y = data(3)
    models = [
        ModuleReplicas.init(batchnorm_mlp, [1, 2], (D,), C, engine=e) for e in ("vmap", "loop")
    ]
    for m in models:
        _fit(m, X, y, epochs=20)
    with torch.no_grad():
        a, b = (m.forward(X) for m in models)
    assert torch.allclose(a, b, atol=10 * ROUND_OFF)


def test_a_module_vmap_cannot_run_falls_back_to_the_loop(caplog):
    with caplog.at_level(logging.INFO, logger="softleak.simulate.module_engine"):
        model = ModuleReplicas.init(lambda s, c: Branchy(D, c), [1, 2], (D,), C, engine="vmap")
    assert model.engine == "loop"
    assert sum("cannot be vmapped" in r.message for r in caplog.records) == 1
    assert model.forward(torch.randn(5, D)).shape == (2, 5, C)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda s, c: nn.Linear(D, c + 1), "it must return logits"),
        (lambda s, c: BatchCentred(D, c), "depends on the other inputs"),
        (lambda s, c: nn.ReLU(), "without parameters"),
        (lambda s, c: "not a module", "must return a torch.nn.Module"),
        (lambda s, c: nn.Linear(D + 1, c), "fails on inputs"),
    ],
)
def test_bad_modules_are_one_line_errors(factory, message):
    with pytest.raises(ValueError, match=message) as err:
        ModuleReplicas.init(factory, [0], (D,), C)
    assert "\n" not in str(err.value)


def test_images_keep_their_shape_and_flops_are_counted():
    model = ModuleReplicas.init("cnn", [0, 1], (1, 8, 8), 10)
    assert model.forward(torch.randn(3, 64)).shape == (2, 3, 10)
    assert model.flops_per_sample() > 2 * 32 * 16 * 9 * 64  # the second convolution alone
    with pytest.raises(ValueError, match="needs image inputs"):
        ModuleReplicas.init("cnn", [0], (64,), 10)


FACTORY_FILE = """
import torch.nn as nn

def net(in_shape, c):
    d = 1
    for v in in_shape:
        d *= v
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 6), nn.Tanh(), nn.Linear(6, c))

def wrong(in_shape, c):
    return nn.Linear(3, c)
"""


def _factory_file(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(FACTORY_FILE)
    return path


def test_a_file_factory_is_named_by_sha_and_shapes_and_reaches_other_processes(tmp_path):
    path = _factory_file(tmp_path)
    f = Factory.of(f"{path}:net")
    ident = factory_identity(f, (2, 3), 4)
    assert ident["name"] == "net" and len(ident["sha256"]) == 64
    assert ident["params"] == [
        ["1.weight", [6, 6]],
        ["1.bias", [6]],
        ["3.weight", [4, 6]],
        ["3.bias", [4]],
    ]
    assert "object at" not in json.dumps(ident)
    # by file and name: a fresh process rebuilds it from the pickle
    code = (
        "import pickle, sys; f = pickle.loads(sys.stdin.buffer.read()); "
        "m = f.function()((2, 3), 4); print(sum(p.numel() for p in m.parameters()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(f), capture_output=True, check=True
    )
    assert out.stdout.decode().strip() == "70"
    # a changed file is refused where it is loaded again
    _LOADED.clear()
    path.write_text(FACTORY_FILE + "\n# edited\n")
    with pytest.raises(ValueError, match="changed since this run started"):
        pickle.loads(pickle.dumps(f)).function()


@pytest.mark.parametrize(
    "text, message",
    [("nofile.py:net", "no such factory file"), ("resnet", "unknown architecture")],
)
def test_bad_factory_names_are_one_line(text, message):
    with pytest.raises(ValueError, match=message):
        Factory.of(text)


# --- the audit with module students --------------------------------------------------------------
def _audit_data(seed, n=60, t=40):
    rng = np.random.default_rng(seed)
    X, Xh = rng.standard_normal((n, D)), rng.standard_normal((t, D))
    W = rng.standard_normal((D, C)) * 2
    return AuditData(X @ W, (X @ W).argmax(1), X, Xh @ W, (Xh @ W).argmax(1), Xh)


def test_the_audit_with_the_hand_mlp_reproduces_student_mlp(global_seed):
    data = _audit_data(global_seed)
    common = dict(rho=(0.5,), seeds=2, epochs=60, lr=1e-2, settings=("soft", "hard", "shuffle"))
    ref = audit(data, AuditSpec(student="mlp", width=(H,), **common))
    mine = audit(data, AuditSpec(student=replica_like_mlp, **common))
    assert (mine.rows["student"] == f"{__name__}.replica_like_mlp").all()
    a, b = ref.examples["score"].to_numpy(), mine.examples["score"].to_numpy()
    assert np.allclose(a, b, atol=ROUND_OFF)


def test_a_batchnorm_student_never_trains_on_held_out_rows(global_seed):
    data = _audit_data(global_seed)
    spec = AuditSpec(student=batchnorm_mlp, rho=(0.5,), seeds=1, epochs=30, settings=("soft",))
    unit = units_of(spec, data)[0]
    moved = data.inputs.copy()
    moved[unit.test] += 5.0  # the held-out members' inputs change; the student's own rows do not
    other = AuditData(
        data.logits,
        data.labels,
        moved,
        data.holdout_logits,
        data.holdout_labels,
        data.holdout_inputs,
    )
    soft = data.logits[None, unit.train] * 0 + 1.0 / C
    runs = [_train_and_predict(spec, d, unit, soft, 5, 1) for d in (data, other)]
    assert np.array_equal(runs[0][0], runs[1][0])  # predictions on its training rows
    assert np.array_equal(runs[0][2][1], runs[1][2][1])  # scores of the non-members


def test_audit_cli_with_a_factory_file_and_image_inputs(tmp_path, capsys):
    path = _factory_file(tmp_path)
    data = _audit_data(0)
    X = data.inputs.reshape(-1, 1, 3, 4)  # images (C, H, W) = (1, 3, 4)
    np.savez(tmp_path / "m.npz", logits=data.logits, labels=data.labels, inputs=X)
    base = ["audit", "--members", str(tmp_path / "m.npz"), "--rho", "0.5", "--seeds", "1"]
    args = [*base, "--student", f"{path}:net", "--epochs", "20", "--settings", "soft,hard"]
    assert main([*args, "--out", str(tmp_path / "run"), "--json"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    student = config["identity"]["student"]
    assert student["name"] == "net" and student["params"][0] == ["1.weight", [6, 12]]
    assert config["data"]["input_shape"] == [1, 3, 4]
    capsys.readouterr()
    for extra, message in (
        (["--student", f"{path}:wrong"], "fails on inputs"),
        (["--student", f"{path}:net", "--precision", "bf16"], "use fp32"),
        (["--student", f"{path}:nothere"], "defines no function"),
    ):
        out = tmp_path / "bad"
        assert main([*base, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (out / "results.parquet").exists()
