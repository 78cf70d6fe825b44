"""Indexing a collection with a student and searching it exhaustively, with passages and MaxP.

Documents are cut into windows of ``passage_tokens`` tokens (180 in the paper), one starting every
``stride`` tokens (90), as the authors' passage script does (``create_passage_collection`` in PLAID-X's
``colbert/scripts/collection_utils.py``): every window that starts inside the document is kept, so a
document of 100 tokens gives two (tokens 0-99 and 90-99). Every window is encoded, and a document's
score for a query is the best score of its windows (MaxP). Search is exhaustive: MaxSim of each query
against every passage, in chunks (a single-vector student is MaxSim with one vector each, so it is a
matrix product). ColBERT-X documents keep only the vectors of their non-punctuation tokens.

Encoding goes a part at a time (:mod:`tdlib.encoding`): resumable, and split over processes with
``shard=(i, n)`` (``--shard I/N``, or the launcher's rank under ``torchrun``), the last shard to
finish building the index from all parts.

Instead of exhaustive search, a faiss index (``index.kind=hnsw`` or ``ivfpq``, :mod:`tdlib.ann`) is
approximate and sub-linear: for single-vector students over the passage vectors, and for ColBERT-X
(``ivfpq`` only) over the token vectors, to find candidates that exact MaxSim then scores.

What this leaves out: PLAID's centroid pruning and residual compression for ColBERT-X (the export to
PLAID-X, :func:`tdlib.stages.export`, is the route to them).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence, Sized

import numpy as np
import torch

from tdlib import encoding
from tdlib.encoding import split_passages  # noqa: F401  (where chapters and tests have found it)
from tdlib.artifacts import Stage, atomic_path, atomic_write_text, fingerprint, run_shard
from tdlib.batching import by_length
from tdlib.config import IndexConfig, SearchConfig
from tdlib.data import Doc, Query, Run, write_run
from tdlib import ann
from tdlib.errors import ConfigError, DataError
from tdlib.logs import progress_bar
from tdlib.student import StudentSource, maxsim

INDEX_FILE = "index.safetensors"
DOCIDS_FILE = "passage_doc_ids.json"
RUN_FILE = "run.trec"
PARTS_FILE = "parts.json"  # a shard's saved parts; in a merged index, the number of shards


def _digest(lines: Sequence[str]) -> str:
    """A short fingerprint of texts, so a stage notices when its queries change."""
    import hashlib

    return hashlib.sha1("\n".join(lines).encode("utf-8")).hexdigest()[:16]


def pad_vectors(vectors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, longest, dim) float32 vectors and their (n, longest) mask, from n tensors of (tokens, dim).

    >>> x, mask = pad_vectors([torch.ones(2, 3), torch.ones(1, 3)])
    >>> tuple(x.shape), mask.tolist()
    ((2, 2, 3), [[1.0, 1.0], [1.0, 0.0]])
    """
    width = max(v.shape[0] for v in vectors)
    x = torch.zeros(len(vectors), width, vectors[0].shape[1])
    mask = torch.zeros(len(vectors), width)
    for i, v in enumerate(vectors):
        x[i, : v.shape[0]] = v.float()
        mask[i, : v.shape[0]] = 1
    return x, mask


