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
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdlib.config import IndexConfig, SearchConfig
from tdlib.errors import ConfigError

FAISS_FILE = "index.faiss"
MIN_POINTS = 4  # training vectors per k-means centroid below which the sizes shrink (faiss warns under 39)


@dataclass(frozen=True)
class Settings:
    """The faiss settings an index was built with, once the zeros of the configuration are sized."""

    kind: str
    nlist: int = 0
    m: int = 0
    nbits: int = 0
    hnsw_m: int = 0


def sized(cfg: IndexConfig, n: int, dim: int) -> Settings:
    """The configuration's settings, with 0 replaced by sizes that suit ``n`` passages of ``dim`` floats.

    IVF: about 4 sqrt(n) lists, and at least 39 training vectors per list (faiss's advice; the sample
    is at most ``train_sample``), so a small collection gets few lists. PQ: one sub-vector per 4
    dimensions (a divisor of ``dim``), and at least 4 training vectors per code value (2^nbits of
    them), so a small collection gets fewer bits.

    >>> sized(IndexConfig(kind="ivfpq"), 1_000_000, 384)
    Settings(kind='ivfpq', nlist=2564, m=96, nbits=8, hnsw_m=0)
    >>> sized(IndexConfig(kind="ivfpq"), 300, 384)
    Settings(kind='ivfpq', nlist=7, m=96, nbits=6, hnsw_m=0)
    """
    if cfg.kind == "hnsw":
        return Settings("hnsw", hnsw_m=cfg.hnsw_m)
    train = min(n, cfg.train_sample)
    nlist = cfg.nlist or int(round(4 * math.sqrt(n)))
    nlist = max(1, min(nlist, train // 39))
    m = cfg.m or max(d for d in range(1, dim + 1) if dim % d == 0 and d <= max(1, dim // 4))
    if dim % m:
        raise ConfigError(f"index.m={m} must divide the student's vector size {dim}.")
    nbits = max(1, min(cfg.nbits, int(math.log2(max(2, train // MIN_POINTS)))))
    return Settings("ivfpq", nlist=nlist, m=m, nbits=nbits)


def build(vectors: np.ndarray, cfg: IndexConfig, seed: int = 0):
    """A trained faiss index holding ``vectors`` (passages x dim, float32), and its :class:`Settings`."""
    import faiss

    n, dim = vectors.shape
    settings = sized(cfg, n, dim)
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
        sample = np.random.default_rng(seed).permutation(n)[: min(n, cfg.train_sample)]
        index.train(vectors[np.sort(sample)])
    index.add(vectors)
    return index, settings


def write(index, path: str | Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


class AnnIndex:
    """A saved faiss index and the document of each passage: search by MaxP over the passages it returns."""

    def __init__(self, index_dir: str | Path, owners: list[str], cfg: SearchConfig):
        import faiss

        self.index = faiss.read_index(str(Path(index_dir) / FAISS_FILE))
        self.cfg = cfg
        self.doc_ids = sorted(set(owners))
        position = {d: i for i, d in enumerate(self.doc_ids)}
        self.owner = np.array([position[d] for d in owners], dtype=np.int64)
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
