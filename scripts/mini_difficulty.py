"""How hard is the mini collection? BM25 and zero-shot multilingual-e5-small, within and across languages.

    HF_HUB_OFFLINE=1 python scripts/mini_difficulty.py [--out runs/difficulty]

Needs intfloat/multilingual-e5-small in the Hugging Face cache (../shared/offline-models/populate).
Prints a table of nDCG@20 (and more) per system and document language; the datasheet quotes it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tdlib import data, stages
from tdlib.config import load_config
from tdlib.evaluate import evaluate_run
from tdlib.lexical import BM25

MEASURES = ("nDCG@20", "AP", "R@100", "nDCG@10")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/difficulty")
    parser.add_argument("--no-dense", action="store_true", help="BM25 only")
    args = parser.parse_args()
    rows = {}
    for lang in ("en", "zh", "fa", "ru"):
        test = f"tdlib-mini/{lang}/test"
        queries, qrels = data.load_queries(test), data.load_qrels(test)
        rows[f"BM25 en->{lang}"] = evaluate_run(BM25(data.load_docs(test)).search(queries), qrels, MEASURES).aggregate
        if not args.no_dense:
            cfg = load_config("cpu", overrides=[f"lang={lang}"])
            rows[f"e5-small en->{lang}"] = {k: v for k, v in stages.baseline(cfg, Path(args.out) / lang, progress=False).items()
                                            if k in MEASURES}
    width = max(map(len, rows))
    print(f"{'system':<{width}}  " + "  ".join(f"{m:>8}" for m in MEASURES))
    for name, values in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{values[m]:>8.3f}" for m in MEASURES))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "difficulty.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
