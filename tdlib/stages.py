"""The stage runners: each stage wired to a configuration and one output directory, for the chapters and the command line.

Each function reads what it needs from the configured data and from earlier stages' directories
under ``out``, and writes its own directory::

    out/translate/passages.jsonl    translated training passages       (translate)
    out/degrade-drop-0.3/...        the same, damaged on purpose       (degrade, chapter 8)
    out/teacher/scores.jsonl        teacher scores, tdist line format  (score)
    out/train/student/              the fine-tuned student             (train)
    out/index/index.safetensors     passage vectors of the test docs   (index)
    out/search/run.trec             the run                            (search)
    out/rerank/run.trec             its top documents reordered by the teacher (rerank)
    out/evaluate/metrics.json       nDCG@20, MAP, R@100, R@1000, ...   (evaluate)

A stage whose inputs are missing builds them by running the earlier stages, so any notebook chapter
can start from an empty directory. Completed stages are reused; see :mod:`tdlib.artifacts`.
"""
from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdlib.artifacts import Stage, atomic_write_json
from tdlib.config import Config
from tdlib.errors import TdlibError
from tdlib.data import (Doc, iter_docs, load_docs, load_qrels, load_queries, load_subcollection, local_file,
                        read_docs, source_fingerprint)
from tdlib.examples import TrainingSet, load_training

if TYPE_CHECKING:
    from tdlib.student import StudentSource


def _p(out: str | Path, *parts: str) -> Path:
    return Path(out).joinpath(*parts)


def training_set(cfg: Config, translated: str | None = None, english: bool = True) -> TrainingSet:
    """The training queries, candidates and passages the configuration names.

    ``english=False`` skips checking the English passage texts, for stages that never read them
    (training on published scores needs only MS MARCO's queries, not its 8.8M passages).
    """
    return load_training(
        english=cfg.fill(cfg.data.train_english),
        translated=translated or cfg.fill(cfg.data.train_translated),
        candidates=cfg.fill(cfg.data.candidates),
        max_candidates=cfg.data.max_candidates,
        max_queries=cfg.data.max_train_queries,
        min_candidates=cfg.train.n_passages,
        check_english=english,
        lookup=cfg.data.lookup,
    )


def documents_to_index(cfg: Config) -> list[Doc]:
    """The documents to index: the whole test collection, or the sub-collection ``data.test_distractors`` asks for.

    A sub-collection is drawn in one pass over the collection and kept for the rest of the process,
    since a chapter that shows the documents and then indexes them would otherwise pass twice.
    """
    test = cfg.fill(cfg.data.test)
    if cfg.data.test_distractors is None:
        return load_docs(test)
    return _subcollection(test, json.dumps(source_fingerprint(test), sort_keys=True), cfg.data.test_distractors,
                          cfg.seed)


@functools.lru_cache(maxsize=2)
def _subcollection(test: str, fingerprint: str, distractors: int, seed: int) -> list[Doc]:
    judged = {q.doc_id for q in load_qrels(test)}
    return load_subcollection(test, judged, distractors, seed=seed)


def _test_inputs(cfg: Config) -> Any:
    test = cfg.fill(cfg.data.test)
    if cfg.data.test_distractors is None:
        return source_fingerprint(test)
    return {"test": source_fingerprint(test), "distractors": cfg.data.test_distractors, "seed": cfg.seed}


def translate(cfg: Config, out: str | Path, progress: bool = True, shard: tuple[int, int] | None = None) -> Path:
    """Translate the English passages of the training candidates into ``cfg.lang``."""
    from tdlib.translate import translate_docs

    training = training_set(cfg)
    needed = {pid for pids in training.candidates.values() for pid in pids}
    docs = [Doc(pid, training.english[pid]) for pid in sorted(needed)][: cfg.translate.max_passages]
    inputs = source_fingerprint(cfg.fill(cfg.data.train_english))
    if cfg.translate.translate_queries:
        queries = [Doc(qid, text) for qid, text in training.queries.items()]
        translate_docs(cfg.translate, queries, cfg.lang, _p(out, "translate-queries"), inputs=inputs,
                       progress=progress, shard=shard)
    return translate_docs(cfg.translate, docs, cfg.lang, _p(out, "translate"), inputs=inputs, progress=progress,
                          shard=shard)


