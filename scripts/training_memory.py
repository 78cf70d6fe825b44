"""Memory and time of loading a training set at scale: texts read on demand against texts held in memory.

    python scripts/training_memory.py --passages 500000 --queries 50000

Writes a synthetic collection (passages of MS MARCO's average length, 50 candidates per query, in
the tdist line format) to a temporary folder, registers it like a real ir_datasets collection, then
in fresh processes measures (1) ``tdlib.examples.load_training`` plus 1,000 training examples' worth of
passage lookups and (2) reading every passage into a dict, as tdlib did before; then (3) the two
backings of the large files, the line-offset indexes (``tdlib.data.lazy``) and Arrow tables through
Hugging Face ``datasets`` (``tdlib.data.tables``), each opened twice in fresh processes and read as
1,000 examples read them. Prints peak memory (resident set size) and seconds for each.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = "rice water river city market train school music garden winter summer bridge paper light".split()


def make(root: Path, passages: int, queries: int, per_query: int = 50) -> None:
    rng = random.Random(0)
    (root / "sizes.json").write_text(json.dumps({"passages": passages, "queries": queries}))
    for lang in ("en", "xx"):
        with open(root / f"passages.{lang}.jsonl", "w", encoding="utf-8") as f:
            for i in range(passages):
                text = " ".join(rng.choice(WORDS) for _ in range(55))  # ~330 characters, like MS MARCO
                f.write(json.dumps({"id": str(i), "text": text}) + "\n")
    with open(root / "queries.tsv", "w", encoding="utf-8") as f:
        f.writelines(f"{q}\tquery {q} {rng.choice(WORDS)}\n" for q in range(queries))
    with open(root / "qrels.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{q} 0 {rng.randrange(passages)} 1\n" for q in range(queries))
    with open(root / "candidates.jsonl", "w", encoding="utf-8") as f:
        for q in range(queries):
            pairs = [[str(rng.randrange(passages)), round(rng.uniform(-5, 5), 3)] for _ in range(per_query)]
            f.write(json.dumps([str(q), pairs]) + "\n")


def register(root: Path) -> tuple[str, str]:
    from tdlib.data import register_collection

    kw = {"queries": root / "queries.tsv", "qrels": root / "qrels.txt", "candidates": root / "candidates.jsonl"}
    return (register_collection("synthetic/en/train", docs=root / "passages.en.jsonl", lang="en", **kw),
            register_collection("synthetic/xx/train", docs=root / "passages.xx.jsonl", lang="xx", **kw))


def lookups(root: Path, mode: str) -> dict:
    """One backing of the two large files, opened and read as 1,000 training examples would read it."""
    from tdlib.data.lazy import JsonlTexts, TdistIndex
    from tdlib.data.tables import ArrowTdist, ArrowTexts

    what, backing = mode.split("-", 1)
    rng = random.Random(1)
    t0 = time.perf_counter()
    if what == "scores":
        table = (TdistIndex if backing == "lines" else ArrowTdist)(root / "candidates.jsonl")
        opened = time.perf_counter()
        qids = [str(rng.randrange(len(table))) for _ in range(1000)]
        read = sum(len(table[q]) for q in qids)
    else:
        texts = (JsonlTexts if backing == "lines" else ArrowTexts)(root / "passages.xx.jsonl")
        opened = time.perf_counter()
        n = json.loads((root / "sizes.json").read_text())["passages"]
        read = sum(len(texts.get([str(rng.randrange(n)) for _ in range(6)])) for _ in range(1000))
    done = time.perf_counter()
    return {"mode": mode, "open_seconds": round(opened - t0, 2), "lookup_ms_per_example": round(done - opened, 3),
            "records_read": read, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            **anonymous()}


def anonymous() -> dict:
    """Resident memory now, split into the process's own (anonymous) pages and pages of mapped files.

    A memory-mapped Arrow table counts in the resident set as far as it has been read, but those pages
    belong to the page cache and are given back under pressure; the anonymous ones are not.
    """
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            fields[name] = round(int(value.split()[0]) / 1024)
    return {"rss_anon_mb": fields.get("RssAnon"), "rss_file_mb": fields.get("RssFile")}


def measure(root: Path, mode: str) -> dict:
    from tdlib import data, examples
    from tdlib.data import corpora

    if mode.startswith(("scores-", "texts-")):
        return lookups(root, mode)

    english, translated = register(root)
    if mode == "prepare":  # build ir_datasets' document stores once, outside the timings
        for name in (english, translated):
            corpora.open_dataset(name).docs_store().build()
        return {}
    t0 = time.perf_counter()
    if mode == "on-demand":
        ts = examples.load_training(english, translated)
        rng = random.Random(1)
        qids = list(ts.candidates)
        for _ in range(1000):
            pids = rng.sample(ts.candidates[rng.choice(qids)], 6)
            [ts.passages[p] for p in pids]
    else:
        texts = {d.doc_id: d.text for d in data.load_docs(translated)}
        english_texts = {d.doc_id: d.text for d in data.load_docs(english)}
        assert texts and english_texts
    seconds = time.perf_counter() - t0
    return {"mode": mode, "seconds": round(seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), **anonymous()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=500_000)
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--lookups-only", action="store_true", help="measure only the two backings of the large files")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1])))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(root, args.passages, args.queries)
        print(f"{args.passages:,} passages in 2 languages, {args.queries:,} queries x 50 candidates")
        modes = [] if args.lookups_only else ["prepare", "on-demand", "in-memory"]
        # each backing twice, in fresh processes: the first open builds what it keeps (the Arrow tables
        # persist in the cache; a line index lasts one process), the second shows what a rerun pays
        modes += [f"{what}-{backing}" for what in ("scores", "texts") for backing in ("lines", "arrow") for _ in (1, 2)]
        for mode in modes:
            out = subprocess.run([sys.executable, __file__, "--child", tmp, mode], capture_output=True, text=True,
                                 check=True, env={**__import__("os").environ, "TDLIB_CACHE": str(root / "cache"),
                                                  "HF_DATASETS_CACHE": str(root / "hf-datasets")})
            if mode != "prepare":
                print(out.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
