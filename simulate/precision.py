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
  ``bf16`` with ``dtype float64`` is refused. On CUDA that flag does not exist and bf16 needs
  explicit casts in the models, which are not written yet: ``bf16`` on CUDA is refused.
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


def check_precision(
    precision: str, device: str, dtype: str = "float32", *, cuda_bf16: bool = False
) -> None:
    """ValueError (one line) for a precision this run cannot use. ``cuda_bf16``: the family runs
    bf16 on CUDA by autocast (GPT-2), so that is allowed."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cuda = str(device).startswith("cuda")
    if precision == "tf32" and not cuda:
        raise ValueError("precision tf32 is a CUDA tensor-core mode: on a CPU use fp32 or bf16")
    if precision == "bf16" and dtype == "float64":
        raise ValueError("precision bf16 with dtype float64 makes no sense: use dtype float32")
    if precision == "bf16" and cuda and not cuda_bf16:
        raise ValueError(
            "precision bf16 on CUDA needs explicit casts in the models, not written yet: use fp32 "
            "or tf32 there"
        )


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX-BF16 or AVX512-BF16)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class precision_scope:
    """Context manager: run a block's matrix multiplies at ``precision`` on ``device`` (see the
    module docstring); restores every flag it touched on exit, an exception included."""

    def __init__(self, precision: str = "fp32", device: str = "cpu"):
        self.precision = precision
        self.cuda = str(device).startswith("cuda")

    def __enter__(self):
        import torch

        self.old_tf32 = torch.backends.cuda.matmul.allow_tf32
        self.old_mkldnn = torch.backends.mkldnn.matmul.fp32_precision
        torch.backends.cuda.matmul.allow_tf32 = self.precision == "tf32"
        if self.precision == "bf16" and not self.cuda:
            if not cpu_has_bf16_units():
                log.warning("this CPU has no bf16 matrix units: precision bf16 will be slow here")
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        return self

    def __exit__(self, *exc):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = self.old_tf32
        torch.backends.mkldnn.matmul.fp32_precision = self.old_mkldnn
