"""Indexing a collection with a student and searching it exhaustively, with passages and MaxP.

Documents are cut into windows of ``passage_tokens`` tokens (180 in the paper), one starting every
``stride`` tokens (90), as the authors' passage script does (``create_passage_collection`` in PLAID-X's
``colbert/scripts/collection_utils.py``): every window that starts inside the document is kept, so a
document of 100 tokens gives two (tokens 0-99 and 90-99). Every window is encoded, and a document's
score for a query is the best score of its windows (MaxP). Search is exhaustive: MaxSim of each query
against every passage, in chunks (a single-vector student is MaxSim with one vector each, so it is a
matrix product). ColBERT-X documents keep only the vectors of their non-punctuation tokens.

Single-vector students can instead be searched through a faiss index (``index.kind=hnsw`` or
``ivfpq``, :mod:`tdlib.ann`): approximate, sub-linear, and a few bytes per passage for IVF-PQ.

What this leaves out: PLAID's centroid pruning and residual compression for ColBERT-X, whose search
here stays exhaustive (exact; fast enough at book scale).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from tdlib.artifacts import Stage, atomic_path, atomic_write_text, fingerprint
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


def _digest(lines: Sequence[str]) -> str:
    """A short fingerprint of texts, so a stage notices when its queries change."""
    import hashlib

    return hashlib.sha1("\n".join(lines).encode("utf-8")).hexdigest()[:16]


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
    docs: Sequence[Doc],
    cfg: IndexConfig,
    out_dir: str | Path,
    inputs: object = None,
    progress: bool = True,
) -> Path:
    """Encode every passage of ``docs`` with ``student`` and save the vectors (``index.safetensors``).

    The student is loaded only when the index must be built; a complete index is reused.
    """
    from safetensors.torch import save_file

    stage = Stage(out_dir, "index", {"index": cfg, "student": fingerprint(student.name), "inputs": inputs,
                                     "docs": len(docs)})
    if stage.is_complete():
        return stage.dir
    if not docs:  # before begin(), which would clear an earlier index of this stage
        raise DataError("the collection to index has no documents.")
    stage.begin()
    model = student.load()
    if torch.cuda.is_available():
        model.to("cuda")
    t0 = time.perf_counter()
    passages, owners = [], []
    for d in docs:
        for p in split_passages(d.text, model.tokenizer, cfg.passage_tokens, cfg.stride, cfg.tail_windows):
            passages.append(p)
            owners.append(d.doc_id)
    vectors = []
    batch = cfg.batch_size
    for start in progress_bar(range(0, len(passages), batch * 8), desc=Path(out_dir).name, unit="chunk",
                              progress=progress):
        vectors.extend(model.encode(passages[start:start + batch * 8], is_query=False, batch_size=batch))
    lengths = torch.tensor([v.shape[0] for v in vectors], dtype=torch.long)
    offsets = torch.zeros(len(vectors) + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(lengths, 0)
    encoded = time.perf_counter()
    extra: dict[str, object] = {}
    if cfg.kind == "exhaustive":
        with atomic_path(stage.path(INDEX_FILE)) as tmp:
            save_file({"vectors": torch.cat(vectors).contiguous(), "offsets": offsets}, str(tmp))
        written = stage.path(INDEX_FILE)
    else:
        if int(lengths.max()) != 1:
            raise ConfigError(f"index.kind={cfg.kind} needs one vector per passage (a single-vector student); "
                              "this student gives one per token: use index.kind=exhaustive.")
        index, settings = ann.build(torch.cat(vectors).float().numpy(), cfg, seed=student.seed)
        with atomic_path(stage.path(ann.FAISS_FILE)) as tmp:
            ann.write(index, tmp)
        written = stage.path(ann.FAISS_FILE)
        extra = {"faiss": asdict(settings), "build_seconds": round(time.perf_counter() - encoded, 2)}
    atomic_write_text(stage.path(DOCIDS_FILE), json.dumps(owners))
    seconds = time.perf_counter() - t0
    stage.finish({"documents": len(docs), "passages": len(passages), "vectors": int(offsets[-1]),
                  "seconds": round(seconds, 2), "passages_per_second": round(len(passages) / max(seconds, 1e-9), 1),
                  "encode_seconds": round(encoded - t0, 2), "index_file": written.name,
                  "bytes_per_passage": round(written.stat().st_size / max(1, len(passages)), 1),
                  "student": student.name, **extra})
    return stage.dir


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
        vectors, offsets = tensors["vectors"].float(), tensors["offsets"]
        self.chunks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        lengths = offsets[1:] - offsets[:-1]
        for batch in by_length(lengths.tolist(), chunk, longest_first=False):
            rows = torch.tensor(batch, dtype=torch.long)
            width = int(lengths[rows].max())
            padded = torch.zeros(len(rows), width, vectors.shape[1])
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


def load_index(index_dir: str | Path, cfg: SearchConfig | None = None) -> "Index | ann.AnnIndex":
    """The index in ``index_dir``, exhaustive or faiss, ready for ``.search(q, q_mask, k)``."""
    if index_file(index_dir).name == ann.FAISS_FILE:
        owners = json.loads((Path(index_dir) / DOCIDS_FILE).read_text(encoding="utf-8"))
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
