"""Reduced-precision arithmetic: where TF32 / bfloat16 are allowed, and where they change results.

Default: IEEE float32 (or float64 with ``--dtype float64``) everywhere; on CUDA
``torch.backends.cuda.matmul.allow_tf32`` is kept False for the teachers' and students' GEMMs
(``matmul_precision``). ``softleak simulate --allow-tf32`` turns it on for those GEMMs only, and the
choice is recorded in ``config.json``; a sweep directory refuses to resume under the other setting.

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
- bfloat16 autocast of hidden-layer GEMMs (MLP students; ~5x the float32 rate on CPUs with AMX,
  NOTES.md) falls under the same rule as TF32, with 3 fewer mantissa bits: not offered by the
  engine until a test shows the thresholds unchanged.
"""

from __future__ import annotations

import torch

#: The arithmetic a spec names (``dtype``) -> torch dtype: the one table every family uses.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class matmul_precision:
    """Context manager: run a block with TF32 GEMMs on CUDA allowed or not (default: not).

    Restores the previous setting on exit. On a CPU build the flag is stored and has no effect.
    """

    def __init__(self, allow_tf32: bool = False):
        self.allow_tf32 = bool(allow_tf32)

    def __enter__(self):
        self.old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.allow_tf32
        return self

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32 = self.old
