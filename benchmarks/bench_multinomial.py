"""The multinomial temperature workload of paper Fig. 5A on one teacher.

c = 2, d = 1000, n_S = 2000 (n = 2500, rho = 0.8), 40 temperatures x shuffle on/off = 80 students
sharing one input matrix, trained as one batched program; against a one-model-at-a-time loop that
follows the reference's protocol. Prints FLOP/s, the GEMM FLOP/s measured in the same run, and the
throughput ratio. Usage: python -m benchmarks.bench_multinomial [--epochs 200] [--ref-students 4]
(``python -m benchmarks.run_all`` runs this workload with the others and projects the paper grids.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import gemm_flops, reference_student_loop
from softleak.simulate import protocol
from softleak.simulate.spec import SweepSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200, help="student epochs timed")
    ap.add_argument("--ref-students", type=int, default=4, help="students in the reference loop")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: the fast choice here)"
    )
    args = ap.parse_args()

    taus = tuple(float(t) for t in np.logspace(-0.5, 3.5, 40))
    spec = SweepSpec(
        "multinomial",
        d=(1000,),
        c=(2,),
        n=(2500,),
        rho=(0.8,),
        tau=taus,
        shuffle="both",
        teacher_epochs=100,
        student_epochs=args.epochs,
    )
    teacher = protocol.train_teachers(spec, [(1000, 2, 2500, 0)])[0]
    runs = protocol.student_runs(spec, teacher.key)
    n_s, d, c, R = 2000, 1000, 2, len(runs)
    flops_per_student_step = 4 * n_s * d * c  # forward X W^T + gradient G^T X

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    protocol.gradient_students(spec, teacher, runs, threads=args.threads)
    batched = (time.perf_counter() - t0) / (R * args.epochs)

    X = torch.as_tensor(teacher.data.X[:n_s], dtype=torch.float32)
    soft = torch.softmax(torch.as_tensor(teacher.logits[:n_s], dtype=torch.float32), -1)
    torch.set_num_threads(1)  # the one-at-a-time loop's best setting on this CPU
    ref1 = reference_student_loop(X, [soft] * args.ref_students, args.epochs)
    torch.set_num_threads(args.threads)
    ref2 = reference_student_loop(X, [soft] * args.ref_students, args.epochs)
    ref = min(ref1, ref2)
    gemm = gemm_flops(threads=args.threads)

    rate = flops_per_student_step / batched
    print(
        f"workload: {R} students (40 tau x shuffle), d={d}, c={c}, n_S={n_s}, "
        f"{args.epochs} epochs, {args.threads} threads"
    )
    print(f"batched:        {batched * 1e3:8.3f} ms/student-epoch  {rate / 1e9:7.1f} GFLOP/s")
    print(
        f"one-at-a-time:  {ref * 1e3:8.3f} ms/student-epoch  "
        f"{flops_per_student_step / ref / 1e9:7.1f} GFLOP/s (best of 1 and {args.threads} threads)"
    )
    print(f"GEMM 4096^3:    {gemm / 1e9:7.1f} GFLOP/s")
    print(f"speed-up vs one-at-a-time: {ref / batched:6.1f}x   (target >= 30x)")
    print(f"fraction of GEMM rate:     {rate / gemm:6.1%}   (target >= 40%)")
    grid_students = 20 * 40 * 2 * 5
    print(
        f"Fig. 5A paper grid ({grid_students} students x 10,000 epochs) projected: "
        f"{grid_students * 10_000 * batched / 3600:.1f} h of student training on this CPU"
    )


if __name__ == "__main__":
    main()
