"""What ``benchmarks.run_all`` prints after the timings: the GEMM peaks, the rates table with its
legend, and the paper grids projected from the rates with the suite's targets."""

from __future__ import annotations

from benchmarks.common import MEASUREMENT_ERROR, OK, reduced_precisions
from benchmarks.peaks import peak_precisions
from benchmarks.projections import project
from softleak.simulate import estimate
from softleak.simulate.estimate import hours


def fmt_flops(x: float) -> str:
    """A FLOP count with its SI prefix (``"1.2 T"``; the caller appends the unit)."""
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} "


def _g(x) -> str:
    return f"{x:.1f}" if x is not None else "-"


def _div(x):
    return x / 1e9 if x else None


def _find(table: list[dict], workload: str, part: str, precision: str = "fp32") -> dict | None:
    return next(
        (
            r
            for r in table
            if (r["workload"], r["part"], r["precision"]) == (workload, part, precision)
            and not r["fused"]
        ),
        None,
    )


def print_peaks(size: int, before: dict, after: dict, best: dict) -> None:
    """The GEMM peaks (GFLOP/s) measured before and after the workloads, and the best of each."""
    print(f"\nGEMM peaks ({size}^3, GFLOP/s; before / after the workloads, the best used):")
    for k in (*peak_precisions(), "bf16-tensors"):
        extra = " (bf16 tensors, for reference)" if k == "bf16-tensors" else ""
        print(
            f"  {k:<13} {_g(_div(before[k]))} / {_g(_div(after[k]))} -> {_g(_div(best[k]))}{extra}"
        )


def print_rows(table: list[dict]) -> None:
    """The rates file's rows as a table (a measurement error says so, under its row)."""
    head = (
        f"{'workload':<19} {'part':<9} {'precision':<10} {'models':>6} {'work/unit':>10} "
        f"{'GFLOP/s':>8} {'of GEMM':>8} {'1-at-a-time':>11} {'speed-up':>9}  slice"
    )
    print(head)
    print("-" * len(head))
    for r in table:
        prec = r["precision"] + ("+fused" if r["fused"] else "")
        work = fmt_flops(r["gflop_per_unit"] * 1e9) + "FLOP"
        if r["status"] == OK:
            rate = f"{r['gflop_per_s']:>8.1f} {r['fraction_of_gemm']:>8.0%}"
        elif r["status"] == MEASUREMENT_ERROR:
            rate = f"{'measurement error':>17}"
        else:
            rate = f"{r['status'][:17]:>17}"
        loop = f"{_g(r['loop_gflop_per_s']):>8} GF" if r["loop"] else f"{'-':>11}"
        speed = f"{r['speedup_vs_loop']:>8.1f}x" if r["speedup_vs_loop"] else f"{'-':>9}"
        print(
            f"{r['workload']:<19} {r['part']:<9} {prec:<10} {r['models']:>6} {work:>10} "
            f"{rate} {loop} {speed}  {r['note']}"
        )
        if r["status"] == MEASUREMENT_ERROR:
            print(
                f"{'':<19} ^ {r['measured_gflop_per_s']:.4g} GFLOP/s is above the "
                f"{r['precision']} GEMM peak: a measurement error, used in no projection"
            )


def print_legend(min_s: float, timings: int) -> None:
    """What the columns of ``print_rows``' table mean."""
    print(
        "\nwork/unit: matrix-multiply FLOPs of one step of the whole batch (the pinv row: one "
        "call); GFLOP/s: per-epoch times from the difference of a long and a short run "
        f"(>= {min_s:g} s apart), medians of {timings}; of GEMM: against the same "
        "precision's peak; 1-at-a-time: the reference's protocol (nn.Linear/nn.Sequential + "
        "Adam + F.cross_entropy in float32, or np.linalg.pinv per student), one model after "
        "another, on the same slice; speed-up: engine FLOP/s over that loop's."
    )


