"""The small multinomial sweep the kill-and-resume tests share, and how they compare tables.

6 teacher sizes x 2 seeds, each teacher with 8 students (2 rho x 2 tau x shuffle on/off): long
enough per unit for a SIGKILL to land mid-sweep, short enough for a test to stay near a minute.
"""

from __future__ import annotations

import pandas as pd

#: The columns that identify one student run.
KEY = ["d", "c", "n", "seed", "rho", "tau", "shuffle", "ablation", "student_seed"]

#: Teachers of the sweep, and rows (students) per teacher.
TEACHERS = 6 * 2
STUDENTS_PER_TEACHER = 2 * 2 * 2


def sweep_args(teacher_epochs: int, student_epochs: int) -> list[str]:
    """``softleak simulate multinomial ...`` arguments of the shared sweep (without --out)."""
    return [
        "simulate", "multinomial", "--d", "30", "--c", "3", "--n", "30,45,60,75,90,105",
        "--rho", "0.5,0.8", "--tau", "1,4", "--seeds", "2",
        "--teacher-epochs", str(teacher_epochs), "--student-epochs", str(student_epochs),
        "--student-lr", "0.01", "--shuffle", "both", "--no-progress",
    ]  # fmt: skip


def sweep_spec(teacher_epochs: int, student_epochs: int):
    """The same sweep as a validated spec, through the command line's own parser."""
    from softleak.cli import build_parser
    from softleak.commands_simulate import spec_from_args

    args = build_parser().parse_args([*sweep_args(teacher_epochs, student_epochs), "--out", "-"])
    return spec_from_args(args, device="cpu")


def table(path) -> pd.DataFrame:
    """A sweep's results without timings, in key order (tables compared across runs)."""
    df = pd.read_parquet(path / "results.parquet").drop(columns="wall_s")
    return df.sort_values(KEY).reset_index(drop=True)