def degrade(cfg: Config, out: str | Path, kind: str, rate: float, seed: int | None = None) -> Path:
    """The training passages of ``cfg`` made worse on purpose (:mod:`tdlib.degrade`): ``out/degrade-KIND-RATE/passages.jsonl``.

    Train on it with the override ``data.train_translated=<the returned file>``. ``seed`` defaults to
    the configuration's; the version's chrF against the undamaged passages is in its stage's ``DONE``.
    """
    from tdlib.degrade import degraded_passages

    training = training_set(cfg, english=False)
    pids = sorted({pid for pids in training.candidates.values() for pid in pids})
    source = cfg.fill(cfg.data.train_translated)
    return degraded_passages({pid: training.passages[pid] for pid in pids}, kind, rate,
                             cfg.seed if seed is None else seed, cfg.lang, out, source=source)


def translated_queries(out: str | Path) -> dict[str, str] | None:
    """Training queries translated by :func:`translate` (for the x-x teacher), if it made them."""
    path = _p(out, "translate-queries", "passages.jsonl")
    if not (path.is_file() and (path.parent / "DONE").is_file()):
        return None
    return {d.doc_id: d.text for d in read_docs(path)}


def _translated_source(cfg: Config, out: str | Path, progress: bool = True) -> str:
    """The machine-translated passages (``--use-mt``), translating first if that stage has not finished."""
    mt = _p(out, "translate", "passages.jsonl")
    if Stage(_p(out, "translate"), "translate", {}).summary() and mt.is_file():
        return str(mt)
    return str(translate(cfg, out, progress))


def score(cfg: Config, out: str | Path, progress: bool = True, use_mt: bool = False,
          shard: tuple[int, int] | None = None) -> Path:
    """Score every training query's candidates with the configured teacher."""
    from tdlib.teacher import score_candidates

    translated = _translated_source(cfg, out, progress) if use_mt else None
    training = training_set(cfg, translated)
    queries = None
    if cfg.teacher.setting == "x-x":
        queries = translated_queries(out)
        if queries is None:
            if not cfg.translate.translate_queries:
                raise TdlibError("teacher.setting=x-x reads translated queries: set "
                                 "translate.translate_queries=true and run the translate stage first.")
            translate(cfg, out, progress)
            queries = translated_queries(out)
    return score_candidates(cfg, training, _p(out, "teacher"), translated_queries=queries, progress=progress,
                            shard=shard)


def train(cfg: Config, out: str | Path, progress: bool = True, use_mt: bool = False, scores: str | None = None) -> Path:
    """Fine-tune the student (Translate-Distill or Translate-Train) and return its folder."""
    from tdlib.train import train_student

    translated = _translated_source(cfg, out, progress) if use_mt else None
    published = cfg.train.method == "distill" and (scores is not None or cfg.teacher.kind == "precomputed")
    training = training_set(cfg, translated, english=not published)
    scores_file: str | Path | None = local_file(scores) if scores else None
    if cfg.train.method == "distill" and scores_file is None:
        if cfg.teacher.kind == "precomputed":
            scores_file = local_file(cfg.teacher.scores_file)
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1 and not Stage(_p(out, "teacher"), "score", {}).summary():
            raise TdlibError("with several training processes, score first (python -m tdlib score, sharded with "
                             "--shard I/N if you like) or use teacher.kind=precomputed; then launch training.")
        else:
            scores_file = score(cfg, out, progress=progress, use_mt=use_mt)
    inputs = {"translated": translated or source_fingerprint(cfg.fill(cfg.data.train_translated))}
    return train_student(cfg, training, _p(out, "train"), scores_file=scores_file, inputs=inputs, progress=progress)


