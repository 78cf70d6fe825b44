"""Teacher scoring: one interface, four kinds of teacher, and the resumable scoring stage.

Translate-Distill lets the teacher read each (query, passage) pair in the language setting that suits
it: ``eng-eng`` (English query, English passage: MonoT5-3B in the paper), ``eng-x`` (English query,
translated passage: mT5-XXL) or ``x-x`` (both translated). The student always reads the English query
with the translated passage. Teachers:

- ``cross-encoder``: a sentence-transformers ``CrossEncoder``; its raw logit is the score;
- ``monot5``: a seq2seq reranker; the score is log P("true") against "false" after
  ``Query: q Document: d Relevant:`` (MonoT5 / mT5 rerankers);
- ``bi-encoder``: a sentence-transformers model; the cosine of query and passage;
- ``precomputed``: scores read from a file in the ``hltcoe/tdist-msmarco-scores`` line format.

Scoring is resumable and can be sharded over processes (``shard=(i, n)``, ``--shard I/N``): the last
shard to finish merges them. What this leaves out: the ColBERTv2 first stage that chose the 50
candidates (candidates are an input).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np
import torch

from tdlib import hub
from tdlib.batching import map_by_length
from tdlib.artifacts import Stage, append_records, run_shard
from tdlib.config import Config, TeacherConfig
from tdlib.data import Doc, Query, format_tdist_line, open_scores, iter_tdist, source_fingerprint
from tdlib.examples import TrainingSet
from tdlib.errors import ConfigError, DataError
from tdlib.logs import progress_bar

SCORES_FILE = "scores.jsonl"


class Teacher(Protocol):
    def score(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        """Scores of aligned pairs: ``queries[i]`` with ``passages[i]``; higher is more relevant."""


def _device() -> str:
    from tdlib.launcher import device

    return device()  # this process's own GPU under torchrun / accelerate launch


class CrossEncoderTeacher:
    def __init__(self, cfg: TeacherConfig):
        from sentence_transformers import CrossEncoder

        self.cfg = cfg
        self.model = hub.load(CrossEncoder, cfg.model, "cross-encoder teacher", max_length=cfg.max_length,
                              device=_device())
        # A plain one-logit classifier (every profile's teacher) is run directly; other layouts
        # (extra scoring modules, several labels) go through CrossEncoder.predict.
        self.direct = len(self.model) == 1 and self.model.num_labels == 1
        if _device().startswith("cuda"):
            self.model.model.half()  # fp16 on GPU, as the paper's mixed precision; scores come back as float32

    def score(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        if self.direct:
            return self._score_directly(queries, passages)
        return self._score_with_predict(queries, passages)

    @torch.inference_mode()
    def _score_directly(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        """Tokenise every pair once, batch them in order of token count, pad each batch to its longest."""
        tokenizer, network = self.model.tokenizer, self.model.model
        network.eval()
        enc = tokenizer([q.text for q in queries], [p.text for p in passages], truncation="longest_first",
                        max_length=self.model.max_seq_length)

        def run(idx: list[int]) -> np.ndarray:
            batch = tokenizer.pad({k: [v[i] for i in idx] for k, v in enc.items()}, return_tensors="pt")
            return network(**batch.to(network.device)).logits[:, 0].float().cpu().numpy()  # (batch,)

        return np.array(map_by_length([len(i) for i in enc["input_ids"]], self.cfg.batch_size, run),
                        dtype=np.float32)

    def _score_with_predict(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        pairs = [(q.text, p.text) for q, p in zip(queries, passages)]
        raw = self.model.predict(pairs, batch_size=self.cfg.batch_size, activation_fn=torch.nn.Identity(),
                                 show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(raw, dtype=np.float32).reshape(-1)


class MonoT5Teacher:
    TEMPLATE = "Query: {q} Document: {d} Relevant:"

    def __init__(self, cfg: TeacherConfig):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.cfg = cfg
        if len(cfg.prediction_tokens) != 2:
            raise ConfigError("teacher.prediction_tokens needs two tokens: the negative one, then the positive one.")
        self.tokenizer = hub.load(AutoTokenizer.from_pretrained, cfg.model, "MonoT5 tokenizer")
        # checked with the tokenizer, before the (up to 3B-parameter) model is loaded
        ids = [self.tokenizer.encode(w, add_special_tokens=False) for w in cfg.prediction_tokens]
        if any(len(i) != 1 for i in ids):
            raise ConfigError(f"the MonoT5 tokens {cfg.prediction_tokens} must each be one token of {cfg.model}'s "
                              "vocabulary; see its model card.")
        self.false_id, self.true_id = ids[0][0], ids[1][0]
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.model = hub.load(AutoModelForSeq2SeqLM.from_pretrained, cfg.model, "MonoT5 teacher", dtype=dtype)
        self.model.to(_device()).eval()
        start = self.model.config.decoder_start_token_id
        self.start_id = start if start is not None else self.tokenizer.pad_token_id

    @torch.inference_mode()
    def score(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        """Tokenise every pair once, batch them in order of token count, pad each batch to its longest."""
        texts = [self.TEMPLATE.format(q=q.text, d=p.text) for q, p in zip(queries, passages)]
        ids = self.tokenizer(texts, max_length=self.cfg.max_length, truncation=True)["input_ids"]
        device = self.model.device

        def run(idx: list[int]) -> np.ndarray:
            enc = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(device)
            decoder = torch.full((len(idx), 1), self.start_id, dtype=torch.long, device=device)
            logits = self.model(**enc, decoder_input_ids=decoder).logits[:, 0, :]  # (batch, vocab)
            two = torch.log_softmax(logits[:, [self.false_id, self.true_id]].float(), dim=-1)
            return two[:, 1].cpu().numpy()

        return np.array(map_by_length([len(i) for i in ids], self.cfg.batch_size, run), dtype=np.float32)


class BiEncoderTeacher:
    """Cosine of a sentence-transformers model's query and passage vectors.

    Each distinct text is encoded once per teacher (a passage listed by many queries is not encoded
    again), in a cache of at most ``CACHE_TEXTS`` vectors, emptied when full.
    """

    CACHE_TEXTS = 250_000

    def __init__(self, cfg: TeacherConfig):
        from sentence_transformers import SentenceTransformer

        self.cfg = cfg
        self.model = hub.load(SentenceTransformer, cfg.model, "bi-encoder teacher", device=_device())
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self.encoded = 0  # texts encoded so far (the cache's misses)

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        new = sorted({t for t in texts if (role, t) not in self._vectors})
        if len(self._vectors) + len(new) > self.CACHE_TEXTS:
            self._vectors.clear()
            new = sorted(set(texts))
        if new:
            vecs = self.model.encode(new, batch_size=self.cfg.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
            self._vectors.update({(role, t): v for t, v in zip(new, vecs)})
            self.encoded += len(new)
        return np.stack([self._vectors[(role, t)] for t in texts])

    def score(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        a = self._encode([q.text for q in queries], "query")  # (pairs, dim)
        b = self._encode([p.text for p in passages], "passage")  # (pairs, dim)
        return (a * b).sum(axis=1).astype(np.float32)


class PrecomputedTeacher:
    """Scores looked up by (query id, passage id) in a tdist-format file."""

    def __init__(self, cfg: TeacherConfig):
        self.path = cfg.scores_file
        self.table = open_scores(cfg.scores_file)

    def score(self, queries: Sequence[Query], passages: Sequence[Doc]) -> np.ndarray:
        out = np.empty(len(queries), dtype=np.float32)
        rows: dict[str, dict[str, float]] = {}
        for i, (q, p) in enumerate(zip(queries, passages)):
            try:
                if q.query_id not in rows:
                    rows[q.query_id] = self.table[q.query_id]
                out[i] = rows[q.query_id][p.doc_id]
            except KeyError:
                raise DataError(
                    f"{self.path} has no score for query {q.query_id} and passage {p.doc_id}."
                ) from None
        return out


KINDS = {
    "cross-encoder": CrossEncoderTeacher,
    "monot5": MonoT5Teacher,
    "bi-encoder": BiEncoderTeacher,
    "precomputed": PrecomputedTeacher,
}


def load_teacher(cfg: TeacherConfig) -> Teacher:
    return KINDS[cfg.kind](cfg)


def pair_texts(
    training: TrainingSet, setting: str, translated_queries: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The query and passage texts the teacher reads in a language setting."""
    if setting == "x-x":
        if not translated_queries:
            raise DataError("teacher.setting=x-x needs translated queries: run the translate stage with "
                            "translate.translate_queries=true first.")
        missing = [q for q in training.queries if q not in translated_queries]
        if missing:
            raise DataError(f"{len(missing)} training queries have no translation, e.g. {missing[0]!r}.")
        return dict(translated_queries), training.passages
    passages = training.english if setting == "eng-eng" else training.passages
    return training.queries, passages


