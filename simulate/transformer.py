"""The 1-layer transformer of Nanda et al. (2023) for modular addition, with a replica axis.

R independent models run as one tensor program: every parameter has a leading replica axis and every
matrix product is a ``bmm`` over it. The architecture is Nanda et al.'s (their ``Transformer`` with
``num_layers=1``, ``use_ln=False``): token and learned position embeddings, one causal multi-head
attention layer, a ReLU MLP, both residual, no LayerNorm, and an unembedding read at the last
position ("="). The readout has p outputs (the labels), as in the paper (Nanda's code reads p + 1
logits and never uses the last).

Initialisation follows Nanda's code -- ``randn / sqrt(fan)`` with their fans: W_E, W_pos, W_Q, W_K,
W_V, W_O, W_in and W_out divided by sqrt(d_model), W_U by sqrt(d_vocab) (d_vocab = p + 1), the biases
b_in, b_out zero -- drawn per replica from its own seeded CPU generator, so a replica's weights do not
depend on its batch or device. Matrices are stored in the ``x @ W`` orientation (the transpose of
Nanda's for some); entries are i.i.d., so the distribution is the same.

Only the last position reaches the output of a 1-layer causal model: ``forward`` computes keys and
values at all three positions but the query, the attention output, the MLP and the unembedding at the
last one only (~2x fewer FLOPs; a test checks it equals the full causal forward). The last position
attends to all positions, so no mask is needed there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: Parameter names in ``params`` order. Shapes (replica axis R first):
#: W_E (R, V, d), W_pos (R, ctx, d), W_Q/W_K/W_V (R, d, H*dh), W_O (R, H*dh, d),
#: W_in (R, d, m), b_in (R, m), W_out (R, m, d), b_out (R, d), W_U (R, d, p).
NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
CONTEXT = 3  # tokens per example: a, b, "="


class ReplicaTransformer:
    """R independent 1-layer transformers (vocabulary p + 1, p output classes).

    ``params`` lists the tensors of ``NAMES`` in that order, each with a leading replica axis.
    Inputs are token matrices, shared (n, 3) by all replicas or per replica (R, n, 3), dtype long.
    """

    def __init__(self, params: list[torch.Tensor], n_heads: int):
        if len(params) != len(NAMES):
            raise ValueError(f"expected {len(NAMES)} parameter tensors, got {len(params)}")
        self.params = params
        self.n_heads = int(n_heads)

    # construction -------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        seeds: Sequence[int],
        p: int,
        d_model: int = 128,
        n_heads: int = 4,
        d_head: int = 32,
        d_mlp: int = 512,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> ReplicaTransformer:
        """Nanda et al.'s initialisation, one seeded CPU generator per replica (see module doc)."""
        V, d, hd = p + 1, d_model, n_heads * d_head
        shapes = {
            "W_E": ((V, d), d),
            "W_pos": ((CONTEXT, d), d),
            "W_Q": ((d, hd), d),
            "W_K": ((d, hd), d),
            "W_V": ((d, hd), d),
            "W_O": ((hd, d), d),
            "W_in": ((d, d_mlp), d),
            "b_in": ((d_mlp,), None),
            "W_out": ((d_mlp, d), d),
            "b_out": ((d,), None),
            "W_U": ((d, p), V),
        }
        per_replica = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed))
            tensors = []
            for name in NAMES:
                shape, fan = shapes[name]
                if fan is None:
                    tensors.append(torch.zeros(shape, dtype=torch.float64))
                else:
                    w = torch.randn(shape, generator=gen, dtype=torch.float64)
                    tensors.append(w / math.sqrt(fan))
            per_replica.append(tensors)
        params = [
            torch.stack([t[i] for t in per_replica]).to(device=device, dtype=dtype)
            for i in range(len(NAMES))
        ]
        return cls(params, n_heads)

    # shapes ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self.params[NAMES.index(name)]

    @property
    def replicas(self) -> int:
        return int(self.params[0].shape[0])

    @property
    def p(self) -> int:
        """Output classes (the modulus)."""
        return int(self["W_U"].shape[-1])

    @property
    def d_model(self) -> int:
        return int(self["W_E"].shape[-1])

    @property
    def d_head(self) -> int:
        return int(self["W_Q"].shape[-1]) // self.n_heads

    @property
    def d_mlp(self) -> int:
        return int(self["W_in"].shape[-1])

    # forward --------------------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings (R, n, 3, d) of tokens (n, 3) or (R, n, 3)."""
        W_E, W_pos = self["W_E"], self["W_pos"]  # (R, V, d), (R, 3, d)
        R, _, d = W_E.shape
        n, ctx = tokens.shape[-2:]
        if tokens.dim() == 2:  # shared tokens: one index_select for all replicas
            x = W_E.index_select(1, tokens.reshape(-1))  # (R, n*ctx, d)
        else:
            idx = tokens.reshape(R, n * ctx, 1).expand(R, n * ctx, d)
            x = torch.gather(W_E, 1, idx)  # (R, n*ctx, d)
        return x.view(R, n, ctx, d) + W_pos[:, None, :ctx]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (R, n, p) at the last position of tokens (n, 3) shared or (R, n, 3)."""
        x = self.embed(tokens)  # (R, n, ctx, d)
        R, n, ctx, d = x.shape
        H, dh = self.n_heads, self.d_head
        flat = x.reshape(R, n * ctx, d)
        k = torch.bmm(flat, self["W_K"]).view(R, n, ctx, H, dh)
        v = torch.bmm(flat, self["W_V"]).view(R, n, ctx, H, dh)
        last = x[:, :, -1]  # (R, n, d): the "=" position, which attends to every position
        q = torch.bmm(last, self["W_Q"]).view(R, n, 1, H, dh)
        scores = (q * k).sum(-1) / math.sqrt(dh)  # (R, n, ctx, H)
        attn = torch.softmax(scores, dim=2)
        z = (attn.unsqueeze(-1) * v).sum(2)  # (R, n, H, dh)
        resid = last + torch.bmm(z.reshape(R, n, H * dh), self["W_O"])  # (R, n, d)
        return self._mlp_unembed(resid)

    def _mlp_unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """resid (R, n, d) -> logits (R, n, p): the residual ReLU MLP, then the unembedding."""
        h = torch.relu(torch.baddbmm(self["b_in"].unsqueeze(1), resid, self["W_in"]))  # (R, n, m)
        resid = resid + torch.baddbmm(self["b_out"].unsqueeze(1), h, self["W_out"])
        return torch.bmm(resid, self["W_U"])

    # bookkeeping ----------------------------------------------------------------------------
    def n_params(self) -> int:
        """Parameters of one replica."""
        return sum(p[0].numel() for p in self.params)

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 of one forward pass (last-position shortcut) of one replica."""
        return flops_per_sample(self.p, self.d_model, self.n_heads, self.d_head, self.d_mlp)

    def activations_per_sample(self) -> int:
        """Activation entries of one replica's step on one example: the embeddings, keys and values
        at every position; the query, scores, attention output, residuals, MLP and logits at the
        last (what a compiled step's fused elementwise work scales with: ``simulate.train``)."""
        d, hd, H = self.d_model, self.n_heads * self.d_head, self.n_heads
        return CONTEXT * (d + 2 * hd + 2 * H) + 2 * hd + 2 * d + self.d_mlp + self.p

    def select(self, index: Sequence[int]) -> ReplicaTransformer:
        """A model holding only the given replicas (copies)."""
        idx = torch.as_tensor(list(index), device=self.params[0].device)
        return ReplicaTransformer(
            [p.index_select(0, idx).clone() for p in self.params], self.n_heads
        )

    def state(self) -> dict[str, torch.Tensor]:
        """Weights by name (CPU tensors) plus ``n_heads``; loadable with ``weights_only=True``."""
        out = {name: p.detach().cpu() for name, p in zip(NAMES, self.params, strict=True)}
        out["n_heads"] = torch.tensor(self.n_heads)
        return out

    @classmethod
    def from_state(
        cls, state: dict[str, torch.Tensor], device: str | torch.device = "cpu", dtype=None
    ) -> ReplicaTransformer:
        params = [state[name].to(device=device, dtype=dtype or state[name].dtype) for name in NAMES]
        return cls(params, int(state["n_heads"]))


def flops_per_sample(p: int, d_model: int, n_heads: int, d_head: int, d_mlp: int) -> int:
    """Forward multiply-adds x 2 per example with the last-position shortcut: keys and values at
    all 3 positions, the query, attention, W_O, the MLP and the unembedding at the last."""
    hd = n_heads * d_head
    macs = (
        2 * CONTEXT * d_model * hd  # keys and values
        + d_model * hd  # query
        + 2 * CONTEXT * hd  # scores and the weighted sum of values
        + hd * d_model  # W_O
        + 2 * d_model * d_mlp  # MLP
        + d_model * p  # unembedding
    )
    return 2 * macs
