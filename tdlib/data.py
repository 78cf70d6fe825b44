"""IR data as small typed records, the project's file formats, and one way to load any collection.

Formats (documented for users in ``book/formats.md``):

- documents: JSONL, one ``{"id": ..., "text": ..., "lang": ...}`` per line (``title`` optional);
- queries: TSV ``id<TAB>text`` or JSONL ``{"id", "text"}`` / ``{"id", "title", "description"}``;
- qrels: TREC ``qid 0 docid relevance``;
- candidates and teacher scores: the ``hltcoe/tdist-msmarco-scores`` line format
  ``[qid, [[pid, score], ...]]``, plain or gzipped;
- runs: TREC ``qid Q0 docid rank score tag``.

Collections are addressed by an ir_datasets id (``neuclir/1/zh/trec-2022``, ``tdlib-mini/zh/test``) or
by a file path. Local collections, the embedded mini collection included, are registered with
ir_datasets (:func:`register_collection`), so ids and files go through the same code.

What this leaves out: streaming of MS MARCO-scale inputs beyond line-by-line iteration of the tdist
format, and ir_datasets' own download machinery (used as is for public ids).
"""
from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

from tdlib.errors import DataError

MINI_DIR = Path(__file__).resolve().parent / "data" / "mini"
MINI_LANGS = ("en", "zh", "fa", "ru")


class Doc(NamedTuple):
    doc_id: str
    text: str


class Query(NamedTuple):
    query_id: str
    text: str


class Qrel(NamedTuple):
    query_id: str
    doc_id: str
    relevance: int


class ScoredDoc(NamedTuple):
    query_id: str
    doc_id: str
    score: float


class Topic(NamedTuple):
    """A NeuCLIR-style topic as stored by the mini collection."""

    query_id: str
    title: str
    description: str


# ---------------------------------------------------------------- low-level readers and writers


def _open_text(path: Path, mode: str = "rt") -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8", newline="" if "w" in mode or "a" in mode else None)


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} file {p} does not exist.")
    return p


