"""The real datasets' loaders, run offline on copies of the downloads in their exact upstream formats.

``tests/upstream_fixtures.py`` rebuilds msmarco-passage, neumarco, neuclir, hc4 and the published
teacher scores from the mini collection, with upstream ids; ir_datasets' own parsers then read them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import ir_datasets
import pytest
import upstream_fixtures as up

from tdlib import data, examples
from tdlib.errors import DataError

MINI_TRAIN, MINI_TEST = data.MINI_DIR / "train", data.MINI_DIR / "test"


def squash(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def offline_hub(hf_hub_cache, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_hub_cache


def test_msmarco_passage_train_and_neumarco(upstream):
    queries = data.load_queries("msmarco-passage/train")
    mini = data.read_queries(MINI_TRAIN / "queries.tsv")
    assert [(q.query_id, q.text) for q in queries] == [(up.msmarco_id(q.query_id), q.text) for q in mini]
    qrels = data.load_qrels("msmarco-passage/train")
    assert qrels[0] == data.Qrel("1001", "1001", 1) and len(qrels) == 208
    english = {d.doc_id: d.text for d in data.load_docs("msmarco-passage/train")}
    for lang in ("zh", "fa", "ru"):
        translated = {d.doc_id: d.text for d in data.load_docs(f"neumarco/{lang}/train")}
        mini_docs = data.read_docs(MINI_TRAIN / f"passages.{lang}.jsonl")
        assert translated == {up.msmarco_id(d.doc_id): d.text for d in mini_docs}
        assert data.load_queries(f"neumarco/{lang}/train") == queries  # MS MARCO's queries, shared
    assert english["1001"].startswith("Cooked rice")


@pytest.mark.parametrize("dataset", ["neuclir/1/{lang}/trec-2022", "hc4/{lang}/test"])
@pytest.mark.parametrize("lang", ["zh", "fa", "ru"])
def test_news_collections(upstream, dataset, lang):
    name = dataset.format(lang=lang)
    docs = data.load_docs(name)
    mini = data.read_docs(MINI_TEST / f"docs.{lang}.jsonl")
    assert [d.doc_id for d in docs] == [up.cc_id(d.doc_id) for d in mini]
    # The title (first sentence) and the body come back together, title first.
    assert [squash(d.text) for d in docs] == [squash(d.text) for d in mini]
    # one rule for titles (tdlib.data.join_title): the title, a space, the text
    raw = next(iter(ir_datasets.load(name).docs_iter()))
    assert raw.title and docs[0].text == f"{raw.title} {raw.text}"
    topics = list(data.iter_jsonl(MINI_TEST / "topics.jsonl"))
    assert [(q.query_id, q.text) for q in data.load_queries(name)] == [(t["id"], t["title"]) for t in topics]
    assert data.load_queries(name, "description")[0].text == topics[0]["description"]
    # NeuCLIR's qrels file holds all three languages; only this one's judgments are kept.
    qrels = data.load_qrels(name)
    assert qrels == [data.Qrel(q.query_id, up.cc_id(q.doc_id), q.relevance) for q in data.read_qrels(MINI_TEST / "qrels.txt")]


def test_published_scores_resolve_from_the_hub_cache(offline_hub):
    path = data.local_file(up.SCORES_URL)
    assert path.is_file() and str(path).startswith(str(offline_hub))
    first = next(data.iter_tdist(path))
    assert first[0] == "1001" and first[1][0] == ("1002", 15.1021)
    with pytest.raises(DataError, match="cannot fetch"):
        data.local_file("hf://datasets/hltcoe/tdist-msmarco-scores/no-such-file.jsonl.gz")
    with pytest.raises(DataError, match="OWNER/NAME/FILE"):
        data.local_file("hf://datasets/hltcoe")


def test_training_set_on_upstream_data_reads_texts_on_demand(upstream, offline_hub):
    ts = examples.load_training("msmarco-passage/train", "neumarco/zh/train", up.SCORES_URL, max_candidates=5)
    mini = examples.load_training("tdlib-mini/en/train", "tdlib-mini/zh/train", max_candidates=5)
    assert isinstance(ts.passages, data.Texts) and isinstance(ts.candidates, examples.Candidates)
    assert list(ts.candidates) == [up.msmarco_id(q) for q in mini.candidates]
    for qid, pids in mini.candidates.items():
        assert ts.candidates[up.msmarco_id(qid)] == [up.msmarco_id(p) for p in pids]
    pid = ts.candidates["1001"][0]
    assert ts.passages[pid] == mini.passages["p" + pid] and ts.english[pid] == mini.english["p" + pid]
    assert sorted(ts.passages) == sorted(up.msmarco_id(p) for p in mini.passages)  # listing: candidates only
    assert ts.positives["1001"] == {"1001"}
    with pytest.raises(KeyError):
        ts.candidates["not-a-query"]


def _scores_with_unknown_passage(tmp_path) -> str:
    rows = list(data.iter_tdist(MINI_TRAIN / "candidates.jsonl"))[:3]
    rows = [(up.msmarco_id(q), [(up.msmarco_id(p), s) for p, s in pairs]) for q, pairs in rows]
    rows[2][1][0] = ("99999999", 99.0)  # the third query's best candidate is not in the collection
    return str(data.write_tdist(tmp_path / "scores.jsonl", rows))


def test_unknown_passage_fails_before_training_or_when_first_read(upstream, tmp_path, monkeypatch):
    scores = _scores_with_unknown_passage(tmp_path)
    with pytest.raises(DataError, match="no English text in msmarco-passage/train, e.g. '99999999'"):
        examples.load_training("msmarco-passage/train", "neumarco/zh/train", scores)
    with pytest.raises(DataError, match="no translated text in neumarco/zh/train"):
        examples.load_training("msmarco-passage/train", "neumarco/zh/train", scores, check_english=False)
    # Beyond the checked queries a missing passage is found when it is first read, named by its id.
    monkeypatch.setattr(examples, "CHECKED_QUERIES", 2)
    ts = examples.load_training("msmarco-passage/train", "neumarco/zh/train", scores)
    with pytest.raises(DataError, match="'99999999'"):
        ts.passages[ts.candidates[list(ts.candidates)[2]][0]]


def test_texts_from_a_jsonl_file(tmp_path):
    path = data.write_docs(tmp_path / "mt.jsonl.gz", [data.Doc("a", "一"), data.Doc("b", "二")], "zh")
    texts = data.Texts(str(path), lambda: ["b", "a"])
    assert texts["b"] == "二" and "a" in texts and "c" not in texts and list(texts) == ["a", "b"]
    with pytest.raises(DataError, match="no text in"):
        texts["c"]


def test_subcollection_keeps_judged_documents_and_samples_others(upstream):
    name = "neuclir/1/zh/trec-2022"
    judged = {q.doc_id for q in data.load_qrels(name)}
    every = [d.doc_id for d in data.load_docs(name)]
    sub = data.load_subcollection(name, judged, 10, seed=3)
    ids = [d.doc_id for d in sub]
    assert judged <= set(ids) and len(ids) == len(judged) + 10
    assert ids == [d for d in every if d in set(ids)]  # collection order
    assert ids == [d.doc_id for d in data.load_subcollection(name, judged, 10, seed=3)]
    assert ids != [d.doc_id for d in data.load_subcollection(name, judged, 10, seed=4)]
    assert len(data.load_subcollection(name, judged, 10_000)) == len(every)
    with pytest.raises(DataError, match="not in neuclir/1/zh/trec-2022"):
        data.load_subcollection(name, {"no-such-doc"}, 0)


def _cli(*args: str, hub) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub)}
    proc = subprocess.run([sys.executable, "-m", "tdlib", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


SMALL_MODELS = [
    "--set", "student.model=smoke:encoder", "--set", "student.query_maxlen=16", "--set", "student.doc_maxlen=64",
    "--set", "teacher.model=smoke:cross-encoder", "--set", "teacher.max_length=128",
    "--set", "index.passage_tokens=48", "--set", "index.stride=24",
    "--set", "train.max_steps=4", "--set", "train.save_steps=2", "--set", "data.max_train_queries=32",
]


def test_colab_recipe_runs_on_upstream_fixtures(upstream, hf_hub_cache, tmp_path):
    """The colab profile's data, candidates, teacher setting and sub-collection, with tiny models."""
    out = tmp_path / "colab"
    _cli("pipeline", "--profile", "colab", "--out", str(out), "--quiet", *SMALL_MODELS,
         "--set", "data.test_distractors=20", hub=hf_hub_cache)
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["student"]["nDCG@20"] <= 1 and "score" in summary["seconds"]
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["test"] == "neuclir/1/{lang}/trec-2022" and config["data"]["candidates"] == up.SCORES_URL
    judged = {q.doc_id for q in data.load_qrels("neuclir/1/zh/trec-2022")}
    indexed = {line.split()[2] for line in (out / "search" / "run.trec").read_text().splitlines()}
    assert judged <= indexed and len(indexed) == len(judged) + 20  # k=1000 ranks every indexed document
    lines = (out / "teacher" / "scores.jsonl").read_text().splitlines()
    assert len(lines) == 32 and json.loads(lines[0])[0] == "1001"


