"""The embedded mini collection: complete, consistent, in the right scripts, and loadable by id."""
import itertools
import json
import re
import unicodedata
from collections import Counter, defaultdict

import pytest

from tdlib import data, examples
from tdlib.data import MINI_DIR, MINI_LANGS

SCRIPT = {"zh": "CJK", "fa": "ARABIC", "ru": "CYRILLIC", "en": "LATIN"}


def _rows(path):
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def _script_share(text, lang):
    letters = [c for c in text if unicodedata.category(c).startswith("L")]
    return sum(SCRIPT[lang] in unicodedata.name(c, "") for c in letters) / max(1, len(letters))


@pytest.fixture(scope="module")
def mini():
    test = {l: {r["id"]: r for r in _rows(MINI_DIR / "test" / f"docs.{l}.jsonl")} for l in MINI_LANGS}
    train = {l: {r["id"]: r for r in _rows(MINI_DIR / "train" / f"passages.{l}.jsonl")} for l in MINI_LANGS}
    return test, train


def test_sizes_meet_the_datasheet():
    topics = _rows(MINI_DIR / "test" / "topics.jsonl")
    assert len(topics) >= 40 and all(t["title"] and t["description"] for t in topics)
    assert len(data.read_docs(MINI_DIR / "test" / "docs.en.jsonl")) >= 300
    assert len(data.read_queries(MINI_DIR / "train" / "queries.tsv")) >= 200
    assert len(data.read_docs(MINI_DIR / "train" / "passages.en.jsonl")) >= 400


def test_ids_unique_and_identical_across_languages(mini):
    for collection in mini:
        ids = [list(collection[l]) for l in MINI_LANGS]
        assert all(len(set(i)) == len(i) for i in ids)
        assert all(i == ids[0] for i in ids)
        for l in MINI_LANGS:
            assert all(r["lang"] == l for r in collection[l].values())


def test_every_qrel_and_candidate_exists_in_every_language(mini):
    test, train = mini
    qrels = data.read_qrels(MINI_DIR / "test" / "qrels.txt")
    topics = {t["id"] for t in _rows(MINI_DIR / "test" / "topics.jsonl")}
    assert {q.query_id for q in qrels} == topics
    for l in MINI_LANGS:
        assert {q.doc_id for q in qrels} <= set(test[l])
    queries = {q.query_id for q in data.read_queries(MINI_DIR / "train" / "queries.tsv")}
    cands = data.read_tdist(MINI_DIR / "train" / "candidates.jsonl")
    positives = data.read_qrels(MINI_DIR / "train" / "qrels.txt")
    assert set(cands) == queries
    for qid, pairs in cands.items():
        pids = [p for p, _ in pairs]
        assert len(pids) >= 8 and len(set(pids)) == len(pids)
        for l in MINI_LANGS:
            assert set(pids) <= set(train[l])
        assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)  # best first
    by_query = defaultdict(set)
    for q in positives:
        by_query[q.query_id].add(q.doc_id)
    assert set(by_query) == queries
    assert all(by_query[q] <= {p for p, _ in cands[q]} for q in queries)


def test_graded_judgments_with_relevant_documents_and_distractors():
    per_topic = defaultdict(Counter)
    for q in data.read_qrels(MINI_DIR / "test" / "qrels.txt"):
        assert 0 <= q.relevance <= 3
        per_topic[q.query_id][q.relevance > 0] += 1
    assert all(c[True] >= 2 and c[False] >= 2 for c in per_topic.values())


@pytest.mark.parametrize("lang", ["zh", "fa", "ru"])
def test_each_language_is_in_its_script(mini, lang):
    for collection in mini:
        for r in collection[lang].values():
            assert _script_share(r["text"], lang) >= 0.9, (r["id"], r["text"][:80])
    if lang == "fa":  # Persian letters, not their Arabic look-alikes
        assert not any(re.search("[يك]", r["text"]) for c in mini for r in c["fa"].values())


def test_lengths_within_the_stated_ranges(mini):
    test, train = mini
    words = lambda t: len(re.findall(r"\w+", t))
    assert all(40 <= words(r["text"]) <= 150 for r in test["en"].values())
    assert all(25 <= words(r["text"]) <= 110 for r in train["en"].values())
    for collection in mini:
        for l in ("zh", "fa", "ru"):
            for i, r in collection[l].items():
                ratio = len(r["text"]) / len(collection["en"][i]["text"])
                assert 0.15 < ratio < 3, (l, i)  # a translation, not a fragment


def _shingles(text):
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}


def test_no_empty_duplicated_or_near_duplicated_texts(mini):
    texts = [r["text"] for c in mini for l in MINI_LANGS for r in c[l].values()]
    assert all(t.strip() for t in texts)
    assert len(set(texts)) == len(texts)
    english = [_shingles(r["text"]) for c in mini for r in c["en"].values()]
    for a, b in itertools.combinations(english, 2):
        assert len(a & b) / len(a | b) <= 0.3


def test_train_and_test_are_disjoint(mini):
    test, train = mini
    assert not set(test["en"]) & set(train["en"])
    assert not {r["text"] for r in test["en"].values()} & {r["text"] for r in train["en"].values()}
    titles = {t["title"].lower() for t in _rows(MINI_DIR / "test" / "topics.jsonl")}
    assert not titles & {q.text.lower() for q in data.read_queries(MINI_DIR / "train" / "queries.tsv")}


@pytest.mark.parametrize("lang", MINI_LANGS)
def test_registered_with_ir_datasets(lang):
    import ir_datasets

    data.register_mini()
    test = ir_datasets.load(f"tdlib-mini/{lang}/test")
    assert next(iter(test.docs_iter())).doc_id
    assert len(list(test.queries_iter())) >= 40
    train = examples.load_training("tdlib-mini/en/train", f"tdlib-mini/{lang}/train")
    assert len(train.queries) >= 200 and all(train.positives.values())
