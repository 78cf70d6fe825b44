"""Evaluation with ir_measures: the paper's measures, per-query values and paired significance.

Measures follow the paper: nDCG@20 (main), MAP, recall at 100 and 1000; nDCG@10 and RR@10 help on
small test sets. Every judged query counts: a query with relevant documents but no results scores 0
(pytrec_eval alone would skip it and flatter the run). A paired t-test compares two runs per query.

What this leaves out: multiple-comparison corrections and judged-only (condensed) evaluation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import pandas as pd

from tdlib.artifacts import atomic_write_json, atomic_write_text
from tdlib.config import EvalConfig
from tdlib.data import Qrel, Run, read_run

DEFAULT_MEASURES = EvalConfig().measures


class Evaluation(NamedTuple):
    aggregate: dict[str, float]  # measure -> mean over judged queries
    per_query: pd.DataFrame  # one row per judged query, one column per measure


def _run_of(run: Run | str | Path) -> Run:
    return read_run(run) if isinstance(run, (str, Path)) else run


def evaluate_run(
    run: Run | str | Path, qrels: Iterable[Qrel], measures: Sequence[str] = DEFAULT_MEASURES
) -> Evaluation:
    """Score a run against graded qrels.

    >>> from tdlib.data import Qrel
    >>> qrels = [Qrel("1", "a", 1), Qrel("1", "b", 0)]
    >>> evaluate_run({"1": [("b", 2.0), ("a", 1.0)]}, qrels, ["RR@10"]).aggregate
    {'RR@10': 0.5}
    """
    import ir_measures

    parsed = [ir_measures.parse_measure(m) for m in measures]
    qrels = list(qrels)
    judged = sorted({q.query_id for q in qrels if q.relevance > 0})
    run = _run_of(run)
    ir_qrels = [ir_measures.Qrel(q.query_id, q.doc_id, q.relevance) for q in qrels]
    ir_run = [ir_measures.ScoredDoc(qid, did, score) for qid, docs in run.items() for did, score in docs]
    names = {str(m): name for m, name in zip(parsed, measures)}
    values: dict[str, dict[str, float]] = {m: {} for m in measures}
    for metric in ir_measures.iter_calc(parsed, ir_qrels, ir_run):
        values[names[str(metric.measure)]][metric.query_id] = metric.value
    # Judged queries missing from the run score 0.
    table = pd.DataFrame({m: [values[m].get(q, 0.0) for q in judged] for m in measures},
                         index=pd.Index(judged, name="query_id"), dtype=float)
    aggregate = {m: round(float(table[m].mean()), 4) if len(table) else 0.0 for m in measures}
    return Evaluation(aggregate, table)


def compare(
    run_a: Run | str | Path, run_b: Run | str | Path, qrels: Iterable[Qrel], measure: str = "nDCG@20"
) -> dict[str, float]:
    """Paired two-sided t-test of ``measure`` between two runs over the judged queries."""
    from scipy import stats

    qrels = list(qrels)
    a = evaluate_run(run_a, qrels, [measure]).per_query[measure]
    b = evaluate_run(run_b, qrels, [measure]).per_query[measure]
    diff = b - a
    if len(diff) < 2 or float(diff.std()) == 0.0:
        t, p = 0.0, 1.0
    else:
        t, p = stats.ttest_rel(b, a)
    return {"measure": measure, "a": round(float(a.mean()), 4), "b": round(float(b.mean()), 4),
            "delta": round(float(diff.mean()), 4), "t": round(float(t), 3), "p": round(float(p), 4),
            "queries": int(len(diff)), "b_better": int((diff > 0).sum()), "a_better": int((diff < 0).sum())}


def write_evaluation(result: Evaluation, out_dir: str | Path, extra: Mapping[str, object] | None = None) -> Path:
    """``metrics.json`` (aggregate) and ``per_query.tsv`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", {**result.aggregate, **(extra or {})})
    atomic_write_text(out / "per_query.tsv", result.per_query.to_csv(sep="\t"))
    return out / "metrics.json"
