"""The project's file formats: reading and writing documents, queries, qrels, tdist scores and runs.

Formats (documented for users in ``book/formats.md``):

- documents: JSONL, one ``{"id": ..., "text": ..., "lang": ...}`` per line (``title`` optional);
- queries: TSV ``id<TAB>text`` or JSONL ``{"id", "text"}`` / ``{"id", "title", "description"}``;
- qrels: TREC ``qid 0 docid relevance``;
- candidates and teacher scores: the ``hltcoe/tdist-msmarco-scores`` line format
  ``[qid, [[pid, score], ...]]``, plain or gzipped;
- runs: TREC ``qid Q0 docid rank score tag``.

Every reader names the file and line of a bad record; every writer writes atomically
(:mod:`tdlib.artifacts`). Plain or gzipped files are read alike.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from tdlib.artifacts import atomic_path, atomic_write_text
from tdlib.data.records import Doc, Qrel, Query, Run, check_text, document_text
from tdlib.errors import DataError

DAMAGED_GZIP = (EOFError, gzip.BadGzipFile, zlib.error)


def numbered_lines(path: Path) -> contextlib.closing[Iterator[tuple[int, str]]]:
    """``with numbered_lines(p) as lines: for lineno, line in lines:``, closing the file if the loop stops early."""
    return contextlib.closing(_lines(path))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The numbered lines of a text file (plain or ``.gz``), as ``open`` in text mode gives them.

    Lines are decoded one at a time, so a byte that is not UTF-8 is reported with its own line number;
    a cut-off or damaged gzip file is reported too, instead of an ``EOFError`` from deep inside gzip.
    """
    lineno = 0
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}, line {lineno}: byte {raw[e.start]:#04x} is not valid UTF-8; "
                                    "save the file as UTF-8.") from None
                yield lineno, line[:-2] + "\n" if line.endswith("\r\n") else line
    except DAMAGED_GZIP:
        raise DataError(f"{path}: the gzip data is cut off or damaged after line {lineno}; download or write "
                        "the file again.") from None


HF_PREFIX = "hf://datasets/"


def local_file(path: str | os.PathLike[str]) -> Path:
    """A local path for ``path``; ``hf://datasets/OWNER/NAME/FILE`` is fetched into the Hugging Face cache.

    The published teacher scores, for instance, are
    ``hf://datasets/hltcoe/tdist-msmarco-scores/t53b-monot5-msmarco-engeng.jsonl.gz``. With
    ``HF_HUB_OFFLINE=1`` the cached copy is used.
    """
    text = str(path)
    if not text.startswith(HF_PREFIX):
        return Path(path)
    parts = text[len(HF_PREFIX):].split("/", 2)
    if len(parts) < 3 or not all(parts):
        raise DataError(f"{text}: expected hf://datasets/OWNER/NAME/FILE.")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(f"{parts[0]}/{parts[1]}", parts[2], repo_type="dataset"))
    except Exception as e:  # noqa: BLE001 (network, missing file, offline mode: one message for all)
        raise DataError(f"cannot fetch {text} from the Hugging Face Hub ({type(e).__name__}); check the name, "
                        "the network, or download the file and give its local path.") from None


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = local_file(path)
    if p.is_dir():
        raise DataError(f"{what} file {p} is a folder; give the path of a file.")
    if not p.is_file():
        raise DataError(f"{what} file {p} does not exist.")
    return p


def cache_dir() -> Path:
    return Path(os.environ.get("TDLIB_CACHE", Path.home() / ".cache" / "tdlib"))


def parse_jsonl_line(line: str | bytes, path: Path, lineno: int) -> dict[str, Any]:
    """One line of a JSONL file as a JSON object; anything else names the file and the line."""
    try:
        obj = json.loads(line)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, line {lineno}: byte {e.object[e.start]:#04x} is not valid UTF-8; save the "
                        "file as UTF-8.") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {lineno}: not valid JSON ({e.msg}); each line must hold one JSON "
                        "object.") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}, line {lineno}: expected a JSON object, got {type(obj).__name__}.")
    return obj


