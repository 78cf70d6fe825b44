import math

import pytest
import torch

from tdlib.losses import kl_distillation, translate_train_ce


def test_kl_matches_a_2x3_example_worked_by_hand():
    # Query 1: teacher logits (0, ln 2, ln 3) -> p_t = (1/6, 2/6, 3/6); student uniform -> p_s = 1/3 each.
    # KL = sum p_t log(p_t / p_s) = 1/6 ln(1/2) + 2/6 ln(1) + 3/6 ln(3/2) = 0.0872...
    # Query 2: teacher and student equal -> 0. Mean over the two queries = 0.0436...
    teacher = torch.tensor([[0.0, math.log(2), math.log(3)], [1.0, 2.0, 3.0]])
    student = torch.tensor([[5.0, 5.0, 5.0], [1.0, 2.0, 3.0]])
    by_hand = (1 / 6 * math.log(1 / 2) + 3 / 6 * math.log(3 / 2)) / 2
    assert float(kl_distillation(student, teacher)) == pytest.approx(by_hand, abs=1e-6)


def test_kl_temperature_divides_both_sides():
    teacher = torch.tensor([[0.0, 2.0, 4.0]])
    student = torch.tensor([[1.0, 0.0, 0.0]])
    assert float(kl_distillation(student, teacher, temperature=2.0)) == pytest.approx(
        float(kl_distillation(student / 2, teacher / 2)), abs=1e-7)


def test_kl_is_zero_for_shifted_scores_and_positive_otherwise():
    t = torch.tensor([[1.0, 2.0, 3.0]])
    assert float(kl_distillation(t + 10, t)) == pytest.approx(0.0, abs=1e-7)
    assert float(kl_distillation(t.flip(1), t)) > 0


def test_kl_gradient_pushes_student_towards_teacher():
    student = torch.zeros(1, 3, requires_grad=True)
    kl_distillation(student, torch.tensor([[3.0, 0.0, 0.0]])).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]


@pytest.mark.parametrize("s,t", [((2, 3), (2, 4)), ((2, 3), (3, 3))])
def test_kl_shape_mismatch_names_both_shapes(s, t):
    with pytest.raises(ValueError, match=rf"\({s[0]}, {s[1]}\).*\({t[0]}, {t[1]}\)"):
        kl_distillation(torch.zeros(s), torch.zeros(t))


def test_kl_rejects_1d_scores():
    with pytest.raises(ValueError, match="queries, passages"):
        kl_distillation(torch.zeros(3), torch.zeros(3))


def test_translate_train_ce_by_hand():
    # scores (2, 0, 0): CE = -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2)
    scores = torch.tensor([[2.0, 0.0, 0.0]])
    assert float(translate_train_ce(scores)) == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-6)
    # with the positive in column 1 instead: -log(1 / (e^2 + 2))
    assert float(translate_train_ce(scores, positive_index=1)) == pytest.approx(math.log(math.exp(2) + 2), abs=1e-6)


def test_translate_train_ce_bad_index():
    with pytest.raises(ValueError, match="positive_index 3"):
        translate_train_ce(torch.zeros(2, 3), positive_index=3)
