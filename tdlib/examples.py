"""The training set and its examples: queries with their candidates and passages, drawn into one example per step.

:func:`load_training` checks a training set before any work (unknown ids, too few candidates, missing
texts) and keeps the large parts lazy (:class:`Candidates` from a tdist file, passage texts by id), so
memory grows with the number of queries, not with MS MARCO's 8.8M passages.
:class:`TrainingExamples` turns it into the examples the trainer draws:

- Translate-Distill (``method="distill"``): n passages drawn from the query's candidates (at random, as
  in PLAID-X's ``lazy_batcher``, or the teacher's top n), with the teacher's scores as the target;
- Translate-Train (``method="translate-train"``): one judged positive and n - 1 negatives from the
  candidates.

The draw for example ``i`` uses a random generator seeded by ``(seed, i)``, so an interrupted run that
resumes from a checkpoint sees exactly the examples an uninterrupted run would.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from tdlib.config import Config
from tdlib.data import Texts, load_qrels, load_queries, open_scores
from tdlib.data.corpora import candidate_file
from tdlib.errors import DataError


class Candidates(Mapping[str, list[str]]):
    """Candidate passage ids per query, best first, read from a tdist file when asked for."""

    RECENT = 4096  # queries whose lists are kept: a stage reads the same query several times in a row

    def __init__(self, index: Mapping[str, dict[str, float]], qids: Sequence[str], k: int):
        self.index, self.qids, self.k = index, list(qids), k
        self._known = set(self.qids)
        self._recent: dict[str, list[str]] = {}

    def __getitem__(self, qid: str) -> list[str]:
        if qid in self._recent:
            return list(self._recent[qid])
        if qid not in self._known:
            raise KeyError(qid)
        ranked = sorted(self.index[qid].items(), key=lambda x: -x[1])
        pids = [pid for pid, _ in ranked[: self.k]]
        if len(self._recent) >= self.RECENT:
            del self._recent[next(iter(self._recent))]  # the oldest (dicts keep insertion order)
        self._recent[qid] = pids
        return list(pids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.qids)

    def __len__(self) -> int:
        return len(self.qids)

    def passage_ids(self) -> set[str]:
        """Every candidate passage id (one pass over the file)."""
        return {pid for qid in self.qids for pid in self[qid]}


class TrainingSet(NamedTuple):
    """Everything the teacher and the student need for training, keyed by id."""

    queries: Mapping[str, str]  # English queries
    passages: Mapping[str, str]  # translated passages (what the student sees)
    english: Mapping[str, str]  # English passages (what an eng-eng teacher sees)
    candidates: Mapping[str, list[str]]  # query id -> candidate passage ids, best first
    positives: Mapping[str, set[str]]  # query id -> judged relevant passage ids


# Queries whose candidates and texts are checked before training; beyond them, a missing passage
# fails when it is first read, naming its id (checking all 809k MS MARCO queries would read every text).
CHECKED_QUERIES = 20_000


def load_training(
    english: str,
    translated: str,
    candidates: str = "",
    max_candidates: int = 50,
    max_queries: int | None = None,
    min_candidates: int = 2,
    check_english: bool = True,
    lookup: str = "lines",
) -> TrainingSet:
    """Load and check a training set; unknown ids or too few candidates fail before any work.

    Queries and qrels are read whole (MS MARCO's fit in memory); candidates and passage texts are read
    when used, so memory grows with the number of queries, not with the 8.8M passages of the paper's
    scale. The first :data:`CHECKED_QUERIES` queries are checked in full before anything runs.
    ``lookup`` chooses how the large files are read by id (``data.lookup``: see :func:`tdlib.data.open_scores`).
    """
    queries = {q.query_id: q.text for q in load_queries(english)}
    source = candidate_file(candidates, english)
    index = open_scores(source, lookup)
    if not len(index):
        raise DataError(f"{source} holds no candidates; give each training query a line "
                        "[qid, [[pid, score], ...]] (tdist line format).")
    unknown = [qid for qid in index if qid not in queries]
    if unknown:
        raise DataError(f"candidates name {len(unknown)} query id(s) not in {english}, e.g. {unknown[0]!r}.")
    qids = list(index)[:max_queries] if max_queries is not None else list(index)
    cands = Candidates(index, qids, max_candidates)
    checked = {qid: cands[qid] for qid in qids[:CHECKED_QUERIES]}
    short = [qid for qid, pids in checked.items() if len(pids) < min_candidates]
    if short:
        raise DataError(
            f"query {short[0]} has {len(checked[short[0]])} candidates but {min_candidates} are needed per "
            f"step ({len(short)} such queries); lower train.n_passages or give more candidates."
        )
    texts = {name: Texts(src, cands.passage_ids, lookup) for name, src in (("English", english), ("translated", translated))}
    needed = sorted({pid for pids in checked.values() for pid in pids})
    for name, src in (("English", english), ("translated", translated))[0 if check_english else 1:]:
        missing = []
        for i in range(0, len(needed), 4096):  # in batches, so the checked texts are not all held at once
            batch = needed[i:i + 4096]
            found = texts[name].found(batch)
            missing += [pid for pid in batch if pid not in found]
        if missing:
            raise DataError(
                f"{len(missing)} candidate passage id(s) have no {name} text in {src}, e.g. {missing[0]!r}."
            )
    positives: dict[str, set[str]] = defaultdict(set)
    wanted = set(qids)
    for q in load_qrels(english):
        if q.relevance > 0 and q.query_id in wanted:
            positives[q.query_id].add(q.doc_id)
    return TrainingSet(
        queries={qid: queries[qid] for qid in qids},
        passages=texts["translated"],
        english=texts["English"],
        candidates=cands,
        positives={qid: positives.get(qid, set()) for qid in qids},
    )


class TrainingExamples(torch.utils.data.Dataset):
    """``epochs`` passes over the queries; example ``i`` is query ``i % len(queries)``."""

    def __init__(
        self,
        training: TrainingSet,
        cfg: Config,
        teacher_scores: Mapping[str, Mapping[str, float]] | None,
        epochs: int = 1,
    ):
        self.training, self.cfg, self.epochs = training, cfg, epochs
        self.qids = sorted(training.queries)
        self.n = cfg.train.n_passages
        self.scores = teacher_scores
        if cfg.train.method == "distill":
            if teacher_scores is None:
                raise DataError("distillation needs teacher scores: run the score stage first.")
            for qid in self.qids:
                have = teacher_scores.get(qid, {})
                usable = [p for p in training.candidates[qid] if p in have]
                if len(usable) < self.n:
                    raise DataError(
                        f"query {qid} has {len(usable)} scored candidates, fewer than train.n_passages={self.n}; "
                        "lower n_passages or score more candidates."
                    )
        else:
            for qid in self.qids:
                pos = training.positives.get(qid, set())
                negs = [p for p in training.candidates[qid] if p not in pos]
                if not pos:
                    raise DataError(f"query {qid} has no judged positive passage (qrels), which "
                                    "Translate-Train needs.")
                if len(negs) < self.n - 1:
                    raise DataError(f"query {qid} has {len(negs)} negatives, fewer than train.n_passages - 1.")

    def __len__(self) -> int:
        return len(self.qids) * self.epochs

    def __getitem__(self, i: int) -> dict[str, Any]:
        qid = self.qids[i % len(self.qids)]
        rng = np.random.default_rng([self.cfg.seed, i])
        cands = self.training.candidates[qid]
        if self.cfg.train.method == "distill":
            have = self.scores[qid]  # type: ignore[index]
            usable = [p for p in cands if p in have]
            if self.cfg.train.sampling == "top":
                chosen = sorted(usable, key=lambda p: -have[p])[: self.n]
            else:
                chosen = [usable[j] for j in rng.choice(len(usable), self.n, replace=False)]
            teacher = [float(have[p]) for p in chosen]
        else:
            # The judged positive, whether or not the candidates include it (MS MARCO's often are not
            # among the 50), against negatives drawn from the candidates.
            pos = sorted(self.training.positives[qid])
            negs = [p for p in cands if p not in self.training.positives[qid]]
            chosen = [pos[rng.integers(len(pos))]] + [negs[j] for j in rng.choice(len(negs), self.n - 1, replace=False)]
            teacher = None
        return {
            "query": self.training.queries[qid],
            "passages": [self.training.passages[p] for p in chosen],
            "teacher": teacher,
        }
