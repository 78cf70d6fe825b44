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


def test_a_save_that_fails_leaves_the_previous_student_whole(tmp_path, monkeypatch):
    cfg = StudentConfig(model="smoke:encoder", dim=16, query_maxlen=8, doc_maxlen=16)
    student = Student.from_pretrained("smoke:encoder", cfg, seed=3)
    student.save(tmp_path / "s")
    before = sorted(p.name for p in (tmp_path / "s").iterdir())

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # a kill while the tokenizer is written

    monkeypatch.setattr(student.tokenizer, "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        student.save(tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no half-written folder left beside it
    with pytest.raises(KeyboardInterrupt):
        student.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_loading_the_encoder_prints_no_pooler_report(capfd, caplog, tmp_path):
    """transformers reports the unused [CLS] pooler as UNEXPECTED; that is expected and held back."""
    Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", dim=16), seed=0)
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "UNEXPECTED" not in err and not caplog.records
    # weights the checkpoint lacks are still reported, in one line
    from safetensors.torch import load_file, save_file

    from tdlib import smoke

    folder = tmp_path / "enc"
    folder.mkdir()
    for f in smoke.build("encoder").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "layer.1." not in k}, str(folder / "model.safetensors"))
    Student.from_pretrained(str(folder), StudentConfig(model=str(folder), dim=16), seed=0)
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "encoder weights are not in the checkpoint" in caplog.records[0].getMessage()


def test_colbert_queries_are_padded_with_mask_tokens():
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", query_maxlen=10, dim=8))
    q = student.tokenize(["rain"], is_query=True)
    assert q["input_ids"].shape == (1, 10)
    masks = q["input_ids"] == student.tokenizer.mask_token_id
    assert int(masks.sum()) >= 5
    # ColBERT's default: the encoder does not attend to the [MASK] pads, but they all score in MaxSim
    assert not bool(q["attention_mask"][masks].any())
    assert bool(student.scoring_mask(q["input_ids"], q["attention_mask"], is_query=True).all())
    attending = Student.from_pretrained("smoke:encoder", StudentConfig(
        model="smoke:encoder", query_maxlen=10, dim=8, attend_to_mask_tokens=True))
    assert bool(attending.tokenize(["rain"], is_query=True)["attention_mask"].all())


def test_single_vector_scores_are_cosines():
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", kind="single"))
    vectors = student.encode(["one text", "another text"], is_query=False)
    assert vectors[0].shape == (1, 64)
    assert float(vectors[0].float().norm()) == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("kind", ["colbert", "single"])
@pytest.mark.parametrize("is_query", [True, False])
def test_tokenize_matches_the_tokenizer_padded_in_one_call(kind, is_query):
    cfg = StudentConfig(model="smoke:encoder", kind=kind, query_maxlen=8, doc_maxlen=12, query_marker="[unused0]",
                        doc_marker="", doc_prefix="passage: ")
    student = Student.from_pretrained("smoke:encoder", cfg)
    texts = ["rain", "a much longer text about the river that flooded the old town twice", "new trains"]
    got = student.tokenize(texts, is_query=is_query)
    prefix = "" if is_query else "passage: "
    augment = is_query and kind == "colbert"
    want = student.tokenizer([(". " if is_query else "") + prefix + t for t in texts], truncation=True,
                             max_length=8 if is_query else 12, padding="max_length" if augment else "longest",
                             return_tensors="pt")
    if is_query:
        want["input_ids"][:, 1] = student.tokenizer.convert_tokens_to_ids("[unused0]")
    if augment:
        # pads become [MASK]; the attention mask keeps its zeros (attend_to_mask_tokens is off by default)
        want["input_ids"] = want["input_ids"].masked_fill(want["attention_mask"] == 0, student.tokenizer.mask_token_id)
    assert torch.equal(got["input_ids"], want["input_ids"])
    assert torch.equal(got["attention_mask"], want["attention_mask"])


@pytest.mark.parametrize("kind", ["colbert", "single"])
def test_encode_gives_each_text_its_own_vectors_whatever_the_batch(kind):
    cfg = StudentConfig(model="smoke:encoder", kind=kind, dim=16, doc_maxlen=24)
    student = Student.from_pretrained("smoke:encoder", cfg, seed=1)
    texts = ["rain", "the river flooded the old town twice in one year", "new trains", "sleep well", "a museum"]
    together = student.encode(texts, is_query=False, batch_size=2)
    for text, vectors in zip(texts, together):
        alone = student.encode([text], is_query=False)[0]
        assert vectors.dtype == torch.float16 and vectors.shape == alone.shape
        assert torch.allclose(vectors.float(), alone.float(), atol=2e-3)
    if kind == "colbert":  # one vector per real token, padding removed
        assert [v.shape[0] for v in together] == [len(i) for i in student.token_ids(texts, is_query=False)]


def test_a_new_colbert_student_gets_the_markers_its_vocabulary_lacks(tmp_path):
    """As PLAID-X does for XLM-R: the query marker, then the document marker, are added to the vocabulary
    and the embeddings grow by as many rows, drawn from the seed; a saved student keeps them."""
    cfg = StudentConfig(model="smoke:encoder", query_marker="[QMARK]", doc_marker="[DMARK]", doc_maxlen=12)
    base = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", query_marker="",
                                                                  doc_marker=""))
    a, b = (Student.from_pretrained("smoke:encoder", cfg, seed=3) for _ in range(2))
    n = base.encoder.get_input_embeddings().weight.shape[0]
    q, d = a.tokenizer.convert_tokens_to_ids("[QMARK]"), a.tokenizer.convert_tokens_to_ids("[DMARK]")
    assert (q, d) == (len(base.tokenizer), len(base.tokenizer) + 1)
    emb = a.encoder.get_input_embeddings().weight
    assert emb.shape[0] == max(n, d + 1) and torch.equal(emb, b.encoder.get_input_embeddings().weight)
    assert a.tokenize(["rain"], is_query=True)["input_ids"][0, 1] == q
    assert a.tokenize(["rain"], is_query=False)["input_ids"][0, 1] == d
    a.save(tmp_path / "s")
    again = Student.from_pretrained(str(tmp_path / "s"))
    assert again.tokenizer.convert_tokens_to_ids("[DMARK]") == d
    assert torch.equal(again.encoder.get_input_embeddings().weight, emb)
    from tdlib.config import load_config

    paper = load_config("paper").student
    assert (paper.query_marker, paper.doc_marker) == ("[unused0]", "[unused1]")  # PLAID-X's, the paper's
    assert all(load_config(p).student.query_marker == "" for p in ("smoke", "cpu", "colab"))
