"""Approximate search over single-vector passage embeddings with faiss: an HNSW graph or IVF-PQ.

Exhaustive search (:class:`tdlib.retrieve.Index`) scores every passage and is exact; at millions of
passages it costs memory (``dim`` floats per passage) and time (every query against every passage).
faiss offers the two usual ways out, both with inner product, which is the cosine for the students'
L2-normalised vectors:

- ``hnsw``: a graph of the full vectors (``IndexHNSWFlat``); a query walks it from an entry point.
  Near-exact, fast to query, as large as the vectors plus the graph, slow to build.
- ``ivfpq``: ``nlist`` k-means lists over the vectors, each vector stored as ``m`` codes of ``nbits``
  bits (product quantisation, ``IndexIVFPQ``); a query scans the ``nprobe`` nearest lists. A few
  bytes per passage; both quantisers are trained on a sample, so recall depends on the settings.

Documents are still scored by MaxP: the index returns passages, and a document takes its best one.

ColBERT-X students give one vector per token, and ``ivfpq`` then follows ColBERT v1 (Khattab and
Zaharia 2020; ``colbert/indexing/faiss_index.py`` and ``colbert/ranking/faiss_index.py`` in
``stanford-futuredata/ColBERT``): an IVF-PQ index over every token vector (2^ceil(log2(8 sqrt(tokens)))
lists, 16 sub-vectors of 8 bits) finds, for each query token, its ``faiss_depth`` nearest token
vectors; the passages they belong to are the candidates, and each is scored by exact MaxSim over its
full vectors, kept in float16 in one memory-mapped file (``token_vectors.npy``). A passage found
scores what exhaustive search gives it; a document takes the best of its passages found, so it
scores less than exhaustively only when its best passage was missed, and is absent when all were.

What this leaves out: PLAID's centroid interaction and residual compression (ColBERTv2), which make
the stored vectors about 10 times smaller than float16; the PLAID-X export
(:func:`tdlib.stages.export`) is the route to them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdlib.config import IndexConfig, SearchConfig
from tdlib.errors import ConfigError

FAISS_FILE = "index.faiss"
TOKENS_FILE = "token_vectors.npy"  # ColBERT-X: every passage's token vectors, float16, one after another
OFFSETS_FILE = "passage_offsets.npy"  # where each passage's vectors start in TOKENS_FILE (and the end)
ADD_BLOCK = 1 << 18  # vectors converted to float32 and added at a time
MIN_POINTS = 4  # training vectors per k-means centroid below which the sizes shrink (faiss warns under 39)


@dataclass(frozen=True)
class Settings:
    """The faiss settings an index was built with, once the zeros of the configuration are sized."""

    kind: str
    nlist: int = 0
    m: int = 0
    nbits: int = 0
    hnsw_m: int = 0


def sized(cfg: IndexConfig, n: int, dim: int, tokens: bool = False) -> Settings:
    """The configuration's settings, with 0 replaced by sizes that suit ``n`` vectors of ``dim`` floats.

    IVF: about 4 sqrt(n) lists (``tokens``: ColBERT v1's power of two at or above 8 sqrt(n)), and at
    least 39 training vectors per list (faiss's advice; the sample is at most ``train_sample``), so a
    small collection gets few lists. PQ: one sub-vector per 4 dimensions (``tokens``: 16, as ColBERT
    v1), a divisor of ``dim``, and at least 4 training vectors per code value (2^nbits of them), so a
    small collection gets fewer bits.

    >>> sized(IndexConfig(kind="ivfpq"), 1_000_000, 384)
    Settings(kind='ivfpq', nlist=2564, m=96, nbits=8, hnsw_m=0)
    >>> sized(IndexConfig(kind="ivfpq"), 300, 384)
    Settings(kind='ivfpq', nlist=7, m=96, nbits=6, hnsw_m=0)
    >>> sized(IndexConfig(kind="ivfpq", train_sample=20_000_000), 300_000_000, 128, tokens=True)
    Settings(kind='ivfpq', nlist=262144, m=16, nbits=8, hnsw_m=0)
    """
    if cfg.kind == "hnsw":
        return Settings("hnsw", hnsw_m=cfg.hnsw_m)
    train = min(n, cfg.train_sample)
    default = 1 << math.ceil(math.log2(8 * math.sqrt(n))) if tokens else int(round(4 * math.sqrt(n)))
    nlist = max(1, min(cfg.nlist or default, train // 39))
    m = cfg.m or max(d for d in range(1, dim + 1) if dim % d == 0 and d <= max(1, 16 if tokens else dim // 4))
    if dim % m:
        raise ConfigError(f"index.m={m} must divide the student's vector size {dim}.")
    nbits = max(1, min(cfg.nbits, int(math.log2(max(2, train // MIN_POINTS)))))
    return Settings("ivfpq", nlist=nlist, m=m, nbits=nbits)


def build(vectors: np.ndarray, cfg: IndexConfig, seed: int = 0, tokens: bool = False):
    """A trained faiss index holding ``vectors`` (rows x dim; float32, or float16 such as a memory-mapped
    file, read a block at a time), and its :class:`Settings`.

    The quantisers are trained on ``train_sample`` rows drawn with ``seed``; the rows are then added in
    blocks, so a memory-mapped ``vectors`` is never read into memory whole.
    """
    import faiss

    n, dim = vectors.shape
    settings = sized(cfg, n, dim, tokens)
    if settings.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.ef_construction
    else:
        quantiser = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantiser, dim, settings.nlist, settings.m, settings.nbits,
                                 faiss.METRIC_INNER_PRODUCT)
        for clustering in (index.cp, index.pq.cp):
            clustering.seed = seed
            clustering.min_points_per_centroid = MIN_POINTS
        sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, cfg.train_sample), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    for start in range(0, n, ADD_BLOCK):
        index.add(np.ascontiguousarray(vectors[start:start + ADD_BLOCK], dtype=np.float32))
    return index, settings


def write(index, path: str | Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def documents_of(owners: list[str]) -> tuple[list[str], np.ndarray]:
    """The documents (sorted) and, for each passage, the position of its document among them.

    >>> documents_of(["b", "a", "b"])
    (['a', 'b'], array([1, 0, 1]))
    """
    doc_ids = sorted(set(owners))
    position = {d: i for i, d in enumerate(doc_ids)}
    return doc_ids, np.array([position[d] for d in owners], dtype=np.int64)


class AnnIndex:
    """A saved faiss index and the document of each passage: search by MaxP over the passages it returns."""

    def __init__(self, index_dir: str | Path, owners: list[str], cfg: SearchConfig):
        import faiss

        self.index = faiss.read_index(str(Path(index_dir) / FAISS_FILE))
        self.cfg = cfg
        self.doc_ids, self.owner = documents_of(owners)
        self.per_doc = max(1, math.ceil(len(owners) / max(1, len(self.doc_ids))))

    def passages_for(self, k: int) -> int:
        """Passages to ask for so that MaxP can still fill ``k`` documents: k times the mean per document, twice."""
        return min(self.index.ntotal, 2 * k * self.per_doc)

    def search(self, q, q_mask, k: int):
        """Top ``k`` documents (scores, document positions) per query: ``q`` holds one vector per query."""
        import torch

        queries = np.ascontiguousarray(q[:, 0, :].float().numpy())
        want = self.passages_for(k)
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = max(self.cfg.ef_search or 2 * want, want)
        else:
            self.index.nprobe = min(self.index.nlist, self.cfg.nprobe or max(16, self.index.nlist // 8))
        scores, rows = self.index.search(queries, want)
        doc_scores = torch.full((len(queries), len(self.doc_ids)), float("-inf"))
        found = rows >= 0  # IVF may return fewer than asked (-1 rows)
        owners = torch.from_numpy(np.where(found, self.owner[np.where(found, rows, 0)], 0))
        values = torch.from_numpy(np.where(found, scores, -np.inf).astype(np.float32))
        doc_scores.scatter_reduce_(1, owners, values, reduce="amax")
        return doc_scores.topk(min(k, len(self.doc_ids)), dim=1)


class TokenIndex:
    """A ColBERT-X index: IVF-PQ over the token vectors for candidates, exact MaxSim over their full vectors."""

    CANDIDATES_AT_A_TIME = 1024  # passages scored together: bounds the (query tokens x their tokens) matrix

    def __init__(self, index_dir: str | Path, owners: list[str], cfg: SearchConfig):
        import faiss

        index_dir = Path(index_dir)
        self.index = faiss.read_index(str(index_dir / FAISS_FILE))
        self.index.nprobe = min(self.index.nlist, cfg.nprobe or max(10, self.index.nlist // 64))
        self.depth = min(cfg.faiss_depth, self.index.ntotal)
        self.vectors = np.load(index_dir / TOKENS_FILE, mmap_mode="r")
        self.offsets = np.load(index_dir / OFFSETS_FILE)
        self.doc_ids, self.owner = documents_of(owners)

    def candidates(self, hits: np.ndarray) -> np.ndarray:
        """The passages (sorted, once each) that own the token rows ``hits``."""
        hits = hits[hits >= 0]
        return np.unique(np.searchsorted(self.offsets, hits, side="right") - 1)

    def exact(self, q, passages: np.ndarray):
        """MaxSim of one query's kept token vectors ``q`` (tokens, dim) against each of ``passages``.

        Each group of passages is read as a (passages, longest, dim) block, a shorter passage padded with
        copies of its last vector (a duplicate never changes a maximum, so no mask is needed).
        """
        import torch

        scores = []
        for start in range(0, len(passages), self.CANDIDATES_AT_A_TIME):
            group = passages[start:start + self.CANDIDATES_AT_A_TIME]
            begin, lengths = self.offsets[group], self.offsets[group + 1] - self.offsets[group]
            rows = begin[:, None] + np.minimum(np.arange(int(lengths.max()))[None, :], lengths[:, None] - 1)
            tokens = torch.from_numpy(np.asarray(self.vectors[rows.ravel()], dtype=np.float32))
            tokens = tokens.view(len(group), rows.shape[1], -1)
            scores.append(torch.matmul(tokens, q.T).amax(dim=1).sum(dim=1))  # (passages, query tokens) -> sum
        return torch.cat(scores) if scores else torch.zeros(0)

    def search(self, q, q_mask, k: int):
        """Top ``k`` documents (scores, document positions) per query, by MaxP over the candidates' MaxSim."""
        import torch

        nq, lq, dim = q.shape
        kept = q_mask.reshape(-1).bool()
        flat = q.reshape(-1, dim).float()[kept]
        _, hits = self.index.search(np.ascontiguousarray(flat.numpy()), self.depth)
        query_of = np.repeat(np.arange(nq), lq)[kept.numpy()]
        doc_scores = torch.full((nq, len(self.doc_ids)), float("-inf"))
        for i in range(nq):
            passages = self.candidates(hits[query_of == i].ravel())
            scores = self.exact(q[i].float()[q_mask[i].bool()], passages)
            doc_scores[i].scatter_reduce_(0, torch.from_numpy(self.owner[passages]), scores, reduce="amax")
        return doc_scores.topk(min(k, len(self.doc_ids)), dim=1)
