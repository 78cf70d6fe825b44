"""The two training losses of the paper, over plain score tensors.

- Translate-Distill: KL(teacher || student) between the softmax of the teacher's scores and the softmax
  of the student's scores over the n passages of each query (PLAID-X ``colbert/training/training.py``:
  both sides through ``log_softmax``, ``KLDivLoss(reduction="batchmean", log_target=True)``; its
  ``distillation_alpha``, default 1, multiplies the teacher's scores, so it is 1 / teacher temperature).
  The paper uses no temperature (T = 1). Each side may have its own: a cosine student, or a cosine
  (bi-encoder) teacher, squeezes its scores into [-1, 1] and needs a small one, while a cross-encoder's
  logits must keep T = 1 or its softmax turns one-hot (the teacher's argmax: hard labels).
- Translate-Train: cross-entropy of the positive passage against the negatives of the same query.

Both take tensors shaped (queries, passages) so the maths can be checked by hand; the student module
computes those scores. What this leaves out: in-batch negatives and margin losses (MarginMSE).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_2d(name: str, x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} must be shaped (queries, passages), got shape {tuple(x.shape)}.")


def kl_distillation(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    temperature: float = 1.0,
    *,
    student_temperature: float | None = None,
    teacher_temperature: float | None = None,
) -> torch.Tensor:
    """Mean over queries of KL(softmax(teacher / T_t) || softmax(student / T_s)).

    Parameters
    ----------
    student_scores, teacher_scores
        Tensors shaped (queries, passages); row i holds the scores of query i's passages.
    temperature
        Divides both score tensors before the softmax, unless a side has its own below.
    student_temperature, teacher_temperature
        Divide one side only (``None``: use ``temperature``).

    Examples
    --------
    Equal distributions give zero loss:

    >>> s = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(kl_distillation(s, s))
    0.0

    A cosine student at T_s = 0.05 matches a teacher whose logits are 20 times its cosines:

    >>> round(float(kl_distillation(s / 20, s, student_temperature=0.05, teacher_temperature=1.0)), 6)
    0.0
    """
    _check_2d("student_scores", student_scores)
    _check_2d("teacher_scores", teacher_scores)
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(
            f"student scores {tuple(student_scores.shape)} and teacher scores "
            f"{tuple(teacher_scores.shape)} must have the same (queries, passages) shape."
        )
    t_s = temperature if student_temperature is None else student_temperature
    t_t = temperature if teacher_temperature is None else teacher_temperature
    if t_s <= 0 or t_t <= 0:
        raise ValueError(f"temperatures must be positive, got student {t_s} and teacher {t_t}.")
    log_p_student = F.log_softmax(student_scores.float() / t_s, dim=-1)  # (queries, passages)
    log_p_teacher = F.log_softmax(teacher_scores.float() / t_t, dim=-1)  # (queries, passages)
    # sum_j p_t(j) * (log p_t(j) - log p_s(j)), averaged over queries
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


def normalised_entropy(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of softmax(scores / T) per row, divided by log n: 0 is one-hot, 1 is flat.

    >>> normalised_entropy(torch.zeros(1, 4))
    tensor([1.])
    >>> float(normalised_entropy(torch.tensor([[0.0, 100.0]]))) < 1e-6
    True
    """
    _check_2d("scores", scores)
    if scores.shape[1] < 2:
        raise ValueError(f"entropy over passages needs at least 2 per row, got shape {tuple(scores.shape)}.")
    log_p = F.log_softmax(scores.float() / temperature, dim=-1)  # (queries, passages)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)  # (queries,)
    return entropy / math.log(scores.shape[1])


def translate_train_ce(scores: torch.Tensor, positive_index: int = 0) -> torch.Tensor:
    """Mean cross-entropy of the positive passage against the other passages of its query.

    >>> round(float(translate_train_ce(torch.tensor([[0.0, 0.0]]))), 4)  # log 2
    0.6931
    """
    _check_2d("scores", scores)
    if not 0 <= positive_index < scores.shape[1]:
        raise ValueError(f"positive_index {positive_index} is outside the {scores.shape[1]} passages per query.")
    target = torch.full((scores.shape[0],), positive_index, dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores.float(), target)
