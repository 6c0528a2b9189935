"""Per-replica metrics of a batch of gradient students against their teacher (``simulate.protocol``
reports them per student and, during training, as learning curves)."""

from __future__ import annotations

import torch

from softleak.simulate.metrics import masked_mean


def student_metrics(
    z,
    z_val,
    y,
    z_teacher,
    targets,
    train_masks,
    test_masks,
    *,
    y_val=None,
    taus=None,
    focus=None,
    with_mse=True,
) -> dict:
    """Per-replica metrics (R,) of students with logits z (R, n, c) against the teacher.

    focus (R,): a class per replica whose held-out accuracy is also reported on its own
    (``student_test_acc_focus``) next to that of all other classes (``student_test_acc_rest``).
    """
    z = z.double()
    pred = z.argmax(-1)
    correct = (pred == y).double()
    match = (pred == z_teacher.argmax(-1)).double()
    ce = -(targets * torch.log_softmax(z, -1)).sum(-1)  # (R, n)
    out = {
        "student_train_acc": masked_mean(correct, train_masks),
        "student_test_acc": masked_mean(correct, test_masks),
        "train_ce": masked_mean(ce, train_masks),
        "test_ce": masked_mean(ce, test_masks),
    }
    if with_mse:
        # A softmax student matches z_T / tau up to a per-sample shift: compare centred logits.
        zt = z_teacher.unsqueeze(0) / taus.view(-1, 1, 1).double()
        diff = (z - z.mean(-1, keepdim=True)) - (zt - zt.mean(-1, keepdim=True))
        se = (diff**2).mean(-1)
        out.update(
            student_val_acc=(z_val.double().argmax(-1) == y_val).double().mean(-1),
            match_teacher_train_acc=masked_mean(match, train_masks),
            match_teacher_test_acc=masked_mean(match, test_masks),
            train_mse=masked_mean(se, train_masks),
            test_mse=masked_mean(se, test_masks),
        )
    if focus is not None:
        in_focus = y.unsqueeze(0) == focus.view(-1, 1)  # (R, n)
        out["student_test_acc_focus"] = masked_mean(correct, test_masks & in_focus)
        out["student_test_acc_rest"] = masked_mean(correct, test_masks & ~in_focus)
    else:
        out["match_teacher_test_acc"] = masked_mean(match, test_masks)
    return out
