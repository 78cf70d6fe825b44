"""The upstream datasets, rebuilt offline in their exact download formats from the mini collection.

ir_datasets looks for each download at a fixed path under ``IR_DATASETS_HOME`` and uses a file that
is already there without fetching or checking it. :func:`build` writes, at those paths, files in the
formats the real downloads have, so the tests run ir_datasets' own parsers (tar and gzip extraction,
MS MARCO's encoding fix, NeuCLIR's language-filtered qrels, HC4's topic records) exactly as a
machine with network would:

==============================  ==============================================================
ir_datasets id                  files (under ``IR_DATASETS_HOME``)
==============================  ==============================================================
msmarco-passage/train           msmarco-passage/collectionandqueries.tar.gz (collection.tsv),
                                msmarco-passage/queries.tar.gz (queries.train.tsv),
                                msmarco-passage/train/qrels (qrels.train.tsv)
neumarco/{zh,fa,ru}/train       neumarco/neuMSMARCO.tar.gz
                                (eng-{zho,fas,rus}/msmarco.collection.20210731-scale21-sockeye2-tm1.tsv)
neuclir/1/{zh,fa,ru}/trec-2022  neuclir/1/{zho,fas,rus}/docs.jsonl.gz (the neuclir/neuclir1 files),
                                neuclir/trec-2022/topics.jsonl, neuclir/trec-2022/qrels
hc4/{zh,fa,ru}/test             hc4/{zho,fas,rus}/hc4_docs.jsonl, hc4/test.topics.v1-0.jsonl,
                                hc4/{zho,fas,rus}/test.qrels.v1-0.txt
==============================  ==============================================================

and :func:`hf_cache` puts ``t53b-monot5-msmarco-engeng.jsonl.gz``, in the line format of the Hugging Face
dataset ``hltcoe/tdist-msmarco-scores``, where ``huggingface_hub`` keeps that dataset's files, so
``hf://datasets/hltcoe/tdist-msmarco-scores/...`` resolves offline. Ids take the upstream shapes: numeric MS MARCO ids, UUID document ids
for NeuCLIR and HC4. Topic translations (which tdlib does not read) repeat the English text.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from pathlib import Path

from tdlib.data import MINI_DIR, iter_jsonl, iter_tdist, read_qrels

LANG3 = {"zh": "zho", "fa": "fas", "ru": "rus"}
SCORES_REPO, SCORES_FILE = "hltcoe/tdist-msmarco-scores", "t53b-monot5-msmarco-engeng.jsonl.gz"
SCORES_URL = f"hf://datasets/{SCORES_REPO}/{SCORES_FILE}"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"  # any commit id: the cache maps "main" to it


def msmarco_id(mini_id: str) -> str:
    """q1001 / p1001 -> "1001" (MS MARCO ids are numbers; queries and passages have separate ranges)."""
    return str(int(mini_id[1:]))


def cc_id(mini_id: str) -> str:
    """A stable UUID for a test document, like NeuCLIR's and HC4's document ids."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tdlib-mini/{mini_id}"))


