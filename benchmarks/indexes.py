"""Index kinds measured: exhaustive search against faiss HNSW and IVF-PQ (``index.kind``).

    HF_HUB_OFFLINE=1 python benchmarks/indexes.py                 # the mini collection, then 100k and 1M
    HF_HUB_OFFLINE=1 python benchmarks/indexes.py --sizes 5000000 --kinds ivfpq    # one more size
    HF_HUB_OFFLINE=1 python benchmarks/indexes.py --colbert     # ColBERT-X: mini, then token vectors at scale

1. **Mini collection, real student.** multilingual-e5-small as it is published (not fine-tuned), the
   ``cpu`` profile's passages, Chinese: each kind indexes the collection through the stages and
   searches its 40 topics; recall of the exhaustive run's top 100 and top 1000 documents, and the
   nDCG@20 of each run.
2. **Synthetic passages at scale.** Unit vectors of e5-small's size (384) drawn around 1,000 random
   centres (so that neighbourhoods exist, as in real embeddings), 100 queries drawn the same way: build
   seconds, milliseconds per query (a batch of 100), bytes per passage on disk, and recall of the
   exact top 10 and top 100 passages. Exhaustive search is tdlib's chunked MaxSim (``Index``); the
   exact answers come from faiss's flat inner-product index.

3. **ColBERT-X** (``--colbert``). On the mini collection, e5-small read as a ColBERT-X student (its
   token vectors through the seeded, untrained 128-d projection: the index is measured against exact
   MaxSim, not the model's quality): exhaustive MaxSim against token IVF-PQ candidates at several
   ``faiss_depth``. Then synthetic passages of 100 clustered 128-d token vectors, 20 queries of 32
   tokens: build seconds, milliseconds per query, bytes per passage (faiss codes and ids, float16
   vectors, offsets), and recall of the exact MaxSim top 10 and top 100.

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


def index_and_search(cfg, tmp: str, kind: str, tag: str) -> tuple[dict, dict, dict, float]:
    """Index the mini collection into ``index-<kind>`` (reused across searches), search it into
    ``search-<tag>`` and evaluate: (run, metrics, the index stage's summary, search seconds)."""
    from tdlib import data, stages

    index_dir = stages.index(cfg, tmp, student=cfg.student.model, progress=False, name=f"index-{kind}")
    t0 = time.perf_counter()
    run = stages.search(cfg, tmp, student=cfg.student.model, progress=False, name=f"search-{tag}",
                        index_name=f"index-{kind}")
    search_s = time.perf_counter() - t0
    metrics = stages.evaluate(cfg, tmp, run=str(run), name=f"evaluate-{tag}", progress=False)
    return data.read_run(run), metrics, stages.summary(index_dir), search_s


def mini(kinds: list[str], lang: str) -> list[dict]:
    from tdlib import load_config

    rows, runs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("exhaustive", *[k for k in kinds if k != "exhaustive"]):
            cfg = load_config("cpu", overrides=[f"lang={lang}", f"index.kind={kind}", "search.k=1000"])
            runs[kind], metrics, done, search_s = index_and_search(cfg, tmp, kind, kind)
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


def mini_colbert(lang: str, depths: list[int]) -> list[dict]:
    """e5-small read as a ColBERT-X student (its token vectors through the seeded, untrained 128-d
    projection): exhaustive MaxSim against IVF-PQ candidates at several faiss depths."""
    from tdlib import load_config

    rows, runs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, depth in [("exhaustive", 0), *[("ivfpq", d) for d in depths]]:
            over = [f"lang={lang}", "student.kind=colbert", f"index.kind={kind}", "search.k=1000"]
            if depth:
                over.append(f"search.faiss_depth={depth}")
            cfg = load_config("cpu", overrides=over)
            runs[kind, depth], metrics, done, search_s = index_and_search(cfg, tmp, kind, f"{kind}-{depth}")
            rows.append({"part": "mini-colbert", "kind": kind, "faiss_depth": depth or None,
                         "passages": done["passages"], "vectors": done["vectors"], "lang": lang,
                         "student": cfg.student.model + " as ColBERT-X (untrained 128-d projection)",
                         "nDCG@20": metrics["nDCG@20"], "encode_seconds": done["encode_seconds"],
                         "build_seconds": done.get("build_seconds", 0.0),
                         "bytes_per_passage": done["bytes_per_passage"],
                         "faiss_bytes_per_passage": done.get("faiss_bytes_per_passage"), "faiss": done.get("faiss"),
                         "search_seconds_40_queries": round(search_s, 2)})
    exact = runs["exhaustive", 0]
    for row in rows:
        got = runs[row["kind"], row["faiss_depth"] or 0]
        row["recall@100"] = round(recall(exact, got, 100), 4)
        row["recall@1000"] = round(recall(exact, got, 1000), 4)
        row["nDCG@20 - exhaustive"] = round(row["nDCG@20"] - rows[0]["nDCG@20"], 4)
    return rows


def synthetic_tokens(n: int, save, tokens: int = 100, dim: int = 128, nq: int = 20, depth: int = 1024) -> None:
    """ColBERT-X at scale: n passages of ``tokens`` clustered token vectors, queries of 32 tokens; the
    token IVF-PQ index against exact MaxSim over every passage (tdlib's ``TokenIndex.exact``)."""
    from tdlib import ann
    from tdlib.config import IndexConfig, SearchConfig

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store = np.lib.format.open_memmap(f"{tmp}/{ann.TOKENS_FILE}", mode="w+", dtype=np.float16,
                                          shape=(n * tokens, dim))
        for start in range(0, n * tokens, 1_000_000):
            m = min(1_000_000, n * tokens - start)
            store[start:start + m] = clustered(m, dim, start + 1, centres)
        store.flush()
        del store
        np.save(f"{tmp}/{ann.OFFSETS_FILE}", np.arange(0, n * tokens + 1, tokens, dtype=np.int64))
        Path(tmp, "owners.json").write_text("[]")
        vectors = np.load(f"{tmp}/{ann.TOKENS_FILE}", mmap_mode="r")
        t0 = time.perf_counter()
        index, settings = ann.build(vectors, IndexConfig(kind="ivfpq"), tokens=True)
        build = time.perf_counter() - t0
        ann.write(index, f"{tmp}/{ann.FAISS_FILE}")
        del index, vectors
        searcher = ann.TokenIndex(tmp, [str(i) for i in range(n)], SearchConfig(faiss_depth=depth))
        q = torch.from_numpy(clustered(nq * 32, dim, 7, centres)).reshape(nq, 32, dim)
        mask = torch.ones(nq, 32)
        t0 = time.perf_counter()
        _, found = searcher.search(q, mask, 100)
        query_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        every = np.arange(n)
        truth = [searcher.exact(q[i], every).topk(100).indices.numpy() for i in range(nq)]
        exact_s = time.perf_counter() - t0
        found = [[int(searcher.doc_ids[j]) for j in row] for row in found.tolist()]
        faiss_bytes = Path(tmp, ann.FAISS_FILE).stat().st_size
        total = faiss_bytes + Path(tmp, ann.TOKENS_FILE).stat().st_size + Path(tmp, ann.OFFSETS_FILE).stat().st_size
    row = {"part": "synthetic-tokens", "kind": "ivfpq", "passages": n, "tokens_per_passage": tokens, "dim": dim,
           "faiss_depth": depth, "build_seconds": round(build, 2), "ms_per_query": round(1000 * query_s / nq, 1),
           "exact_ms_per_query": round(1000 * exact_s / nq, 1), "bytes_per_passage": round(total / n, 1),
           "faiss_bytes_per_passage": round(faiss_bytes / n, 1),
           "faiss": {**settings.__dict__, "nprobe": searcher.index.nprobe},
           "recall@10": round(float(np.mean([len(set(f[:10]) & set(t[:10].tolist())) / 10 for f, t in zip(found, truth)])), 4),
           "recall@100": round(float(np.mean([len(set(f[:100]) & set(t[:100].tolist())) / 100 for f, t in zip(found, truth)])), 4)}
    print(json.dumps(row), flush=True)
    save([row])


# NeuCLIR 2022 documents per language (the collection's published counts, rounded)
NEUCLIR_DOCUMENTS = {"zh": 3_200_000, "fa": 2_200_000, "ru": 4_600_000}


def collection_costs(rows: list[dict], passages_per_document: float = 1.0) -> list[dict]:
    """What indexing and searching each full NeuCLIR language would cost on this machine, derived from the
    measured rows: encoding rates from the mini rows, bytes and query times from the largest synthetic
    rows, scaled linearly in passages (HNSW's build grows faster, so its figure is a floor). ColBERT-X's
    tokens per passage are the mini collection's. Nothing here was run at full size."""
    def pick(part, kind, **match):
        found = [r for r in rows if r["part"] == part and r["kind"] == kind
                 and all(r.get(k) == v for k, v in match.items())]
        return max(found, key=lambda r: r["passages"]) if found else None

    single, colbert = pick("mini", "exhaustive"), pick("mini-colbert", "exhaustive")
    tokens = colbert["vectors"] / colbert["passages"] if colbert else None
    per_passage_s = {"single": single["encode_seconds"] / single["passages"] if single else None,
                     "colbert": colbert["encode_seconds"] / colbert["passages"] if colbert else None}
    kinds = []
    for kind in ("exhaustive", "hnsw", "ivfpq"):
        r = pick("synthetic", kind)
        if r:
            # search memory: exhaustive holds float32 copies of the float16 vectors; faiss indexes their file
            memory = 2 * r["bytes_per_passage"] if kind == "exhaustive" else r["bytes_per_passage"]
            kinds.append(("single", kind, r, r["bytes_per_passage"], memory))
    tok = pick("synthetic-tokens", "ivfpq")
    if tokens:
        kinds.append(("colbert", "exhaustive", None, 256 * tokens, 512 * tokens))
        if tok:
            faiss_per_token = tok["faiss_bytes_per_passage"] / tok["tokens_per_passage"]
            # the float16 vectors are memory-mapped: read from disk (or the page cache) for the candidates only
            kinds.append(("colbert", "ivfpq", tok, (256 + faiss_per_token) * tokens + 8, faiss_per_token * tokens))
    out = []
    for lang, documents in NEUCLIR_DOCUMENTS.items():
        n = documents * passages_per_document
        for student, kind, r, disk, memory in kinds:
            scale = n / r["passages"] if r else None
            if student == "colbert" and kind == "exhaustive":
                query = None  # not measured at scale: every token of every passage per query
            else:
                query = r["ms_per_query"] * (scale if kind == "exhaustive" else 1.0)
            build = r["build_seconds"] * scale if r and kind != "exhaustive" else 0.0
            if student == "colbert" and r:
                build = r["build_seconds"] * n * tokens / (r["passages"] * r["tokens_per_passage"])
            out.append({"lang": lang, "documents": documents, "passages": int(n), "student": student, "index": kind,
                        "encode_hours_2_cpus": round(n * per_passage_s[student] / 3600, 0),
                        "build_minutes_2_cpus": round(build / 60, 1),
                        "disk_gb": round(n * disk / 1e9, 1), "search_memory_gb": round(n * memory / 1e9, 1),
                        "ms_per_query": None if query is None else round(query, 1),
                        "query_measured_at": r["passages"] if r else None})
    return out


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
                # float16 on disk, as the index stage writes it
                save_file({"vectors": torch.from_numpy(vectors).half(), "offsets": torch.arange(n + 1)},
                          f"{tmp}/{INDEX_FILE}")
                Path(tmp, DOCIDS_FILE).write_text(json.dumps([str(i) for i in range(n)]))
                if kinds == ["exhaustive"]:
                    del vectors  # only the index's own copy is left in memory, as in a search stage
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
    ap.add_argument("--colbert", action="store_true", help="the ColBERT-X parts instead: mini and token vectors")
    ap.add_argument("--token-sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--depths", type=int, nargs="*", default=[64, 256, 1024])
    ap.add_argument("--costs", action="store_true",
                    help="only derive the full-NeuCLIR cost table from the recorded rows (and print it as markdown)")
    args = ap.parse_args()
    import faiss

    def save(rows: list[dict]) -> None:  # after every row, so an interrupted run keeps what it measured
        old = json.loads(RESULTS.read_text())["rows"] if RESULTS.is_file() else []
        key = lambda r: (r["part"], r["kind"], r["passages"], r.get("faiss_depth"))  # noqa: E731
        merged = {key(r): r for r in old} | {key(r): r for r in rows}
        RESULTS.write_text(json.dumps({
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                        "faiss": faiss.__version__, "threads": torch.get_num_threads()},
            "how": "python benchmarks/indexes.py (see its docstring); one run per row, not repeated",
            "rows": sorted(merged.values(), key=lambda r: (r["part"], r["passages"], KINDS.index(r["kind"]),
                                                           r.get("faiss_depth") or 0)),
        }, indent=1) + "\n")

    if args.costs:
        recorded = json.loads(RESULTS.read_text())
        recorded["costs"] = {"how": "derived by collection_costs() in benchmarks/indexes.py from the rows above, at "
                                    "one passage per document (a floor: multiply by the passages per document)",
                             "rows": collection_costs(recorded["rows"])}
        RESULTS.write_text(json.dumps(recorded, indent=1) + "\n")
        # markdown for the scale page: one row per student and index, each cell zh / fa / ru
        langs = list(NEUCLIR_DOCUMENTS)
        cells = {}
        for r in recorded["costs"]["rows"]:
            cells.setdefault((r["student"], r["index"]), {})[r["lang"]] = r
        columns = [("encode (hours)", "encode_hours_2_cpus", "{:,.0f}"), ("build (minutes)", "build_minutes_2_cpus", "{:,.0f}"),
                   ("disk (GB)", "disk_gb", "{:,.1f}"), ("search memory (GB)", "search_memory_gb", "{:,.1f}"),
                   ("ms per query", "ms_per_query", "{:,.1f}")]
        print("| student, index | " + " | ".join(f"{name}, {' / '.join(langs)}" for name, _, _ in columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for (student, kind), by_lang in cells.items():
            row = [f"{student}, {kind}"]
            for _, key, form in columns:
                values = [by_lang[lang][key] for lang in langs]
                row.append("not measured" if None in values else " / ".join(form.format(v) for v in values))
            print("| " + " | ".join(row) + " |")
        return 0
    if args.colbert:
        if not args.no_mini:
            for row in mini_colbert(args.lang, args.depths):
                print(json.dumps(row), flush=True)
                save([row])
        for n in args.token_sizes:
            synthetic_tokens(n, save)
        return 0
    if not args.no_mini:
        for row in mini(args.kinds, args.lang):
            print(json.dumps(row), flush=True)
            save([row])
    for n in args.sizes:
        synthetic(n, args.kinds, save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
