import gzip
import json

import pytest

from tdlib import data, examples
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
    ts = examples.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "c.jsonl"), min_candidates=4)
    assert ts.candidates["q2"] == ["d4", "d3", "d2", "d1"]  # best first
    assert ts.positives == {"q1": {"d1"}, "q2": {"d4"}}
    assert ts.passages["d1"].startswith("پس از")
    with pytest.raises(DataError, match="query q2 has 4 candidates but 6 are needed"):
        examples.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "c.jsonl"), min_candidates=6)
    data.write_tdist(tmp_path / "bad.jsonl", [("q1", [("d1", 1.0), ("d99", 0.0)])])
    with pytest.raises(DataError, match="no English text .* 'd99'"):
        examples.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "bad.jsonl"))
    data.write_tdist(tmp_path / "badq.jsonl", [("q7", [("d1", 1.0)])])
    with pytest.raises(DataError, match="query id\\(s\\) not in"):
        examples.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "badq.jsonl"))


@pytest.mark.parametrize("lookup", ["lines", "arrow"])
@pytest.mark.parametrize("name", ["scores.jsonl", "mt5xxl-monot5-mmarco-engzho.jsonl.gz"])
def test_tdist_index_reads_lazily_what_read_tdist_reads(tmp_path, name, lookup):
    items = [("q1", [("p1", 1.5), ("p2", -0.25)]), ("7", [("p3", 0.0)]), ("q\u00e9", [("p4", 2.0)])]
    data.write_tdist(tmp_path / name, items)
    index = data.open_scores(tmp_path / name, lookup)
    assert type(index).__name__ == {"lines": "TdistIndex", "arrow": "ArrowTdist"}[lookup]
    assert len(index) == 3 and list(index) == ["q1", "7", "q\u00e9"] and "7" in index and "q9" not in index
    assert index["7"] == {"p3": 0.0} and index["q1"] == {"p1": 1.5, "p2": -0.25} and index["q\u00e9"]["p4"] == 2.0
    assert {k: dict(v) for k, v in data.read_tdist(tmp_path / name).items()} == dict(index.items())
    with pytest.raises(KeyError):
        index["q9"]
    (tmp_path / "bad.jsonl").write_text('["q1", [["p1", 1.0]]]\nnot a line\n')
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2"):
        data.open_scores(tmp_path / "bad.jsonl", lookup)


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
    assert data.Texts(str(path), lambda: expected, "arrow").get_many(["n1", "n2"]) == expected
    assert data.Texts(name, lambda: expected).get_many(["n1", "n2"]) == expected


def test_arrow_tables_are_built_once_per_version_of_a_file_and_pickle_small(tmp_path):
    import pickle

    from tdlib.data.tables import ArrowTdist, ArrowTexts

    path = data.write_tdist(tmp_path / "s.jsonl", [("q1", [("p1", 1.0)]), ("q2", [("p2", 2.0)])])
    first = ArrowTdist(path)
    assert ArrowTdist(path).dataset.cache_files == first.dataset.cache_files  # the same table, mapped again
    copy = pickle.loads(pickle.dumps(first))  # as a data-loader worker gets it: reopened, not copied
    assert len(pickle.dumps(first)) < 1000 and dict(copy.items()) == dict(first.items())
    data.write_tdist(path, [("q1", [("p1", 3.0)])])  # a new version of the file is read again
    assert dict(ArrowTdist(path).items()) == {"q1": {"p1": 3.0}}
    docs = data.write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    with pytest.raises(DataError, match=r"d\.jsonl: document 'a' is on two lines"):
        ArrowTexts(docs)
    with pytest.raises(DataError, match="data.lookup='btree': use one of lines, arrow"):
        data.open_scores(path, "btree")


def test_both_lookups_give_the_same_training_examples():
    from tdlib.config import load_config

    drawn = {}
    passages = data.MINI_DIR / "train" / "passages.zh.jsonl"  # a file, so the texts go through the lookup too
    for lookup in ("lines", "arrow"):
        cfg = load_config("smoke", overrides=[f"data.lookup={lookup}", f"data.train_translated={passages}"])
        training = examples.load_training(cfg.fill(cfg.data.train_english), cfg.fill(cfg.data.train_translated),
                                          lookup=lookup)
        scores = data.open_scores(data.corpora.candidate_file("", cfg.fill(cfg.data.train_english)), lookup)
        ex = examples.TrainingExamples(training, cfg, scores, epochs=1)
        drawn[lookup] = [{k: v.tolist() if hasattr(v, "tolist") else v for k, v in ex[i].items()}
                         for i in range(len(ex))]
    assert drawn["lines"] == drawn["arrow"] and drawn["lines"]


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


# ---------------------------------------------------------------- malformed files (issue 12)

CANDIDATES = '["q1", [["d1", 2.0], ["d2", 1.0]]]\n["q2", [["d3", 1.5], ["d4", 0.5]]]\n'


