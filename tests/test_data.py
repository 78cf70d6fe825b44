import gzip
import json

import pytest

from tdlib import data
from tdlib.data import Doc, Qrel, Query
from tdlib.errors import DataError


def test_docs_round_trip(tmp_path):
    docs = [Doc("a", "first text"), Doc("b", "第二个文本")]
    data.write_docs(tmp_path / "d.jsonl", docs, "zh")
    assert data.read_docs(tmp_path / "d.jsonl") == docs
    assert json.loads((tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()[1])["lang"] == "zh"


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
def test_queries_round_trip(tmp_path, suffix):
    queries = [Query("1", "what causes rain"), Query("2", "как спать")]
    if suffix == ".tsv":
        data.write_queries(tmp_path / f"q{suffix}", queries)
    else:
        data.write_jsonl(tmp_path / f"q{suffix}", ({"id": q.query_id, "text": q.text} for q in queries))
    assert data.read_queries(tmp_path / f"q{suffix}") == queries


def test_topics_pick_title_or_description(tiny):
    assert data.read_queries(tiny / "topics.jsonl")[0].text == "flooding after rain"
    assert data.read_queries(tiny / "topics.jsonl", "description")[0].text == "Floods caused by rainfall."


def test_qrels_and_runs_round_trip(tmp_path):
    qrels = [Qrel("1", "a", 3), Qrel("1", "b", 0), Qrel("2", "c", 1)]
    data.write_qrels(tmp_path / "qrels", qrels)
    assert data.read_qrels(tmp_path / "qrels") == qrels
    run = {"1": [("a", 2.5), ("b", 1.0)], "2": [("c", 0.5)]}
    data.write_run(tmp_path / "run", run, tag="x")
    assert data.read_run(tmp_path / "run") == run
    assert (tmp_path / "run").read_text().splitlines()[0] == "1 Q0 a 1 2.500000 x"


@pytest.mark.parametrize("name", ["s.jsonl", "s.jsonl.gz"])
def test_tdist_round_trip_plain_and_gzip(tmp_path, name):
    items = [("q1", [("p1", 1.5), ("p2", -0.25)]), ("q2", [("p3", 0.0)])]
    data.write_tdist(tmp_path / name, items)
    assert list(data.iter_tdist(tmp_path / name)) == items


def test_tdist_reads_the_upstream_line_format(tmp_path):
    # hltcoe/tdist-msmarco-scores: one JSON array per line, numeric ids allowed, gzipped.
    p = tmp_path / "t53b-monot5-msmarco-engeng.jsonl.gz"
    with gzip.open(p, "wt") as f:
        f.write('[1185869, [[7187158, -0.0104], [7187157, -5.28]]]\n')
    assert data.read_tdist(p) == {"1185869": [("7187158", -0.0104), ("7187157", -5.28)]}


@pytest.mark.parametrize("content,match", [
    ('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', r"d\.jsonl, line 2: not valid JSON"),
    ('{"id": "a"}\n', r"line 1: missing field\(s\) text"),
    ('{"id": "a", "text": "  "}\n', "document a: the text is empty"),
    ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "'a' appears twice"),
])
def test_bad_documents_name_file_and_line(tmp_path, content, match):
    (tmp_path / "d.jsonl").write_text(content)
    with pytest.raises(DataError, match=match):
        data.read_docs(tmp_path / "d.jsonl")


def test_bad_tsv_qrels_tdist_and_missing_files(tmp_path):
    (tmp_path / "q.tsv").write_text("1\tok\n2 no tab\n")
    with pytest.raises(DataError, match=r"q\.tsv, line 2: expected 'id<TAB>text'"):
        data.read_queries(tmp_path / "q.tsv")
    (tmp_path / "qrels").write_text("1 0 a 1\n1 0 b x\n")
    with pytest.raises(DataError, match="line 2: relevance 'x'"):
        data.read_qrels(tmp_path / "qrels")
    (tmp_path / "s.jsonl").write_text('["q", [["p", "high"]]]\n')
    with pytest.raises(DataError, match="line 1: expected \\[qid"):
        data.read_tdist(tmp_path / "s.jsonl")
    with pytest.raises(DataError, match="does not exist"):
        data.read_docs(tmp_path / "nope.jsonl")


def test_local_collection_goes_through_ir_datasets(tiny):
    name = data.register_collection("test-tiny/ru", docs=tiny / "docs.ru.jsonl", queries=tiny / "topics.jsonl",
                                    qrels=tiny / "qrels.txt", lang="ru")
    import ir_datasets

    ds = ir_datasets.load(name)
    assert ds.docs_count() is None or ds.docs_count() == 6
    docs = data.load_docs(name)
    assert docs[0] == Doc("d1", "После трёх дней сильного дождя река затопила старый город.")
    assert data.load_queries(name)[1] == Query("t2", "sleep and health")
    assert Qrel("t1", "d1", 3) in data.load_qrels(name)
    # the same files read directly give the same records
    assert data.load_docs(str(tiny / "docs.ru.jsonl")) == docs


def test_unknown_dataset_id_is_one_sentence():
    with pytest.raises(DataError, match="neither an existing file nor a known ir_datasets id"):
        data.load_docs("no-such/collection")


