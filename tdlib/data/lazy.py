"""Line-offset indexes: one record of a large text file read by its key, without reading the rest.

The published teacher scores (about 809k queries x 50 passages) and JSONL passage files are looked up
this way: one pass records where each key's line starts, a lookup seeks there and reads that line.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

from tdlib.artifacts import atomic_path
from tdlib.data.files import DAMAGED_GZIP, cache_dir, parse_jsonl_line, parse_tdist, require_file
from tdlib.data.records import document_text
from tdlib.errors import DataError


class LineIndex:
    """Byte offsets of the lines of a text file by key, so one record can be read without the rest.

    One pass records where each key's line starts; a lookup seeks there and reads that line only.
    A gzipped file is first decompressed once into a plain file in the tdlib cache. Indexes are shared:
    opening the same unchanged file twice reuses the first pass.
    """

    _open: dict[tuple[str, int, int, str], dict[str, int]] = {}

    def __init__(self, path: str | os.PathLike[str], what: str, key: Callable[[bytes, Path, int], str]):
        source = require_file(path, what)
        st = source.stat()
        plain = source
        if source.suffix == ".gz":
            plain = cache_dir() / "lines" / f"{source.stem}-{st.st_size}-{st.st_mtime_ns}"
            if not plain.is_file():
                try:
                    with atomic_path(plain) as tmp, gzip.open(source, "rb") as src, open(tmp, "wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
                except DAMAGED_GZIP:
                    raise DataError(f"{source}: the gzip data is cut off or damaged; download or write the "
                                    "file again.") from None
        self.path, self.source = plain, source
        memo = (str(source.resolve()), st.st_size, st.st_mtime_ns, what)
        if memo not in LineIndex._open:
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
            LineIndex._open[memo] = offsets
        self.offsets = LineIndex._open[memo]
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


class TdistIndex(LineIndex, Mapping[str, dict[str, float]]):
    """Scores per query from a tdist file, read lazily: ``index[qid]`` -> ``{pid: score}``.

    The published MS MARCO score files (about 809k queries x 50 passages) are not held in memory.
    """

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path, "candidates/scores", tdist_qid)

    def __getitem__(self, qid: str) -> dict[str, float]:
        line = self.line(qid)  # KeyError for an unknown query, as a Mapping should
        try:
            _, pairs = parse_tdist(line, self.source, 0)
        except DataError:  # the line is checked when read: name it (counting lines only now)
            parse_tdist(line, self.source, self.lineno(qid))
            raise
        return dict(pairs)

    def __contains__(self, qid: object) -> bool:
        return qid in self.offsets

    def __iter__(self) -> Iterator[str]:
        return iter(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets)


class JsonlTexts(LineIndex):
    """Document texts by id from a JSONL file: ``texts.get(pids)`` -> ``{pid: text}`` for those it has."""

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path, "documents", jsonl_id)

    def get(self, pids) -> dict[str, str]:
        return {pid: document_text(parse_jsonl_line(self.line(pid), self.source, 0), f"{self.source}, document {pid}")
                for pid in pids if pid in self.offsets}


def jsonl_id(line: bytes, path: Path, lineno: int) -> str:
    """The ``id`` of a JSONL document line (parsed fully: ids may come anywhere in the object)."""
    try:
        return str(json.loads(line)["id"])
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, line {lineno}: byte {line[e.start]:#04x} is not valid UTF-8; save the file "
                        "as UTF-8.") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}, line {lineno}: expected a JSON object with an \"id\" field.") from None


def tdist_qid(line: bytes, path: Path, lineno: int) -> str:
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
