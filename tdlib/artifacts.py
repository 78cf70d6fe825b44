"""Stage directories: atomic outputs, the resolved config beside them, reuse and resume.

Every stage writes into a directory of its own::

    out/teacher/
        stage.json        # the stage name, its resolved config and the fingerprints of its inputs
        scores.jsonl      # the output, renamed into place only when complete
        DONE              # written last: the outputs are complete for the config in stage.json

A rerun with the same ``stage.json`` finds ``DONE`` and reuses the outputs. A run with a different
config finds a different ``stage.json`` and clears the directory first, so stale outputs are never
reused. A run that was interrupted finds no ``DONE`` but the same ``stage.json`` and resumes from its
partial files (``*.partial``), which each stage appends to record by record.

What this leaves out: locking between concurrent writers of the same directory (shards write to
different directories, and only their merge is locked), and content hashes of large inputs (inputs are fingerprinted by path, size and
modification time).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from tdlib.config import to_jsonable

STAGE_FILE = "stage.json"
DONE_FILE = "DONE"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; it replaces ``path`` only if the block succeeds.

    A kill while the block runs leaves ``path`` as it was (or absent) and the temporary folder, which
    the next write to ``path`` removes. One writer per ``path``, as for a stage directory.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = target.parent / f".{target.name}.{os.getpid()}.old.tmp"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Identify an input file (or directory) cheaply: path, size and modification time."""
    p = Path(path)
    if not p.exists():
        return {"path": str(p), "missing": True}
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        return {
            "path": str(p.resolve()),
            "files": len(files),
            "size": sum(q.stat().st_size for q in files),
            "mtime_ns": max((q.stat().st_mtime_ns for q in files), default=0),
        }
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Stage:
    """One stage's output directory.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> s = Stage(d, "demo", {"n": 1})
    >>> s.is_complete()
    False
    >>> s.begin()  # True would mean: partial outputs of this config may be resumed
    False
    >>> s.finish({"rows": 3}); Stage(d, "demo", {"n": 1}).is_complete()
    True
    >>> Stage(d, "demo", {"n": 2}).is_complete()
    False
    """

    def __init__(self, directory: str | os.PathLike[str], name: str, config: Mapping[str, Any] | Any):
        self.dir = Path(directory)
        self.name = name
        self.record = {"stage": name, "config": to_jsonable(config)}

    def path(self, name: str) -> Path:
        return self.dir / name

    def _stored(self) -> dict[str, Any] | None:
        p = self.dir / STAGE_FILE
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None

    def is_complete(self) -> bool:
        stored = self._stored()
        return (
            stored is not None
            and {k: stored.get(k) for k in self.record} == self.record
            and (self.dir / DONE_FILE).is_file()
        )

    def begin(self) -> bool:
        """Prepare the directory; return True when partial outputs of the same config may be resumed."""
        stored = self._stored()
        same = stored is not None and {k: stored.get(k) for k in self.record} == self.record
        if self.dir.exists() and not same:
            # A different config (or no record at all): nothing in here may be reused.
            for child in self.dir.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / DONE_FILE).unlink(missing_ok=True)
        atomic_write_json(self.dir / STAGE_FILE, self.record)
        return same

    def partial(self, name: str) -> Path:
        """The file ``name.partial`` that output ``name`` is appended to until complete; call after :meth:`begin`.

        A run stopped after renaming the finished output into place but before writing ``DONE`` left it
        under its final name: it becomes the partial file again, so the rerun resumes after its last
        record and renames it once more (instead of redoing it all, or taking it as complete).
        """
        final, partial = self.path(name), self.path(name + ".partial")
        if final.is_file() and not partial.exists():
            os.replace(final, partial)
        return partial

    def resume(self, name: str, resumable: bool, record_ids: Callable[[Path], Iterable[str]]) -> tuple[Path, set[str]]:
        """The partial file of output ``name`` (one record per line) and the ids of the records it holds.

        With ``resumable`` (what :meth:`begin` returned), a last line cut short by a kill is removed,
        atomically, so the file ends after its last complete record; otherwise the partial file is
        deleted and no record is done. ``record_ids`` reads the ids from the file.
        """
        partial = self.partial(name)
        if not (resumable and partial.is_file()):
            partial.unlink(missing_ok=True)
            return partial, set()
        data = partial.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with atomic_path(partial) as tmp:
                tmp.write_bytes(complete)
        return partial, set(record_ids(partial))

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        atomic_write_json(self.dir / DONE_FILE, dict(summary or {}))

    def summary(self) -> dict[str, Any]:
        p = self.dir / DONE_FILE
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/8"`` -> ``(2, 8)``: shard 2 of 8, counted from 0.

    >>> parse_shard("0/2")
    (0, 2)
    """
    from tdlib.errors import ConfigError

    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} must look like I/N, e.g. 0/8 for the first of 8 shards.") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: I must be between 0 and N-1.")
    return i, n


def shard_dir(out_dir: str | os.PathLike[str], shard: tuple[int, int]) -> Path:
    """Where shard ``i`` of ``n`` of a stage writes: a sibling of the stage directory."""
    out = Path(out_dir)
    return out.parent / f"{out.name}-shards" / f"{shard[0]}-of-{shard[1]}"


def merge_round_robin(parts: list[Path], target: Path) -> None:
    """Interleave the lines of shard files: shard ``i`` holds items ``i, i+n, i+2n, ...``.

    Streaming, so memory stays constant however large the shards are.
    """
    handles = [open(p, encoding="utf-8") for p in parts]
    try:
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
            live = list(handles)
            while live:
                still = []
                for h in live:
                    line = h.readline()
                    if line:
                        out.write(line)
                        still.append(h)
                if len(still) < len(live) and still and still != live[: len(still)]:
                    raise ValueError("shards of unequal interleaving; were they made with the same inputs?")
                live = still
    finally:
        for h in handles:
            h.close()


def merge_shards(out_dir: str | os.PathLike[str], stage: "Stage", n: int, filename: str,
                 combine: Callable[[list[Path], Stage], Mapping[str, Any]] | None = None) -> Path | None:
    """Merge the ``n`` shards of a stage into ``out_dir`` once all are complete; None until then.

    ``combine(shard directories, stage)`` writes the merged output into the begun stage and returns
    the summary for its ``DONE``; by default the shards' ``filename`` lines are interleaved back into
    one file. Shards that finish together do not both merge: the merge holds a lock (released if its
    process dies), and the one that does not get it leaves the merge to the other.
    """
    dirs = [shard_dir(out_dir, (i, n)) for i in range(n)]
    if not all((d / DONE_FILE).is_file() and (d / filename).is_file() for d in dirs):
        return None
    with merge_lock(dirs[0].parent) as mine:
        if not mine:
            return None
        if stage.is_complete():
            return stage.path(filename)
        stage.begin()
        summary: Mapping[str, Any] = {}
        if combine is None:
            merge_round_robin([d / filename for d in dirs], stage.path(filename))
        else:
            summary = combine(dirs, stage)
        stage.finish({"merged_shards": n, **summary})
    return stage.path(filename)


@contextlib.contextmanager
def merge_lock(folder: Path) -> Iterator[bool]:
    """Yield True to the one process that holds ``folder/merge.lock``, False to any other at the same time.

    An advisory ``flock``: the system releases it when its holder exits, however it exits, so a
    killed merge never leaves the lock behind. Where ``fcntl`` does not exist (Windows) every caller
    gets True, as before locking.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield True
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "merge.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


