"""Model families with a replica axis: R independent models evaluated as one tensor program.

Every parameter has a leading replica axis R. Inputs are either *shared* -- one matrix X (n, d) that
all replicas read, so the first layer of all R models is ONE matrix multiply X @ W_all^T with
W_all (R*k, d) -- or *per replica*, X (R, n, d), evaluated with ``bmm``.

Each family gives logits (R, n, k) and an analytic ``backward`` (dL/dlogits -> parameter gradients);
the trainer falls back to autograd for families without one. Initialisation follows PyTorch's
``nn.Linear`` default (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn per replica from
its own seeded CPU generator, so a replica's initial weights do not depend on its batch or device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

# Per-replica inputs with at most this many outputs use one matrix-vector product per replica.
FEW_OUTPUTS = 4


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def _first_layer(X: torch.Tensor, W: torch.Tensor, class_major: bool = False) -> torch.Tensor:
    """X (n, d) shared or (R, n, d); W (R, k, d) -> (R, n, k).

    Shared X: one GEMM for all replicas. ``class_major`` lays the result out physically as
    (n, k, R) (returned as an (R, n, k) view): then softmax over few classes reduces over a middle
    axis with replicas contiguous, ~14x faster on CPU than over a last axis of size 2.
    """
    R, k, d = W.shape
    if X.dim() == 2:
        n = X.shape[0]
        if class_major:
            out = X @ W.transpose(0, 1).reshape(k * R, d).T  # (n, k*R)
            return out.view(n, k, R).permute(2, 0, 1)
        out = X @ W.reshape(R * k, d).T  # (n, R*k)
        return out.view(n, R, k).transpose(0, 1)
    if k <= FEW_OUTPUTS:
        # Matrix-vector products: one call per replica beats bmm ~2x here (d = 1600: 7 vs 12 ms).
        return torch.stack([X[r] @ W[r].T for r in range(R)])
    return torch.bmm(X, W.transpose(1, 2))


def is_class_major(G: torch.Tensor) -> bool:
    """True for an (R, n, k) view of a contiguous (n, k, R) tensor."""
    return G.dim() == 3 and G.permute(1, 2, 0).is_contiguous() and G.shape[0] > 1


def _first_layer_grad(X: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """dL/dW (R, k, d) for G = dL/d(first layer output) (R, n, k): one GEMM for shared X."""
    R, n, k = G.shape
    if X.dim() == 2:
        if is_class_major(G):
            grad = G.permute(1, 2, 0).reshape(n, k * R).T @ X  # (k*R, d)
            return grad.view(k, R, X.shape[1]).transpose(0, 1).contiguous()
        return (G.transpose(0, 1).reshape(n, R * k).T @ X).view(R, k, X.shape[1])
    if k <= FEW_OUTPUTS:
        return torch.stack([G[r].T @ X[r] for r in range(R)])  # bmm: 19 ms, this: 6 ms (d = 1600)
    return torch.bmm(G.transpose(1, 2), X)


def softmax_classes(z: torch.Tensor, log: bool = False) -> torch.Tensor:
    """(log-)softmax over the last (class) axis of z (..., k), fast for any layout.

    Reduces over a non-innermost axis when classes are few (see ``_first_layer``).
    """
    fn = torch.log_softmax if log else torch.softmax
    if is_class_major(z):
        return fn(z.permute(1, 2, 0), 1).permute(2, 0, 1)
    if z.dim() == 3 and z.shape[-1] <= 16 and z.is_contiguous():
        return fn(z.transpose(1, 2).contiguous(), 1).transpose(1, 2)
    return fn(z, -1)


class ReplicaModel(Protocol):
    """What the sweep engine (``simulate.protocol``) asks of R models run as one program, and
    what ``ReplicaMLP`` provides: the one place a new architecture plugs in (with its builder,
    ``protocol.replica_models``). ``simulate.train.fit`` needs only ``params``, ``replicas`` and
    ``forward`` (and uses ``forward_backward`` when a model has one)."""

    params: list[torch.Tensor]  # per tensor a leading replica axis R; Adam updates them in place

    @property
    def replicas(self) -> int: ...

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (R, n, k) of inputs X (n, d) shared by every replica or (R, n, d)."""
        ...

    def select(self, index: Sequence[int]) -> ReplicaModel:
        """A model holding only the given replicas (copies)."""
        ...

    def empty_like_logits(self, n: int, k: int, shared: bool = True, **kw: Any) -> torch.Tensor:
        """An empty (R, n, k) tensor laid out as the logits (targets combine elementwise)."""
        ...

    def n_params(self) -> int: ...

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 of one forward pass of one replica on one sample."""
        ...

    def state(self) -> dict[str, torch.Tensor]:
        """The weights to save (``simulate.store.save_state``; a saved teacher's ``p{i}``)."""
        ...


class ReplicaMLP:
    """R independent fully connected ReLU networks d -> hidden... -> k (``hidden=()``: linear).

    ``params`` lists, per layer, the weight (R, out, in) and then, with biases, the bias (R, out).
    """

    def __init__(self, params: list[torch.Tensor], bias: bool):
        self.params = params
        self.bias = bias

    @classmethod
    def init(
        cls,
        seeds: Sequence[int],
        d: int,
        k: int,
        hidden: Sequence[int] = (),
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> ReplicaMLP:
        """PyTorch-default initialisation, one seeded generator per replica."""
        sizes = [d, *hidden, k]
        per_replica = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed))
            layers = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
                bound = fan_in**-0.5
                layers.append(_uniform((fan_out, fan_in), bound, gen))
                if bias:
                    layers.append(_uniform((fan_out,), bound, gen))
            per_replica.append(layers)
        params = [
            torch.stack([layers[i] for layers in per_replica]).to(device=device, dtype=dtype)
            for i in range(len(per_replica[0]))
        ]
        return cls(params, bias)

    @property
    def replicas(self) -> int:
        return int(self.params[0].shape[0])

    @property
    def n_layers(self) -> int:
        return len(self.params) // (2 if self.bias else 1)

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        step = 2 if self.bias else 1
        return self.params[step * i], (self.params[step * i + 1] if self.bias else None)

    def forward(self, X: torch.Tensor, keep: list | None = None) -> torch.Tensor:
        """Logits (R, n, k). X (n, d) shared or (R, n, d). ``keep`` collects hidden activations."""
        h = X
        for i in range(self.n_layers):
            W, b = self.layer(i)
            if i == 0:
                h = _first_layer(h, W, class_major=self.n_layers == 1)
            else:
                h = torch.bmm(h, W.transpose(1, 2))
            if b is not None:
                h = h + b.unsqueeze(1)
            if i < self.n_layers - 1:
                h = torch.relu(h)
                if keep is not None:
                    keep.append(h)
        return h

    def forward_backward(self, X: torch.Tensor, grad_fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One pass: logits and analytic parameter gradients.

        ``grad_fn(logits) -> dL/dlogits (R, n, k)``.
        """
        acts: list[torch.Tensor] = []
        logits = self.forward(X, keep=acts)
        G = grad_fn(logits)
        grads: list[torch.Tensor] = [None] * len(self.params)  # type: ignore[list-item]
        step = 2 if self.bias else 1
        for i in reversed(range(self.n_layers)):
            W, _ = self.layer(i)
            inp = acts[i - 1] if i > 0 else X
            grads[step * i] = (
                _first_layer_grad(inp, G) if i == 0 else torch.bmm(G.transpose(1, 2), inp)
            )
            if self.bias:
                grads[step * i + 1] = G.sum(1)
            if i > 0:
                G = torch.bmm(G, W) * (acts[i - 1] > 0)
        return logits, grads

    def empty_like_logits(self, n: int, k: int, shared: bool = True, **kw) -> torch.Tensor:
        """An empty (R, n, k) tensor laid out as this model's logits for shared inputs, so that
        targets and logits combine elementwise without strided access."""
        R = self.replicas
        if shared and self.n_layers == 1:
            return torch.empty(n, k, R, **kw).permute(2, 0, 1)
        return torch.empty(R, n, k, **kw)

    def n_params(self) -> int:
        """Parameters of one replica."""
        return sum(p[0].numel() for p in self.params)

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 of one forward pass of one replica on one sample."""
        return 2 * sum(self.layer(i)[0][0].numel() for i in range(self.n_layers))

    def activations_per_sample(self) -> int:
        """Activation entries of one replica's step on one sample (hidden layers and logits): what
        a compiled step's fused elementwise work scales with (``simulate.train``'s threshold)."""
        return sum(int(self.layer(i)[0].shape[1]) for i in range(self.n_layers))

    def select(self, index: Sequence[int]) -> ReplicaMLP:
        """A model holding only the given replicas (copies)."""
        idx = torch.as_tensor(list(index), device=self.params[0].device)
        return ReplicaMLP([p.index_select(0, idx).clone() for p in self.params], self.bias)

    def state(self) -> dict[str, torch.Tensor]:
        return {f"p{i}": p.detach().cpu() for i, p in enumerate(self.params)}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], bias: bool, device="cpu") -> ReplicaMLP:
        params = [state[f"p{i}"].to(device) for i in range(len(state))]
        return cls(params, bias)
