"""The one precision policy: where TF32 / bfloat16 are allowed, and where they change results.

Every spec has a ``precision`` (``fp32``, ``tf32``, ``bf16``; ``--precision`` on the command line),
part of its run's identity and a column of every results table. ``fp32`` (the default) is IEEE
float32 (or float64 with ``--dtype float64``) everywhere. The reduced modes cover exactly the
matrix multiplies of training steps: ``simulate.train.fit`` enters :class:`precision_scope` around
its optimizer steps only, so evaluations, learning curves and the teacher outputs that become soft
labels are computed in float32 whatever precision the teacher trained in.

- ``tf32`` (CUDA only; a CPU refuses it): ``torch.backends.cuda.matmul.allow_tf32`` for the
  training GEMMs (10-bit mantissa products, float32 accumulation).
- ``bf16`` on a CPU: ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``: float32 tensors in
  and out, bf16-rounded operands, float32 accumulation, so the analytic backward, parameters, Adam
  state, soft labels, softmax and losses stay float32 unchanged. The flag is process-global: the
  scope sets and restores it (on an exception too); a Dask worker runs one chunk at a time on one
  thread, so no other work sees it. Measured here: 2048^3 GEMM 178 -> 463 GFLOP/s (1 thread).
  ``bf16`` with ``dtype float64`` is refused.
- ``bf16`` on CUDA, where that flag does not exist: explicit casts (:class:`BF16Casts`), a torch
  function mode around the same steps that runs every matrix multiply the replica engines call
  (``@``, ``bmm``, ``baddbmm``, ``mm``, ``matmul``, ``linear``) on bf16 copies of its float32
  operands and returns float32: cuBLAS accumulates in float32 and rounds the product to bf16 once
  (one rounding more than the CPU path); the added term of ``baddbmm`` stays float32. Autograd's
  backward of a cast product is itself a bf16 product, so the transformer's backward is covered
  as well. ``BF16Casts(exact=True)`` rounds the operands (and, through autograd, the incoming
  gradient) to bf16 but multiplies in float32: the contract to the letter, at float32 speed, which
  the tests use on a CPU as the oracle for both other paths. Compiled steps are not used under the
  casts (fit trains eagerly there). GPT-2 on CUDA keeps torch's autocast (its minibatch loop passes ``casts=False``).
- No preset uses a reduced precision unless a recorded validation (issue 16's gate) shows its
  family's results unchanged.

What may run in reduced precision, and what may not:

- Soft labels, losses and their gradients dL/dlogits: never. They stay float32 or better. The soft
  label softmax(z_T / tau) saturates (p_max == 1) once the logit gap exceeds tau ln(2 / eps) and
  underflows to the one-hot label beyond tau ln(2 / tiny) (``theory.identifiability.softmax_limits``:
  float32 16.6 tau and 104 tau; bfloat16, eps = 2^-7, saturates at 5.5 tau). Past those gaps the soft
  label carries no more than the hard label, so every soft-label threshold (alpha_id^S,
  alpha_label^S) moves to its hard-label value: a change of result, not of speed. At large tau the
  information sits in deviations |z| / (c tau) from 1/c (tau = 3000: ~1e-3), which bfloat16
  (resolution 4e-3 near 0.5) erases; ``simulate.softlabels.soft_targets`` computes in float32 even
  from half-precision logits.
- Adam's state and the parameter update: float32 or better (bf16 updates of size lr * 1 = 1e-4 on
  weights of size ~0.03 round away).
- The pseudo-inverse students: float64 (exact recovery at rho n >= d is a 1e-12 identity).
- Student/teacher GEMMs (X W^T forward, G^T X weight gradient): TF32 (10-bit mantissa, products
  rounded to ~5e-4 relative, float32 accumulation) is where reduced precision is plausible. It
  perturbs logits by ~1e-3 relative and gradients likewise, which is below the Adam noise floor for
  most of a run but not near a threshold: teachers close to capacity (alpha near alpha_label^T) have
  margins of that order, and at large tau the student's gradient signal is itself ~1e-3. So TF32 may
  shift measured thresholds by one grid step; it is off by default, and a sweep that turns it on
  should be checked against a float32 run on a slice around each threshold before it is trusted.
- bfloat16 products (``bf16``; ~2.6x the float32 GEMM rate on this CPU's AMX) fall under the same
  rule as TF32, with 3 fewer mantissa bits: offered, recorded, and used by no preset until the
  validation shows the thresholds of its family unchanged.
"""

from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)


def __getattr__(name: str):
    # ``DTYPES``: the arithmetic a spec names (``dtype``) -> torch dtype, the one table every
    # family uses; built on first use so that this module (and the specs) import without torch.
    if name == "DTYPES":
        import torch

        return {"float32": torch.float32, "float64": torch.float64}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The precisions a run may name (``--precision``); fp32 is what every folder before them used.