def score_candidates(
    cfg: Config,
    training: TrainingSet,
    out_dir: str | Path,
    translated_queries: Mapping[str, str] | None = None,
    teacher: Teacher | None = None,
    inputs: Mapping[str, object] | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Score every training query's candidates and write ``scores.jsonl`` (tdist format).

    The output is written line by line to ``scores.jsonl.partial``; an interrupted run resumes after
    the last complete query, and the file is renamed into place when every query is scored.

    With ``shard=(i, n)`` only queries ``i, i+n, ...`` are scored, into ``<out_dir>-shards/i-of-n``;
    whichever shard finishes last merges all of them into ``out_dir``, giving the same file an
    unsharded run writes. Returns the merged file, or the shard's file while others are running.
    """
    record = {"teacher": cfg.teacher, "inputs": inputs or {
        "train_english": source_fingerprint(cfg.fill(cfg.data.train_english)),
        "train_translated": source_fingerprint(cfg.fill(cfg.data.train_translated)),
        "queries": sorted(training.queries)}}
    stage = Stage(out_dir, "score", record)
    if stage.is_complete():
        return stage.path(SCORES_FILE)
    if shard is not None:
        mine = list(training.queries)[shard[0]::shard[1]]
        part = training._replace(queries={q: training.queries[q] for q in mine},
                                 candidates={q: training.candidates[q] for q in mine})
        return run_shard(out_dir, stage, shard, SCORES_FILE, lambda d, shard_inputs: score_candidates(
            cfg, part, d, translated_queries, teacher, inputs=shard_inputs, progress=progress))
    qtexts, ptexts = pair_texts(training, cfg.teacher.setting, translated_queries)
    state: dict = {"teacher": teacher}

    def prepare(queries: int) -> None:  # only when something is left to score
        state["teacher"] = state["teacher"] or load_teacher(cfg.teacher)
        state["bar"] = progress_bar(total=queries, desc="teacher", unit="query", progress=progress)
        state["t0"] = time.perf_counter()

    def score(qids: list[str]) -> tuple[list[str], int]:
        qs = [Query(qid, qtexts[qid]) for qid in qids for _ in training.candidates[qid]]
        ps = [Doc(pid, ptexts[pid]) for qid in qids for pid in training.candidates[qid]]
        scores, pos, lines = state["teacher"].score(qs, ps), 0, []
        for qid in qids:
            n = len(training.candidates[qid])
            lines.append(format_tdist_line(qid, zip(training.candidates[qid], scores[pos:pos + n].tolist())))
            pos += n
        return lines, len(qs)

    def report(queries: int, pairs: int) -> None:
        state["bar"].update(queries)
        state["bar"].set_postfix(pairs_per_s=f"{pairs / max(time.perf_counter() - state['t0'], 1e-9):.0f}")

    # Score several queries per call so the teacher sees full batches.
    chunk = max(1, cfg.teacher.batch_size * 4 // max(1, cfg.data.max_candidates))
    final, _, pairs_done, seconds = append_records(
        stage, SCORES_FILE, list(training.queries), key=lambda qid: qid,
        record_ids=lambda p: (qid for qid, _ in iter_tdist(p)), lines=score, chunk=chunk, prepare=prepare,
        on_chunk=report)
    if "bar" in state:
        state["bar"].close()
    stage.finish({"queries": len(training.queries), "pairs_scored_now": pairs_done, "seconds": round(seconds, 2)})
    return final
