"""Index kinds measured: exhaustive search against faiss HNSW and IVF-PQ (``index.kind``).

    HF_HUB_OFFLINE=1 python benchmarks/indexes.py                 # the mini collection, then 100k and 1M
    HF_HUB_OFFLINE=1 python benchmarks/indexes.py --sizes 5000000 --kinds ivfpq    # one more size

1. **Mini collection, real student.** multilingual-e5-small as it is published (not fine-tuned), the
   ``cpu`` profile's passages, Chinese: each kind indexes the collection through the stages and
   searches its 40 topics; recall of the exhaustive run's top 100 and top 1000 documents, and the
   nDCG@20 of each run.
2. **Synthetic passages at scale.** Unit vectors of e5-small's size (384) drawn around 1,000 random
   centres (so that neighbourhoods exist, as in real embeddings), 100 queries drawn the same way: build
   seconds, milliseconds per query (a batch of 100), bytes per passage on disk, and recall of the
   exact top 10 and top 100 passages. Exhaustive search is tdlib's chunked MaxSim (``Index``); the
   exact answers come from faiss's flat inner-product index.

Results are merged into ``benchmarks/index-kinds.json`` by (part, kind, passages); the book's
scale and performance pages show them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "index-kinds.json"  # not results-*.json: the performance page reads those as pairs
KINDS = ("exhaustive", "hnsw", "ivfpq")


def recall(exact: dict, approx: dict, k: int) -> float:
    return float(np.mean([len({d for d, _ in exact[q][:k]} & {d for d, _ in approx.get(q, [])[:k]})
                          / max(1, min(k, len(exact[q]))) for q in exact]))


def mini(kinds: list[str], lang: str) -> list[dict]:
    from tdlib import data, load_config, stages

    rows, runs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("exhaustive", *[k for k in kinds if k != "exhaustive"]):
            cfg = load_config("cpu", overrides=[f"lang={lang}", f"index.kind={kind}", "search.k=1000"])
            index_dir = stages.index(cfg, tmp, student=cfg.student.model, progress=False, name=f"index-{kind}")
            t0 = time.perf_counter()
            run = stages.search(cfg, tmp, student=cfg.student.model, progress=False, name=f"search-{kind}",
                                index_name=f"index-{kind}")
            search_s = time.perf_counter() - t0
            metrics = stages.evaluate(cfg, tmp, run=str(run), name=f"evaluate-{kind}", progress=False)
            runs[kind] = data.read_run(run)
            done = stages.summary(index_dir)
            rows.append({"part": "mini", "kind": kind, "passages": done["passages"], "lang": lang,
                         "student": cfg.student.model, "nDCG@20": metrics["nDCG@20"],
                         "encode_seconds": done["encode_seconds"], "build_seconds": done.get("build_seconds", 0.0),
                         "bytes_per_passage": done["bytes_per_passage"], "faiss": done.get("faiss"),
                         "search_seconds_40_queries": round(search_s, 2)})
    for row in rows:
        row["recall@100"] = round(recall(runs["exhaustive"], runs[row["kind"]], 100), 4)
        row["recall@1000"] = round(recall(runs["exhaustive"], runs[row["kind"]], 1000), 4)
        row["nDCG@20 - exhaustive"] = round(row["nDCG@20"] - rows[0]["nDCG@20"], 4)
    return rows


def clustered(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 250_000):
        m = min(250_000, n - start)
        x = centres[rng.integers(len(centres), size=m)] + 0.6 * rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def synthetic(n: int, kinds: list[str], save, dim: int = 384, nq: int = 100) -> None:
    import faiss

    from tdlib import ann
    from tdlib.config import IndexConfig

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = clustered(n, dim, 1, centres)
    queries = clustered(nq, dim, 2, centres)
    _, truth = faiss.knn(queries, vectors, 100, metric=faiss.METRIC_INNER_PRODUCT)  # exact, without a copy
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "exhaustive":
                from safetensors.torch import save_file

                from tdlib.retrieve import DOCIDS_FILE, INDEX_FILE, Index

                t0 = time.perf_counter()
                save_file({"vectors": torch.from_numpy(vectors), "offsets": torch.arange(n + 1)}, f"{tmp}/{INDEX_FILE}")
                Path(tmp, DOCIDS_FILE).write_text(json.dumps([str(i) for i in range(n)]))
                index = Index(tmp)
                build = time.perf_counter() - t0
                size = Path(tmp, INDEX_FILE).stat().st_size
                q = torch.from_numpy(queries)[:, None, :]
                t0 = time.perf_counter()
                _, found = index.search(q, torch.ones(nq, 1), 100)
                query_s = time.perf_counter() - t0
                found = np.array([[int(index.doc_ids[j]) for j in row] for row in found.tolist()])
                settings = None
                del index
            else:
                cfg = IndexConfig(kind=kind)
                t0 = time.perf_counter()
                index, settings = ann.build(vectors, cfg)
                build = time.perf_counter() - t0
                ann.write(index, f"{tmp}/{ann.FAISS_FILE}")
                size = Path(tmp, ann.FAISS_FILE).stat().st_size
                if kind == "hnsw":
                    index.hnsw.efSearch = 2 * 100
                else:
                    index.nprobe = min(index.nlist, max(16, index.nlist // 8))
                t0 = time.perf_counter()
                _, found = index.search(queries, 100)
                query_s = time.perf_counter() - t0
                settings = {**settings.__dict__, "nprobe": getattr(index, "nprobe", None),
                            "efSearch": index.hnsw.efSearch if kind == "hnsw" else None}
                del index
        row = {"part": "synthetic", "kind": kind, "passages": n, "dim": dim,
                     "build_seconds": round(build, 2), "ms_per_query": round(1000 * query_s / nq, 3),
                     "bytes_per_passage": round(size / n, 1), "faiss": settings,
                     "recall@10": round(float(np.mean([len(set(f[:10]) & set(t[:10])) / 10 for f, t in zip(found, truth)])), 4),
                     "recall@100": round(float(np.mean([len(set(f[:100]) & set(t[:100])) / 100 for f, t in zip(found, truth)])), 4)}
        print(json.dumps(row), flush=True)
        save([row])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--kinds", nargs="*", default=list(KINDS), choices=KINDS)
    ap.add_argument("--no-mini", action="store_true")
    ap.add_argument("--lang", default="zh")
    args = ap.parse_args()
    import faiss

    def save(rows: list[dict]) -> None:  # after every row, so an interrupted run keeps what it measured
        old = json.loads(RESULTS.read_text())["rows"] if RESULTS.is_file() else []
        key = lambda r: (r["part"], r["kind"], r["passages"])  # noqa: E731
        merged = {key(r): r for r in old} | {key(r): r for r in rows}
        RESULTS.write_text(json.dumps({
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                        "faiss": faiss.__version__, "threads": torch.get_num_threads()},
            "how": "python benchmarks/indexes.py (see its docstring); one run per row, not repeated",
            "rows": sorted(merged.values(), key=lambda r: (r["part"], r["passages"], KINDS.index(r["kind"]))),
        }, indent=1) + "\n")

    if not args.no_mini:
        for row in mini(args.kinds, args.lang):
            print(json.dumps(row), flush=True)
            save([row])
    for n in args.sizes:
        synthetic(n, args.kinds, save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