def _write(path, content):
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(content) if isinstance(content, bytes) else content())
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _truncated_gzip():
    whole = gzip.compress(CANDIDATES.encode())
    return whole[: len(whole) // 2]


@pytest.mark.parametrize("name,content,match", [
    # a line cut off after a valid start: the line index accepts it, reading it fails
    ("c.jsonl", CANDIDATES[:-20] + "\n", r"c\.jsonl, line 2: expected \[qid, \[\[pid, score\], \.\.\.\]\] .*cut off"),
    ("c.jsonl.gz", _truncated_gzip, r"c\.jsonl\.gz: the gzip data is cut off or damaged"),
    ("c.jsonl.gz", lambda: CANDIDATES.encode(), r"c\.jsonl\.gz: the gzip data is cut off or damaged"),
    ("c.jsonl", CANDIDATES.encode().replace(b'"d3"', b'"d\xff"'), r"c\.jsonl, line 2: byte 0xff is not valid UTF-8"),
    ("c.jsonl", CANDIDATES.replace("1.5", "NaN"), r"c\.jsonl, line 2: the score of passage d3 is nan"),
    ("c.jsonl", CANDIDATES.replace("1.5", "Infinity"), r"line 2: the score of passage d3 is inf"),
    ("c.jsonl", CANDIDATES + CANDIDATES.splitlines(keepends=True)[0], r"c\.jsonl(, line 3: id|: query) 'q1' is on (an earlier line|two lines)"),
])
@pytest.mark.parametrize("reader", ["read_tdist", "lines", "arrow"])
def test_bad_tdist_files_name_file_and_line(tmp_path, name, content, match, reader):
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError, match=match):
        if reader == "read_tdist":
            data.read_tdist(path)
        else:
            index = data.open_scores(path, reader)
            for qid in index:
                index[qid]


@pytest.mark.parametrize("content,match", [
    (b"1 Q0 a 1 2.0 t\n1 Q0 b 2 1.0 t\n1 Q0 \xe9 3 0.5 t\n", r"r\.trec, line 3: byte 0xe9 is not valid UTF-8"),
    ("", r"r\.trec holds no results"),
    ("\n\n", r"r\.trec holds no results"),
    ("1 Q0 a 1 2.0\n", r"line 1: expected 'qid Q0 docid rank score tag', found 5 fields"),
    ("1 Q0 a 1 2.0 t\n1 Q0 b 1.5 2 t\n", r"line 2: rank '1\.5' is not a whole number >= 0"),
    ("1 Q0 a -1 2.0 t\n", r"line 1: rank '-1' is not a whole number"),
    ("1 Q0 a 1 nan t\n", r"line 1: score 'nan' is not a finite number"),
    ("1 Q0 a 1 2.0 t\n1 Q0 a 2 1.0 t\n", r"line 2: document a is ranked twice for query 1"),
])
def test_bad_runs_name_file_and_line(tmp_path, content, match):
    with pytest.raises(DataError, match=match):
        data.read_run(_write(tmp_path / "r.trec", content))


@pytest.mark.parametrize("reader", [data.read_run, data.read_qrels, data.read_docs, data.read_tdist, data.TdistIndex])
def test_a_folder_where_a_file_is_expected_says_so(tmp_path, reader):
    with pytest.raises(DataError, match=f"{tmp_path} is a folder; give the path of a file"):
        reader(tmp_path)


@pytest.mark.parametrize("grade", ["high", "1.5"])
def test_qrels_grades_must_be_integers(tmp_path, grade):
    with pytest.raises(DataError, match=f"qrels, line 2: relevance '{grade}' is not an integer"):
        data.read_qrels(_write(tmp_path / "qrels", f"1 0 a 1\n1 0 b {grade}\n"))


def _tiny_copy(tmp_path, tiny):
    for f in tiny.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "queries.tsv").write_text("t1\tflooding after rain\nt2\tsleep and health\n")
    return tmp_path


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("what,file,old,new,match", [
    ("docs", "docs.ru.jsonl", '{"id": "d2"', 'nonsense {"id": "d2"', r"docs\.ru\.jsonl, line 2: not valid JSON"),
    ("docs", "docs.ru.jsonl", '{"id": "d2"', '{"id": "d1"', r"docs\.ru\.jsonl \(registered as .*\): document id 'd1' appears twice"),
    ("topics", "topics.jsonl", '{"id": "t2"', '{"id": "t2', r"topics\.jsonl, line 2: not valid JSON"),
    ("queries", "queries.tsv", "sleep and", "sleep\tand", r"queries\.tsv, line 2: expected 'id<TAB>text', found 3 column"),
    ("qrels", "qrels.txt", "t1 0 d5 0", "t1 0 d5 high", r"qrels\.txt, line 2: relevance 'high' is not an integer"),
    ("qrels", "qrels.txt", "t1 0 d5 0", "t1 0 d5 1.5", r"qrels\.txt, line 2: relevance '1\.5' is not an integer"),
    ("qrels", "qrels.txt", "t1 0 d5 0", "t1 d5 0", r"qrels\.txt, line 2: expected 'qid 0 docid relevance', found 3"),
])
def test_bad_lines_in_a_registered_collection_name_the_file_and_line(tmp_path, tiny, what, file, old, new, match):
    """ir_datasets reads registered files; its failures are re-read with tdlib's readers to name the line."""
    folder = _tiny_copy(tmp_path, tiny)
    _edit(folder / file, old, new)
    name = f"test-bad-{abs(hash(str(tmp_path)))}/ru"
    queries = folder / ("queries.tsv" if what == "queries" else "topics.jsonl")
    data.register_collection(name, docs=folder / "docs.ru.jsonl", queries=queries, qrels=folder / "qrels.txt",
                             lang="ru")
    load = {"docs": data.load_docs, "topics": data.load_queries, "queries": data.load_queries,
            "qrels": data.load_qrels}[what]
    with pytest.raises(DataError, match=match):
        load(name)
    if what == "docs" and "appears twice" not in match:  # looked up by id, through ir_datasets' docstore
        with pytest.raises(DataError, match=match):
            data.Texts(name, lambda: ["d1"]).found(["d1"])


def test_an_empty_candidates_file_fails_before_any_work(tmp_path, tiny):
    en = _training_files(tmp_path, tiny, [("q1", [("d1", 1.0)])])
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl holds no candidates"):
        examples.load_training(en, str(tiny / "docs.fa.jsonl"), str(tmp_path / "empty.jsonl"))
