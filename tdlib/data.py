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

import atexit
import contextlib
import gzip
import json
import math
import os
import zlib
from collections import defaultdict
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

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


class Topic(NamedTuple):
    """A NeuCLIR-style topic as stored by the mini collection."""

    query_id: str
    title: str
    description: str


# ---------------------------------------------------------------- low-level readers and writers


_DAMAGED_GZIP = (EOFError, gzip.BadGzipFile, zlib.error)


def _numbered(path: Path) -> contextlib.closing[Iterator[tuple[int, str]]]:
    """``with _numbered(p) as lines: for lineno, line in lines:``, closing the file if the loop stops early."""
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
    except _DAMAGED_GZIP:
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


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = local_file(path)
    if p.is_dir():
        raise DataError(f"{what} file {p} is a folder; give the path of a file.")
    if not p.is_file():
        raise DataError(f"{what} file {p} does not exist.")
    return p


def iter_jsonl(path: str | os.PathLike[str], required: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file; a bad line raises ``DataError`` naming file and line."""
    p = _require_file(path, "JSONL")
    with _numbered(p) as numbered:
        for lineno, line in numbered:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{p}, line {lineno}: not valid JSON ({e.msg}); each line must hold one JSON "
                                "object.") from None
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


def join_title(title: str | None, text: str) -> str:
    """The one rule for a document with a title, whichever way it is read: the title, a space, the text.

    PLAID-X's passage script joins them the same way (``title + " " + text``).

    >>> join_title("Rain returns", "After two dry summers ...")
    'Rain returns After two dry summers ...'
    >>> join_title("", "No title.")
    'No title.'
    """
    return f"{title} {text}" if title else text


def _record_text(obj: Mapping[str, Any], where: str) -> str:
    """The text of a JSONL document record, its title (if any) first."""
    return join_title(obj.get("title"), _check_text(obj.get("text"), where))


def read_docs(path: str | os.PathLike[str]) -> list[Doc]:
    """Documents from a JSONL file with ``id`` and ``text`` (and optional ``title``)."""
    docs = []
    seen: set[str] = set()
    for i, obj in enumerate(iter_jsonl(path, required=("id", "text")), 1):
        doc_id = str(obj["id"])
        if doc_id in seen:
            raise DataError(f"{path}: document id {doc_id!r} appears twice; give each document its own id.")
        seen.add(doc_id)
        docs.append(Doc(doc_id, _record_text(obj, f"{path}, document {doc_id}")))
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
    with _numbered(p) as numbered:
        for lineno, line in numbered:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{p}, line {lineno}: expected 'id<TAB>text', found {len(parts)} column(s); a "
                                "query's text cannot hold a tab.")
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
    with _numbered(p) as numbered:
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
    from tdlib.artifacts import atomic_write_text

    return atomic_write_text(path, "".join(f"{q.query_id} 0 {q.doc_id} {q.relevance}\n" for q in qrels))


def iter_tdist(path: str | os.PathLike[str]) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Stream ``[qid, [[pid, score], ...]]`` lines (the hltcoe/tdist-msmarco-scores format)."""
    p = _require_file(path, "candidates/scores")
    with _numbered(p) as numbered:
        for lineno, line in numbered:
            if line.strip():
                yield _parse_tdist(line, p, lineno)


def _parse_tdist(line: str | bytes, path: Path, lineno: int) -> tuple[str, list[tuple[str, float]]]:
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
            raise DataError(f"{path}: query {qid!r} is on two lines; keep one line per query.")
        out[qid] = pairs
    return out


class _LineIndex:
    """Byte offsets of the lines of a text file by key, so one record can be read without the rest.

    One pass records where each key's line starts; a lookup seeks there and reads that line only.
    A gzipped file is first decompressed once into a plain file in the tdlib cache. Indexes are shared:
    opening the same unchanged file twice reuses the first pass.
    """

    _open: dict[tuple[str, int, int, str], dict[str, int]] = {}

    def __init__(self, path: str | os.PathLike[str], what: str, key: Callable[[bytes, Path, int], str]):
        source = _require_file(path, what)
        st = source.stat()
        plain = source
        if source.suffix == ".gz":
            plain = _cache_dir() / "lines" / f"{source.stem}-{st.st_size}-{st.st_mtime_ns}"
            if not plain.is_file():
                from tdlib.artifacts import atomic_path

                try:
                    with atomic_path(plain) as tmp, gzip.open(source, "rb") as src, open(tmp, "wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
                except _DAMAGED_GZIP:
                    raise DataError(f"{source}: the gzip data is cut off or damaged; download or write the "
                                    "file again.") from None
        self.path, self.source = plain, source
        memo = (str(source.resolve()), st.st_size, st.st_mtime_ns, what)
        if memo not in _LineIndex._open:
            offsets: dict[str, int] = {}
            with open(plain, "rb") as f:
                offset = 0
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        k = key(line, source, lineno)
                        if k in offsets:
                            raise DataError(f"{source}, line {lineno}: id {k!r} is on an earlier line too; keep one line "
                                            "per id.")
                        offsets[k] = offset
                    offset += len(line)
            _LineIndex._open[memo] = offsets
        self.offsets = _LineIndex._open[memo]
        self._file: IO[bytes] | None = None

    def line(self, key: str) -> bytes:
        if self._file is None:
            self._file = open(self.path, "rb")
        self._file.seek(self.offsets[key])
        return self._file.readline()

    def lineno(self, key: str) -> int:
        """The line number of ``key``'s line (counted when asked: only error messages need it)."""
        count, left = 1, self.offsets[key]
        with open(self.path, "rb") as f:
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                count, left = count + chunk.count(b"\n"), left - len(chunk)
        return count

    def __getstate__(self) -> dict[str, Any]:  # picklable for data-loader workers
        return {**self.__dict__, "_file": None}


class TdistIndex(_LineIndex, Mapping[str, dict[str, float]]):
    """Scores per query from a tdist file, read lazily: ``index[qid]`` -> ``{pid: score}``.

    The published MS MARCO score files (about 809k queries x 50 passages) are not held in memory.
    """

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path, "candidates/scores", _tdist_qid)

    def __getitem__(self, qid: str) -> dict[str, float]:
        line = self.line(qid)  # KeyError for an unknown query, as a Mapping should
        try:
            _, pairs = _parse_tdist(line, self.source, 0)
        except DataError:  # the line is checked when read: name it (counting lines only now)
            _parse_tdist(line, self.source, self.lineno(qid))
            raise
        return dict(pairs)

    def __contains__(self, qid: object) -> bool:
        return qid in self.offsets

    def __iter__(self) -> Iterator[str]:
        return iter(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets)


def _jsonl_id(line: bytes, path: Path, lineno: int) -> str:
    """The ``id`` of a JSONL document line (parsed fully: ids may come anywhere in the object)."""
    try:
        return str(json.loads(line)["id"])
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, line {lineno}: byte {line[e.start]:#04x} is not valid UTF-8; save the file "
                        "as UTF-8.") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}, line {lineno}: expected a JSON object with an \"id\" field.") from None


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
    """A TREC run; a malformed line, a document ranked twice for a query, or no lines at all fail."""
    p = _require_file(path, "run")
    run: Run = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    with _numbered(p) as numbered:
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


