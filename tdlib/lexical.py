"""BM25, the lexical baseline: how far exact word matching gets, within and across languages.

The paper's BM25 baseline searches the organisers' English translations of the documents. Here BM25
searches any collection with a simple analyser: lowercased word tokens for alphabetic scripts, and
overlapping character bigrams for Chinese (which has no spaces). Across languages (an English query
against Chinese documents) it finds almost nothing, which is the problem CLIR has to solve.

What this leaves out: stemming, stop words and query expansion (RM3); use PyTerrier or Anserini for
those.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from tdlib.data import Doc, Query, Run

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff]")


def analyse(text: str) -> list[str]:
    """Lowercased words; runs of Chinese characters become overlapping bigrams.

    >>> analyse("Rain fell 大雨")
    ['rain', 'fell', '大雨']
    """
    out: list[str] = []
    for token in _WORD.findall(text.lower()):
        if _CJK.search(token):
            chars = [c for c in token]
            out.extend(chars[0] if len(chars) == 1 else "".join(chars[i:i + 2]) for i in range(max(1, len(chars) - 1)))
        else:
            out.append(token)
    return out


class BM25:
    """Okapi BM25 over an in-memory collection (k1 = 0.9, b = 0.4, Anserini's defaults)."""

    def __init__(self, docs: Sequence[Doc], k1: float = 0.9, b: float = 0.4):
        self.k1, self.b = k1, b
        self.doc_ids = [d.doc_id for d in docs]
        self.tfs = [Counter(analyse(d.text)) for d in docs]
        self.lengths = [sum(tf.values()) for tf in self.tfs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, tf in enumerate(self.tfs):
            for t in tf:
                self.postings.setdefault(t, []).append(i)

    def scores(self, text: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for t in set(analyse(text)):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i in self.postings[t]:
                f = self.tfs[i][t]
                norm = f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg))
                out[i] = out.get(i, 0.0) + idf * norm
        return out

    def search(self, queries: Sequence[Query], k: int = 1000) -> Run:
        run: Run = {}
        for q in queries:
            ranked = sorted(self.scores(q.text).items(), key=lambda x: -x[1])[:k]
            run[q.query_id] = [(self.doc_ids[i], s) for i, s in ranked]
        return run
