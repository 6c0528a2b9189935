"""What a device really does for reduced precision, probed once per process and device.

Never inferred from a CPU flag: /proc/cpuinfo listed ``avx512_bf16`` on an AMD EPYC where oneDNN's
bf16 flag changed nothing (a 2048^3 product under it was 1.2e-6 from float32's and 2.5e-3 from the
product of bf16-rounded operands), and a laptop may have no bf16 arithmetic at all.

Two questions, each answered by running products (``probe``):

- **Does oneDNN's bf16 flag meet the bf16 contract here** (bf16 operands, float32 products;
  CPU only)? A battery of products -- square, thin (one column), batched, a transposed operand,
  ``linear`` with a bias, a 4-D attention-shaped ``matmul`` and one of at most 16^3 multiply-adds,
  which oneDNN leaves to float32 BLAS and the mechanism rounds by explicit casts -- each compared
  with the oracle, the float64 product of the bf16-rounded operands. Engaged when every product
  lies within ``ORACLE_SHARE`` of the distance between float32's product and the oracle. oneDNN's
  flag only *permits* bf16 down-conversion: without AMX, or for shapes its kernels decline, the
  products stay float32, which is what the battery catches.
- **Do bf16 products pay here?** The flag's products and explicit bf16 tensors are timed against
  float32 on a ``SPEED_SIZE``^3 product on one thread (best of ``SPEED_REPEATS``, interleaved, so
  load affects both alike; on two threads with the other core busy, float32 BLAS stalled on
  thread hand-offs and AVX512 without bf16 read 1.9x instead of 0.4x). A path pays when it takes
  at most ``PAYS`` of float32's time. Measured on the AMD
  EPYC (1 thread): bf16 tensors 2.3-3.0x float32's rate; with oneDNN limited to AVX512 without
  bf16 (``ONEDNN_MAX_CPU_ISA=AVX512_CORE``) 0.44-0.58x; limited to AVX2 0.01-0.04x (a reference
  kernel): the outcomes lie far apart, so the decision does not flip with load.

The outcome, as tests force it (``SOFTLEAK_PRECISION_PROBE=engaged|not-engaged|absent``):
``engaged`` (the flag meets the contract and pays: an AMX Xeon), ``not-engaged`` (bf16 tensors pay,
the flag does nothing: AVX512-BF16 without AMX), ``absent`` (no bf16 arithmetic that pays). A
forced outcome is recorded as forced wherever the probe is.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

OUTCOMES = ("engaged", "not-engaged", "absent")
#: Environment variable that forces the probe's outcome (tests; cost measurements).
FORCE_ENV = "SOFTLEAK_PRECISION_PROBE"
#: A product meets the contract when its distance to the oracle is at most this share of the
#: distance between float32's product and the oracle (bf16 rounding: ~1e-3 relative; a product
#: of rounded operands accumulated in another order: ~1e-7).
ORACLE_SHARE = 0.05
#: Products of at most this many multiply-adds never reach oneDNN under its flag (ATen's
#: ``mkldnn_gemm_min_size``, 16^3): the flag's mechanism rounds them by explicit casts.
ONEDNN_MIN_SIZE = 16**3
#: A bf16 path pays when its product takes at most this share of float32's time.
PAYS = 0.8
SPEED_SIZE = 256
SPEED_REPEATS = 7


@dataclass(frozen=True)
class Probe:
    """What one device does (see the module docstring)."""

    device: str
    flag_meets_contract: bool  # oneDNN's bf16 flag (with small products cast) matches the oracle
    flag_speedup: float  # float32 time / time under the flag (NaN: not measured)
    tensors_speedup: float  # float32 time / bf16-tensor time
    tf32_engaged: bool  # CUDA: allow_tf32 rounds the operands
    forced: str | None = None  # the forced outcome, if any
    worst_oracle_share: float = math.nan  # the battery's largest distance share (flag)

    @property
    def flag_pays(self) -> bool:
        return self.flag_meets_contract and self.flag_speedup >= 1 / PAYS

    @property
    def tensors_pay(self) -> bool:
        return self.tensors_speedup >= 1 / PAYS

    @property
    def outcome(self) -> str:
        if self.flag_pays:
            return "engaged"
        return "not-engaged" if self.tensors_pay else "absent"

    def line(self) -> str:
        """One line: what was found (named in config.json and refusals)."""
        if self.forced:
            return f"forced by {FORCE_ENV}={self.forced}"
        bits = [
            "oneDNN's bf16 flag "
            + (
                f"meets the contract (worst product {self.worst_oracle_share:.2g} of the "
                f"bf16 rounding from the oracle), {self.flag_speedup:.2g}x float32"
                if self.flag_meets_contract
                else "does not engage"
            ),
            f"bf16 tensors {self.tensors_speedup:.2g}x float32's speed",
        ]
        if self.device.startswith("cuda"):
            bits = [f"bf16 tensors {self.tensors_speedup:.2g}x float32's speed"]
            bits.append("tf32 engaged" if self.tf32_engaged else "tf32 not engaged")
        return "; ".join(bits)


def forced_outcome() -> str | None:
    """The outcome ``FORCE_ENV`` forces (None when unset); ValueError for an unknown one."""
    value = os.environ.get(FORCE_ENV, "").strip()
    if not value:
        return None
    if value not in OUTCOMES:
        raise ValueError(f"{FORCE_ENV}={value!r}: use one of {', '.join(OUTCOMES)}")
    return value


def probe(device: str = "cpu") -> Probe:
    """What ``device`` does (cached per process and device; a forced outcome is not cached)."""
    forced = forced_outcome()
    if forced is not None:
        return Probe(
            device=str(device),
            flag_meets_contract=forced == "engaged",
            flag_speedup=math.inf if forced == "engaged" else math.nan,
            tensors_speedup=math.inf if forced != "absent" else 0.0,
            tf32_engaged=True,
            forced=forced,
        )
    return _probe(_normal(device))


def _normal(device: str) -> str:
    device = str(device)
    if device == "cuda":
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    return device


@functools.cache
def _probe(device: str) -> Probe:
    import torch

    cuda = device.startswith("cuda")
    tensors = _speedup(device, "tensors")
    if cuda:
        found = Probe(device, False, math.nan, tensors, _tf32_engaged(device))
    else:
        share = _flag_oracle_share(device)
        meets = share <= ORACLE_SHARE
        flag = _speedup(device, "flag") if meets else math.nan
        found = Probe(device, meets, flag, tensors, False, worst_oracle_share=share)
    log.info("precision probe on %s (torch %s): %s", device, torch.__version__, found.line())
    return found


# --- the contract -----------------------------------------------------------------------------
def _battery(device: str):
    """(name, fn(torch ops) -> float32 result, oracle float64, float32 result) per product."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(20261206)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    def r(t):  # bf16-rounded, as float64
        return t.to(torch.bfloat16).double()

    a, b = rnd(96, 80), rnd(80, 64)
    thin_a, thin_b = rnd(300, 64), rnd(64, 1)
    ba, bb = rnd(3, 40, 48), rnd(3, 48, 32)
    ta = rnd(80, 96).T  # non-contiguous
    sa, sb = rnd(8, 8), rnd(8, 8)
    x, w, bias = rnd(50, 40), rnd(30, 40), rnd(30)
    q, k = rnd(2, 3, 10, 16), rnd(2, 3, 16, 10)
    return [
        ("mm", lambda: a @ b, r(a) @ r(b)),
        ("thin", lambda: thin_a @ thin_b, r(thin_a) @ r(thin_b)),
        ("bmm", lambda: torch.bmm(ba, bb), r(ba) @ r(bb)),
        ("transposed", lambda: ta @ b, r(ta) @ r(b)),
        ("small", lambda: sa @ sb, r(sa) @ r(sb)),
        ("linear", lambda: F.linear(x, w, bias), r(x) @ r(w).T + bias.double()),
        ("matmul-4d", lambda: q @ k, r(q) @ r(k)),
    ]


