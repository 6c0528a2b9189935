"""bf16 matrix products by explicit casts: a torch function mode around a block of training steps.

Every matrix product the model families call -- ``@``, ``matmul``, ``mm``, ``bmm``, ``linear``,
``addmm``, ``baddbmm`` and ``scaled_dot_product_attention`` (decomposed into its two products, the
softmax in float32) -- on float32 operands runs on bf16 operands and returns float32:

- ``exact=False`` (precision ``bf16r``): bf16 tensors into the kernel (oneDNN's native bf16 GEMM on
  a CPU with bf16 units, cuBLAS on a GPU), which accumulates in float32 and rounds each product to
  bf16 once; the result is cast back to float32. Autograd's backward of a cast product is itself
  a bf16 product.
- ``exact=True`` (precision ``bf16``'s oracle and its emulation): the operands are rounded to bf16
  but multiplied in float32, so the product is bf16 operands with float32 accumulation and a
  float32 result, to the letter; through autograd the incoming gradient is rounded too, so
  backward products meet the same contract. It runs at float32 speed or slower: an oracle and an
  emulation, never a fast path.
- ``max_size`` (with ``exact=True``): intercept only products of at most this many multiply-adds
  (batch x m x k x n) and let larger ones through untouched -- oneDNN's bf16 flag leaves products
  of up to 16^3 multiply-adds to float32 BLAS, so the flag's mechanism rounds those here.

Float64 and integer products run as they are; the added term of ``addmm``/``baddbmm`` and a
``linear`` bias stay float32 (added after the product). Convolutions and other products not
listed above are not covered: a model that uses them cannot claim a bf16 contract.
"""

from __future__ import annotations

import functools
import math


def product_size(a_shape, b_shape) -> int:
    """Multiply-adds of ``matmul(a, b)`` for operand shapes ``a_shape``, ``b_shape`` (batch axes
    broadcast; a 1-D operand is a single row or column)."""
    import torch

    a, b = list(a_shape), list(b_shape)
    m = a[-2] if len(a) >= 2 else 1
    k = a[-1]
    n = b[-1] if len(b) >= 2 else 1
    batch = torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])) if len(a) > 2 or len(b) > 2 else ()
    return math.prod(batch) * m * k * n


def _rounding_functions():
    """The exact mode's two autograd functions: ``(_GradRound, _Round)`` (built by
    :func:`_mode_class`, once)."""
    import torch

    class _GradRound(torch.autograd.Function):
        # identity forward; the gradient flowing back is rounded to bf16 (the exact mode's
        # stand-in for autograd's bf16 backward products)
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return g.to(torch.bfloat16).to(g.dtype)

    class _Round(torch.autograd.Function):
        # the value rounded to bf16, the gradient passed on as it is (the exact mode's operands)
        @staticmethod
        def forward(ctx, x):
            return x.to(torch.bfloat16).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            return g

    return _GradRound, _Round


def _attention(product, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
               enable_gqa=False):  # fmt: skip
    """The math of ``scaled_dot_product_attention`` with its two products through ``product``
    (``product(torch.matmul, a, b)``: the mode's cast product) and the softmax in float32; masked
    scores take float32's lowest value (a fully masked row gets uniform weights, as transformers'
    eager attention gives it)."""
    import torch
    import torch.nn.functional as F

    if enable_gqa and k.size(-3) != q.size(-3):
        k = k.repeat_interleave(q.size(-3) // k.size(-3), -3)
        v = v.repeat_interleave(q.size(-3) // v.size(-3), -3)
    scale = 1 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = product(torch.matmul, q, k.transpose(-2, -1)) * scale
    low = torch.finfo(scores.dtype).min
    if is_causal:
        L, S = q.size(-2), k.size(-2)
        keep = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~keep, low)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, low)
        else:
            scores = scores + attn_mask
    weights = torch.softmax(scores.float(), dim=-1).to(scores.dtype)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p, training=True)
    return product(torch.matmul, weights, v)


@functools.lru_cache(maxsize=1)
def _mode_class():
    """The torch function mode class behind :class:`BF16Casts` (built once, on first use: torch is
    imported lazily)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    products = {
        torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm,
        torch.bmm, torch.Tensor.bmm, F.linear,
    }  # fmt: skip
    accumulating = {torch.baddbmm, torch.Tensor.baddbmm, torch.addmm, torch.Tensor.addmm}
    attention = {F.scaled_dot_product_attention}
    _GradRound, _Round = _rounding_functions()

    class Mode(TorchFunctionMode):
        def __init__(self, exact: bool, max_size: int | None):
            super().__init__()
            self.exact = exact
            self.max_size = max_size

        def _cast(self, t):
            return _Round.apply(t) if self.exact else t.to(torch.bfloat16)

        def _covered(self, a, b) -> bool:
            f32 = all(isinstance(t, torch.Tensor) and t.dtype == torch.float32 for t in (a, b))
            if not f32:  # float64 or integer products run as they are
                return False
            return self.max_size is None or product_size(a.shape, b.shape) <= self.max_size

        def _product(self, func, a, b, rest=(), kwargs=None):
            if not self._covered(a, b):
                return func(a, b, *rest, **(kwargs or {}))
            out = func(self._cast(a), self._cast(b), *rest, **(kwargs or {}))
            if self.exact:
                return _GradRound.apply(out) if out.requires_grad else out
            return out.to(torch.float32)

        def _accumulate(self, func, args, kwargs):
            # addmm/baddbmm: the product cast, the added term float32 (added after it)
            inp, a, b = args[:3]
            if not self._covered(a, b):
                return func(*args, **kwargs)
            beta, alpha = kwargs.pop("beta", 1), kwargs.pop("alpha", 1)
            mm = torch.bmm if func in (torch.baddbmm, torch.Tensor.baddbmm) else torch.mm
            out = self._product(mm, a, b)
            return beta * inp + alpha * out if (beta, alpha) != (1, 1) else inp + out

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in products and len(args) >= 2:
                a, b, *rest = args
                bias = None
                if func is F.linear:
                    bias = rest[0] if rest else kwargs.pop("bias", None)
                    rest = []
                out = self._product(func, a, b, rest, kwargs)
                return out if bias is None else out + bias
            if func in accumulating and len(args) >= 3:
                return self._accumulate(func, args, kwargs)
            if func in attention and len(args) >= 3:
                q, k, v = args[:3]
                if q.dtype == k.dtype == v.dtype == torch.float32:
                    return _attention(self._product, *args, **kwargs)
            return func(*args, **kwargs)

    return Mode


class BF16Casts:
    """Context manager: the block's matrix products on bf16 operands with float32 results (see
    the module docstring). ``exact``: round the operands but multiply in float32 (the ``bf16``
    contract to the letter); else bf16 tensors into the kernel (``bf16r``). ``max_size``: only
    products of at most that many multiply-adds (``exact`` only)."""

    def __init__(self, exact: bool = False, max_size: int | None = None):
        if max_size is not None and not exact:
            raise ValueError("max_size is for the exact mode (beside oneDNN's bf16 flag)")
        self.mode = _mode_class()(exact, max_size)

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)