def report_projections(doc: dict, threads: int) -> None:
    """The paper grids projected from the rates file ``doc`` (this CPU on ``threads`` threads,
    and the assumed H200), the suite's targets and what bounds them."""
    rates = estimate.rates_from_dict(doc, "this run")
    print(
        f"\nprojected paper grids: CPU = this machine, 1 process x {threads} thread(s): "
        "simulate.estimate scaled to the rates above (" + rates.summary() + "); GPU = ASSUMED "
        f"H200 (no GPU here): {estimate.H200_GEMM / 1e12:.0f} TFLOP/s fp32 GEMM without TF32 x "
        f"{estimate.H200_EFFICIENCY:.0%} efficiency, {estimate.H200_BANDWIDTH / 1e12:.1f} TB/s, "
        f"{estimate.H200_OP_S * 1e6:.0f} us per torch op, pinv students on the host CPU"
    )
    for why in rates.rejected:
        print(f"  not used: {why}")
    proj = project(rates)
    _print_grids(proj)
    _print_targets(doc["workloads"], proj)
    _print_mlp_notes(doc["workloads"], proj)
    _print_loop_bound(doc)


def _print_grids(proj: list[tuple]) -> None:
    print(
        f"{'grid':<34} {'teachers':>8} {'students':>9} {'work':>11} {'this CPU':>10} "
        f"{'GPU (assumed)':>13}  reference"
    )
    for name, cpu_s, gpu_s, ref_cost, w in proj:
        print(
            f"{name:<34} {w['teachers']:>8} {w['students']:>9} "
            f"{fmt_flops(w['flops']) + 'FLOP':>11} {hours(cpu_s):>10} {hours(gpu_s):>13}  "
            f"{ref_cost}"
        )


def _print_targets(table: list[dict], proj: list[tuple]) -> None:
    by = {name.split(" (")[0]: (cpu_s, gpu_s) for name, cpu_s, gpu_s, *_ in proj}
    multi = _find(table, "multinomial-tau", "students") or {}
    speed, frac = multi.get("speedup_vs_loop"), multi.get("fraction_of_gemm")
    targets = [
        ("multinomial students >= 30x the one-at-a-time loop", speed is not None and speed >= 30,
         f"{speed:.1f}x" if speed else "not measured"),
        ("multinomial students >= 40% of the GEMM rate", frac is not None and frac >= 0.4,
         f"{frac:.0%}" if frac else "not measured"),
        ("Fig. 5A grid < 8 h on this CPU (projected)", by["Fig. 5A"][0] < 8 * 3600,
         hours(by["Fig. 5A"][0])),
        ("Fig. 5A grid < 10 min on a GPU (projected, assumed GPU)", by["Fig. 5A"][1] < 600,
         hours(by["Fig. 5A"][1])),
        ("MLP grid < 3 h on a GPU (projected, assumed GPU)", by["Figs. 6/7 MLP grid"][1] < 3 * 3600,
         hours(by["Figs. 6/7 MLP grid"][1])),
    ]  # fmt: skip
    print("\ntargets")
    for text, ok, value in targets:
        print(f"  {'met    ' if ok else 'NOT met'}  {text}: {value}")


def _print_mlp_notes(table: list[dict], proj: list[tuple]) -> None:
    mlp_flops = next(w["flops"] for name, _, _, _, w in proj if name.startswith("Figs. 6/7"))
    print(
        f"  (the MLP grid is {fmt_flops(mlp_flops)}FLOP: 3 h needs "
        f"{mlp_flops / 3 / 3600 / 1e12:.0f} TFLOP/s sustained, above an H200's float32 peak; "
        "only TF32/bf16 tensor cores reach it, and simulate.precision says what must be checked "
        "before their thresholds are trusted)"
    )
    fp32 = _find(table, "mlp-paper-slice", "students", "fp32")
    for p in reduced_precisions():
        low = _find(table, "mlp-paper-slice", "students", p)
        if fp32 and low and fp32["gflop_per_s"] and low["gflop_per_s"]:
            print(
                f"  mlp paper slice students: {p} / fp32 = "
                f"{low['gflop_per_s'] / fp32['gflop_per_s']:.2f}x "
                f"({fp32['fraction_of_gemm']:.0%} of the fp32 GEMM, "
                f"{low['fraction_of_gemm']:.0%} of the {p} one)"
            )


def _print_loop_bound(doc: dict) -> None:
    multi = _find(doc["workloads"], "multinomial-tau", "students") or {}
    loop = (multi.get("loop_gflop_per_s") or 0) * 1e9
    if loop and doc["gemm"].get("fp32"):
        print(
            f"\nnotes: the speed-up of any batched program over the one-at-a-time loop is bounded "
            f"by GEMM rate / loop rate = {doc['gemm']['fp32'] * 1e9 / loop:.1f}x here (the loop's "
            "X_S fits in cache, so one small model is not far from compute bound on this CPU). "
            "--workers N runs N such processes; on an idle machine with N cores the CPU "
            "projections divide by up to N."
        )