def test_training_on_published_scores_needs_no_english_passages(upstream, hf_hub_cache, tmp_path):
    out = tmp_path / "published"
    # The English collection is moved away: with published scores, training reads only the queries,
    # the qrels and neuMARCO.
    aside = {p: tmp_path / p.name for p in (upstream / "msmarco-passage").glob("collection*")}
    for src, dst in aside.items():
        src.rename(dst)
    try:
        _cli("train", "--profile", "smoke", "--out", str(out), "--quiet",
             "--set", "data.train_english=msmarco-passage/train", "--set", "data.train_translated=neumarco/{lang}/train",
             "--set", f"data.candidates={up.SCORES_URL}", "--scores", up.SCORES_URL, hub=hf_hub_cache)
    finally:
        for src, dst in aside.items():
            dst.rename(src)
    assert (out / "train" / "student" / "tdlib_student.json").is_file()
    assert not (out / "teacher").exists()


def test_a_trec_run_evaluates_against_neuclir_qrels(upstream, tmp_path):
    """A run in the TREC submission format (as NeuCLIR participants send) scored on the upstream qrels."""
    from tdlib import stages
    from tdlib.config import load_config

    name = "neuclir/1/ru/trec-2022"
    qrels = data.load_qrels(name)
    lines = []
    for qid in sorted({q.query_id for q in qrels}):
        ranked = sorted((q for q in qrels if q.query_id == qid), key=lambda q: -q.relevance)
        lines += [f"{qid} Q0 {q.doc_id} {rank} {100 - rank:.1f} ideal" for rank, q in enumerate(ranked, 1)]
    run = tmp_path / "ideal.run"
    run.write_text("\n".join(lines) + "\n")
    cfg = load_config("smoke", overrides=["lang=ru", "data.test=neuclir/1/{lang}/trec-2022"])
    metrics = stages.evaluate(cfg, tmp_path / "out", run=str(run), progress=False)
    assert metrics["nDCG@20"] == pytest.approx(1.0) and metrics["R@1000"] == pytest.approx(1.0)
    reversed_run = tmp_path / "reversed.run"
    reversed_run.write_text("\n".join(lines[::-1]) + "\n")  # same scores per line: TREC order is by score
    assert stages.evaluate(cfg, tmp_path / "out2", run=str(reversed_run), progress=False)["nDCG@20"] == pytest.approx(1.0)