def iter_jsonl(path: str | os.PathLike[str], required: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file; a bad line raises ``DataError`` naming file and line."""
    p = _require_file(path, "JSONL")
    with _open_text(p) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{p}, line {lineno}: not valid JSON ({e.msg}).") from None
            if not isinstance(obj, dict):
                raise DataError(f"{p}, line {lineno}: expected a JSON object, got {type(obj).__name__}.")
            missing = [k for k in required if k not in obj]
            if missing:
                raise DataError(f"{p}, line {lineno}: missing field(s) {', '.join(missing)}.")
            yield obj


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    from tdlib.artifacts import atomic_path

    with atomic_path(path) as tmp:
        opener = gzip.open(tmp, "wt", encoding="utf-8") if str(path).endswith(".gz") else open(tmp, "w", encoding="utf-8")
        with opener as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return Path(path)


def _check_text(text: Any, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: the text is empty; remove the record or give it text.")
    return text


def read_docs(path: str | os.PathLike[str]) -> list[Doc]:
    """Documents from a JSONL file with ``id`` and ``text`` (and optional ``title``)."""
    docs = []
    seen: set[str] = set()
    for i, obj in enumerate(iter_jsonl(path, required=("id", "text")), 1):
        doc_id = str(obj["id"])
        if doc_id in seen:
            raise DataError(f"{path}: document id {doc_id!r} appears twice.")
        seen.add(doc_id)
        text = _check_text(obj["text"], f"{path}, document {doc_id}")
        title = obj.get("title")
        docs.append(Doc(doc_id, f"{title}\n{text}" if title else text))
    return docs


def write_docs(path: str | os.PathLike[str], docs: Iterable[Doc], lang: str) -> Path:
    return write_jsonl(path, ({"id": d.doc_id, "text": d.text, "lang": lang} for d in docs))


def read_queries(path: str | os.PathLike[str], field: str = "title") -> list[Query]:
    """Queries from TSV (``id<TAB>text``) or JSONL (``id`` with ``text``, or ``title``/``description``)."""
    p = _require_file(path, "queries")
    queries = []
    if p.suffix in (".jsonl", ".gz") or p.name.endswith(".jsonl.gz"):
        for obj in iter_jsonl(p, required=("id",)):
            text = obj.get(field) or obj.get("text")
            queries.append(Query(str(obj["id"]), _check_text(text, f"{p}, query {obj['id']}")))
        return queries
    with _open_text(p) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{p}, line {lineno}: expected 'id<TAB>text', found {len(parts)} column(s).")
            queries.append(Query(parts[0], _check_text(parts[1], f"{p}, line {lineno}")))
    return queries


def write_queries(path: str | os.PathLike[str], queries: Iterable[Query]) -> Path:
    from tdlib.artifacts import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for q in queries:
                if "\t" in q.text or "\n" in q.text:
                    raise DataError(f"query {q.query_id}: tabs and newlines cannot be written to TSV.")
                f.write(f"{q.query_id}\t{q.text}\n")
    return Path(path)


def read_qrels(path: str | os.PathLike[str]) -> list[Qrel]:
    """TREC qrels: ``qid iteration docid relevance`` separated by whitespace."""
    p = _require_file(path, "qrels")
    out = []
    with _open_text(p) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise DataError(f"{p}, line {lineno}: expected 'qid 0 docid relevance', found {len(parts)} fields.")
            try:
                rel = int(parts[3])
            except ValueError:
                raise DataError(f"{p}, line {lineno}: relevance {parts[3]!r} is not an integer.") from None
            out.append(Qrel(parts[0], parts[2], rel))
    return out


def write_qrels(path: str | os.PathLike[str], qrels: Iterable[Qrel]) -> Path:
    from tdlib.artifacts import atomic_write_text

    return atomic_write_text(path, "".join(f"{q.query_id} 0 {q.doc_id} {q.relevance}\n" for q in qrels))


def iter_tdist(path: str | os.PathLike[str]) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Stream ``[qid, [[pid, score], ...]]`` lines (the hltcoe/tdist-msmarco-scores format)."""
    p = _require_file(path, "candidates/scores")
    with _open_text(p) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                qid, pairs = json.loads(line)
                parsed = [(str(pid), float(score)) for pid, score in pairs]
            except (json.JSONDecodeError, ValueError, TypeError):
                raise DataError(
                    f"{p}, line {lineno}: expected [qid, [[pid, score], ...]] (tdist line format)."
                ) from None
            yield str(qid), parsed


def format_tdist_line(qid: str, pairs: Iterable[tuple[str, float]]) -> str:
    return json.dumps([qid, [[pid, float(score)] for pid, score in pairs]], ensure_ascii=False) + "\n"


def write_tdist(path: str | os.PathLike[str], items: Iterable[tuple[str, Iterable[tuple[str, float]]]]) -> Path:
    from tdlib.artifacts import atomic_path

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
            raise DataError(f"{path}: query {qid} appears on two lines.")
        out[qid] = pairs
    return out


class TdistIndex(Mapping[str, dict[str, float]]):
    """Scores per query from a tdist file, read lazily: ``index[qid]`` -> ``{pid: score}``.

    One pass records the byte offset of each query's line; a lookup then reads and parses that line
    only, so the published MS MARCO score files (about 809k queries x 50 passages) are not held in
    memory. A gzipped file is first decompressed once into a plain file beside the tdlib cache.
    """

    def __init__(self, path: str | os.PathLike[str]):
        p = _require_file(path, "candidates/scores")
        if p.suffix == ".gz":
            plain = _cache_dir() / "tdist" / f"{p.stem}-{p.stat().st_size}-{p.stat().st_mtime_ns}"
            if not plain.is_file():
                from tdlib.artifacts import atomic_path

                with atomic_path(plain) as tmp, gzip.open(p, "rb") as src, open(tmp, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            p = plain
        self.path, self.source = p, Path(path)
        self.offsets: dict[str, int] = {}
        with open(p, "rb") as f:
            offset = 0
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    qid = _tdist_qid(line, self.source, lineno)
                    if qid in self.offsets:
                        raise DataError(f"{self.source}: query {qid} appears on two lines.")
                    self.offsets[qid] = offset
                offset += len(line)
        self._file = None

    def __getitem__(self, qid: str) -> dict[str, float]:
        if self._file is None:
            self._file = open(self.path, "rb")
        self._file.seek(self.offsets[qid])
        _, pairs = json.loads(self._file.readline())
        return {str(pid): float(score) for pid, score in pairs}

    def __contains__(self, qid: object) -> bool:
        return qid in self.offsets

    def __iter__(self) -> Iterator[str]:
        return iter(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getstate__(self) -> dict[str, Any]:  # picklable for data-loader workers
        return {**self.__dict__, "_file": None}


def _tdist_qid(line: bytes, path: Path, lineno: int) -> str:
    """The query id at the start of a tdist line, without parsing the whole line."""
    head = line[:256].decode("utf-8", "replace").lstrip()
    try:
        if not head.startswith("["):
            raise ValueError
        rest = head[1:].lstrip()
        if rest.startswith('"'):
            return json.loads(rest[: rest.index('"', 1) + 1])
        return rest[: rest.index(",")].strip()
    except ValueError:
        raise DataError(f"{path}, line {lineno}: expected [qid, [[pid, score], ...]] (tdist line format).") from None


Run = dict[str, list[tuple[str, float]]]


def write_run(path: str | os.PathLike[str], run: Mapping[str, Sequence[tuple[str, float]]], tag: str = "tdlib") -> Path:
    """Write a TREC run; each query's documents are ranked by descending score."""
    from tdlib.artifacts import atomic_write_text

    lines = []
    for qid in sorted(run):
        ranked = sorted(run[qid], key=lambda x: (-x[1], x[0]))
        lines.extend(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n" for rank, (did, score) in enumerate(ranked, 1))
    return atomic_write_text(path, "".join(lines))


def read_run(path: str | os.PathLike[str]) -> Run:
    p = _require_file(path, "run")
    run: Run = defaultdict(list)
    with _open_text(p) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataError(f"{p}, line {lineno}: expected 'qid Q0 docid rank score tag', found {len(parts)} fields.")
            try:
                run[parts[0]].append((parts[2], float(parts[4])))
            except ValueError:
                raise DataError(f"{p}, line {lineno}: score {parts[4]!r} is not a number.") from None
    return dict(run)


# ---------------------------------------------------------------- collections through ir_datasets

_EXTRAS: dict[str, dict[str, Path]] = {}


def _cache_dir() -> Path:
    return Path(os.environ.get("TDLIB_CACHE", Path.home() / ".cache" / "tdlib"))


def register_collection(
    name: str,
    docs: str | os.PathLike[str] | None = None,
    queries: str | os.PathLike[str] | None = None,
    qrels: str | os.PathLike[str] | None = None,
    lang: str | None = None,
    candidates: str | os.PathLike[str] | None = None,
) -> str:
    """Register local files with ir_datasets under ``name`` and return the name.

    Documents are JSONL (``id``, ``text``), queries TSV or JSONL topics (``id``, ``title``,
    ``description``), qrels TREC. ``candidates`` (tdist line format) is remembered for training.
    Registering the same name again with the same files is a no-op.
    """
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import JsonlDocs, JsonlQueries, TrecQrels, TsvQueries
    from ir_datasets.util import LocalDownload

    if name in ir_datasets.registry._registered:  # noqa: SLF001 (no public membership test)
        return name
    parts: list[Any] = []
    if docs is not None:
        d = _require_file(docs, "documents")
        store = _cache_dir() / "docstores" / (name.replace("/", "__") + f"-{d.stat().st_size}.pklz4")
        parts.append(JsonlDocs(LocalDownload(d), mapping={"doc_id": "id", "text": "text"}, lang=lang,
                               docstore_path=str(store)))
    if queries is not None:
        q = _require_file(queries, "queries")
        if q.suffix == ".jsonl":
            parts.append(JsonlQueries(LocalDownload(q), query_cls=Topic,
                                      mapping={"query_id": "id", "title": "title", "description": "description"},
                                      lang="en"))
        else:
            parts.append(TsvQueries(LocalDownload(q), lang="en"))
    if qrels is not None:
        parts.append(TrecQrels(LocalDownload(_require_file(qrels, "qrels")), {0: "not relevant", 1: "relevant",
                                                                             2: "highly relevant", 3: "perfect"}))
    ir_datasets.registry.register(name, Dataset(*parts))
    if candidates is not None:
        _EXTRAS[name] = {"candidates": _require_file(candidates, "candidates")}
    return name


def register_mini() -> list[str]:
    """Register the embedded mini collection: ``tdlib-mini/{en,zh,fa,ru}/{train,test}``."""
    names = []
    for lang in MINI_LANGS:
        names.append(register_collection(
            f"tdlib-mini/{lang}/test", docs=MINI_DIR / "test" / f"docs.{lang}.jsonl",
            queries=MINI_DIR / "test" / "topics.jsonl", qrels=MINI_DIR / "test" / "qrels.txt", lang=lang))
        names.append(register_collection(
            f"tdlib-mini/{lang}/train", docs=MINI_DIR / "train" / f"passages.{lang}.jsonl",
            queries=MINI_DIR / "train" / "queries.tsv", qrels=MINI_DIR / "train" / "qrels.txt", lang=lang,
            candidates=MINI_DIR / "train" / "candidates.jsonl"))
    return names


def _dataset(source: str) -> Any:
    import ir_datasets

    if source.startswith("tdlib-mini/"):
        register_mini()
    try:
        return ir_datasets.load(source)
    except KeyError:
        raise DataError(
            f"{source!r} is neither an existing file nor a known ir_datasets id; check the spelling, "
            "or register local files with tdlib.data.register_collection."
        ) from None


def _is_path(source: str) -> bool:
    return os.path.sep in source and Path(source).exists() or Path(source).is_file()


def source_fingerprint(source: str) -> Any:
    """What identifies a data source in a stage record: its files for local data, else its id."""
    from tdlib.artifacts import fingerprint

    if _is_path(source):
        return fingerprint(source)
    if source.startswith("tdlib-mini/"):
        return {"id": source, "files": fingerprint(MINI_DIR)}
    return {"id": source}


def doc_text(doc: Any) -> str:
    title = getattr(doc, "title", "") or ""
    text = getattr(doc, "text", "") or ""
    return f"{title}\n{text}".strip() if title else text


def load_docs(source: str) -> list[Doc]:
    """All documents of a collection (ir_datasets id or JSONL path), in collection order."""
    if _is_path(source):
        return read_docs(source)
    ds = _dataset(source)
    if not ds.has_docs():
        raise DataError(f"{source} has no documents.")
    docs = []
    for d in ds.docs_iter():
        text = doc_text(d)
        docs.append(Doc(d.doc_id, _check_text(text, f"{source}, document {d.doc_id}")))
    return docs


def load_queries(source: str, field: str = "title") -> list[Query]:
    """Queries of a collection; ``field`` picks title or description where topics have both."""
    if _is_path(source):
        return read_queries(source, field)
    ds = _dataset(source)
    if not ds.has_queries():
        raise DataError(f"{source} has no queries.")
    out = []
    for q in ds.queries_iter():
        text = getattr(q, field, None) or getattr(q, "text", None) or getattr(q, "title", None)
        out.append(Query(q.query_id, _check_text(text, f"{source}, query {q.query_id}")))
    return out


def load_qrels(source: str) -> list[Qrel]:
    if _is_path(source):
        return read_qrels(source)
    ds = _dataset(source)
    if not ds.has_qrels():
        raise DataError(f"{source} has no qrels.")
    return [Qrel(q.query_id, q.doc_id, int(q.relevance)) for q in ds.qrels_iter()]


def load_candidates(source: str, dataset: str | None = None) -> dict[str, list[tuple[str, float]]]:
    """Candidates per query (tdist format) from a path, or the ones registered with ``dataset``."""
    if source:
        return read_tdist(source)
    if dataset is not None:
        _dataset(dataset)  # registers the mini collection on first use
        extras = _EXTRAS.get(dataset)
        if extras and "candidates" in extras:
            return read_tdist(extras["candidates"])
    raise DataError(
        f"no candidates are registered for {dataset!r}; set data.candidates=PATH to a file in the "
        "tdist line format [qid, [[pid, score], ...]]."
    )


# ---------------------------------------------------------------- training examples


class TrainingSet(NamedTuple):
    """Everything the teacher and the student need for training, keyed by id."""

    queries: dict[str, str]  # English queries
    passages: dict[str, str]  # translated passages (what the student sees)
    english: dict[str, str]  # English passages (what an eng-eng teacher sees)
    candidates: dict[str, list[str]]  # query id -> candidate passage ids, best first
    positives: dict[str, set[str]]  # query id -> judged relevant passage ids


def load_training(
    english: str,
    translated: str,
    candidates: str = "",
    max_candidates: int = 50,
    max_queries: int | None = None,
    min_candidates: int = 2,
) -> TrainingSet:
    """Load and check a training set; unknown ids or too few candidates fail before any work."""
    queries = {q.query_id: q.text for q in load_queries(english)}
    cands_scored = load_candidates(candidates, english)
    positives: dict[str, set[str]] = defaultdict(set)
    for q in load_qrels(english):
        if q.relevance > 0:
            positives[q.query_id].add(q.doc_id)
    qids = [qid for qid in cands_scored if qid in queries]
    unknown = [qid for qid in cands_scored if qid not in queries]
    if unknown:
        raise DataError(f"candidates name {len(unknown)} query id(s) not in {english}, e.g. {unknown[0]!r}.")
    if max_queries is not None:
        qids = qids[:max_queries]
    cands = {qid: [pid for pid, _ in sorted(cands_scored[qid], key=lambda x: -x[1])][:max_candidates] for qid in qids}
    needed = {pid for qid in qids for pid in cands[qid]}
    en_docs = {d.doc_id: d.text for d in load_docs(english) if d.doc_id in needed}
    tr_docs = {d.doc_id: d.text for d in load_docs(translated) if d.doc_id in needed}
    for name, docs, src in (("English", en_docs, english), ("translated", tr_docs, translated)):
        missing = needed - docs.keys()
        if missing:
            raise DataError(
                f"{len(missing)} candidate passage id(s) have no {name} text in {src}, e.g. {sorted(missing)[0]!r}."
            )
    short = [qid for qid in qids if len(cands[qid]) < min_candidates]
    if short:
        raise DataError(
            f"query {short[0]} has {len(cands[short[0]])} candidates but {min_candidates} are needed per "
            f"step ({len(short)} such queries); lower train.n_passages or give more candidates."
        )
    return TrainingSet(
        queries={qid: queries[qid] for qid in qids},
        passages=tr_docs,
        english=en_docs,
        candidates=cands,
        positives={qid: positives.get(qid, set()) for qid in qids},
    )


__all__ = [
    "Doc", "Query", "Qrel", "ScoredDoc", "Topic", "TrainingSet", "Run", "MINI_DIR",
    "iter_jsonl", "write_jsonl", "read_docs", "write_docs", "read_queries", "write_queries",
    "read_qrels", "write_qrels", "iter_tdist", "read_tdist", "TdistIndex", "write_tdist", "format_tdist_line",
    "read_run", "write_run", "register_collection", "register_mini", "load_docs", "load_queries",
    "load_qrels", "load_candidates", "load_training", "source_fingerprint", "doc_text",
]
