"""Retrieve and rerank on the mini collection with real models: the numbers chapter 5 quotes.

    HF_HUB_OFFLINE=1 python benchmarks/rerank_mini.py        # writes benchmarks/rerank-mini.json

First stages: multilingual-e5-small as published (not fine-tuned) over the Chinese documents, and BM25
over their English originals; each alone and with its top 100 reranked by the all-MiniLM-L6-v2
bi-encoder (the only real teacher on this project's machines), which reads the English originals or
the Chinese documents. Milliseconds per query are the first stage's (query encoding and search, or
BM25) plus the rerank stage's own time; loading the models is not counted. One run.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    from tdlib import BM25, data, evaluate_run, load_config, stages

    cfg = load_config("cpu", overrides=["lang=zh", "teacher.kind=bi-encoder", "search.k=100",
                                        "teacher.model=sentence-transformers/all-MiniLM-L6-v2"])
    test, english = cfg.fill(cfg.data.test), "tdlib-mini/en/test"
    qrels, queries = data.load_qrels(test), data.load_queries(test)
    rows = []

    def row(system, run, ms):
        m = evaluate_run(run, qrels).aggregate
        rows.append({"system": system, "nDCG@20": m["nDCG@20"], "R@100": m["R@100"], "ms_per_query": round(ms, 1)})
        print(json.dumps(rows[-1]), flush=True)

    with tempfile.TemporaryDirectory() as out:
        run = stages.search(cfg, out, student=cfg.student.model, progress=False, name="search-e5", index_name="index-e5")
        first_ms = 1000 / stages.summary(Path(out) / "search-e5")["queries_per_second"]
        row("e5-small (as published), zh documents", run, first_ms)
        for docs, tag in ((english, "en"), (None, "zh")):
            rr = stages.rerank(cfg, out, run=str(run), docs=docs, depth=100, name=f"rerank-e5-{tag}", progress=False)
            row(f"+ MiniLM bi-encoder rerank of top 100, reading the {tag} documents", rr,
                first_ms + stages.summary(rr.parent)["ms_per_query"])
        t0 = time.perf_counter()
        bm25 = BM25(data.load_docs(english)).search(queries, k=100)
        bm25_ms = 1000 * (time.perf_counter() - t0) / len(queries)
        row("BM25 over the English originals (a perfect document translation)", bm25, bm25_ms)
        path = data.write_run(Path(out) / "bm25-en.trec", bm25)
        rr = stages.rerank(cfg, out, run=str(path), docs=english, depth=100, name="rerank-bm25-en", progress=False)
        row("+ MiniLM bi-encoder rerank of top 100", rr, bm25_ms + stages.summary(rr.parent)["ms_per_query"])
    (ROOT / "benchmarks" / "rerank-mini.json").write_text(json.dumps({
        "how": "python benchmarks/rerank_mini.py (see its docstring); one run, 40 topics",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