def _tar_gz(path: Path, members: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            raw = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def _write(path: Path, text: str, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = text.encode("utf-8")
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)


def _tsv(rows: list[tuple[str, str]]) -> str:
    return "".join(f"{a}\t{b}\n" for a, b in rows)


def _cc_doc(row: dict, lang: str) -> str:
    """A NeuCLIR / HC4 document line: the first sentence becomes the title."""
    text = row["text"]
    cut = next((i + 1 for i, ch in enumerate(text) if ch in ".。!?؟！？"), 0)
    title, body = (text[:cut], text[cut:].strip()) if 0 < cut < len(text) else ("", text)
    return json.dumps({"id": cc_id(row["id"]), "cc_file": f"crawl-data/CC-NEWS/2021/{lang}.warc.gz",
                       "time": "2021-06-01T00:00:00Z", "title": title, "text": body,
                       "url": f"https://news.example/{lang}/{row['id']}"}, ensure_ascii=False) + "\n"


def _topic(row: dict, langs: list[str], hc4: bool) -> str:
    base = {"topic_title": row["title"], "topic_description": row["description"],
            "topic_narrative": row["description"]}
    topics = [{"lang": "eng", "source": "original", **base}]
    for l3 in langs:
        topics += [{"lang": l3, "source": "human translation", **base},
                   {"lang": l3, "source": "machine translation", **base}]
    out: dict = {"topic_id": row["id"], "topics": topics}
    if hc4:
        out |= {"narratives": {l3: {"very_valuable": row["description"]} for l3 in langs},
                "report": {"text": row["description"], "url": "https://news.example/report", "date": "2021-06-01"},
                "languages_with_qrels": langs}
    return json.dumps(out, ensure_ascii=False) + "\n"


def build(home: Path, langs: tuple[str, ...] = ("zh", "fa", "ru")) -> Path:
    """Write every upstream file under ``home`` (an ``IR_DATASETS_HOME``) and return ``home``."""
    train, test = MINI_DIR / "train", MINI_DIR / "test"
    # MS MARCO passage: English passages, training queries and qrels.
    passages = [(msmarco_id(r["id"]), r["text"]) for r in iter_jsonl(train / "passages.en.jsonl")]
    queries = [tuple(line.split("\t", 1)) for line in (train / "queries.tsv").read_text("utf-8").splitlines()]
    _tar_gz(home / "msmarco-passage" / "collectionandqueries.tar.gz", {"collection.tsv": _tsv(passages)})
    _tar_gz(home / "msmarco-passage" / "queries.tar.gz",
            {"queries.train.tsv": _tsv([(msmarco_id(q), t) for q, t in queries])})
    _write(home / "msmarco-passage" / "train" / "qrels",
           "".join(f"{msmarco_id(q.query_id)}\t0\t{msmarco_id(q.doc_id)}\t{q.relevance}\n"
                   for q in read_qrels(train / "qrels.txt")))
    # neuMARCO: the same passages translated, one TSV per language inside one archive.
    _tar_gz(home / "neumarco" / "neuMSMARCO.tar.gz", {
        f"eng-{LANG3[lang]}/msmarco.collection.20210731-scale21-sockeye2-tm1.tsv":
            _tsv([(msmarco_id(r["id"]), r["text"]) for r in iter_jsonl(train / f"passages.{lang}.jsonl")])
        for lang in langs})
    # NeuCLIR 1 (TREC 2022) and HC4: news documents, topics with translations, graded qrels.
    topics = list(iter_jsonl(test / "topics.jsonl"))
    qrels = read_qrels(test / "qrels.txt")
    l3s = [LANG3[lang] for lang in langs]
    _write(home / "neuclir" / "trec-2022" / "topics.jsonl", "".join(_topic(t, l3s, hc4=False) for t in topics))
    _write(home / "hc4" / "test.topics.v1-0.jsonl", "".join(_topic(t, l3s, hc4=True) for t in topics))
    for lang in langs:
        docs = "".join(_cc_doc(r, lang) for r in iter_jsonl(test / f"docs.{lang}.jsonl"))
        _write(home / "neuclir" / "1" / LANG3[lang] / "docs.jsonl.gz", docs, gz=True)
        _write(home / "hc4" / LANG3[lang] / "hc4_docs.jsonl", docs)
        _write(home / "hc4" / LANG3[lang] / "test.qrels.v1-0.txt",
               "".join(f"{q.query_id} 0 {cc_id(q.doc_id)} {q.relevance}\n" for q in qrels))
    # NeuCLIR 2022 keeps all languages in one qrels file; the second column names the language.
    _write(home / "neuclir" / "trec-2022" / "qrels",
           "".join(f"{q.query_id} {LANG3[lang]} {cc_id(q.doc_id)} {q.relevance}\n" for lang in langs for q in qrels))
    return home


def hf_cache(hub: Path) -> Path:
    """Put the published-scores file in a Hugging Face hub cache at ``hub`` (``HF_HUB_CACHE``) and return
    its path there: the mini candidates with their scores, MS MARCO-style numeric ids, gzipped."""
    repo = hub / ("datasets--" + SCORES_REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(SNAPSHOT)
    path = repo / "snapshots" / SNAPSHOT / SCORES_FILE
    _write(path, "".join(json.dumps([msmarco_id(q), [[msmarco_id(p), s] for p, s in pairs]]) + "\n"
                         for q, pairs in iter_tdist(MINI_DIR / "train" / "candidates.jsonl")), gz=True)
    return path
