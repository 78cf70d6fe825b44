import pytest
import torch

from tdlib.config import IndexConfig, SearchConfig, StudentConfig
from tdlib.data import Doc, Query, read_run
from tdlib.errors import DataError
from tdlib.retrieve import Index, build_index, search_index, split_passages
from tdlib.student import Student, StudentSource


def test_split_passages_windows_and_stride():
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder"))
    text = " ".join(f"w{i}" for i in range(10))
    n_tokens = len(student.tokenizer(text, add_special_tokens=False)["input_ids"])
    windows = split_passages(text, student.tokenizer, passage_tokens=n_tokens // 2, stride=n_tokens // 4)
    assert windows[0].startswith("w0") and windows[-1].endswith("w9")
    assert len(windows) >= 3
    assert split_passages("short", student.tokenizer, 180, 90) == ["short"]
    # every window that starts inside the text is kept (PLAID-X's passage script): ten one-token
    # words, windows of 6 every 4 -> starts 0, 4, 8
    text = "the of and to in a is was for on"
    assert len(student.tokenizer(text, add_special_tokens=False)["input_ids"]) == 10
    assert split_passages(text, student.tokenizer, 6, 4) == ["the of and to in a", "in a is was for on", "for on"]


def test_maxp_takes_the_best_passage(tmp_path):
    # a hand-built index: doc A has passages scoring 0.2 and 0.9, doc B one passage scoring 0.5
    from safetensors.torch import save_file
    import json

    vecs = torch.tensor([[0.2, 0.0], [0.9, 0.0], [0.5, 0.0]], dtype=torch.float16)
    save_file({"vectors": vecs, "offsets": torch.tensor([0, 1, 2, 3])}, str(tmp_path / "index.safetensors"))
    (tmp_path / "passage_doc_ids.json").write_text(json.dumps(["A", "A", "B"]))
    index = Index(tmp_path, chunk=2)  # chunks split doc A's passages
    scores, pos = index.search(torch.tensor([[[1.0, 0.0]]]), torch.ones(1, 1), k=2)
    assert [index.doc_ids[i] for i in pos[0].tolist()] == ["A", "B"]
    assert torch.allclose(scores, torch.tensor([[0.9, 0.5]]), atol=1e-3)


def test_index_and_search_a_collection(tmp_path):
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", doc_maxlen=16, dim=8))
    student.save(tmp_path / "s")
    docs = [Doc(f"d{i}", f"document {i} " + "word " * (i * 10)) for i in range(5)]
    source = StudentSource(str(tmp_path / "s"))
    idx = build_index(source, docs, IndexConfig(passage_tokens=12, stride=6), tmp_path / "i", progress=False)
    assert (idx / "index.safetensors").is_file()
    run = search_index(source, idx, [Query("1", "document 3"), Query("2", "word")], SearchConfig(k=3),
                 tmp_path / "r", progress=False)
    results = read_run(run)
    assert set(results) == {"1", "2"} and all(len(v) == 3 for v in results.values())
    # an empty collection is refused before the stage directory is touched: the index built above stays
    with pytest.raises(DataError, match="no documents"):
        build_index(source, [], IndexConfig(passage_tokens=10, stride=5), tmp_path / "i", progress=False)
    assert (idx / "index.safetensors").is_file()


def test_single_vector_profiles_drop_tail_windows_the_paper_keeps_them():
    from tdlib.config import load_config

    assert load_config("paper").index.tail_windows
    assert not load_config("cpu").index.tail_windows and not load_config("colab").index.tail_windows
    student = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder"))
    text = "the of and to in a is was for on"
    assert split_passages(text, student.tokenizer, 6, 4, tails=False) == ["the of and to in a", "in a is was for on"]
    assert split_passages("the of and", student.tokenizer, 6, 4, tails=False) == ["the of and"]


def _recall(exact, approx, k):
    return sum(len({d for d, _ in exact[q][:k]} & {d for d, _ in approx[q][:k]}) / min(k, len(exact[q]))
               for q in exact) / len(exact)


@pytest.mark.parametrize("kind,floor", [("hnsw", 0.95), ("ivfpq", 0.75)])
def test_faiss_indexes_find_what_exhaustive_search_finds(tmp_path, kind, floor):
    """The smoke single-vector student on the mini collection: recall of the exhaustive top 100, and reuse."""
    from tdlib import stages
    from tdlib.config import load_config

    single = ["student.kind=single"]
    exact = read_run(stages.search(load_config("smoke", overrides=single), tmp_path, student="smoke:encoder",
                                   progress=False, name="search-exact", index_name="index-exact"))
    cfg = load_config("smoke", overrides=single + [f"index.kind={kind}"])
    first = stages.search(cfg, tmp_path, student="smoke:encoder", progress=False, name=f"search-{kind}",
                          index_name=f"index-{kind}")
    approx = read_run(first)
    assert set(approx) == set(exact) and _recall(exact, approx, 100) >= floor
    built = tmp_path / f"index-{kind}" / "index.faiss"
    assert built.is_file() and not (tmp_path / f"index-{kind}" / "index.safetensors").exists()
    done = stages.summary(tmp_path / f"index-{kind}")
    assert done["faiss"]["kind"] == kind and done["bytes_per_passage"] > 0
    mtime = built.stat().st_mtime_ns
    again = stages.search(cfg, tmp_path, student="smoke:encoder", progress=False, name=f"again-{kind}",
                          index_name=f"index-{kind}")
    assert built.stat().st_mtime_ns == mtime and read_run(again) == approx  # the saved index is reused


def test_faiss_settings_are_sized_from_the_collection_and_checked():
    from tdlib import ann
    from tdlib.config import load_config
    from tdlib.errors import ConfigError

    small = ann.sized(IndexConfig(kind="ivfpq"), 2_000, 384)
    assert small.nlist == 2_000 // 39 and small.m == 96 and small.nbits == 8
    assert ann.sized(IndexConfig(kind="ivfpq"), 200, 384).nbits == 5  # 4 training vectors per code value
    assert ann.sized(IndexConfig(kind="ivfpq", nlist=10, m=48, nbits=6), 10_000, 384) == \
        ann.Settings("ivfpq", nlist=10, m=48, nbits=6)
    with pytest.raises(ConfigError, match="must divide"):
        ann.sized(IndexConfig(kind="ivfpq", m=100), 10_000, 384)
    with pytest.raises(ConfigError, match="use one of exhaustive, hnsw, ivfpq"):
        load_config("smoke", overrides=["index.kind=flat"])
    with pytest.raises(ConfigError, match="ColBERT-X student searches exhaustively"):
        load_config("smoke", overrides=["student.kind=colbert", "index.kind=hnsw"])