def _check_test(cfg: Config, docs: bool = False) -> str:
    """Fail on a wrong test collection before any training starts: its queries and qrels, and with
    ``docs`` every document (one streaming pass, once per process), before the first long stage."""
    test = cfg.fill(cfg.data.test)
    load_queries(test, cfg.data.query_field)
    load_qrels(test)
    if docs:
        _check_test_docs(test, json.dumps(source_fingerprint(test), sort_keys=True))
    return test


@functools.lru_cache(maxsize=4)
def _check_test_docs(test: str, fingerprint: str) -> None:
    for _ in iter_docs(test):  # every text is checked, and local ids for duplicates
        pass


def _student(cfg: Config, out: str | Path, student: str | None, progress: bool) -> StudentSource:
    """The student a stage searches with: ``student`` if given, else the trained one (training first)."""
    from tdlib.student import StudentSource

    if student:
        _check_test(cfg)
        return StudentSource(str(student), cfg.student, cfg.seed)
    done = _p(out, "train", "student")
    if (done / "tdlib_student.json").is_file() and Stage(_p(out, "train"), "train", {}).summary():
        _check_test(cfg)
        return StudentSource(str(done), cfg.student, cfg.seed)
    _check_test(cfg, docs=True)
    return StudentSource(str(train(cfg, out, progress=progress)), cfg.student, cfg.seed)


def index(cfg: Config, out: str | Path, student: str | None = None, progress: bool = True, name: str = "index",
          shard: tuple[int, int] | None = None) -> Path:
    """Encode the test collection with the student (the trained one unless ``student`` is given).

    ``shard=(i, n)`` encodes every n-th part of the collection only; the last shard to finish builds
    the index (see :func:`tdlib.retrieve.build_index`).
    """
    from tdlib.retrieve import build_index

    # A whole collection is streamed (read a part at a time, never held); a sub-collection is a list.
    test = cfg.fill(cfg.data.test)
    docs = iter_docs(test) if cfg.data.test_distractors is None else documents_to_index(cfg)
    return build_index(_student(cfg, out, student, progress), docs, cfg.index, _p(out, name),
                       inputs=_test_inputs(cfg), progress=progress, shard=shard)


def search(cfg: Config, out: str | Path, student: str | None = None, progress: bool = True,
           name: str = "search", index_name: str = "index") -> Path:
    """Search the test queries and write a TREC run."""
    from tdlib.retrieve import search_index

    source = _student(cfg, out, student, progress)
    index_dir = index(cfg, out, student=source.name, progress=progress, name=index_name)
    test = cfg.fill(cfg.data.test)
    queries = load_queries(test, cfg.data.query_field)
    return search_index(source, index_dir, queries, cfg.search, _p(out, name), inputs=source_fingerprint(test),
                        progress=progress, tag=name)


def evaluate(cfg: Config, out: str | Path, run: str | None = None, name: str = "evaluate",
             progress: bool = True) -> dict[str, Any]:
    """Evaluate a run (the pipeline's unless ``run`` is given); writes metrics.json and per_query.tsv."""
    from tdlib.evaluate import evaluate_run, write_evaluation

    run_path = run or str(search(cfg, out, progress=progress))
    result = evaluate_run(run_path, load_qrels(cfg.fill(cfg.data.test)), cfg.evaluate.measures)
    write_evaluation(result, _p(out, name), {"run": str(run_path), "profile": cfg.profile, "lang": cfg.lang})
    return result.aggregate


