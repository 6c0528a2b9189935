"""Modular addition (paper sec. 4 and appendix C), the drawings: Fig. 3 (transformer), Fig. 10
(student learning curves from the grokked transformer teacher) and Fig. 11 (ReLU MLP), and their
recipes. The sweeps and presets are ``paper_figs.modadd_runs``'; the claims
``paper_figs.modadd_claims``'.

``make_rho_figure`` draws panel (A) (teacher loss and accuracy curves with the checkpoints marked)
and the rows x columns of panel (B) (per checkpoint and tau: student train / test / val accuracy
vs rho, the teacher's val accuracy as a green line with a star, chance 1/p dotted);
``make_curves_figure`` draws Fig. 10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from softleak.compare.claims import summary_line
from softleak.paper_figs.common import clean, data_dir, save, write_data
from softleak.paper_figs.modadd_claims import FIG10_CLAIMS, fig10_claims, rho_claim_set, rho_claims
from softleak.paper_figs.modadd_runs import (
    PAPER_NUMBERS,
    TRANSITION_LEVEL,
    presets,
    read_run,
    rho_curves,
    transition_rho,
)
from softleak.paper_figs.registry import Recipe


# --- Figs. 3 and 11 ---------------------------------------------------------------------------
def _teacher_panels(ax_loss, ax_acc, teacher: pd.DataFrame, ckpts: list, chance: float) -> None:
    green, grey = "#228833", "#555555"
    e = teacher["epoch"].to_numpy(float) + 1
    ax_loss.plot(e, teacher["train_loss"], color=grey, label="train loss (on $D^T_*$)")
    ax_loss.plot(e, teacher["val_loss"], color=green, label=r"val loss (on $D_{\rm val}$)")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("teacher cross-entropy")
    ax_acc.plot(e, teacher["train_acc"], color=grey, label=r"${\rm acc}^T_*$")
    ax_acc.plot(e, teacher["val_acc"], color=green, label=r"${\rm acc}^T_{\rm val}$")
    ax_acc.axhline(chance, color="black", ls=":", lw=1, label="chance 1/p")
    ax_acc.set_ylabel("teacher accuracy")
    ax_acc.set_ylim(-0.03, 1.03)
    for ax in (ax_loss, ax_acc):
        ax.set_xscale("log")
        ax.set_xlabel("teacher epoch + 1")
        for k, c in enumerate(ckpts, 1):
            ax.axvline(c["epoch"] + 1, color="black", lw=0.8, ls="--", alpha=0.6)
            ax.annotate(
                f"{k}",
                (c["epoch"] + 1, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -12),
                textcoords="offset points",
                fontsize="small",
                fontweight="bold",
            )
        ax.legend(fontsize="x-small", loc="center left")


def _student_panel(ax, rows: pd.DataFrame, teacher_val: float, chance: float) -> None:
    style = {
        "student_train_acc": ("#CC79A7", "-", "o", r"${\rm acc}^S_{\rm train}$"),
        "student_test_acc": ("#E69F00", "-", "s", r"${\rm acc}^S_{\rm test}$"),
        "student_val_acc": ("#228833", "--", "^", r"${\rm acc}^S_{\rm val}$"),
    }
    for metric, (color, ls, marker, label) in style.items():
        sem = rows[f"{metric}_sem"].fillna(0.0)
        ax.errorbar(
            rows["rho"],
            rows[metric],
            yerr=sem if (sem > 0).any() else None,
            color=color,
            ls=ls,
            marker=marker,
            markersize=4,
            capsize=2,
            lw=1.3,
            label=label,
        )
    ax.axhline(teacher_val, color="#228833", lw=1, alpha=0.7, label=r"${\rm acc}^T_{\rm val}$")
    ax.plot([1.0], [teacher_val], marker="*", color="#228833", ms=11, clip_on=False, zorder=6)
    ax.axhline(chance, color="black", ls=":", lw=1)
    ax.set_xlim(0, 1.04)
    ax.set_ylim(-0.03, 1.05)


def make_rho_figure(name: str, sweep: str, tables: dict, out: Path, paper: dict) -> dict:
    """Fig. 3 / Fig. 11: teacher curves (A) and the students' accuracies vs rho (B)."""
    from matplotlib.figure import Figure

    results, teacher, ckpts = read_run(tables, sweep, out)
    p = int(results["p"].iloc[0])
    chance = 1.0 / p
    curves = rho_curves(results)
    taus = sorted(curves["tau"].unique())
    names = [c["name"] for c in ckpts if c["name"] in set(curves["checkpoint"])]
    ckpts = [c for c in ckpts if c["name"] in names]

    rows_n = max(len(names), 2)
    fig = Figure(figsize=(4.6 + 3.3 * len(taus), 2.7 * rows_n + 0.4), layout="constrained")
    grid = fig.add_gridspec(rows_n, 1 + len(taus), width_ratios=[1.35] + [1] * len(taus))
    ax_loss = fig.add_subplot(grid[: rows_n // 2, 0])
    ax_acc = fig.add_subplot(grid[rows_n // 2 :, 0])
    _teacher_panels(ax_loss, ax_acc, teacher, ckpts, chance)
    model = str(results["model"].iloc[0])
    ax_loss.set_title(f"(A) teacher ({model}, p = {p}, n = {int(results['n'].iloc[0]):,})")
    for i, c in enumerate(ckpts):
        for j, tau in enumerate(taus):
            ax = fig.add_subplot(grid[i, 1 + j])
            rows = curves[(curves.checkpoint == c["name"]) & (curves.tau == tau)]
            _student_panel(ax, rows, c["val_acc"], chance)
            if i == 0:
                ax.set_title(f"(B) tau = {tau:g}" if j == 0 else f"tau = {tau:g}")
            if j == 0:
                ax.set_ylabel(f"teacher {i + 1} (epoch {c['epoch']:,})\naccuracy")
            if i == len(ckpts) - 1:
                ax.set_xlabel(r"$\rho = |D^S_{\rm train}| / n$")
            if i == 0 and j == len(taus) - 1:
                ax.legend(fontsize="x-small", loc="lower right")
    files = save(fig, out, name)
    write_data(curves, out, f"{name}_students")
    write_data(teacher, out, f"{name}_teacher")
    summary = rho_summary(curves, ckpts, chance, paper)
    summary["files"] = files
    summary["claims"] = rho_claims(name, results, ckpts)
    summary["text"] += "\n" + summary_line(summary["claims"])
    return summary


def rho_summary(curves: pd.DataFrame, ckpts: list, chance: float, paper: dict) -> dict:
    """Headline numbers: teacher accuracies per checkpoint, the rho curves, the leakage at the
    largest tau of teacher 1, the spread across checkpoints at the smallest tau and the tau -> 0
    transition."""
    taus = sorted(curves["tau"].unique())
    tau_lo, tau_hi = taus[0], taus[-1]
    by_name = {c["name"]: c for c in ckpts}
    students: dict = {}
    for name in by_name:
        students[name] = {}
        for tau in taus:
            r = curves[(curves.checkpoint == name) & (curves.tau == tau)]
            students[name][f"{tau:g}"] = {
                "rho": [clean(v) for v in r["rho"]],
                "student_train_acc": [clean(v) for v in r["student_train_acc"]],
                "student_test_acc": [clean(v) for v in r["student_test_acc"]],
                "student_val_acc": [clean(v) for v in r["student_val_acc"]],
            }
    first = ckpts[0]["name"]
    hi = curves[(curves.checkpoint == first) & (curves.tau == tau_hi)]
    leak = {
        "checkpoint": first,
        "tau": clean(tau_hi),
        "rho": [clean(v) for v in hi["rho"]],
        "test_minus_val": [clean(v) for v in hi["student_test_acc"] - hi["student_val_acc"]],
    }
    lo = curves[curves.tau == tau_lo].pivot(index="rho", columns="checkpoint")
    spread = {
        metric: clean((lo[metric].max(axis=1) - lo[metric].min(axis=1)).max())
        for metric in ("student_test_acc", "student_val_acc")
    }
    transitions = {}
    for name in by_name:
        r = curves[(curves.checkpoint == name) & (curves.tau == tau_lo)]
        transitions[name] = clean(transition_rho(r["rho"], r["student_val_acc"]))
    reached = [v for v in transitions.values() if v is not None]
    summary = {
        "teacher_val_acc": {c["name"]: clean(c["val_acc"]) for c in ckpts},
        "teacher_train_acc": {c["name"]: clean(c["train_acc"]) for c in ckpts},
        "teacher_epoch": {c["name"]: int(c["epoch"]) for c in ckpts},
        "chance": clean(chance),
        "students": students,
        "leakage_tau_max_teacher1": leak,
        f"spread_across_checkpoints_tau_{tau_lo:g}": spread,
        "rho_transition_tau_min": {
            "tau": clean(tau_lo),
            "level": TRANSITION_LEVEL,
            "per_checkpoint": transitions,
            "mean": clean(np.mean(reached)) if reached else None,
            "paper": paper.get("rho_transition_tau_to_0"),
        },
    }
    summary["text"] = rho_text(curves, ckpts, summary, tau_lo, tau_hi)
    return summary


def rho_text(curves, ckpts, summary, tau_lo, tau_hi) -> str:
    lines = [
        "teacher checkpoints: "
        + "; ".join(
            f"{k} {c['name']} @ {c['epoch']}: train {c['train_acc']:.3f} val {c['val_acc']:.3f}"
            for k, c in enumerate(ckpts, 1)
        )
    ]
    first = ckpts[0]["name"]
    hi = curves[(curves.checkpoint == first) & (curves.tau == tau_hi)]
    lines.append(f"teacher 1, tau = {tau_hi:g}:  rho   test   val  (student)")
    for r in hi.itertuples():
        lines.append(f"{'':22s}{r.rho:4.2f}  {r.student_test_acc:.3f}  {r.student_val_acc:.3f}")
    lines.append(
        f"tau = {tau_lo:g}, student val acc per teacher:  rho  "
        + "  ".join(f"T{k}" for k in range(1, len(ckpts) + 1))
    )
    lo = curves[curves.tau == tau_lo]
    for rho, g in lo.groupby("rho"):
        vals = g.set_index("checkpoint")["student_val_acc"]
        lines.append(
            f"{'':38s}{rho:4.2f}  "
            + "  ".join(f"{vals.get(c['name'], float('nan')):.2f}" for c in ckpts)
        )
    tr = summary["rho_transition_tau_min"]
    mean = "not reached" if tr["mean"] is None else f"{tr['mean']:.2f}"
    lines.append(
        f"rho where the tau = {tau_lo:g} student's val acc reaches {TRANSITION_LEVEL:g}: "
        f"{mean} (mean over teachers) vs paper ~{tr['paper']} (tau -> 0, p = 113, 30%)"
    )
    return "\n".join(lines)


# --- Fig. 10 ----------------------------------------------------------------------------------
CURVE_STYLE = {
    "student_train_acc": ("#CC79A7", "-", r"${\rm acc}^S_{\rm train}$"),
    "student_test_acc": ("#E69F00", "-", r"${\rm acc}^S_{\rm test}$"),
    "student_val_acc": ("#228833", "--", r"${\rm acc}^S_{\rm val}$"),
}


def curve_cases(results: pd.DataFrame, checkpoint: str) -> list[tuple[float, float]]:
    """The paper's two students of the grokked teacher: at the largest tau, the smallest rho whose
    student ends with val acc >= 0.9 (fast generalization; the paper's rho = 0.3 at p = 113, n =
    3,830; the rho nearest 0.3 when none does), and the largest rho at the smallest tau (grokking).
    """
    from softleak.paper_figs.common import nearest

    rows = results[results.checkpoint == checkpoint]
    taus = sorted(rows["tau"].unique())
    hi = rows[rows.tau == taus[-1]].groupby("rho")["student_val_acc"].mean()
    good = hi[hi >= 0.9]
    fast = float(good.index.min()) if len(good) else nearest(rows["rho"], 0.3)
    return [(fast, taus[-1]), (float(rows["rho"].max()), taus[0])]


def _curve_jumps(lc, group) -> dict:
    from softleak.compare.curves import first_crossing

    out = {}
    for metric in CURVE_STYLE:
        m = lc.mean(group, metric)
        if m.empty:
            continue
        e, v = m["epoch"].to_numpy(float), m["mean"].to_numpy(float)
        out[metric] = {
            "final": clean(v[-1]),
            "epoch_to_0.5": clean(first_crossing(e, v, 0.5)),
            "epoch_to_0.9": clean(first_crossing(e, v, 0.9)),
        }
    return out


def make_curves_figure(name: str, sweep: str, tables: dict, out: Path, paper: dict) -> dict:
    """Fig. 10: learning curves of students of the grokked teacher (last checkpoint), next to
    the teacher's own curves."""
    from softleak.compare.curves import first_crossing, learning_curves, read_curves
    from softleak.compare.style import new_figure

    results, teacher, ckpts = read_run(tables, sweep, out)
    last = ckpts[-1]
    curves = read_curves(data_dir(tables, sweep, out))
    rows = results[results.checkpoint == last["name"]]
    lc = learning_curves(rows, curves, by=("rho", "tau"))
    cases = curve_cases(results, last["name"])
    fig, axes = new_figure(ncols=3, panel=(4.6, 3.6))
    chance = 1.0 / int(results["p"].iloc[0])
    panels = {}
    for k, (ax, (rho, tau)) in enumerate(zip(axes, cases, strict=False)):
        _student_curves_panel(ax, lc, rho, tau, last["val_acc"], chance)
        ax.set_title(f"({'AB'[k]}) rho = {rho:g}, tau = {tau:g}")
        panels[f"rho{rho:g}_tau{tau:g}"] = {"rho": rho, "tau": tau, **_curve_jumps(lc, (rho, tau))}
    axes[0].set_ylabel(f"student accuracy (teacher {len(ckpts)}, epoch {last['epoch']:,})")
    axes[0].legend(fontsize="x-small", loc="center right")
    _teacher_curves_panel(axes[2], teacher, ckpts, chance)
    files = save(fig, out, name)

    speed = _speed_table(lc)
    write_data(speed, out, f"{name}_speed")
    write_data(lc.frame, out, f"{name}_curves")
    t_val = first_crossing(
        teacher["epoch"].to_numpy(float), teacher["val_acc"].to_numpy(float), 0.9
    )
    summary = {
        "checkpoint": last["name"],
        "teacher_epoch": int(last["epoch"]),
        "teacher_val_acc": clean(last["val_acc"]),
        "teacher_epoch_to_val_0.9": clean(t_val),
        "panels": panels,
        "speed": [{k: clean(v) for k, v in r.items()} for r in speed.to_dict("records")],
        "files": files,
    }
    summary["text"] = _curves_text(speed, last, len(ckpts), t_val)
    epochs = int(results["student_epochs"].iloc[0])
    summary["claims"] = fig10_claims(
        [panels[f"rho{r:g}_tau{t:g}"] for r, t in cases], teacher, epochs
    )
    summary["text"] += "\n" + summary_line(summary["claims"])
    return summary


def _student_curves_panel(ax, lc, rho, tau, teacher_val: float, chance: float) -> None:
    """One student's (rho, tau) learning curves: every run thin, the mean thick, with the
    teacher's val accuracy and chance."""
    for metric, (color, ls, label) in CURVE_STYLE.items():
        one = lc.runs[(lc.runs.metric == metric) & (lc.runs.rho == rho) & (lc.runs.tau == tau)]
        for _, run in one.groupby("run_id"):
            run = run.sort_values("epoch")
            ax.plot(run["epoch"] + 1, run["value"], color=color, lw=0.5, alpha=0.35)
        m = lc.mean((rho, tau), metric)
        ax.plot(m["epoch"] + 1, m["mean"], color=color, ls=ls, lw=2, label=label)
    ax.axhline(teacher_val, color="#228833", lw=1, alpha=0.6, label=r"${\rm acc}^T_{\rm val}$")
    ax.axhline(chance, color="black", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("student epoch + 1")
    ax.set_ylim(-0.03, 1.03)


def _teacher_curves_panel(ax, teacher: pd.DataFrame, ckpts: list, chance: float) -> None:
    """(C): the teacher's own train and val accuracy, its checkpoints marked."""
    e = teacher["epoch"].to_numpy(float) + 1
    ax.plot(e, teacher["train_acc"], color="#555555", label=r"${\rm acc}^T_*$")
    ax.plot(e, teacher["val_acc"], color="#228833", ls="--", label=r"${\rm acc}^T_{\rm val}$")
    for k, c in enumerate(ckpts, 1):
        ax.axvline(c["epoch"] + 1, color="black", lw=0.8, ls="--", alpha=0.6)
        ax.annotate(
            f"{k}",
            (c["epoch"] + 1, 0.02),
            xytext=(2, 0),
            textcoords="offset points",
            fontsize="small",
            fontweight="bold",
        )
    ax.axhline(chance, color="black", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("teacher epoch + 1")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("(C) the teacher itself (for comparison)")
    ax.legend(fontsize="x-small", loc="center left")


def _speed_table(lc) -> pd.DataFrame:
    """Every student of the grokked teacher: final train / val accuracy and the epochs to 0.9."""
    from softleak.compare.curves import first_crossing

    table = []
    for rho, tau in lc.groups():
        rec = {"rho": rho, "tau": tau}
        for metric, short in (("student_train_acc", "train"), ("student_val_acc", "val")):
            m = lc.mean((rho, tau), metric)
            e, v = m["epoch"].to_numpy(float), m["mean"].to_numpy(float)
            rec[f"{short}_final"] = v[-1]
            rec[f"{short}_epoch_to_0.9"] = first_crossing(e, v, 0.9)
        table.append(rec)
    return pd.DataFrame(table).sort_values(["tau", "rho"])


def _curves_text(speed: pd.DataFrame, last: dict, n_ckpts: int, t_val: float) -> str:
    """Fig. 10's printed summary: the teacher, then one line per student."""
    lines = [
        f"students of teacher {n_ckpts} ({last['name']}, epoch {last['epoch']}, val acc "
        f"{last['val_acc']:.3f}); the teacher reached val acc 0.9 at epoch {_ep(t_val)}",
        f"{'rho':>5s} {'tau':>5s} {'train@end':>9s} {'val@end':>8s} {'ep(train.9)':>11s} "
        f"{'ep(val.9)':>9s}",
    ]
    for r in speed.to_dict("records"):
        lines.append(
            f"{r['rho']:5.2f} {r['tau']:5g} {r['train_final']:9.3f} {r['val_final']:8.3f} "
            f"{_ep(r['train_epoch_to_0.9']):>11s} {_ep(r['val_epoch_to_0.9']):>9s}"
        )
    return "\n".join(lines)


def _ep(x: float) -> str:
    return "never" if not np.isfinite(x) else f"{x:.0f}"


# --- recipes ----------------------------------------------------------------------------------
def _recipe(name, title, sweep, quick, paper_spec, minutes, make_figure, paper, claims) -> Recipe:
    def make(tables: dict, out: Path, preset: str) -> dict:
        return make_figure(name, sweep, tables, out, PAPER_NUMBERS)

    return Recipe(
        name=name,
        title=title,
        presets=presets(sweep, quick, paper_spec, minutes),
        make=make,
        paper=paper,
        claims=claims,
    )


def rho_recipe(name: str, title: str, sweep: str, quick, paper_spec, minutes: str) -> Recipe:
    """Figs. 3 / 11: teacher curves and student accuracies vs rho per checkpoint and tau."""
    claims = rho_claim_set(name, quick.model)
    return _recipe(
        name, title, sweep, quick, paper_spec, minutes, make_rho_figure, PAPER_NUMBERS, claims
    )


def curves_recipe(name: str, title: str, sweep: str, quick, paper_spec, minutes: str) -> Recipe:
    """Fig. 10: student learning curves."""
    paper = {"rho_fast": 0.3, "tau_fast": 10.0}
    return _recipe(
        name, title, sweep, quick, paper_spec, minutes, make_curves_figure, paper, FIG10_CLAIMS
    )
