import pytest
import torch

from tdlib.config import StudentConfig
from tdlib.student import Student, maxsim


def test_maxsim_by_hand_with_masks():
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # third query token is masked out
    q_mask = torch.tensor([[1, 1, 0]])
    d = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.0, 9.0]],   # third doc token masked out
                      [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    d_mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # doc 0: max(1, .6) + max(0, .8) = 1.8 ; doc 1: 0 + 1 = 1
    assert torch.allclose(maxsim(q, q_mask, d, d_mask), torch.tensor([[1.8, 1.0]]))


def test_maxsim_shapes():
    out = maxsim(torch.randn(3, 4, 8), torch.ones(3, 4), torch.randn(5, 6, 8), torch.ones(5, 6))
    assert out.shape == (3, 5)
    with pytest.raises(ValueError, match="same dim"):
        maxsim(torch.randn(3, 4, 8), torch.ones(3, 4), torch.randn(5, 6, 7), torch.ones(5, 6))
    with pytest.raises(ValueError, match="masks"):
        maxsim(torch.randn(3, 4, 8), torch.ones(3, 5), torch.randn(5, 6, 8), torch.ones(5, 6))


@pytest.mark.parametrize("kind", ["colbert", "single"])
def test_student_scores_its_own_passages_and_round_trips(kind, tmp_path):
    cfg = StudentConfig(model="smoke:encoder", kind=kind, dim=16, query_maxlen=8, doc_maxlen=16)
    student = Student.from_pretrained("smoke:encoder", cfg, seed=3)
    student.eval()
    q = student.tokenize(["rain in the city", "new trains"], is_query=True)
    d = student.tokenize(["rain fell", "coins", "a train", "sleep", "river", "museum"], is_query=False)
    scores = student(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"])
    assert scores.shape == (2, 3)
    # row 1 must be query 1 against passages 3..5, the same as scoring them alone
    alone = student(q["input_ids"][1:], q["attention_mask"][1:], d["input_ids"][3:], d["attention_mask"][3:])
    assert torch.allclose(scores[1], alone[0], atol=1e-5)
    student.save(tmp_path / "s")
    again = Student.from_pretrained(str(tmp_path / "s"))
    again.eval()
    assert again.config.kind == kind
    assert torch.allclose(again(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"]), scores, atol=1e-5)


def test_colbert_queries_are_padded_with_mask_tokens():
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", query_maxlen=10, dim=8))
    q = student.tokenize(["rain"], is_query=True)
    assert q["input_ids"].shape == (1, 10)
    assert int((q["input_ids"] == student.tokenizer.mask_token_id).sum()) >= 5
    assert bool(q["attention_mask"].all())


def test_single_vector_scores_are_cosines():
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", kind="single"))
    vectors = student.encode(["one text", "another text"], is_query=False)
    assert vectors[0].shape == (1, 64)
    assert float(vectors[0].float().norm()) == pytest.approx(1.0, abs=1e-2)
