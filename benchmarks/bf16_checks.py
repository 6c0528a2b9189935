"""The ``bf16-probe/...`` checks: what ``simulate.precision_probe`` finds on the device, each bf16
contract that runs natively checked against its oracle, and a short reduced-vs-fp32 training run
by outcome. A contract with no fast mechanism on the device is a finding (``passed: null``), not
a failure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.check_profiles import Profile
from benchmarks.check_report import Report
from benchmarks.family_checks import family_needs, family_spec, run_table
from benchmarks.table_agreement import compare_outcomes


def check_bf16(report: Report, prof: Profile, device: str, root: Path) -> None:
    """Checks ``bf16-probe/gemm`` (the contracts against their oracles) and
    ``bf16-probe/train`` (a short training run at a native reduced precision vs fp32)."""
    from softleak.simulate.precision import CONTRACTS, resolve
    from softleak.simulate.precision_probe import probe

    def gemm_probe():
        import torch

        found = probe(device)
        gen = torch.Generator().manual_seed(0)
        A = torch.randn(512, 512, generator=gen).to(device)
        B = torch.randn(512, 512, generator=gen).to(device)
        oracle = A.bfloat16().double() @ B.bfloat16().double()
        scale = float((A @ B).double().sub(oracle).norm())
        bits, missing, failed = [], [], []
        for precision in ("bf16", "bf16r"):
            mechanism = resolve(precision, device)
            if mechanism is None or not mechanism.native:
                missing.append(precision)
                continue
            with mechanism.context(device):
                out = A @ B
            want = oracle.float().bfloat16().double() if precision == "bf16r" else oracle
            share = float(out.double().sub(want).norm()) / scale
            ok = share < (0.05 if precision == "bf16" else 0.6) and out.dtype == torch.float32
            bits.append(f"{precision} by {mechanism.name}: {share:.2g} of the rounding off")
            if not ok:
                failed.append(precision)
        detail = f"{'; '.join(bits) or 'no bf16 contract runs natively'} [{found.line()}]"
        if failed:
            return False, f"{', '.join(failed)} off its contract: {detail}"
        if missing:
            where = "GPU" if device.startswith("cuda") else "CPU"
            names = ", ".join(f"{p} ({CONTRACTS[p]})" for p in missing)
            return None, f"finding: {where} has no fast mechanism for {names}; {detail}"
        return True, detail

    report.run("bf16-probe/gemm", gemm_probe)

    # A short training run at the first reduced precision that runs natively, against fp32.
    family = "multinomial"  # the smallest replica-engine family with a precision column

    def train_probe():
        native = [p for p in ("bf16", "bf16r") if (m := resolve(p, device)) and m.native]
        if not native:
            return None, f"finding: no bf16 contract runs natively on {device}"
        spec = family_spec(family, "float32", prof)
        fp32 = run_table(spec, device, root, f"probe-{family}-fp32")
        low = run_table(dataclasses.replace(spec, precision=native[0]), device, root, "probe-low")
        ok, detail = compare_outcomes(fp32, low, ignore=("precision",))
        how = resolve(native[0], device).name
        return ok, f"{family}, {native[0]} ({how}) vs fp32 on {device}: {detail}"

    report.run("bf16-probe/train", train_probe, needs=family_needs(family))
