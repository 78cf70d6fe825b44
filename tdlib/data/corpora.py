"""Collections by name: local files registered with ir_datasets, public ids loaded through it, one way for both.

Collections are addressed by an ir_datasets id (``neuclir/1/zh/trec-2022``, ``tdlib-mini/zh/test``) or
by a file path. Local collections, the embedded mini collection included, are registered with
ir_datasets (:func:`register_collection`), so ids and files go through the same code; a failure inside
ir_datasets is turned into one sentence naming the file and line where tdlib's own readers can find it.

What this leaves out: ir_datasets' own download machinery (used as is for public ids).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import random
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from tdlib.artifacts import fingerprint
from tdlib.config import LOOKUPS
from tdlib.data.files import (DAMAGED_GZIP, cache_dir, iter_jsonl, numbered_lines, parse_jsonl_line, read_docs,
                              read_qrels, read_queries, read_tdist, require_file)
from tdlib.data.lazy import JsonlTexts, TdistIndex
from tdlib.data.tables import ArrowTdist, ArrowTexts
from tdlib.data.records import Doc, Qrel, Query, TitledDoc, Topic, check_text, document, join_title
from tdlib.errors import DataError

MINI_DIR = Path(__file__).resolve().parent / "mini"
MINI_LANGS = ("en", "zh", "fa", "ru")

_EXTRAS: dict[str, dict[str, Path]] = {}

# The files each name was registered with, so a second registration can be checked against them.
_REGISTERED: dict[str, dict[str, str | None]] = {}


def _titled_docs(path: Path, lang: str | None, store_name: str):
    """ir_datasets' JSONL documents, with an optional ``title`` (its reader needs every key present).

    Each line is read by :func:`tdlib.data.records.document`, as every other reader of documents does.
    The document store lives under :func:`tdlib.data.files.cache_dir`, looked up when it is used, not
    when registered.
    """
    from ir_datasets.formats import JsonlDocs
    from ir_datasets.util import LocalDownload

    class _Docs(JsonlDocs):
        @property
        def _docstore_path(self) -> str:
            return str(cache_dir() / "docstores" / store_name)

        @_docstore_path.setter
        def _docstore_path(self, value: str) -> None:  # JsonlDocs.__init__ sets it; the property decides
            pass

        def _iter(self):
            with numbered_lines(path) as numbered:
                for lineno, line in numbered:
                    if line.strip():
                        obj = parse_jsonl_line(line, path, lineno)
                        yield document(obj, f"{path}, document {obj.get('id', f'on line {lineno}')}")

    return _Docs(LocalDownload(path), doc_cls=TitledDoc, lang=lang)


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
        d = require_file(docs, "documents")
        # "t" = records carry a title: a store built by an older tdlib (no title field) is not reused.
        store = name.replace("/", "__") + f"-{d.stat().st_size}-t.pklz4"
        parts.append(_titled_docs(d, lang, store))
    if queries is not None:
        q = require_file(queries, "queries")
        if q.suffix == ".jsonl":
            parts.append(JsonlQueries(LocalDownload(q), query_cls=Topic,
                                      mapping={"query_id": "id", "title": "title", "description": "description"},
                                      lang="en"))
        else:
            parts.append(TsvQueries(LocalDownload(q), lang="en"))
    if qrels is not None:
        parts.append(TrecQrels(LocalDownload(require_file(qrels, "qrels")), {0: "not relevant", 1: "relevant",
                                                                             2: "highly relevant", 3: "perfect"}))
    # The files behind the name: tdlib's own readers re-read one to name the line ir_datasets failed on.
    given = {"docs": docs, "queries": queries, "qrels": qrels, "candidates": candidates}
    extras = {what: require_file(f, what) for what, f in given.items() if f is not None}
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


def open_dataset(source: str) -> Any:
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


_READ_ERRORS = (ValueError, KeyError, TypeError, RuntimeError, OSError) + DAMAGED_GZIP


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


def is_path(source: str) -> bool:
    return os.path.sep in source and Path(source).exists() or Path(source).is_file()


def source_fingerprint(source: str) -> Any:
    """What identifies a data source in a stage record: its files for local data, else its id."""
    if is_path(source):
        return fingerprint(source)
    if source.startswith("tdlib-mini/"):
        return {"id": source, "files": fingerprint(MINI_DIR)}
    return {"id": source}


def doc_text(doc: Any) -> str:
    """The text of an ir_datasets document record, its title (if any) first (:func:`join_title`)."""
    return join_title(getattr(doc, "title", "") or "", getattr(doc, "text", "") or "")


def iter_docs(source: str) -> Iterator[Doc]:
    """The documents of a collection (ir_datasets id or JSONL path), in collection order, one at a time."""
    if is_path(source):
        yield from read_docs(source)
        return
    ds = open_dataset(source)
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
            yield Doc(d.doc_id, check_text(doc_text(d), f"{source}, document {d.doc_id}"))


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
    if is_path(source):
        return read_queries(source, field)
    ds = open_dataset(source)
    if not ds.has_queries():
        raise DataError(f"{source} has no queries.")
    out = []
    with _reading(source, "queries"):
        for q in ds.queries_iter():
            text = getattr(q, field, None) or getattr(q, "text", None) or getattr(q, "title", None)
            out.append(Query(q.query_id, check_text(text, f"{source}, query {q.query_id}")))
    return out


def load_qrels(source: str) -> list[Qrel]:
    if is_path(source):
        return read_qrels(source)
    ds = open_dataset(source)
    if not ds.has_qrels():
        raise DataError(f"{source} has no qrels.")
    with _reading(source, "qrels"):
        return [Qrel(q.query_id, q.doc_id, int(q.relevance)) for q in ds.qrels_iter()]


def candidate_file(source: str, dataset: str | None) -> Path:
    """The candidates file: ``source`` if given, else the one registered with ``dataset``."""
    if source:
        return require_file(source, "candidates/scores")
    if dataset is not None:
        open_dataset(dataset)  # registers the mini collection on first use
        extras = _EXTRAS.get(dataset)
        if extras and "candidates" in extras:
            return extras["candidates"]
    raise DataError(
        f"no candidates are registered for {dataset!r}; set data.candidates=PATH to a file in the "
        "tdist line format [qid, [[pid, score], ...]] (the published hltcoe/tdist-msmarco-scores files are)."
    )


def load_candidates(source: str, dataset: str | None = None) -> dict[str, list[tuple[str, float]]]:
    """Candidates per query (tdist format) from a path, or the ones registered with ``dataset``."""
    return read_tdist(candidate_file(source, dataset))


def _arrow(lookup: str) -> bool:
    """True for ``data.lookup=arrow``, False for ``lines``; anything else is refused (as the config does)."""
    if lookup not in LOOKUPS:
        raise DataError(f"data.lookup={lookup!r}: use one of {', '.join(LOOKUPS)}.")
    return lookup == "arrow"


def open_scores(path: str | os.PathLike[str], lookup: str = "lines") -> Mapping[str, dict[str, float]]:
    """Scores (or candidates) per query from a tdist file, read by query id: ``table[qid]`` -> ``{pid: score}``.

    ``lookup`` picks the backing: a line-offset index (``lines``, :class:`~tdlib.data.lazy.TdistIndex`),
    rebuilt by each process, or an Arrow table built once through Hugging Face ``datasets`` and
    memory-mapped (``arrow``, :class:`~tdlib.data.tables.ArrowTdist`). Both give the same scores;
    ``scripts/training_memory.py`` measures their memory and time (the scale page has the figures).
    """
    source = require_file(path, "candidates/scores")
    return ArrowTdist(source) if _arrow(lookup) else TdistIndex(source)


class Texts(Mapping[str, str]):
    """Passage texts by id from a collection, read when asked for, not all at once.

    ``source`` is an ir_datasets id (looked up in its document store, which ir_datasets builds on first
    use) or a JSONL file (looked up through a line index or an Arrow table: see :func:`open_scores`). The keys are ``ids()``, computed on first
    iteration: the 8.8M MS MARCO passages never sit in memory, yet a small set can be listed.
    """

    def __init__(self, source: str, ids: Callable[[], Iterable[str]], lookup: str = "lines"):
        self.source, self._ids_fn, self.lookup = source, ids, lookup
        self._ids: list[str] | None = None
        self._store: Any = None

    def found(self, pids: Sequence[str]) -> dict[str, str]:
        """The texts of those of ``pids`` the collection has (no error for the others)."""
        if self._store is None:
            if is_path(self.source):
                path = require_file(self.source, "documents")
                self._store = ArrowTexts(path) if _arrow(self.lookup) else JsonlTexts(path)
            else:
                with _reading(self.source, "docs"):
                    self._store = open_dataset(self.source).docs_store()
                atexit.register(_close_docstore, self._store)
        if isinstance(self._store, (JsonlTexts, ArrowTexts)):
            return self._store.get(pids)
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