def _flag_oracle_share(device: str) -> float:
    """The battery's largest ``distance(flag mechanism, oracle) / distance(float32, oracle)``."""
    import torch

    from softleak.simulate.bf16_casts import BF16Casts

    old = torch.backends.mkldnn.matmul.fp32_precision
    worst = 0.0
    for _name, fn, oracle in _battery(device):
        f32 = fn()
        try:
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
            with BF16Casts(exact=True, max_size=ONEDNN_MIN_SIZE):
                got = fn()
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = old
        scale = _distance(f32, oracle)
        worst = max(worst, _distance(got, oracle) / scale if scale > 0 else math.inf)
    return worst


def _distance(x, oracle) -> float:
    return float((x.double() - oracle).norm() / oracle.norm())


def _tf32_engaged(device: str) -> bool:
    """CUDA: does ``allow_tf32`` round the operands (an error well above float32's)?"""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(256, 256, generator=gen).to(device)
    b = torch.randn(256, 256, generator=gen).to(device)
    exact = a.double() @ b.double()
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        e32 = _distance(a @ b, exact)
        torch.backends.cuda.matmul.allow_tf32 = True
        e19 = _distance(a @ b, exact)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return e19 > 10 * e32


# --- the speed --------------------------------------------------------------------------------
def _speedup(device: str, path: str) -> float:
    """float32's time over the bf16 path's (``flag`` or ``tensors``) on a ``SPEED_SIZE``^3
    product: best of ``SPEED_REPEATS``, interleaved."""
    import torch

    gen = torch.Generator().manual_seed(1)
    a = torch.randn(SPEED_SIZE, SPEED_SIZE, generator=gen).to(device)
    b = torch.randn(SPEED_SIZE, SPEED_SIZE, generator=gen).to(device)
    a16, b16 = a.bfloat16(), b.bfloat16()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    old = torch.backends.mkldnn.matmul.fp32_precision

    def fp32():
        a @ b

    def low():
        if path == "tensors":
            a16 @ b16
            return
        try:
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
            a @ b
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = old

    best = {fp32: math.inf, low: math.inf}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the arithmetic's own speed: 2 threads with a busy core stall
    try:  # on hand-offs, and float32 BLAS more than oneDNN (measured: 0.4x read as 1.9x)
        for fn in (fp32, low):  # warm-up (kernel selection, first-touch)
            fn()
        for _ in range(SPEED_REPEATS):
            for fn in (fp32, low):
                sync()
                t = time.perf_counter()
                fn()
                sync()
                best[fn] = min(best[fn], time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return best[fp32] / best[low] if best[low] > 0 else math.inf
