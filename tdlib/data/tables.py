"""Arrow tables (Hugging Face ``datasets``) behind the large training files, memory-mapped.

The alternative to :mod:`tdlib.data.lazy`'s line-offset indexes, for the same two files: teacher scores
and candidates in the tdist line format (:class:`ArrowTdist`) and JSONL passage texts by id
(:class:`ArrowTexts`). The first open reads the file once with tdlib's own parsers (so a bad line fails
with its line number, as everywhere else) and writes an Arrow table into ``datasets``' cache, keyed by
the file's path, size and modification time; later opens, in any process, map that table from disk.

Keys are found by binary search over a sorted array of fixed-width byte strings, a few bytes per row,
saved beside the table and memory-mapped too, instead of a Python dict of every key. ``datasets``' own JSON loader cannot read the tdist format (each
line is an array, not an object), which is why the table is built from tdlib's reader.

Which of the two backs training is ``data.lookup`` (``lines``, the default, or ``arrow``);
``scripts/training_memory.py`` measures both, and the default follows its figures (the scale page).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from tdlib.artifacts import atomic_path
from tdlib.data.files import cache_dir, iter_tdist, numbered_lines, parse_jsonl_line, require_file
from tdlib.data.records import document_text
from tdlib.errors import DataError


def _tdist_rows(path: str, stamp: str) -> Iterator[dict[str, Any]]:
    for qid, pairs in iter_tdist(path):
        yield {"qid": qid, "pids": [p for p, _ in pairs], "scores": [float(s) for _, s in pairs]}


def _text_rows(path: str, stamp: str) -> Iterator[dict[str, Any]]:
    source = Path(path)
    with numbered_lines(source) as lines:
        for lineno, line in lines:
            if line.strip():
                record = parse_jsonl_line(line, source, lineno)
                if "id" not in record:
                    raise DataError(f"{source}, line {lineno}: expected a JSON object with an \"id\" field.")
                yield {"id": str(record["id"]), "text": document_text(record, f"{source}, line {lineno}")}


def _table(path: str | os.PathLike[str], what: str, rows, features) -> Any:
    """The Arrow table of ``path``: built once per version of the file, then memory-mapped."""
    import datasets

    source = require_file(path, what)
    st = source.stat()
    stamp = f"{source.resolve()}:{st.st_size}:{st.st_mtime_ns}"  # part of the cache key: a changed file is read again
    progress = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        return datasets.Dataset.from_generator(rows, features=features, cache_dir=str(cache_dir() / "arrow"),
                                               gen_kwargs={"path": str(source), "stamp": stamp})
    except datasets.exceptions.DatasetGenerationError as e:  # the reader's own sentence, not datasets' wrapper
        cause = e.__cause__ or e.__context__
        if isinstance(cause, DataError):
            raise cause from None
        raise
    finally:
        if progress:
            datasets.utils.logging.enable_progress_bar()


class _Keyed:
    """Row numbers by key through a sorted array of byte strings (binary search; no dict of keys).

    The sorted keys and their rows are computed once, beside the Arrow table in the cache, and
    memory-mapped from there afterwards: a later open holds no key in Python at all.
    """

    def __init__(self, dataset, column: str, source: Path, label: str) -> None:
        table_file = Path(dataset.cache_files[0]["filename"])
        keys_file, order_file = (table_file.with_name(f"{table_file.stem}.{column}.{part}.npy")
                                 for part in ("sorted", "order"))
        if not (keys_file.is_file() and order_file.is_file()):
            keys = np.array([k.encode("utf-8") for k in dataset.data.column(column).to_pylist()], dtype=bytes)
            order = np.argsort(keys, kind="stable")
            ordered = keys[order]
            same = np.flatnonzero(ordered[1:] == ordered[:-1]) if len(ordered) > 1 else []
            if len(same):
                raise DataError(f"{source}: {label} {ordered[same[0]].decode()!r} is on two lines; keep one line "
                                f"per {label}.")
            for path, array in ((order_file, order), (keys_file, ordered)):
                with atomic_path(path) as tmp, open(tmp, "wb") as f:
                    np.save(f, array)
        self._sorted = np.load(keys_file, mmap_mode="r")
        self._order = np.load(order_file, mmap_mode="r")

    def row(self, key: str) -> int | None:
        probe = key.encode("utf-8")
        i = int(np.searchsorted(self._sorted, probe))
        if i < len(self._sorted) and self._sorted[i] == probe:
            return int(self._order[i])
        return None


class ArrowTdist(Mapping[str, dict[str, float]]):
    """Scores per query from a tdist file, ``table[qid]`` -> ``{pid: score}``, like :class:`~tdlib.data.lazy.TdistIndex`."""

    def __init__(self, path: str | os.PathLike[str]):
        import datasets

        features = datasets.Features({"qid": datasets.Value("string"),
                                      "pids": datasets.List(datasets.Value("string")),
                                      "scores": datasets.List(datasets.Value("float64"))})
        self.source = Path(path)
        self.dataset = _table(path, "candidates/scores", _tdist_rows, features)
        table = self.dataset.data
        self._qids = table.column("qid")
        self._pids, self._scores = table.column("pids"), table.column("scores")
        self._keys = _Keyed(self.dataset, "qid", self.source, "query")

    def __getitem__(self, qid: str) -> dict[str, float]:
        row = self._keys.row(qid)
        if row is None:
            raise KeyError(qid)
        return dict(zip(self._pids[row].as_py(), self._scores[row].as_py()))

    def __contains__(self, qid: object) -> bool:
        return isinstance(qid, str) and self._keys.row(qid) is not None

    def __iter__(self) -> Iterator[str]:
        for chunk in self._qids.chunks:
            yield from chunk.to_pylist()

    def __len__(self) -> int:
        return len(self._qids)

    def __reduce__(self):  # data-loader workers reopen the cached table instead of copying it
        return (ArrowTdist, (self.source,))


class ArrowTexts:
    """Document texts by id from a JSONL file: ``texts.get(pids)`` -> ``{pid: text}``, like :class:`~tdlib.data.lazy.JsonlTexts`."""

    def __init__(self, path: str | os.PathLike[str]):
        import datasets

        features = datasets.Features({"id": datasets.Value("string"), "text": datasets.Value("string")})
        self.source = Path(path)
        self.dataset = _table(path, "documents", _text_rows, features)
        self._texts = self.dataset.data.column("text")
        self._keys = _Keyed(self.dataset, "id", self.source, "document")

    def get(self, pids) -> dict[str, str]:
        found = {}
        for pid in pids:
            row = self._keys.row(pid)
            if row is not None:
                found[pid] = self._texts[row].as_py()
        return found

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and self._keys.row(pid) is not None

    def __len__(self) -> int:
        return len(self._texts)

    def __reduce__(self):
        return (ArrowTexts, (self.source,))
