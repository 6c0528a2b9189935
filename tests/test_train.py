"""The one trainer: analytic gradients == autograd, Adam == torch.optim.Adam, batched == alone."""

import pytest
import torch

from softleak.simulate.losses import Objective, normalized_weights
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.optim import Adam, AdamConfig
from softleak.simulate.train import fit

# float64 throughout: the comparisons below are between different summation orders of the same
# arithmetic, so they agree to ~1e-12; 1e-9 leaves room for accumulation over many steps.
TOL = 1e-9


def _problem(kind, R=3, n=24, d=7, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    if kind == "bce":
        k = 1
        targets = (torch.rand(n, generator=g) > 0.5).double()
    elif kind == "ce":
        targets = torch.randint(0, k, (n,), generator=g)
    else:
        targets = torch.softmax(torch.randn(R, n, k, generator=g, dtype=torch.float64), -1)
    mask = torch.rand(R, n, generator=g) > 0.3
    return X, k, Objective(kind, targets, normalized_weights(mask.double()))


@pytest.mark.parametrize("kind", ["bce", "ce", "soft"])
@pytest.mark.parametrize("hidden", [(), (5,), (5, 3)])
@pytest.mark.parametrize("shared", [True, False])
def test_analytic_backward_equals_autograd(kind, hidden, shared, global_seed):
    X, k, obj = _problem(kind, seed=global_seed)
    R = 3
    if not shared:
        X = X.expand(R, *X.shape).clone() + 0.1 * torch.randn(R, *X.shape, dtype=X.dtype)
    model = ReplicaMLP.init(
        [1, 2, 3], X.shape[-1], k, hidden, bias=bool(hidden), dtype=torch.float64
    )
    _, grads = model.forward_backward(X, obj.grad)
    for p in model.params:
        p.requires_grad_(True)
    auto = torch.autograd.grad(obj.value(model.forward(X)).sum(), model.params)
    for a, b in zip(grads, auto, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=TOL)


def test_adam_matches_torch_optim():
    g = torch.Generator().manual_seed(0)
    for wd, warm in [(0.0, 0), (1.0, 10)]:
        p = torch.randn(4, 3, generator=g, dtype=torch.float64)
        q = p.clone().requires_grad_(True)
        cfg = AdamConfig(lr=1e-2, weight_decay=wd, warmup=warm, betas=(0.9, 0.98))
        ours = Adam([p], cfg)
        opt_cls = torch.optim.AdamW if wd else torch.optim.Adam
        ref = opt_cls([q], lr=1e-2, betas=(0.9, 0.98), weight_decay=wd)
        sched = torch.optim.lr_scheduler.LambdaLR(
            ref, lambda s, warm=warm: min(1.0, (s + 1) / warm) if warm else 1.0
        )
        for _ in range(30):
            grad = torch.randn(4, 3, generator=g, dtype=torch.float64)
            ours.step([grad])
            q.grad = grad.clone()
            ref.step()
            sched.step()
        torch.testing.assert_close(p, q.detach(), atol=TOL, rtol=TOL)


@pytest.mark.parametrize("hidden", [(), (6,)])
def test_batched_training_equals_one_at_a_time(hidden, global_seed):
    X, k, obj = _problem("soft", seed=global_seed)
    seeds = [11, 12, 13]
    cfg = AdamConfig(lr=1e-2)
    batched = ReplicaMLP.init(seeds, X.shape[1], k, hidden, bias=bool(hidden), dtype=torch.float64)
    fit(batched, X, obj, epochs=50, optim=cfg)
    for r, s in enumerate(seeds):
        alone = ReplicaMLP.init([s], X.shape[1], k, hidden, bias=bool(hidden), dtype=torch.float64)
        one = Objective("soft", obj.targets[r : r + 1], obj.weights[r : r + 1])
        fit(alone, X, one, epochs=50, optim=cfg)
        for pb, pa in zip(batched.params, alone.params, strict=True):
            torch.testing.assert_close(pb[r], pa[0], atol=TOL, rtol=TOL)


def test_autograd_path_equals_analytic_path(global_seed):
    X, k, obj = _problem("ce", seed=global_seed)
    a = ReplicaMLP.init([5, 6, 7], X.shape[1], k, (4,), bias=True, dtype=torch.float64)
    b = ReplicaMLP.init([5, 6, 7], X.shape[1], k, (4,), bias=True, dtype=torch.float64)
    fit(a, X, obj, epochs=20, optim=AdamConfig(lr=1e-2), autograd=False)
    fit(b, X, obj, epochs=20, optim=AdamConfig(lr=1e-2), autograd=True)
    for pa, pb in zip(a.params, b.params, strict=True):
        torch.testing.assert_close(pa, pb, atol=TOL, rtol=TOL)


def test_per_replica_stop_freezes_each_replica_as_if_alone(global_seed):
    """A (R,) stop criterion freezes replicas one by one: each ends with the weights it has when
    trained alone with the same criterion, and ``stopped_at`` is its own first epoch meeting it."""
    X, k, obj = _problem("soft", seed=global_seed)
    seeds = [21, 22, 23]
    cfg = AdamConfig(lr=1e-2)

    def run(model, objective, every):
        t, w = objective.targets, objective.weights
        entropy = -(w * (t * t.log()).sum(-1)).sum(-1)  # (R,) the loss's floor (Gibbs)

        def kl(mdl):
            return objective.value(mdl.forward(X)) - entropy

        with torch.no_grad():
            level = kl(model) / 4  # per replica: a quarter of its initial KL to the targets
        return fit(
            model,
            X,
            objective,
            epochs=400,
            optim=cfg,
            stop=lambda mdl, epoch: kl(mdl) < level,
            stop_every=every,
        )

    batched = ReplicaMLP.init(seeds, X.shape[1], k, (6,), bias=True, dtype=torch.float64)
    result = run(batched, obj, 5)
    assert result.stopped_at is not None
    assert len(set(result.stopped_at.tolist())) > 1, "replicas should stop at different epochs"
    for r, s in enumerate(seeds):
        alone = ReplicaMLP.init([s], X.shape[1], k, (6,), bias=True, dtype=torch.float64)
        one = Objective("soft", obj.targets[r : r + 1], obj.weights[r : r + 1])
        single = run(alone, one, 5)
        assert int(single.stopped_at[0]) == int(result.stopped_at[r])
        for pb, pa in zip(batched.params, alone.params, strict=True):
            torch.testing.assert_close(pb[r], pa[0], atol=TOL, rtol=TOL)


def test_adam_step_leaves_frozen_replicas_untouched(global_seed):
    g = torch.Generator().manual_seed(global_seed)
    p = torch.randn(4, 3, 2, generator=g, dtype=torch.float64)
    opt = Adam([p], AdamConfig(lr=0.1))
    opt.step([torch.randn(4, 3, 2, generator=g, dtype=torch.float64)])
    before = (p.clone(), opt.m[0].clone(), opt.v[0].clone())
    frozen = torch.tensor([False, True, False, True])
    opt.step([torch.randn(4, 3, 2, generator=g, dtype=torch.float64)], frozen)
    for now, then in zip((p, opt.m[0], opt.v[0]), before, strict=True):
        assert torch.equal(now[frozen], then[frozen])
        assert not torch.equal(now[~frozen], then[~frozen])