def build_index(
    student: StudentSource,
    docs: Iterable[Doc],
    cfg: IndexConfig,
    out_dir: str | Path,
    inputs: object = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Encode every passage of ``docs`` with ``student`` and build the index ``cfg.kind`` asks for.

    Passages are encoded in parts saved as they go (:mod:`tdlib.encoding`), so a stopped run resumes
    after its last saved part; ``shard=(i, n)`` encodes every n-th part only, into
    ``<out_dir>-shards/i-of-n``, and the last shard to finish builds the index from all of them. The
    student is loaded only when there is something to encode; a complete index is reused. ``docs``
    may be a stream (a generator over a collection of millions): it is read once, a part at a time,
    and ``inputs`` must then identify it. Returns the index's directory (a shard's own directory
    while other shards are still running).
    """
    count = len(docs) if isinstance(docs, Sized) else None
    stage = Stage(out_dir, "index", {"index": cfg, "student": fingerprint(student.name), "inputs": inputs,
                                     "docs": count})
    if stage.is_complete():
        return stage.dir
    if count == 0:  # before begin(), which would clear an earlier index of this stage
        raise DataError("the collection to index has no documents.")
    seed = student.seed
    if shard is None:
        stage.begin()  # a stopped run of the same stage keeps its saved parts
        t0 = time.perf_counter()
        counts = encoding.encode_parts(student, docs, cfg, stage.dir, progress=progress, total_documents=count)
        summary = _assemble(encoding.saved_parts([stage.dir]), stage, cfg, seed)
        summary.update(counts, seconds=round(time.perf_counter() - t0, 2), student=student.name)
        if counts["passages_encoded"]:  # encoded now, not read back from an interrupted run's parts
            summary["passages_per_second"] = round(counts["passages_encoded"] / max(counts["encode_seconds"], 1e-9), 1)
        stage.finish(summary)
        shutil.rmtree(stage.path(encoding.PARTS_DIR), ignore_errors=True)
        return stage.dir

    def encode_shard(directory: Path, shard_inputs: dict) -> Path:
        part = Stage(directory, "index-shard", shard_inputs)
        if not part.is_complete():
            part.begin()
            counts = encoding.encode_parts(student, docs, cfg, directory, shard=shard, progress=progress,
                                           total_documents=count)
            saved = sorted(p.name for p in (directory / encoding.PARTS_DIR).glob("part-*.safetensors"))
            atomic_write_text(part.path(PARTS_FILE), json.dumps(saved))
            part.finish(counts)
        return part.path(PARTS_FILE)

    def merge(directories: list[Path], merged: Stage) -> dict:
        t0 = time.perf_counter()
        summary = _assemble(encoding.saved_parts(directories), merged, cfg, seed)
        atomic_write_text(merged.path(PARTS_FILE), json.dumps(len(directories)))
        encoded = [Stage(d, "index-shard", {}).summary() for d in directories]
        summary.update(documents=sum(e["documents"] for e in encoded), student=student.name,
                       encode_seconds=max(e["encode_seconds"] for e in encoded),
                       seconds=round(max(e["encode_seconds"] for e in encoded) + time.perf_counter() - t0, 2))
        return summary

    done = run_shard(out_dir, stage, shard, PARTS_FILE, encode_shard, combine=merge)
    if stage.is_complete():
        for d in Path(f"{stage.dir}-shards").glob("*-of-*"):
            shutil.rmtree(d / encoding.PARTS_DIR, ignore_errors=True)
    return done.parent


def _assemble(parts: list[Path], stage: Stage, cfg: IndexConfig, seed: int) -> dict:
    """Build the index of ``cfg.kind`` in the begun ``stage`` from saved ``parts``; its summary figures.

    exhaustive: every vector, in ``index.safetensors`` (held in memory when searched). A faiss kind:
    every vector is first copied into one float16 file that faiss trains on and adds from a block at
    a time; a single-vector index drops that file once built, a ColBERT-X one keeps it (and the
    passages' offsets) for exact MaxSim.
    """
    t0 = time.perf_counter()
    if not parts:
        raise DataError("the index stage saved no parts: the collection to index has no documents.")
    owners: list[str] = []
    lengths: list[int] = []
    total = sum(encoding.part_sizes(p)[1] for p in parts)  # from the files' headers
    store, kept, row = None, [], 0
    flat = stage.path(ann.TOKENS_FILE)
    with contextlib.ExitStack() as later:
        for path in parts:  # one part in memory at a time
            part = encoding.read_part(path)
            owners += part.owners
            lengths += part.lengths.tolist()
            if cfg.kind == "exhaustive":
                kept.append(part.vectors)
                continue
            if store is None:
                tmp = later.enter_context(atomic_path(flat))
                store = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                                  shape=(total, part.vectors.shape[1]))
            store[row:row + len(part.vectors)] = part.vectors.numpy()
            row += len(part.vectors)
        if store is not None:
            store.flush()
            del store
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    extra: dict[str, object] = {}
    if cfg.kind == "exhaustive":
        from safetensors.torch import save_file

        with atomic_path(stage.path(INDEX_FILE)) as tmp:
            save_file({"vectors": torch.cat(kept).contiguous(), "offsets": torch.from_numpy(offsets)}, str(tmp))
        files = [stage.path(INDEX_FILE)]
    else:
        tokens = max(lengths) > 1
        if cfg.kind == "hnsw" and tokens:
            flat.unlink()
            raise ConfigError("index.kind=hnsw needs one vector per passage (a single-vector student); this student "
                              "gives one per token: use index.kind=ivfpq or exhaustive.")
        vectors = np.load(flat, mmap_mode="r")
        index, settings = ann.build(vectors, cfg, seed=seed, tokens=tokens)
        with atomic_path(stage.path(ann.FAISS_FILE)) as tmp:
            ann.write(index, tmp)
        del vectors, index
        files = [stage.path(ann.FAISS_FILE)]
        if tokens:
            np.save(stage.path(ann.OFFSETS_FILE), offsets)
            files += [flat, stage.path(ann.OFFSETS_FILE)]
        else:
            flat.unlink()
        extra = {"faiss": asdict(settings), "build_seconds": round(time.perf_counter() - t0, 2),
                 "faiss_bytes_per_passage": round(files[0].stat().st_size / max(1, len(lengths)), 1)}
    atomic_write_text(stage.path(DOCIDS_FILE), json.dumps(owners))
    return {"passages": len(lengths), "vectors": int(offsets[-1]), "parts": len(parts),
            "index_file": files[0].name,
            "bytes_per_passage": round(sum(f.stat().st_size for f in files) / max(1, len(lengths)), 1), **extra}


class Index:
    """A loaded index: padded passage vectors in chunks, and the document of each passage.

    Passages are sorted by length before chunking, so a chunk is padded to lengths close to its own;
    chunks of 256 passages keep MaxSim's (queries, passages, query tokens, passage tokens) tensor small
    enough for the CPU caches (measured in benchmarks/run.py).
    """

    def __init__(self, index_dir: str | Path, chunk: int = 256):
        from safetensors.torch import load_file

        index_dir = Path(index_dir)
        if not (index_dir / INDEX_FILE).is_file():
            raise DataError(f"{index_dir} holds no {INDEX_FILE}; run the index stage first.")
        tensors = load_file(str(index_dir / INDEX_FILE))
        owners = json.loads((index_dir / DOCIDS_FILE).read_text(encoding="utf-8"))
        self.doc_ids = sorted(set(owners))
        position = {d: i for i, d in enumerate(self.doc_ids)}
        self.owner = torch.tensor([position[d] for d in owners], dtype=torch.long)
        vectors, offsets = tensors.pop("vectors"), tensors["offsets"]  # float16: each chunk is converted alone
        self.chunks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        lengths = offsets[1:] - offsets[:-1]
        for batch in by_length(lengths.tolist(), chunk, longest_first=False):
            rows = torch.tensor(batch, dtype=torch.long)
            width = int(lengths[rows].max())
            if width == 1:  # one vector per passage (a single-vector student): no padding
                self.chunks.append((vectors[offsets[rows]].float()[:, None, :], torch.ones(len(rows), 1),
                                    self.owner[rows]))
                continue
            padded = torch.empty(len(rows), width, vectors.shape[1])
            for row, p in enumerate(batch):
                a, b = int(offsets[p]), int(offsets[p + 1])
                padded[row, : b - a] = vectors[a:b]
                # Pad with copies of the passage's first vector: a duplicate never changes a maximum,
                # so MaxSim needs no mask here (its fast path).
                padded[row, b - a:] = vectors[a]
            self.chunks.append((padded, torch.ones(len(rows), width), self.owner[rows]))

    def search(self, q: torch.Tensor, q_mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top ``k`` documents (scores, document positions) per query by MaxP over passage MaxSim."""
        doc_scores = torch.full((q.shape[0], len(self.doc_ids)), float("-inf"))
        for padded, mask, owner in self.chunks:
            s = maxsim(q, q_mask, padded, mask)  # (queries, passages in chunk)
            doc_scores.scatter_reduce_(1, owner.expand(q.shape[0], -1), s, reduce="amax")
        k = min(k, len(self.doc_ids))
        return doc_scores.topk(k, dim=1)


def index_file(index_dir: str | Path) -> Path:
    """The file an index stage wrote: exact vectors (``index.safetensors``) or a faiss index (``index.faiss``)."""
    faiss_file = Path(index_dir) / ann.FAISS_FILE
    return faiss_file if faiss_file.is_file() else Path(index_dir) / INDEX_FILE


def load_index(index_dir: str | Path, cfg: SearchConfig | None = None) -> "Index | ann.AnnIndex | ann.TokenIndex":
    """The index in ``index_dir``, exhaustive or faiss, ready for ``.search(q, q_mask, k)``."""
    if index_file(index_dir).name == ann.FAISS_FILE:
        owners = json.loads((Path(index_dir) / DOCIDS_FILE).read_text(encoding="utf-8"))
        if (Path(index_dir) / ann.TOKENS_FILE).is_file():
            return ann.TokenIndex(index_dir, owners, cfg or SearchConfig())
        return ann.AnnIndex(index_dir, owners, cfg or SearchConfig())
    return Index(index_dir)


def search_index(
    student: StudentSource,
    index_dir: str | Path,
    queries: Sequence[Query],
    cfg: SearchConfig,
    out_dir: str | Path,
    inputs: object = None,
    progress: bool = True,
    tag: str = "tdlib",
) -> Path:
    """Search ``queries`` against the index and write ``run.trec`` (the student is loaded as in
    :func:`build_index`)."""
    stage = Stage(out_dir, "search", {"search": cfg, "index": fingerprint(index_file(index_dir)),
                                      "student": fingerprint(student.name), "inputs": inputs,
                                      "queries": _digest([f"{q.query_id}\t{q.text}" for q in queries]), "tag": tag})
    final = stage.path(RUN_FILE)
    if stage.is_complete():
        return final
    stage.begin()
    model = student.load()
    index = load_index(index_dir, cfg)
    t0 = time.perf_counter()
    run: Run = {}
    for start in progress_bar(range(0, len(queries), cfg.batch_size), desc=Path(out_dir).name, unit="batch",
                              progress=progress):
        batch = queries[start:start + cfg.batch_size]
        q, q_mask = pad_vectors(model.encode([q.text for q in batch], is_query=True))
        scores, positions = index.search(q, q_mask, cfg.k)
        for i, query in enumerate(batch):
            run[query.query_id] = [(index.doc_ids[j], float(s)) for s, j in zip(scores[i].tolist(), positions[i].tolist())
                                   if s != float("-inf")]  # an approximate index may find fewer than k
    write_run(final, run, tag=tag)
    seconds = time.perf_counter() - t0
    stage.finish({"queries": len(queries), "seconds": round(seconds, 2),
                  "queries_per_second": round(len(queries) / max(seconds, 1e-9), 2)})
    return final