T = TypeVar("T")


def append_records(
    stage: Stage,
    filename: str,
    items: Sequence[T],
    key: Callable[[T], str],
    record_ids: Callable[[Path], Iterable[str]],
    lines: Callable[[list[T]], tuple[list[str], int]],
    chunk: int,
    prepare: Callable[[int], None] = lambda items: None,
    on_chunk: Callable[[int, int], None] = lambda items, units: None,
) -> tuple[Path, int, int, float]:
    """The resumable stage that writes one line per item: what scoring and translation both are.

    Begins ``stage`` (resuming the partial ``filename`` of an interrupted run of the same config, see
    :meth:`Stage.resume`), then, for the items whose ``key`` is not in it yet, ``chunk`` at a time,
    appends the ``lines`` of each chunk and flushes, so a kill loses at most the chunk in progress.
    ``lines(chunk)`` returns the chunk's lines and a count of work done (pairs scored, passages
    translated); ``prepare(items left)`` runs once before the first chunk, only if there is one (a model
    is loaded only when something is left to do); ``on_chunk(items, units so far)`` reports progress. The file is
    renamed into place when every item is written; the caller then calls :meth:`Stage.finish`.

    Returns the file, the items done now, the work units done now and the seconds the chunks took.
    """
    resumable = stage.begin()
    partial, done = stage.resume(filename, resumable, record_ids)
    todo = [x for x in items if key(x) not in done]
    if todo:
        prepare(len(todo))
    units, t0 = 0, time.perf_counter()
    with open(partial, "a", encoding="utf-8") as f:
        for start in range(0, len(todo), chunk):
            batch = list(todo[start:start + chunk])
            out, n = lines(batch)
            f.writelines(out)
            f.flush()
            units += n
            on_chunk(len(batch), units)
    seconds = time.perf_counter() - t0
    final = stage.path(filename)
    partial.replace(final)
    return final, len(todo), units, seconds


def run_shard(out_dir: str | os.PathLike[str], stage: Stage, shard: tuple[int, int], filename: str,
              run_part: Callable[[Path, dict[str, Any]], Path],
              combine: Callable[[list[Path], Stage], Mapping[str, Any]] | None = None) -> Path:
    """Run shard ``i`` of ``n`` of ``stage`` in its own directory and merge the shards if it is the last to finish.

    ``run_part(directory, inputs)`` runs the stage on the shard's items into ``directory``, with
    ``inputs`` (the whole stage's record and the shard) identifying it, and returns the shard's
    ``filename``. Returns the merged file, or the shard's file while other shards are running.
    ``combine`` merges, as in :func:`merge_shards`.
    """
    if stage.is_complete():  # merged already: the shards may have been tidied away
        return stage.path(filename)
    done = run_part(shard_dir(out_dir, shard), {"shard_of": stage.record["config"], "shard": list(shard)})
    return merge_shards(out_dir, stage, shard[1], filename, combine) or done