PRECISIONS = ("fp32", "tf32", "bf16")
PRECISION_HELP = (
    "matrix multiplies of training steps: fp32 (IEEE, default), tf32 (CUDA tensor cores) or bf16 "
    "(bf16 operands, float32 accumulation; soft labels, losses, Adam state and evaluations stay "
    "float32)"
)


def precision_field():
    """The ``precision`` field every spec declares (one declaration: help, choices, group)."""
    from softleak.simulate.params import param

    return param("fp32", help=PRECISION_HELP, kind="choice", choices=PRECISIONS, group="execution")


def check_precision(precision: str, device: str, dtype: str = "float32") -> None:
    """ValueError (one line) for a precision this run cannot use."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cuda = str(device).startswith("cuda")
    if precision == "tf32" and not cuda:
        raise ValueError("precision tf32 is a CUDA tensor-core mode: on a CPU use fp32 or bf16")
    if precision == "bf16" and dtype == "float64":
        raise ValueError("precision bf16 with dtype float64 makes no sense: use dtype float32")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX-BF16 or AVX512-BF16)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


@functools.lru_cache(maxsize=1)
def _bf16_function_mode():
    """The torch function mode class behind :class:`BF16Casts` (built once, on first use: torch
    is imported lazily here)."""
    import torch
    from torch.overrides import TorchFunctionMode

    products = {
        torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm,
        torch.bmm, torch.Tensor.bmm, torch.nn.functional.linear,
    }  # fmt: skip
    accumulating = {torch.baddbmm, torch.Tensor.baddbmm, torch.addmm, torch.Tensor.addmm}

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

    class Mode(TorchFunctionMode):
        def __init__(self, exact: bool):
            super().__init__()
            self.exact = exact

        def _cast(self, t):
            return _Round.apply(t) if self.exact else t.to(torch.bfloat16)

        def _product(self, func, a, b, rest, kwargs):
            f32 = all(isinstance(t, torch.Tensor) and t.dtype == torch.float32 for t in (a, b))
            if not f32:  # float64 or integer products run as they are
                return func(a, b, *rest, **kwargs)
            out = func(self._cast(a), self._cast(b), *rest, **kwargs)
            if self.exact:
                return _GradRound.apply(out) if out.requires_grad else out
            return out.to(torch.float32)

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in products and len(args) >= 2:
                a, b, *rest = args
                bias = None
                if func is torch.nn.functional.linear:
                    bias = rest[0] if rest else kwargs.pop("bias", None)
                    rest = []
                out = self._product(func, a, b, rest, kwargs)
                return out if bias is None else out + bias
            if func in accumulating and len(args) >= 3:
                inp, a, b = args[:3]
                beta, alpha = kwargs.pop("beta", 1), kwargs.pop("alpha", 1)
                mm = torch.bmm if func in (torch.baddbmm, torch.Tensor.baddbmm) else torch.mm
                out = self._product(mm, a, b, [], {})
                return beta * inp + alpha * out if (beta, alpha) != (1, 1) else inp + out
            return func(*args, **kwargs)

    return Mode


class BF16Casts:
    """Context manager: every matrix multiply of the block on bf16 copies of its float32 operands,
    float32 results (the CUDA path of ``bf16``; see the module docstring). ``exact``: round the
    operands but multiply in float32 (the contract's oracle, any device)."""

    def __init__(self, exact: bool = False):
        self.mode = _bf16_function_mode()(exact)

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


class precision_scope:
    """Context manager: run a block's matrix multiplies at ``precision`` on ``device`` (see the
    module docstring); restores every flag it touched on exit, an exception included.
    ``casts``: bf16 by explicit casts (:class:`BF16Casts`), the default on CUDA; "exact" for the
    rounding oracle (any device); False for none (a block under torch's own autocast)."""

    def __init__(
        self, precision: str = "fp32", device: str = "cpu", casts: bool | str | None = None
    ):
        self.precision = precision
        self.cuda = str(device).startswith("cuda")
        if casts is None:
            casts = self.cuda
        self.casts = BF16Casts(exact=casts == "exact") if precision == "bf16" and casts else None

    def __enter__(self):
        import torch

        self.old_tf32 = torch.backends.cuda.matmul.allow_tf32
        self.old_mkldnn = torch.backends.mkldnn.matmul.fp32_precision
        torch.backends.cuda.matmul.allow_tf32 = self.precision == "tf32"
        if self.casts is not None:
            self.casts.__enter__()
        elif self.precision == "bf16" and not self.cuda:
            if not cpu_has_bf16_units():
                log.warning("this CPU has no bf16 matrix units: precision bf16 will be slow here")
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        return self

    def __exit__(self, *exc):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = self.old_tf32
        torch.backends.mkldnn.matmul.fp32_precision = self.old_mkldnn
        if self.casts is not None:
            self.casts.__exit__(*exc)
