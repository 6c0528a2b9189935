"""What recording costs per unit as a sweep grows: writing a unit (part + manifest line), the resume
check of every finished part, and the one consolidation at the end.

The run-directory contract writes ``results.parquet`` once per run (not after every unit), so the
cost per unit must stay flat as the number of units grows; the check and the consolidation read
every part once (linear). Prints seconds per unit for each size.

    python -m benchmarks.bench_store [--units 300,1000,3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from softleak.simulate.rundir import claim


def rows(unit: int, students: int = 20) -> pd.DataFrame:
    """One unit's rows: as many students as a small sweep gives one teacher."""
    rng = np.random.default_rng(unit)
    return pd.DataFrame(
        {
            "run_id": [f"u{unit}-s{s}" for s in range(students)],
            "rho": rng.random(students),
            "student_test_acc": rng.random(students),
            "student_train_acc": rng.random(students),
        }
    )


def measure(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        names = [f"unit{i:06d}" for i in range(n)]
        with claim(out, experiment="bench", identity={"n": n}) as store:
            store.write_config({"units": names})
            frames = [rows(i) for i in range(n)]
            t0 = time.perf_counter()
            for name, frame in zip(names, frames, strict=True):
                store.write_unit(name, frame)
            write = time.perf_counter() - t0
            t0 = time.perf_counter()
            done = store.finished(names, 20)
            check = time.perf_counter() - t0
            t0 = time.perf_counter()
            table = store.consolidate(names)
            consolidate = time.perf_counter() - t0
        assert len(done) == n and len(table) == 20 * n
    return {"units": n, "write": write / n, "check": check / n, "consolidate": consolidate / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default="300,1000,3000", help="sweep sizes in units")
    args = parser.parse_args(argv)
    print(
        f"{'units':>7s} {'write ms/unit':>14s} {'check ms/unit':>14s} {'consolidate ms/unit':>20s}"
    )
    for n in (int(v) for v in args.units.split(",")):
        r = measure(n)
        print(
            f"{r['units']:7d} {1e3 * r['write']:14.2f} {1e3 * r['check']:14.2f} "
            f"{1e3 * r['consolidate']:20.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
