"""The model families (the 1-layer transformer, the MLP of Fig. 11): fresh and saved models,
their inputs, and the forward on all pairs a bounded number of rows at a time."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from softleak.simulate.modadd.spec import ModAddSpec
from softleak.simulate.models import ReplicaMLP
from softleak.simulate.precision import DTYPES
from softleak.simulate.transformer import ReplicaTransformer

#: Activation entries per example and replica kept at once by the chunked evaluation: about
#: ``EVAL_ENTRIES`` floats (256 MB in float32) per chunk whatever the number of replicas.
EVAL_ENTRIES = 2**26


def make_model(spec: ModAddSpec, seeds: Sequence[int]):
    """R fresh models of the spec's family, one per seed."""
    dtype = DTYPES[spec.dtype]
    if spec.model == "transformer":
        return ReplicaTransformer.init(
            seeds, spec.p, spec.d_model, spec.n_heads, spec.d_head, spec.d_mlp, dtype, spec.device
        )
    return ReplicaMLP.init(seeds, 2 * spec.p, spec.p, spec.hidden, True, dtype, spec.device)


def model_from_state(spec: ModAddSpec, state: dict):
    dtype = DTYPES[spec.dtype]
    if spec.model == "transformer":
        return ReplicaTransformer.from_state(state, spec.device, dtype)
    params = [state[f"p{i}"].to(device=spec.device, dtype=dtype) for i in range(len(state))]
    return ReplicaMLP(params, bias=True)


def model_inputs(spec: ModAddSpec, tokens: torch.Tensor) -> torch.Tensor:
    """What the model reads for tokens (..., 3): the tokens themselves (transformer) or the
    one-hot (a, b) vector of size 2p (MLP)."""
    if spec.model == "transformer":
        return tokens
    p = spec.p
    onehot = torch.nn.functional.one_hot(tokens[..., :2], p)  # (..., 2, p)
    return onehot.flatten(-2).to(DTYPES[spec.dtype])


def _activation_width(spec: ModAddSpec) -> int:
    """Floats per example and replica the forward holds at its peak (for eval chunking)."""
    if spec.model == "transformer":
        return 3 * (3 * spec.d_model) + spec.d_model + spec.d_mlp + 2 * spec.p
    return 2 * spec.p + sum(spec.hidden) + 2 * spec.p


@torch.no_grad()
def forward_chunked(spec: ModAddSpec, model, X: torch.Tensor) -> torch.Tensor:
    """Logits (R, N, p) in float64 of shared inputs X (N, ...), a bounded number of rows at a time."""
    R, N = len(model.params[0]), X.shape[0]
    chunk = max(64, EVAL_ENTRIES // (R * _activation_width(spec)))
    return torch.cat([model.forward(X[s : s + chunk]).double() for s in range(0, N, chunk)], 1)
