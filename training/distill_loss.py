"""The context-distillation objective: KL( p0(X | C) ‖ pθ(X) ), per position of X.

The teacher's distribution at each position is kept either whole (``top_k=None``) or as
the paper stored it: its ``k`` most likely tokens plus one bucket holding the rest of the
probability mass. The student's distribution is reduced to the same ``k + 1`` outcomes
(the same tokens, and the mass of every other token), so both KLs are exact KLs between
two distributions; with ``k`` equal to the vocabulary size the bucket is empty and the two
agree (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Stands in for log 0 (an empty bucket): finite, so 0 · log 0 and its gradient stay 0.
_LOG_ZERO = -1e30


@dataclass
class TeacherTargets:
    """The teacher's distribution at N positions."""

    logprobs: torch.Tensor  # [N, k] top-k log-probs, or [N, V] the full vocabulary
    indices: torch.Tensor | None  # [N, k] their token ids; None for the full vocabulary
    rest: torch.Tensor | None  # [N] log of the bucket's mass (the other tokens); None: full


def teacher_targets(logits: torch.Tensor, top_k: int | None) -> TeacherTargets:
    """logits [N, V] of the teacher -> its targets (float32)."""
    logprobs = logits.float().log_softmax(-1)  # [N, V]
    if top_k is None:
        return TeacherTargets(logprobs, None, None)
    k = min(top_k, logprobs.shape[-1])
    top, indices = logprobs.topk(k, dim=-1)  # [N, k], [N, k]
    return TeacherTargets(top, indices, _bucket(logprobs, indices))


def distill_kl(student_logits: torch.Tensor, targets: TeacherTargets) -> torch.Tensor:
    """Mean over positions of KL(teacher ‖ student); student_logits [N, V]."""
    student = student_logits.float().log_softmax(-1)  # [N, V]
    if targets.indices is None:
        kl = F.kl_div(student, targets.logprobs, log_target=True, reduction="none").sum(-1)
        return kl.mean()
    chosen = student.gather(-1, targets.indices)  # [N, k]
    kl_top = (targets.logprobs.exp() * (targets.logprobs - chosen)).sum(-1)  # [N]
    rest_teacher = targets.rest  # [N]
    rest_student = _bucket(student, targets.indices)  # [N]
    kl_rest = rest_teacher.exp() * (rest_teacher - rest_student)  # [N]; 0 when the bucket is empty
    return (kl_top + kl_rest).mean()


def _bucket(logprobs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """log of the probability of every token not in ``indices``: [N, V], [N, k] -> [N].

    A log-sum-exp over the other tokens rather than log(1 - sum of the top-k), which loses
    all precision when the top-k hold nearly all the mass.
    """
    others = logprobs.scatter(-1, indices, _LOG_ZERO)  # [N, V]
    return others.logsumexp(-1).clamp(min=_LOG_ZERO)