# ---------------------------------------------------------------- collections through ir_datasets

_EXTRAS: dict[str, dict[str, Path]] = {}
# The files each name was registered with, so a second registration can be checked against them.
_REGISTERED: dict[str, dict[str, str | None]] = {}


class TitledDoc(NamedTuple):
    """A document of a registered JSONL collection: ``title`` is "" when the record has none."""

    doc_id: str
    title: str
    text: str


def _titled_docs(path: Path, lang: str | None, store_name: str):
    """ir_datasets' JSONL documents, with an optional ``title`` (its reader needs every key present).

    The document store lives under :func:`_cache_dir`, looked up when it is used, not when registered.
    """
    from ir_datasets.formats import JsonlDocs
    from ir_datasets.util import LocalDownload

    class _Docs(JsonlDocs):
        @property
        def _docstore_path(self) -> str:
            return str(_cache_dir() / "docstores" / store_name)

        @_docstore_path.setter
        def _docstore_path(self, value: str) -> None:  # JsonlDocs.__init__ sets it; the property decides
            pass

        def _iter(self):
            with _numbered(path) as numbered:
                for _, line in numbered:
                    obj = json.loads(line)
                    yield TitledDoc(str(obj["id"]), obj.get("title") or "", obj.get("text"))

    return _Docs(LocalDownload(path), doc_cls=TitledDoc, lang=lang)


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

    Documents are JSONL (``id``, ``text``, optional ``title``, which is put before the text),
    queries TSV or JSONL topics (``id``, ``title``, ``description``), qrels TREC. ``candidates`` (tdist
    line format) is remembered for training. Registering the same name again with the same files is a
    no-op; with other files, or a name ir_datasets already has, it is refused. Nothing is read here.
    """
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import JsonlQueries, TrecQrels, TsvQueries
    from ir_datasets.util import LocalDownload

    files = {what: (str(Path(f).resolve()) if f is not None else None)
             for what, f in (("docs", docs), ("queries", queries), ("qrels", qrels), ("candidates", candidates))}
    if name in _REGISTERED:
        if _REGISTERED[name] == files:
            return name
        had = ", ".join(f"{k}={v}" for k, v in _REGISTERED[name].items() if v)
        new = ", ".join(f"{k}={v}" for k, v in files.items() if v)
        raise DataError(f"the collection {name!r} is already registered with other files ({had}); "
                        f"register these ({new}) under another name.")
    if name in ir_datasets.registry._registered:  # noqa: SLF001 (no public membership test)
        raise DataError(f"{name!r} is already an ir_datasets id; register local files under another name.")
    parts: list[Any] = []
    if docs is not None:
        d = _require_file(docs, "documents")
        # "t" = records carry a title: a store built by an older tdlib (no title field) is not reused.
        store = name.replace("/", "__") + f"-{d.stat().st_size}-t.pklz4"
        parts.append(_titled_docs(d, lang, store))
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
    # The files behind the name: tdlib's own readers re-read one to name the line ir_datasets failed on.
    given = {"docs": docs, "queries": queries, "qrels": qrels, "candidates": candidates}
    extras = {what: _require_file(f, what) for what, f in given.items() if f is not None}
    ir_datasets.registry.register(name, Dataset(*parts))
    _REGISTERED[name] = files
    _EXTRAS[name] = extras
    return name


def register_mini() -> list[str]:
    """Register the embedded mini collection: ``tdlib-mini/{en,zh,fa,ru}/{train,test}``.

    Importing this module does it, so a plain ``ir_datasets.load("tdlib-mini/zh/test")`` works after
    ``import tdlib.data``; calling it again is a no-op.
    """
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


_READ_ERRORS = (ValueError, KeyError, TypeError, RuntimeError, OSError) + _DAMAGED_GZIP


@contextlib.contextmanager
def _reading(source: str, what: str) -> Iterator[None]:
    """Turn a failure inside ir_datasets while reading ``what`` of ``source`` into one sentence.

    For a registered local collection the file is re-read with tdlib's own readers, which name the
    line at fault; the other failures name the collection and the cause.
    """
    try:
        yield
        return
    except _READ_ERRORS as e:
        cause = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    local = _EXTRAS.get(source, {}).get(what)
    precise = None
    if local is not None:
        try:
            _check_registered(local, what)
        except DataError as e:
            precise = e
    hint = (f"check {local}" if local is not None else
            "its download may be damaged: delete it under IR_DATASETS_HOME (default ~/.ir_datasets) and run again")
    raise precise or DataError(f"{source}: ir_datasets cannot read its {what} ({cause}); {hint}.") from None


def _check_registered(path: Path, what: str) -> None:
    """Read a registered file in the format ir_datasets was told it has; a bad line raises DataError."""
    if what == "docs":
        for _ in iter_jsonl(path, required=("id", "text")):
            pass
    elif what == "queries" and path.suffix == ".jsonl":
        for _ in iter_jsonl(path, required=("id", "title", "description")):
            pass
    elif what == "queries":
        read_queries(path)
    elif what == "qrels":
        read_qrels(path)


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
    """The text of an ir_datasets document record, its title (if any) first (:func:`join_title`)."""
    return join_title(getattr(doc, "title", "") or "", getattr(doc, "text", "") or "")


def iter_docs(source: str) -> Iterator[Doc]:
    """The documents of a collection (ir_datasets id or JSONL path), in collection order, one at a time."""
    if _is_path(source):
        yield from read_docs(source)
        return
    ds = _dataset(source)
    if not ds.has_docs():
        raise DataError(f"{source} has no documents.")
    # Ids are checked for local files only: a public collection's ids are not the user's to fix.
    local, seen = _EXTRAS.get(source, {}).get("docs"), set()
    with _reading(source, "docs"):
        for d in ds.docs_iter():
            if local is not None:
                if d.doc_id in seen:
                    raise DataError(f"{local} (registered as {source}): document id {d.doc_id!r} appears twice; "
                                    "give each document its own id.")
                seen.add(d.doc_id)
            yield Doc(d.doc_id, _check_text(doc_text(d), f"{source}, document {d.doc_id}"))


def load_docs(source: str) -> list[Doc]:
    """All documents of a collection (ir_datasets id or JSONL path), in collection order."""
    return list(iter_docs(source))


def load_subcollection(source: str, keep: set[str], others: int, seed: int = 0) -> list[Doc]:
    """The documents in ``keep`` plus ``others`` more drawn uniformly at random, in collection order.

    One streaming pass (reservoir sampling), so a collection of millions is never held in memory. With
    ``keep`` = the judged documents of the test topics this is a sub-collection that exhaustive search
    can handle; its scores are higher than on the full collection, where many more unjudged documents
    compete (see the book's page on running at scale).
    """
    import random

    rng = random.Random(seed)
    kept: list[tuple[int, Doc]] = []
    reservoir: list[tuple[int, Doc]] = []
    seen = 0
    for pos, doc in enumerate(iter_docs(source)):
        if doc.doc_id in keep:
            kept.append((pos, doc))
            continue
        seen += 1
        if len(reservoir) < others:
            reservoir.append((pos, doc))
        else:
            j = rng.randrange(seen)
            if j < others:
                reservoir[j] = (pos, doc)
    missing = keep - {d.doc_id for _, d in kept}
    if missing:
        raise DataError(f"{len(missing)} judged document(s) are not in {source}, e.g. {sorted(missing)[0]!r}.")
    return [d for _, d in sorted(kept + reservoir, key=lambda x: x[0])]


def load_queries(source: str, field: str = "title") -> list[Query]:
    """Queries of a collection; ``field`` picks title or description where topics have both."""
    if _is_path(source):
        return read_queries(source, field)
    ds = _dataset(source)
    if not ds.has_queries():
        raise DataError(f"{source} has no queries.")
    out = []
    with _reading(source, "queries"):
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
    with _reading(source, "qrels"):
        return [Qrel(q.query_id, q.doc_id, int(q.relevance)) for q in ds.qrels_iter()]


def _candidate_file(source: str, dataset: str | None) -> Path:
    """The candidates file: ``source`` if given, else the one registered with ``dataset``."""
    if source:
        return _require_file(source, "candidates/scores")
    if dataset is not None:
        _dataset(dataset)  # registers the mini collection on first use
        extras = _EXTRAS.get(dataset)
        if extras and "candidates" in extras:
            return extras["candidates"]
    raise DataError(
        f"no candidates are registered for {dataset!r}; set data.candidates=PATH to a file in the "
        "tdist line format [qid, [[pid, score], ...]] (the published hltcoe/tdist-msmarco-scores files are)."
    )


def load_candidates(source: str, dataset: str | None = None) -> dict[str, list[tuple[str, float]]]:
    """Candidates per query (tdist format) from a path, or the ones registered with ``dataset``."""
    return read_tdist(_candidate_file(source, dataset))


# ---------------------------------------------------------------- training examples


class Texts(Mapping[str, str]):
    """Passage texts by id from a collection, read when asked for, not all at once.

    ``source`` is an ir_datasets id (looked up in its document store, which ir_datasets builds on first
    use) or a JSONL file (looked up through a line index). The keys are ``ids()``, computed on first
    iteration: the 8.8M MS MARCO passages never sit in memory, yet a small set can be listed.
    """

    def __init__(self, source: str, ids: Callable[[], Iterable[str]]):
        self.source, self._ids_fn = source, ids
        self._ids: list[str] | None = None
        self._store: Any = None

    def found(self, pids: Sequence[str]) -> dict[str, str]:
        """The texts of those of ``pids`` the collection has (no error for the others)."""
        if self._store is None:
            if _is_path(self.source):
                self._store = _LineIndex(self.source, "documents", _jsonl_id)
            else:
                with _reading(self.source, "docs"):
                    self._store = _dataset(self.source).docs_store()
                atexit.register(_close_docstore, self._store)
        if isinstance(self._store, _LineIndex):
            out = {}
            for pid in pids:
                if pid in self._store.offsets:
                    row = json.loads(self._store.line(pid))
                    out[pid] = _record_text(row, f"{self.source}, document {pid}")
            return out
        with _reading(self.source, "docs"):  # the first lookup builds ir_datasets' document store
            return {pid: doc_text(d) for pid, d in self._store.get_many(list(pids)).items()}

    def get_many(self, pids: Sequence[str]) -> dict[str, str]:
        """The texts of ``pids`` in one lookup; fails naming the first id with no text."""
        found = self.found(pids)
        missing = [p for p in pids if p not in found]
        if missing:
            raise DataError(f"{len(missing)} candidate passage id(s) have no text in {self.source}, "
                            f"e.g. {missing[0]!r}.")
        return found

    def __getitem__(self, pid: str) -> str:
        return self.get_many([pid])[pid]

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and pid in self.found([pid])

    def __iter__(self) -> Iterator[str]:
        if self._ids is None:
            self._ids = sorted(set(self._ids_fn()))
        return iter(self._ids)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getstate__(self) -> dict[str, Any]:  # picklable for data-loader workers
        return {**self.__dict__, "_store": None}


def _close_docstore(store: Any) -> None:
    """Close an ir_datasets document store before shutdown (its own finaliser fails that late)."""
    lookup = getattr(store, "lookup", None)
    if hasattr(lookup, "close"):
        lookup.close()


class Candidates(Mapping[str, list[str]]):
    """Candidate passage ids per query, best first, read from a tdist file when asked for."""

    RECENT = 4096  # queries whose lists are kept: a stage reads the same query several times in a row

    def __init__(self, index: TdistIndex, qids: Sequence[str], k: int):
        self.index, self.qids, self.k = index, list(qids), k
        self._known = set(self.qids)
        self._recent: dict[str, list[str]] = {}

    def __getitem__(self, qid: str) -> list[str]:
        if qid in self._recent:
            return list(self._recent[qid])
        if qid not in self._known:
            raise KeyError(qid)
        ranked = sorted(self.index[qid].items(), key=lambda x: -x[1])
        pids = [pid for pid, _ in ranked[: self.k]]
        if len(self._recent) >= self.RECENT:
            del self._recent[next(iter(self._recent))]  # the oldest (dicts keep insertion order)
        self._recent[qid] = pids
        return list(pids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.qids)

    def __len__(self) -> int:
        return len(self.qids)

    def passage_ids(self) -> set[str]:
        """Every candidate passage id (one pass over the file)."""
        return {pid for qid in self.qids for pid in self[qid]}


class TrainingSet(NamedTuple):
    """Everything the teacher and the student need for training, keyed by id."""

    queries: Mapping[str, str]  # English queries
    passages: Mapping[str, str]  # translated passages (what the student sees)
    english: Mapping[str, str]  # English passages (what an eng-eng teacher sees)
    candidates: Mapping[str, list[str]]  # query id -> candidate passage ids, best first
    positives: Mapping[str, set[str]]  # query id -> judged relevant passage ids


# Queries whose candidates and texts are checked before training; beyond them, a missing passage
# fails when it is first read, naming its id (checking all 809k MS MARCO queries would read every text).
CHECKED_QUERIES = 20_000


def load_training(
    english: str,
    translated: str,
    candidates: str = "",
    max_candidates: int = 50,
    max_queries: int | None = None,
    min_candidates: int = 2,
    check_english: bool = True,
) -> TrainingSet:
    """Load and check a training set; unknown ids or too few candidates fail before any work.

    Queries and qrels are read whole (MS MARCO's fit in memory); candidates and passage texts are read
    when used, so memory grows with the number of queries, not with the 8.8M passages of the paper's
    scale. The first :data:`CHECKED_QUERIES` queries are checked in full before anything runs.
    """
    queries = {q.query_id: q.text for q in load_queries(english)}
    index = TdistIndex(_candidate_file(candidates, english))
    if not len(index):
        raise DataError(f"{index.source} holds no candidates; give each training query a line "
                        "[qid, [[pid, score], ...]] (tdist line format).")
    unknown = [qid for qid in index if qid not in queries]
    if unknown:
        raise DataError(f"candidates name {len(unknown)} query id(s) not in {english}, e.g. {unknown[0]!r}.")
    qids = list(index)[:max_queries] if max_queries is not None else list(index)
    cands = Candidates(index, qids, max_candidates)
    checked = {qid: cands[qid] for qid in qids[:CHECKED_QUERIES]}
    short = [qid for qid, pids in checked.items() if len(pids) < min_candidates]
    if short:
        raise DataError(
            f"query {short[0]} has {len(checked[short[0]])} candidates but {min_candidates} are needed per "
            f"step ({len(short)} such queries); lower train.n_passages or give more candidates."
        )
    texts = {name: Texts(src, cands.passage_ids) for name, src in (("English", english), ("translated", translated))}
    needed = sorted({pid for pids in checked.values() for pid in pids})
    for name, src in (("English", english), ("translated", translated))[0 if check_english else 1:]:
        missing = []
        for i in range(0, len(needed), 4096):  # in batches, so the checked texts are not all held at once
            batch = needed[i:i + 4096]
            found = texts[name].found(batch)
            missing += [pid for pid in batch if pid not in found]
        if missing:
            raise DataError(
                f"{len(missing)} candidate passage id(s) have no {name} text in {src}, e.g. {missing[0]!r}."
            )
    positives: dict[str, set[str]] = defaultdict(set)
    wanted = set(qids)
    for q in load_qrels(english):
        if q.relevance > 0 and q.query_id in wanted:
            positives[q.query_id].add(q.doc_id)
    return TrainingSet(
        queries={qid: queries[qid] for qid in qids},
        passages=texts["translated"],
        english=texts["English"],
        candidates=cands,
        positives={qid: positives.get(qid, set()) for qid in qids},
    )


__all__ = [
    "Doc", "Query", "Qrel", "Topic", "TrainingSet", "Texts", "Candidates", "Run", "MINI_DIR",
    "iter_jsonl", "write_jsonl", "read_docs", "write_docs", "read_queries", "write_queries",
    "read_qrels", "write_qrels", "iter_tdist", "read_tdist", "TdistIndex", "write_tdist", "format_tdist_line",
    "read_run", "write_run", "local_file", "register_collection", "register_mini", "iter_docs", "load_docs", "load_subcollection", "load_queries",
    "load_qrels", "load_candidates", "load_training", "source_fingerprint", "doc_text", "join_title", "TitledDoc",
]

# The embedded collection is there for ir_datasets.load as soon as tdlib.data is imported (cheap: the
# files are checked to exist, none is read).
register_mini()