def iter_jsonl(path: str | os.PathLike[str], required: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file; a bad line raises ``DataError`` naming file and line."""
    p = require_file(path, "JSONL")
    with numbered_lines(p) as numbered:
        for lineno, line in numbered:
            if not line.strip():
                continue
            obj = parse_jsonl_line(line, p, lineno)
            missing = [k for k in required if k not in obj]
            if missing:
                raise DataError(f"{p}, line {lineno}: missing field(s) {', '.join(missing)}.")
            yield obj


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    with atomic_path(path) as tmp:
        opener = gzip.open(tmp, "wt", encoding="utf-8") if str(path).endswith(".gz") else open(tmp, "w", encoding="utf-8")
        with opener as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return Path(path)


def read_docs(path: str | os.PathLike[str]) -> list[Doc]:
    """Documents from a JSONL file with ``id`` and ``text`` (and optional ``title``)."""
    docs = []
    seen: set[str] = set()
    for i, obj in enumerate(iter_jsonl(path, required=("id", "text")), 1):
        doc_id = str(obj["id"])
        if doc_id in seen:
            raise DataError(f"{path}: document id {doc_id!r} appears twice; give each document its own id.")
        seen.add(doc_id)
        docs.append(Doc(doc_id, document_text(obj, f"{path}, document {doc_id}")))
    return docs


def write_docs(path: str | os.PathLike[str], docs: Iterable[Doc], lang: str) -> Path:
    return write_jsonl(path, ({"id": d.doc_id, "text": d.text, "lang": lang} for d in docs))


def read_queries(path: str | os.PathLike[str], field: str = "title") -> list[Query]:
    """Queries from TSV (``id<TAB>text``) or JSONL (``id`` with ``text``, or ``title``/``description``)."""
    p = require_file(path, "queries")
    queries = []
    if p.suffix in (".jsonl", ".gz") or p.name.endswith(".jsonl.gz"):
        for obj in iter_jsonl(p, required=("id",)):
            text = obj.get(field) or obj.get("text")
            queries.append(Query(str(obj["id"]), check_text(text, f"{p}, query {obj['id']}")))
        return queries
    with numbered_lines(p) as numbered:
        for lineno, line in numbered:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{p}, line {lineno}: expected 'id<TAB>text', found {len(parts)} column(s); a "
                                "query's text cannot hold a tab.")
            queries.append(Query(parts[0], check_text(parts[1], f"{p}, line {lineno}")))
    return queries


def write_queries(path: str | os.PathLike[str], queries: Iterable[Query]) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for q in queries:
                if "\t" in q.text or "\n" in q.text:
                    raise DataError(f"query {q.query_id}: tabs and newlines cannot be written to TSV.")
                f.write(f"{q.query_id}\t{q.text}\n")
    return Path(path)


def read_qrels(path: str | os.PathLike[str]) -> list[Qrel]:
    """TREC qrels: ``qid iteration docid relevance`` separated by whitespace."""
    p = require_file(path, "qrels")
    out = []
    with numbered_lines(p) as numbered:
        for lineno, line in numbered:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise DataError(f"{p}, line {lineno}: expected 'qid 0 docid relevance', found {len(parts)} fields.")
            try:
                rel = int(parts[3])
            except ValueError:
                raise DataError(f"{p}, line {lineno}: relevance {parts[3]!r} is not an integer; grades are whole "
                                "numbers such as 0, 1, 2, 3.") from None
            out.append(Qrel(parts[0], parts[2], rel))
    return out


def write_qrels(path: str | os.PathLike[str], qrels: Iterable[Qrel]) -> Path:
    return atomic_write_text(path, "".join(f"{q.query_id} 0 {q.doc_id} {q.relevance}\n" for q in qrels))


def iter_tdist(path: str | os.PathLike[str]) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Stream ``[qid, [[pid, score], ...]]`` lines (the hltcoe/tdist-msmarco-scores format)."""
    p = require_file(path, "candidates/scores")
    with numbered_lines(p) as numbered:
        for lineno, line in numbered:
            if line.strip():
                yield parse_tdist(line, p, lineno)


def parse_tdist(line: str | bytes, path: Path, lineno: int) -> tuple[str, list[tuple[str, float]]]:
    """One tdist line as ``(qid, [(pid, score), ...])``; anything else names the file and the line."""
    try:
        qid, pairs = json.loads(line)
        parsed = [(str(pid), float(score)) for pid, score in pairs]
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, line {lineno}: byte {e.object[e.start]:#04x} is not valid UTF-8; save the "
                        "file as UTF-8.") from None
    except (ValueError, TypeError):  # JSONDecodeError included: a line cut off, or another shape
        raise DataError(f"{path}, line {lineno}: expected [qid, [[pid, score], ...]] (tdist line format); "
                        "is the line cut off?") from None
    bad = next(((pid, s) for pid, s in parsed if not math.isfinite(s)), None)
    if bad is not None:
        raise DataError(f"{path}, line {lineno}: the score of passage {bad[0]} is {bad[1]}; scores must be "
                        "finite numbers.")
    return str(qid), parsed


def format_tdist_line(qid: str, pairs: Iterable[tuple[str, float]]) -> str:
    return json.dumps([qid, [[pid, float(score)] for pid, score in pairs]], ensure_ascii=False) + "\n"


def write_tdist(path: str | os.PathLike[str], items: Iterable[tuple[str, Iterable[tuple[str, float]]]]) -> Path:
    with atomic_path(path) as tmp:
        opener = gzip.open(tmp, "wt", encoding="utf-8") if str(path).endswith(".gz") else open(tmp, "w", encoding="utf-8")
        with opener as f:
            for qid, pairs in items:
                f.write(format_tdist_line(qid, pairs))
    return Path(path)


def read_tdist(path: str | os.PathLike[str]) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for qid, pairs in iter_tdist(path):
        if qid in out:
            raise DataError(f"{path}: query {qid!r} is on two lines; keep one line per query.")
        out[qid] = pairs
    return out


def write_run(path: str | os.PathLike[str], run: Mapping[str, Sequence[tuple[str, float]]], tag: str = "tdlib") -> Path:
    """Write a TREC run; each query's documents are ranked by descending score."""
    lines = []
    for qid in sorted(run):
        ranked = sorted(run[qid], key=lambda x: (-x[1], x[0]))
        lines.extend(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n" for rank, (did, score) in enumerate(ranked, 1))
    return atomic_write_text(path, "".join(lines))


def read_run(path: str | os.PathLike[str]) -> Run:
    """A TREC run; a malformed line, a document ranked twice for a query, or no lines at all fail."""
    p = require_file(path, "run")
    run: Run = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    with numbered_lines(p) as numbered:
        for lineno, line in numbered:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataError(f"{p}, line {lineno}: expected 'qid Q0 docid rank score tag', found {len(parts)} fields.")
            qid, did, rank, score = parts[0], parts[2], parts[3], parts[4]
            try:
                value = float(score)
            except ValueError:
                raise DataError(f"{p}, line {lineno}: score {score!r} is not a number.") from None
            if not math.isfinite(value):
                raise DataError(f"{p}, line {lineno}: score {score!r} is not a finite number.")
            if not (rank.isdigit() and rank.isascii()):  # a swap of rank and score shows here
                raise DataError(f"{p}, line {lineno}: rank {rank!r} is not a whole number >= 0; the fields are "
                                "'qid Q0 docid rank score tag'.")
            if (qid, did) in seen:
                raise DataError(f"{p}, line {lineno}: document {did} is ranked twice for query {qid}; keep one line.")
            seen.add((qid, did))
            run[qid].append((did, value))
    if not run:
        raise DataError(f"{p} holds no results; a run has one line 'qid Q0 docid rank score tag' per document.")
    return dict(run)
