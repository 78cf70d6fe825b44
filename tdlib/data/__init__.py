"""IR data: typed records, the project's file formats, lazy indexes, and one way to load any collection.

The package is five modules, each importing only those above it in this list:

- :mod:`tdlib.data.records`: ``Doc``, ``Query``, ``Qrel``, ``Topic``, ``TitledDoc``, ``Run``, and the one
  rule for a document record's text (:func:`~tdlib.data.records.document`, :func:`join_title`);
- :mod:`tdlib.data.files`: reading and writing the file formats (documents, queries, qrels, tdist
  scores, runs), naming the file and line of any bad record (``book/formats.md`` documents them);
- :mod:`tdlib.data.lazy`: line-offset indexes that read one record of a large file by its key
  (:class:`TdistIndex` for teacher scores, :class:`~tdlib.data.lazy.JsonlTexts` for passages);
- :mod:`tdlib.data.tables`: the same two lookups from memory-mapped Arrow tables built with Hugging
  Face ``datasets`` (:func:`open_scores` picks one of the two, by ``data.lookup``);
- :mod:`tdlib.data.corpora`: collections by ir_datasets id or file path, local ones registered with
  ir_datasets (the embedded mini collection, ``tdlib-mini/{en,zh,fa,ru}/{train,test}``, as soon as this
  package is imported), and passage texts by id (:class:`Texts`).

The names below are the package's public surface (``from tdlib import data; data.load_qrels(...)``).
The training set built from these lives with its examples, in :mod:`tdlib.examples`.
"""
from tdlib.data.corpora import (LOOKUPS, MINI_DIR, MINI_LANGS, Texts, doc_text, open_scores, iter_docs, load_candidates, load_docs,
                                load_qrels, load_queries, load_subcollection, register_collection, register_mini,
                                source_fingerprint)
from tdlib.data.files import (format_tdist_line, iter_jsonl, iter_tdist, local_file, read_docs, read_qrels,
                              read_queries, read_run, read_tdist, write_docs, write_jsonl, write_qrels, write_queries,
                              write_run, write_tdist)
from tdlib.data.lazy import TdistIndex
from tdlib.data.records import Doc, Qrel, Query, Run, TitledDoc, Topic, join_title

__all__ = [
    "Doc", "Query", "Qrel", "Topic", "TitledDoc", "Run", "join_title",
    "iter_jsonl", "write_jsonl", "read_docs", "write_docs", "read_queries", "write_queries", "read_qrels",
    "write_qrels", "iter_tdist", "read_tdist", "write_tdist", "format_tdist_line", "read_run", "write_run",
    "local_file", "TdistIndex", "Texts", "MINI_DIR", "MINI_LANGS", "register_collection", "register_mini",
    "iter_docs", "load_docs", "load_subcollection", "load_queries", "load_qrels", "load_candidates",
    "source_fingerprint", "doc_text", "open_scores", "LOOKUPS",
]

# The embedded collection is there for ir_datasets.load as soon as tdlib.data is imported (cheap: the
# files are checked to exist, none is read).
register_mini()
