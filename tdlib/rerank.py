"""Retrieve and rerank: a teacher rescoring the top ``depth`` documents of any run.

This is the paper's other point of comparison. A cheap first stage (the student, or BM25) ranks the
collection; an expensive model (a cross-encoder or MonoT5, the same ones that teach the student)
reads each query with each of its top ``depth`` documents and reorders them. The teacher's cost is
paid at query time, ``depth`` model calls per query, where a distilled student pays it once, in
training. The run keeps its first-stage order below ``depth``.

The teacher reads a document as it is, up to ``teacher.max_length`` tokens (the start of a long
document); the documents may be those the first stage searched or another version of them, such as
their English originals (``docs``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

from tdlib.artifacts import Stage, fingerprint
from tdlib.config import TeacherConfig
from tdlib.data import Doc, Query, Run, read_run, write_run
from tdlib.errors import DataError
from tdlib.logs import progress_bar

RUN_FILE = "run.trec"


def rerank_run(teacher, run: Run, queries: Mapping[str, str], docs: Mapping[str, str], depth: int,
               progress: bool = True, desc: str = "rerank") -> Run:
    """``run`` with each query's top ``depth`` documents reordered by ``teacher.score`` (the rest follow).

    Reranked documents score above every document left in first-stage order, so the run stays sorted.
    """
    missing = sorted({d for ranked in run.values() for d, _ in ranked[:depth] if d not in docs})
    if missing:
        raise DataError(f"{len(missing)} document(s) of the run have no text to rerank, e.g. {missing[0]!r}; "
                        "rerank against the collection the run searched.")
    out: Run = {}
    for qid in progress_bar(sorted(run), desc=desc, unit="query", progress=progress):
        if qid not in queries:
            raise DataError(f"query {qid!r} of the run is not among the test queries.")
        ranked = run[qid]
        top = [d for d, _ in ranked[:depth]]
        scores = teacher.score([Query(qid, queries[qid])] * len(top), [Doc(d, docs[d]) for d in top]) if top else []
        reordered = sorted(zip(top, (float(s) for s in scores)), key=lambda x: -x[1])
        floor = min((s for _, s in reordered), default=0.0)
        rest = [(d, floor - 1.0 - i) for i, (d, _) in enumerate(ranked[depth:])]
        out[qid] = reordered + rest
    return out


def rerank(run_path: str | Path, teacher_cfg: TeacherConfig, queries: Sequence[Query], docs: Sequence[Doc] | Mapping[str, str],
           depth: int, out_dir: str | Path, inputs: object = None, progress: bool = True) -> Path:
    """Rerank the run in ``run_path`` with the teacher ``teacher_cfg`` into ``out_dir/run.trec`` (a stage)."""
    from tdlib.teacher import load_teacher

    stage = Stage(out_dir, "rerank", {"teacher": teacher_cfg, "depth": depth, "run": fingerprint(run_path),
                                      "inputs": inputs})
    final = stage.path(RUN_FILE)
    if stage.is_complete():
        return final
    texts = docs if isinstance(docs, Mapping) else {d.doc_id: d.text for d in docs}
    first = read_run(run_path)
    stage.begin()
    teacher = load_teacher(teacher_cfg)
    t0 = time.perf_counter()
    reranked = rerank_run(teacher, first, {q.query_id: q.text for q in queries}, texts, depth, progress,
                          desc=Path(out_dir).name)
    write_run(final, reranked, tag=Path(out_dir).name)
    seconds = time.perf_counter() - t0
    pairs = sum(min(depth, len(v)) for v in first.values())
    stage.finish({"queries": len(first), "pairs": pairs, "seconds": round(seconds, 2),
                  "ms_per_query": round(1000 * seconds / max(1, len(first)), 1), "teacher": teacher_cfg.model})
    return final