def _training_files(tmp_path, tiny, candidates):
    (tmp_path / "q.tsv").write_text("q1\tflooding\nq2\tsleep\n")
    (tmp_path / "qrels").write_text("q1 0 d1 1\nq2 0 d4 1\n")
    data.write_tdist(tmp_path / "c.jsonl", candidates)
    name = f"test-train-{abs(hash(str(tmp_path)))}"
    data.register_collection(name + "/en", docs=tiny / "docs.en.jsonl", queries=tmp_path / "q.tsv",
                             qrels=tmp_path / "qrels")
    return name + "/en"


def test_training_set_checks_ids_and_counts(tmp_path, tiny):
    good = [("q1", [(f"d{i}", 6 - i) for i in range(1, 7)]), ("q2", [(f"d{i}", i) for i in range(1, 5)])]
    en = _training_files(tmp_path, tiny, good)
    ts = data.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "c.jsonl"), min_candidates=4)
    assert ts.candidates["q2"] == ["d4", "d3", "d2", "d1"]  # best first
    assert ts.positives == {"q1": {"d1"}, "q2": {"d4"}}
    assert ts.passages["d1"].startswith("پس از")
    with pytest.raises(DataError, match="query q2 has 4 candidates but 6 are needed"):
        data.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "c.jsonl"), min_candidates=6)
    data.write_tdist(tmp_path / "bad.jsonl", [("q1", [("d1", 1.0), ("d99", 0.0)])])
    with pytest.raises(DataError, match="no English text .* 'd99'"):
        data.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "bad.jsonl"))
    data.write_tdist(tmp_path / "badq.jsonl", [("q7", [("d1", 1.0)])])
    with pytest.raises(DataError, match="query id\\(s\\) not in"):
        data.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "badq.jsonl"))


@pytest.mark.parametrize("name", ["scores.jsonl", "mt5xxl-monot5-mmarco-engzho.jsonl.gz"])
def test_tdist_index_reads_lazily_what_read_tdist_reads(tmp_path, name):
    items = [("q1", [("p1", 1.5), ("p2", -0.25)]), ("7", [("p3", 0.0)]), ("q\u00e9", [("p4", 2.0)])]
    data.write_tdist(tmp_path / name, items)
    index = data.TdistIndex(tmp_path / name)
    assert len(index) == 3 and list(index) == ["q1", "7", "q\u00e9"] and "7" in index and "q9" not in index
    assert index["7"] == {"p3": 0.0} and index["q1"] == {"p1": 1.5, "p2": -0.25} and index["q\u00e9"]["p4"] == 2.0
    assert {k: dict(v) for k, v in data.read_tdist(tmp_path / name).items()} == dict(index.items())
    with pytest.raises(KeyError):
        index["q9"]
    (tmp_path / "bad.jsonl").write_text('["q1", [["p1", 1.0]]]\nnot a line\n')
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2"):
        data.TdistIndex(tmp_path / "bad.jsonl")


def test_a_title_is_read_the_same_way_by_every_reader(tmp_path):
    # one file, four ways in: by path, as a registered collection, and through Texts on each
    rows = [{"id": "n1", "title": "Rain returns", "text": "After two dry summers, rain."},
            {"id": "n2", "text": "No title here."}]
    path = data.write_jsonl(tmp_path / "news.jsonl", rows)
    expected = {"n1": "Rain returns After two dry summers, rain.", "n2": "No title here."}
    name = data.register_collection(f"test-titles-{abs(hash(str(tmp_path)))}", docs=path)
    assert {d.doc_id: d.text for d in data.read_docs(path)} == expected
    assert {d.doc_id: d.text for d in data.load_docs(str(path))} == expected
    assert {d.doc_id: d.text for d in data.load_docs(name)} == expected
    assert data.Texts(str(path), lambda: expected).get_many(["n1", "n2"]) == expected
    assert data.Texts(name, lambda: expected).get_many(["n1", "n2"]) == expected


def test_registering_a_name_again_with_other_files_is_refused(tmp_path, tiny):
    name = f"test-again-{abs(hash(str(tmp_path)))}"
    data.register_collection(name, docs=tiny / "docs.ru.jsonl", qrels=tiny / "qrels.txt")
    assert data.register_collection(name, docs=tiny / "docs.ru.jsonl", qrels=tiny / "qrels.txt") == name
    with pytest.raises(DataError, match=r"already registered with other files \(docs=.*docs\.ru\.jsonl.*"
                                        r"register these \(docs=.*docs\.fa\.jsonl"):
        data.register_collection(name, docs=tiny / "docs.fa.jsonl", qrels=tiny / "qrels.txt")
    with pytest.raises(DataError, match="already an ir_datasets id"):
        data.register_collection("msmarco-passage/train", docs=tiny / "docs.ru.jsonl")


def test_importing_tdlib_data_registers_the_mini_collection_for_plain_ir_datasets():
    import subprocess
    import sys

    code = ("import ir_datasets, tdlib.data; ds = ir_datasets.load('tdlib-mini/zh/test'); "
            "print(sum(1 for _ in ds.queries_iter()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) > 0
