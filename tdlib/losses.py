"""The two training losses of the paper, over plain score tensors.

- Translate-Distill: KL(teacher || student) between the softmax of the teacher's scores and the softmax
  of the student's scores over the n passages of each query (PLAID-X ``colbert/training/training.py``).
  The paper uses no temperature (T = 1); students that score with a cosine need one (see DESIGN.md).
- Translate-Train: cross-entropy of the positive passage against the negatives of the same query.

Both take tensors shaped (queries, passages) so the maths can be checked by hand; the student module
computes those scores. What this leaves out: in-batch negatives and margin losses (MarginMSE).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_2d(name: str, x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} must be shaped (queries, passages), got shape {tuple(x.shape)}.")


def kl_distillation(
    student_scores: torch.Tensor, teacher_scores: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Mean over queries of KL(softmax(teacher / T) || softmax(student / T)).

    Parameters
    ----------
    student_scores, teacher_scores
        Tensors shaped (queries, passages); row i holds the scores of query i's passages.
    temperature
        Divides both score tensors before the softmax.

    Examples
    --------
    Equal distributions give zero loss:

    >>> s = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(kl_distillation(s, s))
    0.0
    """
    _check_2d("student_scores", student_scores)
    _check_2d("teacher_scores", teacher_scores)
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(
            f"student scores {tuple(student_scores.shape)} and teacher scores "
            f"{tuple(teacher_scores.shape)} must have the same (queries, passages) shape."
        )
    log_p_student = F.log_softmax(student_scores.float() / temperature, dim=-1)  # (queries, passages)
    log_p_teacher = F.log_softmax(teacher_scores.float() / temperature, dim=-1)  # (queries, passages)
    # sum_j p_t(j) * (log p_t(j) - log p_s(j)), averaged over queries
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


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
