"""Encoding a collection in parts: streamed, resumable, and split over processes.

The documents are taken ``index.part_documents`` at a time, in order; part ``c`` is cut into
passages (:func:`split_passages`: windows of ``passage_tokens`` every ``stride``), encoded, and saved as ``parts/part-<c>.safetensors``
(the passages' float16 vectors, how many each passage has, and which document each came from) before
the next part is read. So memory holds one part, however large the collection, and a run that is
stopped keeps every part it saved: the next run of the same stage encodes only the parts that are
missing. Shard ``i`` of ``n`` encodes the parts ``c`` with ``c % n == i``; since a part is encoded the
same way whoever encodes it, the merged shards hold exactly what one process would have written.

What this leaves out: parts are whole files, so a kill loses the part in progress (at most
``part_documents`` documents of work).
"""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from tdlib import launcher
from tdlib.artifacts import atomic_path
from tdlib.config import IndexConfig
from tdlib.data import Doc
from tdlib.errors import DataError
from tdlib.logs import progress_bar
from tdlib.student import StudentSource

PARTS_DIR = "parts"


def part_file(folder: str | Path, number: int) -> Path:
    return Path(folder) / PARTS_DIR / f"part-{number:06d}.safetensors"


def part_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


@dataclass(frozen=True)
class Part:
    """One saved part: ``vectors`` (all passages' vectors, float16, one after another), ``lengths``
    (vectors per passage) and ``owners`` (the document of each passage)."""

    vectors: torch.Tensor
    lengths: torch.Tensor
    owners: list[str]


def read_part(path: str | Path) -> Part:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        owners = json.loads(f.metadata()["owners"])
        return Part(f.get_tensor("vectors"), f.get_tensor("lengths"), owners)


def part_sizes(path: str | Path) -> tuple[int, int]:
    """(passages, vectors) of a saved part, from its header only."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.get_slice("lengths").get_shape()[0], f.get_slice("vectors").get_shape()[0]


def split_passages(text: str, tokenizer, passage_tokens: int, stride: int, tails: bool = True) -> list[str]:
    """Cut ``text`` into windows of ``passage_tokens`` tokens, one starting every ``stride`` tokens.

    As in PLAID-X's passage script, every window that starts before the end is kept (the last ones
    may be tails of earlier windows; ``tails=False`` stops at the first window that reaches the end),
    and each window's text is the tokenizer's decoding of its tokens, so the student reads exactly the
    passages the authors indexed. PLAID-X's ``--stride`` is the overlap, its step ``length - stride``;
    here ``stride`` is the step (90 either way in the paper).

    >>> class Words:  # a tokenizer whose tokens are words
    ...     def __call__(self, text, add_special_tokens=False): return {"input_ids": text.split()}
    ...     def decode(self, ids): return " ".join(ids)
    >>> split_passages("a b c d e", Words(), 3, 2)
    ['a b c', 'c d e', 'e']
    >>> split_passages("a b c d e", Words(), 3, 2, tails=False)
    ['a b c', 'c d e']
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        return [text]
    starts = range(0, len(ids), stride)
    if not tails:
        starts = [s for s in starts if s == 0 or s + passage_tokens - stride < len(ids)]
    return [tokenizer.decode(ids[start:start + passage_tokens]) for start in starts]


def encode_parts(
    student: StudentSource,
    docs: Iterable[Doc],
    cfg: IndexConfig,
    folder: str | Path,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    total_documents: int | None = None,
) -> dict[str, float | int]:
    """Encode the parts of ``docs`` that belong to ``shard`` and are not saved yet, into ``folder/parts``.

    ``docs`` is read once, in order, and only one part's documents are held at a time. The student is
    loaded when the first missing part comes. Returns counts for the stage's summary: documents and
    passages in this shard's parts, the parts encoded now and the seconds they took (model loading
    left out).
    """
    from safetensors.torch import save_file

    (Path(folder) / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    i, n = shard
    model = None
    t0 = time.perf_counter()
    counts = {"documents": 0, "passages": 0, "parts_encoded": 0, "passages_encoded": 0, "parts": 0}
    total = None if total_documents is None else -(-total_documents // cfg.part_documents)
    for number, chunk in progress_bar(enumerate(_chunks(docs, cfg.part_documents)), total=total, desc=Path(folder).name, unit="part",
                                      progress=progress):
        if number % n != i:
            continue
        target = part_file(folder, number)
        counts["parts"] += 1
        counts["documents"] += len(chunk)
        if target.is_file():  # saved by an earlier, interrupted run of this stage
            counts["passages"] += part_sizes(target)[0]
            continue
        if model is None:
            loading = time.perf_counter()
            model = student.load()
            model.to(launcher.device())
            t0 += time.perf_counter() - loading  # encode_seconds leaves loading out
        passages, owners = [], []
        for d in chunk:
            for p in split_passages(d.text, model.tokenizer, cfg.passage_tokens, cfg.stride, cfg.tail_windows):
                passages.append(p)
                owners.append(d.doc_id)
        vectors = model.encode(passages, is_query=False, batch_size=cfg.batch_size)
        with atomic_path(target) as tmp:
            save_file({"vectors": torch.cat(vectors).contiguous(),
                       "lengths": torch.tensor([v.shape[0] for v in vectors], dtype=torch.long)},
                      str(tmp), metadata={"owners": json.dumps(owners)})
        counts["passages"] += len(passages)
        counts["passages_encoded"] += len(passages)
        counts["parts_encoded"] += 1
    if counts["documents"] == 0 and n == 1:
        raise DataError("the collection to index has no documents.")
    counts["encode_seconds"] = round(time.perf_counter() - t0, 2)
    return counts


def _chunks(docs: Iterable[Doc], size: int) -> Iterator[list[Doc]]:
    it = iter(docs)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def saved_parts(folders: Sequence[str | Path]) -> list[Path]:
    """Every part saved under ``folders`` (a stage's directory, or its shards'), in part order, checked
    to run 0, 1, 2, ... without a gap."""
    parts = sorted((p for f in folders for p in (Path(f) / PARTS_DIR).glob("part-*.safetensors")), key=part_number)
    numbers = [part_number(p) for p in parts]
    if numbers != list(range(len(numbers))):
        missing = sorted(set(range(max(numbers, default=-1) + 1)) - set(numbers))
        raise DataError(f"index parts are missing (part {missing[0] if missing else 0} under "
                        f"{', '.join(str(f) for f in folders)}): they are removed after a merge, so delete the "
                        "index stage's folder and its -shards folder and index again.")
    return parts
