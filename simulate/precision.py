"""The one precision policy: what each precision computes, how it is computed here, and where
reduced precision may change results.

A precision names a **contract** -- the arithmetic of the matrix products of training steps --
never a machine. Every spec has one (``fp32``, ``tf32``, ``bf16``, ``bf16r``; ``--precision``), part
of its run's identity and a column of every results table:

- ``fp32``: IEEE float32 (or float64 with ``--dtype float64``) everywhere.
- ``tf32`` (CUDA only; a CPU refuses it): products of operands rounded to tf32 (10-bit mantissa),
  float32 accumulation and results.
- ``bf16``: products of operands rounded to bf16 (8-bit mantissa), float32 accumulation, float32
  results.
- ``bf16r``: as ``bf16``, and each product rounded to bf16 once more (what a bf16 GEMM kernel with
  a bf16 output computes): another arithmetic, so another name.

**The rule.** A contract may be computed by any mechanism that meets it, and by nothing else; two
mechanisms that meet one contract may share a folder (a run resumed on another machine), and no
folder holds rows of two contracts under one label. So that folders written before this rule --
whose ``bf16`` parts were bf16 products on one CPU and float32 products labelled bf16 on another
-- are never resumed under it, the identity of a ``bf16``/``bf16r`` run also names its arithmetic
(``ARITHMETIC_KEY``; ``simulate.rundir.settled``): such a folder is refused, naming the difference.
fp32 and tf32 identities and run ids are unchanged.

**Mechanisms** (``resolve``), chosen by probing what the device really does the first time a
process asks (``simulate.precision_probe``; never from a CPU flag), recorded in ``config.json``
(``precision``) and in every part's metadata:

==================  ========  ==============================================================
mechanism           contract  where
==================  ========  ==============================================================
``ieee``            fp32      everywhere
``cuda-tf32``       tf32      a GPU where ``allow_tf32`` rounds the operands (probed)
``onednn-bf16``     bf16      a CPU where ``torch.backends.mkldnn.matmul.fp32_precision =
                              "bf16"`` meets the contract on every probed product and pays (AMX
                              Xeons); products of <= 16^3 multiply-adds, which oneDNN leaves to
                              float32 BLAS, are rounded by explicit casts
``bf16-tensors``    bf16r     explicit bf16 tensors into the kernel (:class:`BF16Casts`), where
                              bf16 products pay: CPUs with bf16 units (oneDNN's native
                              AVX512-BF16/AMX kernels), GPUs
``emulated``        bf16      :class:`BF16Casts` ``exact``: bf16-rounded operands multiplied in
                              float32 -- the contract to the letter at float32 speed or slower
==================  ========  ==============================================================

Where no mechanism that pays meets a contract (``bf16`` on a CPU without AMX -- measured on an AMD
EPYC with AVX512-BF16: the flag does nothing -- or on a GPU; ``bf16r`` on a CPU without bf16
units), the run is refused before anything is written, in one line naming the device and
suggesting ``fp32`` (or ``bf16r`` where that pays), unless ``SLOW_ENV=1`` is set: then ``bf16`` is
emulated and ``bf16r`` runs on the slow kernels, recorded as not native (``"native": false``).

Measured on the AMD EPYC (2 cores, AVX512-BF16, no AMX; torch 2.13; 1 thread; medians of 5,
another process busy): GEMM 1024^3 float32 85 GFLOP/s, bf16 tensors 192 (2.3x; 256^3: 3.0x); a
training step (fp32 / bf16-tensors / emulated): modadd transformer teacher (p = 59, 1,392 rows)
38.9 / 24.7 / 43.0 ms, 5 students on 700 rows 91.7 / 55.7 / 102.6 ms, MLP students at the quick
scale (R = 8, 1,000 rows, d = 100, p = 50, c = 100) 9.0 / 7.1 / 10.1 ms, one MLP student at the
paper slice (16,250 rows, d = 1,000, p = 500) 582 / 300 / 661 ms. With oneDNN limited to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``, a CPU without bf16 units) bf16 GEMMs ran at 0.3-2.7 GFLOP/s: no
preset can ask for a bf16 contract and still run everywhere, so every preset is fp32.

What may run in reduced precision, and what may not:

- Only the matrix multiplies of training steps: ``simulate.train.fit`` and
  ``simulate.minibatch.fit_minibatch`` enter :class:`precision_scope` around their optimizer
  steps only, so evaluations, learning curves and the teacher outputs that become soft labels are
  computed in float32 whatever precision the teacher trained in. The casts cover matrix products
  (attention included), not convolutions.
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
- Reduced products perturb logits and gradients by ~1e-3 relative (tf32) to ~4e-3 (bf16): below
  the Adam noise floor for most of a run, not near a threshold (teachers close to capacity have
  margins of that order; at large tau the student's gradient signal is itself ~1e-3). So no preset
  uses a reduced precision unless a recorded validation (``benchmarks/precision_check.py``) shows
  its family's results unchanged *and* the contract runs on every CPU; today none does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


def __getattr__(name: str):
    # ``DTYPES``: the arithmetic a spec names (``dtype``) -> torch dtype, the one table every
    # family uses; built on first use so that this module (and the specs) import without torch.
    if name == "DTYPES":
        import torch

        return {"float32": torch.float32, "float64": torch.float64}
    if name == "BF16Casts":  # its home is simulate.bf16_casts (torch); kept importable from here
        from softleak.simulate.bf16_casts import BF16Casts

        return BF16Casts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The precisions a run may name (``--precision``); fp32 is what every folder before them used.
PRECISIONS = ("fp32", "tf32", "bf16", "bf16r")
#: What each precision computes (the contract an identity names).
CONTRACTS = {
    "fp32": "IEEE float32 products",
    "tf32": "tf32 operands, float32 accumulation and results",
    "bf16": "bf16 operands, float32 accumulation and results",
    "bf16r": "bf16 operands, float32 accumulation, bf16-rounded results",
}
#: The identity key that names a bf16 contract's arithmetic (see the module docstring).
ARITHMETIC_KEY = "arithmetic"
#: Precisions whose identity names their arithmetic (their meaning was machine-dependent before).
NAMED_ARITHMETIC = ("bf16", "bf16r")
#: Set to 1 to run a contract that has no fast mechanism here (emulated or on slow kernels).
SLOW_ENV = "SOFTLEAK_SLOW_PRECISION"
PRECISION_HELP = (
    "matrix products of training steps: fp32 (IEEE, default), tf32 (CUDA), bf16 (bf16 operands, "
    "float32 results; where this device meets that contract at speed: AMX CPUs), bf16r (bf16 "
    "operands, bf16-rounded results: CPUs with bf16 units, GPUs). Soft labels, losses, Adam state "
    f"and evaluations stay float32. A contract with no fast path here is refused unless {SLOW_ENV}=1"
)


def precision_field():
    """The ``precision`` field every spec declares (one declaration: help, choices, group)."""
    from softleak.simulate.params import param

    return param("fp32", help=PRECISION_HELP, kind="choice", choices=PRECISIONS, group="execution")


def check_precision(precision: str, device: str, dtype: str = "float32") -> None:
    """ValueError (one line) for a precision this run cannot name (static checks; what the device
    can do is :func:`require_precision`'s)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cuda = str(device).startswith("cuda")
    if precision == "tf32" and not cuda:
        raise ValueError("precision tf32 is a CUDA tensor-core mode: on a CPU use fp32")
    if precision in NAMED_ARITHMETIC and dtype == "float64":
        raise ValueError(f"precision {precision} with dtype float64 makes no sense: use float32")


def named_arithmetic(settings: dict) -> dict:
    """``settings`` with :data:`ARITHMETIC_KEY` added where its precision is a bf16 contract
    (``simulate.rundir.settled`` calls it on every identity)."""
    precision = settings.get("precision")
    if precision in NAMED_ARITHMETIC:
        return {**settings, ARITHMETIC_KEY: CONTRACTS[precision]}
    return settings


class PrecisionUnavailable(ValueError):
    """No mechanism that pays meets the precision's contract on this device (one line)."""


@dataclass(frozen=True)
class Mechanism:
    """How one contract is computed in this process (see the module docstring)."""

    precision: str
    name: str  # "ieee", "cuda-tf32", "onednn-bf16", "bf16-tensors", "emulated"
    native: bool  # False: emulated or on slow kernels (SLOW_ENV)
    probe: str = ""  # the probe's one line ("" where nothing was probed)
    device_name: str = ""

    def record(self) -> dict:
        """What config.json and each part record."""
        return {
            "precision": self.precision,
            "contract": CONTRACTS[self.precision],
            "mechanism": self.name,
            "native": self.native,
            "probe": self.probe,
            "device_name": self.device_name,
        }

    def context(self, device: str):
        """The context manager that computes the block's products by this mechanism."""
        return _MechanismScope(self, device)


_RESOLVED: dict[tuple, Mechanism | None] = {}


def resolve(precision: str, device: str = "cpu") -> Mechanism | None:
    """The mechanism that computes ``precision`` on ``device`` in this process, or None when no
    mechanism that pays meets it here and ``SLOW_ENV`` is not set (see :func:`require_precision`
    for the refusal). Probes the device once per process (``simulate.precision_probe``); the
    answer is kept per precision, device and the two environment variables."""
    from softleak.simulate.precision_probe import FORCE_ENV

    key = (precision, str(device), os.environ.get(FORCE_ENV), os.environ.get(SLOW_ENV))
    if key not in _RESOLVED:
        _RESOLVED[key] = _resolve(precision, str(device))
    return _RESOLVED[key]


def _resolve(precision: str, device: str) -> Mechanism | None:
    check_precision(precision, device)
    if precision == "fp32":
        return Mechanism("fp32", "ieee", True)
    from softleak.simulate.device import device_name
    from softleak.simulate.precision_probe import probe

    found = probe(device)
    name = device_name(device)
    slow_ok = os.environ.get(SLOW_ENV, "").strip() not in ("", "0")
    cuda = str(device).startswith("cuda")
    if precision == "tf32":
        return (
            Mechanism("tf32", "cuda-tf32", True, found.line(), name) if found.tf32_engaged else None
        )
    if precision == "bf16":
        if not cuda and found.flag_pays:
            return Mechanism("bf16", "onednn-bf16", True, found.line(), name)
        return Mechanism("bf16", "emulated", False, found.line(), name) if slow_ok else None
    # bf16r
    if found.tensors_pay or slow_ok:
        return Mechanism("bf16r", "bf16-tensors", found.tensors_pay, found.line(), name)
    return None


def part_record(precision: str, device: str = "cpu") -> dict | None:
    """The short record of the mechanism this process uses for ``precision`` (what each part's
    metadata keeps); None when none is resolved here."""
    mechanism = resolve(precision, device)
    if mechanism is None:
        return None
    return {"precision": precision, "mechanism": mechanism.name, "native": mechanism.native}


def require_precision(precision: str, device: str = "cpu") -> Mechanism:
    """:func:`resolve`, or :class:`PrecisionUnavailable` naming the device, what the probe found
    and what to use instead (runners call it before anything is written)."""
    mechanism = resolve(precision, device)
    if mechanism is not None:
        if not mechanism.native:
            log.warning(
                "precision %s runs %s here (%s=1): %s",
                precision,
                "emulated" if mechanism.name == "emulated" else "on slow bf16 kernels",
                SLOW_ENV,
                mechanism.probe,
            )
        return mechanism
    raise PrecisionUnavailable(_refusal(precision, device))


def _refusal(precision: str, device: str) -> str:
    from softleak.simulate.device import device_name
    from softleak.simulate.precision_probe import probe

    found = probe(device)
    where = f"this {'GPU' if str(device).startswith('cuda') else 'CPU'} ({device_name(device)})"
    if precision == "tf32":
        return f"precision tf32 does not engage on {where}: its products equal float32's; use fp32"
    alternative = "--precision fp32"
    if precision == "bf16" and found.tensors_pay:
        alternative += f", or bf16r (bf16-rounded products, {found.tensors_speedup:.2g}x here)"
    how = "emulate it at float32 speed" if precision == "bf16" else "run it on slow kernels"
    return (
        f"precision {precision} ({CONTRACTS[precision]}) has no fast path on {where} "
        f"[{found.line()}]: use {alternative}, or set {SLOW_ENV}=1 to {how}"
    )


class _MechanismScope:
    """Sets (and restores, on an exception too) the backend flags and function mode of one
    mechanism. The flags are process-global: a Dask worker runs one chunk at a time, so no
    other work sees them."""

    def __init__(self, mechanism: Mechanism, device: str):
        self.mechanism = mechanism
        self.device = device
        self.casts = None

    def __enter__(self):
        import torch

        from softleak.simulate.bf16_casts import BF16Casts
        from softleak.simulate.precision_probe import ONEDNN_MIN_SIZE

        name = self.mechanism.name
        self.old_tf32 = torch.backends.cuda.matmul.allow_tf32
        self.old_mkldnn = torch.backends.mkldnn.matmul.fp32_precision
        torch.backends.cuda.matmul.allow_tf32 = name == "cuda-tf32"
        torch.backends.mkldnn.matmul.fp32_precision = "bf16" if name == "onednn-bf16" else "ieee"
        if name == "onednn-bf16":
            self.casts = BF16Casts(exact=True, max_size=ONEDNN_MIN_SIZE)
        elif name in ("bf16-tensors", "emulated"):
            self.casts = BF16Casts(exact=name == "emulated")
        if self.casts is not None:
            self.casts.__enter__()
        return self

    def __exit__(self, *exc):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = self.old_tf32
        torch.backends.mkldnn.matmul.fp32_precision = self.old_mkldnn
        if self.casts is not None:
            self.casts.__exit__(*exc)


def precision_scope(precision: str = "fp32", device: str = "cpu"):
    """Context manager: run a block's matrix products at ``precision`` on ``device`` by the
    mechanism :func:`require_precision` finds (probed once per process); fp32 turns every
    reduced-precision flag off."""
    return require_precision(precision, str(device)).context(str(device))


def uses_function_mode(precision: str) -> bool:
    """Whether ``precision``'s mechanisms may run a torch function mode (then ``fit`` trains
    eagerly: compiled graphs are not traced through the casts)."""
    return precision in NAMED_ARITHMETIC
