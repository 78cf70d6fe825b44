"""``python -m tdlib``: every stage as a sub-command, and ``pipeline`` to run them all in order.

Every sub-command takes ``--profile``, ``--config FILE`` (JSON), ``--set section.key=value`` (repeatable)
and ``--out DIR``; stages read earlier stages' outputs from ``DIR`` and write their own sub-directory.
A command shows one progress bar per long stage and ends with its result: the output path, the
metrics, or for ``pipeline`` a short table (``--json`` prints JSON instead). The libraries' own logs are
hidden (:func:`tdlib.logs.quiet`); ``--verbose`` shows them.
A problem with the input exits with status 2 and one sentence on stderr, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

from tdlib import launcher, logs
from tdlib.artifacts import parse_shard
from tdlib.config import PROFILES, load_config
from tdlib.errors import TdlibError

STAGES = {
    "translate": (
        "Machine-translate the English training passages into the document language.",
        "reads: data.train_english (passages of the training candidates)\n"
        "writes: OUT/translate/passages.jsonl (id, text, lang), resumable per passage",
    ),
    "score": (
        "Score each training query's candidates with the teacher (eng-eng, eng-x or x-x).",
        "reads: data.train_english, data.train_translated, data.candidates\n"
        "writes: OUT/teacher/scores.jsonl in the tdist line format [qid, [[pid, score], ...]], resumable per query",
    ),
    "train": (
        "Fine-tune the student by Translate-Distill (KL to the teacher) or Translate-Train (CE).",
        "reads: the training data and OUT/teacher/scores.jsonl (scored first if missing)\n"
        "writes: OUT/train/student/ (a model folder), OUT/train/train_log.jsonl; resumes from checkpoints",
    ),
    "index": (
        "Split the test documents into passages, encode them with the student and build the index (index.kind).",
        "reads: data.test documents, OUT/train/student (or --student)\n"
        "writes: OUT/index/ (index.safetensors, or index.faiss for index.kind=hnsw|ivfpq), passage_doc_ids.json;\n"
        "resumable per part of index.part_documents documents; --shard I/N writes OUT/index-shards/I-of-N",
    ),
    "search": (
        "Search the test queries (MaxSim or a faiss index, then MaxP) and write a TREC run.",
        "reads: data.test queries, OUT/index (built if missing)\n"
        "writes: OUT/search/run.trec",
    ),
    "rerank": (
        "Rerank the top documents of a run with the teacher (retrieve and rerank).",
        "reads: OUT/search/run.trec (or --run), the documents (data.test, or --docs ID_OR_FILE)\n"
        "writes: OUT/rerank/run.trec (evaluate it with: evaluate --run OUT/rerank/run.trec)",
    ),
    "export": (
        "Write the trained ColBERT-X student in the PLAID-X layout, for the authors' indexer.",
        "reads: OUT/train/student (or --student)\n"
        "writes: OUT/plaidx/checkpoint/ (config.json, model.safetensors, artifact.metadata, tokenizer)",
    ),
    "evaluate": (
        "Evaluate a run with ir_measures (nDCG@20, MAP, R@100, R@1000, nDCG@10, RR@10).",
        "reads: data.test qrels, OUT/search/run.trec (or --run)\n"
        "writes: OUT/evaluate/metrics.json, OUT/evaluate/per_query.tsv",
    ),
    "pipeline": (
        "Run every stage in order and evaluate the student before and after training.",
        "reads: the configured data\n"
        "writes: every stage directory under OUT, plus OUT/summary.json and OUT/config.json",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tdlib",
        description="Translate-Distill: translate, score, distil, index, search and evaluate.",
        epilog="Profiles: " + ", ".join(PROFILES) + " (default: $TDLIB_PROFILE, else cpu). "
               "Example: python -m tdlib pipeline --profile smoke --out runs/smoke",
    )
    sub = parser.add_subparsers(dest="command", metavar="STAGE")
    for name, (summary, io) in STAGES.items():
        p = sub.add_parser(name, help=summary, description=f"{summary}\n\n{io}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--profile", choices=PROFILES, help="named set of settings (default: $TDLIB_PROFILE or cpu)")
        p.add_argument("--config", metavar="FILE", help="JSON file of settings, applied after the profile")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set train.lr=1e-5 --set lang=fa")
        p.add_argument("--out", required=True, metavar="DIR", help="output directory shared by the stages")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--verbose", action="store_true",
                       help="show the libraries' logs too (ir_datasets, transformers, the Trainer's log dicts)")
        p.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
        if name in ("score", "train", "pipeline"):
            p.add_argument("--use-mt", action="store_true",
                           help="train on OUT/translate/passages.jsonl instead of data.train_translated")
        if name in ("translate", "score", "index"):
            p.add_argument("--shard", metavar="I/N",
                           help="do shard I of N (from 0) only, e.g. one per GPU; the last to finish merges them "
                                "(under torchrun or accelerate launch, each process takes RANK/WORLD_SIZE itself)")
        if name == "train":
            p.add_argument("--scores", metavar="FILE", help="teacher scores (tdist format) instead of OUT/teacher")
        if name in ("index", "search", "evaluate", "export"):
            p.add_argument("--student", metavar="DIR_OR_ID", help="student folder or model id instead of OUT/train/student")
        if name in ("evaluate", "rerank"):
            p.add_argument("--run", metavar="FILE", help="a TREC run instead of OUT/search/run.trec")
        if name == "rerank":
            p.add_argument("--docs", metavar="ID_OR_FILE", help="the documents the teacher reads (default: data.test)")
            p.add_argument("--depth", type=int, default=100, help="documents reranked per query (default 100)")
        if name == "pipeline":
            p.add_argument("--no-baseline", action="store_true", help="skip evaluating the untrained student")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from tdlib import stages

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    cfg = load_config(args.profile, args.config, args.overrides)
    progress = not args.quiet
    logs.quiet(verbose=args.verbose)
    out = args.out
    # one process per GPU under torchrun / accelerate launch: each takes its own shard
    shard = (parse_shard(args.shard) or launcher.shard()) if hasattr(args, "shard") else None
    if args.command == "translate":
        result: object = str(stages.translate(cfg, out, progress, shard=shard))
    elif args.command == "score":
        result = str(stages.score(cfg, out, progress, use_mt=args.use_mt, shard=shard))
    elif args.command == "train":
        result = str(stages.train(cfg, out, progress, use_mt=args.use_mt, scores=args.scores))
    elif args.command == "index":
        result = str(stages.index(cfg, out, student=args.student, progress=progress, shard=shard))
    elif args.command == "search":
        result = str(stages.search(cfg, out, student=args.student, progress=progress))
    elif args.command == "export":
        result = str(stages.export(cfg, out, student=args.student, progress=progress) / "checkpoint")
    elif args.command == "rerank":
        result = str(stages.rerank(cfg, out, run=args.run, docs=args.docs, depth=args.depth, progress=progress))
    elif args.command == "evaluate":
        run = args.run or (str(stages.search(cfg, out, student=args.student, progress=progress))
                           if args.student else None)
        result = stages.evaluate(cfg, out, run=run, progress=progress)
    else:
        result = stages.run_all(cfg, out, progress, use_mt=args.use_mt, with_baseline=not args.no_baseline)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.command == "pipeline":
        print(pipeline_summary(result, out))
    elif isinstance(result, dict):
        print(metrics_line(result))
    else:
        print(result)
    return 0


def metrics_line(metrics: dict) -> str:
    """``nDCG@20 0.0558  AP 0.0334 ...``: evaluation results on one line."""
    return "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def pipeline_summary(summary: dict, out: str) -> str:
    """A few lines for the end of ``pipeline``: the time per stage and the metrics before and after.

    >>> print(pipeline_summary({"profile": "smoke", "lang": "zh", "seconds": {"train": 1.2},
    ...                         "student": {"nDCG@20": 0.06}, "baseline": {"nDCG@20": 0.05}}, "runs/x"))
    pipeline done (profile smoke, lang zh) in 1.2 s: train 1.2 s
                nDCG@20
      untrained  0.0500
      trained    0.0600
    results: runs/x/summary.json (metrics per stage under runs/x/*/)
    """
    seconds = summary["seconds"]
    lines = [f"pipeline done (profile {summary['profile']}, lang {summary['lang']}) in "
             f"{sum(seconds.values()):.1f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())]
    rows = [("untrained", summary["baseline"])] if "baseline" in summary else []
    rows.append(("trained", summary["student"]))
    names = list(summary["student"])
    lines.append(" " * 11 + "".join(f"{n:>8}" for n in names))
    lines += [f"  {label:<9}" + "".join(f"{row[n]:>8.4f}" for n in names) for label, row in rows]
    lines.append(f"results: {out}/summary.json (metrics per stage under {out}/*/)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    try:
        return run(argv)
    except TdlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: completed stages are kept and an unfinished one resumes on the next run.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