def rerank(cfg: Config, out: str | Path, run: str | None = None, docs: str | None = None, depth: int = 100,
           name: str = "rerank", progress: bool = True) -> Path:
    """Rerank the top ``depth`` documents of a run (the pipeline's unless ``run`` is given) with the
    configured teacher, reading the documents from ``docs`` (an ir_datasets id or a file; by default the
    collection searched, for example ``tdlib-mini/en/test`` for the English originals)."""
    from tdlib.rerank import rerank as rerank_run

    if cfg.teacher.kind == "precomputed":
        raise TdlibError("rerank needs a teacher model: set teacher.kind to cross-encoder, monot5 or bi-encoder "
                         "(teacher.kind=precomputed only looks up training scores).")
    run_path = run or str(search(cfg, out, progress=progress))
    test = cfg.fill(cfg.data.test)
    source = cfg.fill(docs) if docs else test
    documents = documents_to_index(cfg) if source == test else load_docs(source)
    return rerank_run(run_path, cfg.teacher, load_queries(test, cfg.data.query_field), documents, depth,
                      _p(out, name), inputs=source_fingerprint(source), progress=progress)


def export(cfg: Config, out: str | Path, student: str | None = None, progress: bool = True) -> Path:
    """The trained ColBERT-X student (or ``student``) in the PLAID-X layout, ``out/plaidx/``, for the
    authors' own indexer and searcher (the scale page shows the commands)."""
    from tdlib.student import write_plaidx_layout

    source = _student(cfg, out, student, progress)
    stage = Stage(_p(out, "plaidx"), "export", {"student": source.name})
    if stage.is_complete():
        return stage.dir
    model = source.load()
    stage.begin()
    folder = write_plaidx_layout(model, stage.path("checkpoint"), base_prefix=model.encoder.base_model_prefix)
    stage.finish({"student": source.name, "checkpoint": str(folder)})
    return stage.dir


def baseline(cfg: Config, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate the student before any fine-tuning (the starting encoder) for comparison."""
    run = search(cfg, out, student=cfg.student.model, progress=progress, name="baseline-search",
                 index_name="baseline-index")
    return evaluate(cfg, out, run=str(run), name="baseline-evaluate", progress=progress)


def run_all(cfg: Config, out: str | Path, progress: bool = True, use_mt: bool = False,
            with_baseline: bool = True, scores: str | None = None) -> dict[str, Any]:
    """Every stage in order; returns and writes ``summary.json`` with metrics and stage times.

    ``scores``: a teacher score file to train on instead of scoring here (several students that keep
    one teacher share one scoring stage, as chapter 6's variants do).
    """
    times: dict[str, float] = {}
    _check_test(cfg, docs=True)  # a bad test collection fails now, not after hours of training

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        value = fn(*args, **kwargs)
        times[name] = round(time.perf_counter() - t0, 2)
        return value

    if use_mt:
        timed("translate", translate, cfg, out, progress)
    if scores is None and cfg.train.method == "distill" and cfg.teacher.kind != "precomputed":
        timed("score", score, cfg, out, progress, use_mt)
    timed("train", train, cfg, out, progress, use_mt, scores)
    timed("index", index, cfg, out, None, progress)
    timed("search", search, cfg, out, None, progress)
    metrics = timed("evaluate", evaluate, cfg, out, None, "evaluate", progress)
    summary: dict[str, Any] = {"profile": cfg.profile, "lang": cfg.lang, "student": metrics, "seconds": times}
    if with_baseline:
        summary["baseline"] = timed("baseline", baseline, cfg, out, progress)
    atomic_write_json(_p(out, "summary.json"), summary)
    atomic_write_json(_p(out, "config.json"), cfg.to_dict())
    return summary


def summary(stage_dir: str | Path) -> dict[str, Any]:
    """What a finished stage wrote in its ``DONE`` file (counts, seconds, chrF, ...); ``{}`` if it has not finished."""
    return Stage(stage_dir, Path(stage_dir).name, {}).summary()


def read_metrics(out: str | Path, name: str = "evaluate") -> dict[str, Any]:
    """The metrics an evaluate stage (``name`` under ``out``) wrote."""
    return json.loads(_p(out, name, "metrics.json").read_text(encoding="utf-8"))
