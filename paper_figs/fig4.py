"""Fig. 4: binary logistic regression with pseudo-inverse students.

(A) teacher train, student train and student test accuracy vs alpha = n/d at rho = 0.8, with the
theory (Cover's finite-d curve, alpha_label^T, alpha_id^S = 1/rho); (B) the phase diagram over
alpha x rho. The quick preset keeps the reference's training settings at d = 200 on nested data.
"""

from __future__ import annotations

from pathlib import Path

from softleak.paper_figs.common import (
    clean,
    fmt_ci,
    format_rows,
    nearest,
    save,
    threshold_entry,
    write_data,
)
from softleak.paper_figs.common import linear_grid as _grid
from softleak.paper_figs.registry import Preset, Recipe
from softleak.simulate.spec import SweepSpec

QUICK = SweepSpec(
    "logistic-pinv",
    d=(200,),
    alpha=_grid(0.25, 3.0, 23),
    rho=_grid(0.05, 0.95, 19),
    seeds=4,
    teacher_epochs=10_000,  # the reference's teacher: Adam lr 1e-3, 10,000 full-batch epochs
    nested_data=True,  # one data set per seed serves every alpha: teachers share one GEMM
)
PAPER = SweepSpec(
    "logistic-pinv",
    d=(1600,),
    alpha=_grid(0.4, 7.0, 50),
    rho=_grid(0.05, 0.95, 50),
    seeds=5,
    shuffle="both",
    teacher_epochs=10_000,
)


def make(tables: dict, out: Path, preset: str) -> dict:
    from softleak.compare import find_thresholds, overlay, phase_diagram
    from softleak.compare.style import new_figure

    df = tables["fig4-pinv"]
    rho = nearest(df.rho, 0.8)
    ov = overlay(df)
    fig, axes = new_figure(ncols=2, panel=(5.2, 4.4))
    ov.plot(ax=axes[0], rho=rho, legend=False)
    axes[0].legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize="x-small", frameon=False
    )
    axes[0].set_title(f"(A) accuracies at rho = {rho:g}, d = {int(df.d.iloc[0])}")
    phases = phase_diagram(df, x="alpha", y="rho")
    phases.plot(ax=axes[1])
    axes[1].set_title("(B) phases")
    files = save(fig, out, "fig4")
    write_data(ov.curves if hasattr(ov, "curves") else df, out, "fig4_curves")
    write_data(phases.to_frame(), out, "fig4_phases")

    table = find_thresholds(df[~df.shuffle])
    label_t = table.select("alpha_label_T").rows
    ids = {clean(r.rho): threshold_entry(r) for r in table.select("alpha_id_S").rows}
    labels = {clean(r.rho): threshold_entry(r) for r in table.select("alpha_label_S").rows}
    t = threshold_entry(label_t[0]) if label_t else None
    id08 = ids.get(clean(rho))
    from softleak.theory.capacity import alpha_label_T

    d = int(df.d.iloc[0])
    summary = {
        "alpha_label_T": t,
        "alpha_label_T_theory_finite_d": clean(alpha_label_T(2, d=d).value),
        "alpha_id_S_rho_0.8": id08,
        "alpha_id_S_theory_rho_0.8": clean(1 / rho),
        "alpha_id_S": list(ids.values()),
        "alpha_label_S": list(labels.values()),
        "phase_counts": {str(k): int(v) for k, v in phases.counts().items()},
        "files": files,
    }
    summary["text"] = format_rows(
        [
            ("alpha_label^T", fmt_ci(t), f"{alpha_label_T(2, d=d).value:.3f} / 1.96 (d=1600)"),
            (f"alpha_id^S(rho={rho:g})", fmt_ci(id08), f"{1 / rho:.3f} / 1.26 (d=1600)"),
        ]
    )
    return summary


RECIPE = Recipe(
    name="fig4",
    title="Binary logistic regression: pseudo-inverse students, thresholds and phases",
    presets={
        "quick": Preset({"fig4-pinv": QUICK}, "2-core CPU, about 30-60 s: d = 200, nested data"),
        "paper": Preset(
            {"fig4-pinv": PAPER}, "the paper's d = 1600 grid (Fig. 4): 50 alpha x 50 rho x 5"
        ),
    },
    make=make,
    paper={"alpha_label_T_d1600": 1.96, "alpha_id_S_rho0.8_d1600": 1.26},
)
