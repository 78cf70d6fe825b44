"""Record the book's reference results: chapters 3-6 run once with real models, written as small files.

    HF_HUB_OFFLINE=1 python3 scripts/record_reference.py            # about an hour on 2 CPU cores
    python3 scripts/record_reference.py --only baseline td-s1       # some runs (the rest are kept)
    python3 scripts/record_reference.py --only 'tq-*-s1'            # chapter 8's runs of seed 1

It needs the real models (``../shared/offline-models/populate``, or a network): the configuration is
the one the book's build chooses here (:mod:`tdlib.bookprofile`): the ``cpu`` profile with a real
stand-in where one of its models cannot be had. Every run goes through the library's own stages under
``runs/reference/`` (reused when they are complete, so an interrupted recording resumes); the compact
results go to ``tdlib/data/reference/`` (shipped with the package, read by ``tdlib.reference``):

- ``manifest.json``: the command, commit, models, machine, date, wall time, and the configuration;
- ``teacher_scores.jsonl.gz``: the teacher's scores of every training candidate (chapter 3);
- ``entropies.json``: normalised entropy of the teacher's and student's softmax over the training
  groups, at the temperatures in use and at 1, before and after training (chapters 3-4);
- ``train_logs.json``: the loss curve of every training run (chapter 4), ``training_cost.json`` its
  steps, seconds, trainable parameters and peak memory;
- ``metrics.csv`` and ``per_query.csv``: nDCG@20, MAP, R@100, ... of every run, overall and per query
  (chapters 5-6);
- ``comparisons.csv``: paired t-tests of the runs that chapter 6 compares;
- ``translation_quality.json``: chapter 8's degraded translations (kind, rate, seed) and their chrF
  against the human translations; the students trained on them are the ``tq-*`` runs of the files above.

No model weights are written there.
"""
from __future__ import annotations

import argparse
import fnmatch
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tdlib import bookprofile, stages  # noqa: E402
from tdlib.config import Config, default_temperatures, load_config  # noqa: E402
from tdlib.data import TdistIndex, load_qrels, read_run  # noqa: E402
from tdlib.evaluate import evaluate_run  # noqa: E402

LANG = "zh"
SEEDS = (1, 2)
ENTROPY_GROUPS = 128


@dataclass(frozen=True)
class Experiment:
    name: str
    label: str
    overrides: tuple[str, ...] = ()
    seed: int = SEEDS[0]
    # chapter 8: train on the training passages degraded this way (kind, rate), see tdlib.degrade
    degrade: tuple[str, float] | None = None


# Chapter 8 trains shorter runs so that a lab can repeat them: 40 steps, 3 passages per query, word
# embeddings frozen (each measured in chapter 6 to cost little: td-n3, td-frozen).
QUALITY_SETTINGS = ("train.max_steps=40", "train.n_passages=3", "train.freeze_embeddings=true",
                    "train.save_steps=40")
QUALITY_RATES = (0.3, 0.6, 0.1)  # in order of what the chapter needs most
# Two ends of the scale, as controls: no translation at all (the student reads the English passages,
# as a zero-shot ColBERT-X does), and every word replaced by a word of another passage.
ENGLISH = "english"


def quality_versions() -> list[tuple[str, float] | str | None]:
    """Chapter 8's training passages: None (the human translations), ``ENGLISH``, or a damage (kind, rate)."""
    from tdlib.degrade import KINDS

    damaged = [(k, r) for r in QUALITY_RATES[:2] for k in KINDS]
    return [None, ENGLISH, *damaged, ("replace", 1.0), *[(k, r) for r in QUALITY_RATES[2:] for k in KINDS]]


def quality_experiments() -> list[Experiment]:
    """Chapter 8: TD and TT on the human translations, the English passages and every damaged version, per seed."""
    from tdlib.degrade import version_name

    out = []
    for s in SEEDS:
        for v in quality_versions():
            name = version_name(*v) if isinstance(v, tuple) else v or "human"
            source = ("data.train_translated=tdlib-mini/en/train",) if v == ENGLISH else ()
            for method, label in (("td", "Translate-Distill"), ("tt", "Translate-Train")):
                extra = ("train.method=translate-train",) if method == "tt" else ()
                what = "untranslated English" if v == ENGLISH else name
                out.append(Experiment(f"tq-{method}-{name}-s{s}", f"{label}, {what} passages (chapter 8)",
                                      (*QUALITY_SETTINGS, *source, *extra), s, v if isinstance(v, tuple) else None))
    return out


def experiments() -> list[Experiment]:
    """Translate-Distill and Translate-Train with every seed, then chapter 6's variants of TD (first seed)."""
    out = []
    for s in SEEDS:
        out.append(Experiment(f"td-s{s}", "Translate-Distill", (), s))
        out.append(Experiment(f"tt-s{s}", "Translate-Train", ("train.method=translate-train",), s))
    out += [  # in order of what the chapters need most, so a partial recording is useful
        Experiment("td-frozen", "TD, word embeddings frozen", ("train.freeze_embeddings=true",)),
        Experiment("td-teacher-t1", "TD, teacher temperature 1 (a nearly flat teacher)",
                   ("train.teacher_temperature=1.0",)),
        Experiment("td-eng-x", "TD, teacher reads the translated passage (eng-x)", ("teacher.setting=eng-x",)),
        Experiment("td-n3", "TD, n = 3 passages per query", ("train.n_passages=3",)),
        Experiment("td-top", "TD, the teacher's top n instead of a random n", ("train.sampling=top",)),
    ]
    return out + quality_experiments()


# chapter 6's paired comparisons: (b, a): is b better than a?
COMPARISONS = [("td-s1", "tt-s1"), ("td-s2", "tt-s2"), ("td-s1", "baseline"), ("tt-s1", "baseline"),
               ("td-top", "td-s1"), ("td-n3", "td-s1"), ("td-eng-x", "td-s1"), ("td-teacher-t1", "td-s1"),
               ("td-frozen", "td-s1")]


def base_config(choice: bookprofile.Choice, extra: tuple[str, ...] = (), seed: int = SEEDS[0]) -> Config:
    return load_config(choice.profile, overrides=[*choice.overrides, f"lang={LANG}", f"seed={seed}", *extra])


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def entropies(cfg: Config, scores_file: Path, student_name: str) -> dict[str, list[float]]:
    from dataclasses import replace

    from tdlib.student import Student
    from tdlib.train import softmax_entropies

    training = stages.training_set(cfg)
    student = Student.from_pretrained(student_name, cfg.student, seed=cfg.seed)
    scores = TdistIndex(scores_file)
    t_student, t_teacher = default_temperatures(cfg)
    at_one = replace(cfg, train=replace(cfg.train, student_temperature=1.0, teacher_temperature=1.0))
    here = softmax_entropies(cfg, training, scores, student, groups=ENTROPY_GROUPS)
    one = softmax_entropies(at_one, training, scores, student, groups=ENTROPY_GROUPS)
    return {f"teacher@{t_teacher:g}": here["teacher"], f"student@{t_student:g}": here["student"],
            "teacher@1": one["teacher"], "student@1": one["student"]}


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _in_order(results: dict) -> dict:
    """Experiments in the order of :func:`experiments` (so the files do not depend on recording order)."""
    order = [e.name for e in experiments()]
    return {k: results[k] for k in sorted(results, key=lambda k: order.index(k) if k in order else -1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "reference"), help="stage directories")
    parser.add_argument("--book", default=str(ROOT / "tdlib" / "data" / "reference"), help="where the results go")
    parser.add_argument("--only", nargs="*", help="run only these experiments (baseline, td-s1, ...; "
                        "shell-style patterns such as 'tq-*-s1' choose several)")
    parser.add_argument("--note", default="", help="a remark on how this invocation's runs were made (for "
                        "example other jobs on the machine), kept with each of them in the manifest")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t_start = time.perf_counter()
    choice = bookprofile.choose()
    if choice.profile == "smoke":
        print(f"record_reference: {choice.reason}; the reference results need real models.", file=sys.stderr)
        return 2
    out, book = Path(args.out), Path(args.book)
    book.mkdir(parents=True, exist_ok=True)
    cfg = base_config(choice)
    qrels = load_qrels(cfg.fill(cfg.data.test))
    wanted = list(args.only or [])

    def chosen(name: str) -> bool:
        return not wanted or any(fnmatch.fnmatchcase(name, pattern) for pattern in wanted)

    quality = _load_json(book / "translation_quality.json")  # version and seed -> chrF against the human one

    def untranslated_chrf() -> None:
        from tdlib.degrade import chrf

        training = stages.training_set(cfg)
        pids = sorted({p for ps in training.candidates.values() for p in ps})
        quality[ENGLISH] = {"kind": "untranslated", "rate": None, "seed": None, "passages": len(pids),
                            "chrF": round(chrf([training.english[p] for p in pids], [training.passages[p] for p in pids]), 2)}

    def degraded(kind: str, rate: float, seed: int) -> Path:
        from tdlib.artifacts import Stage
        from tdlib.degrade import version_name

        path = stages.degrade(cfg, out / f"degraded-s{seed}", kind, rate, seed)
        done = Stage(path.parent, "degrade", {}).summary()
        quality[f"{version_name(kind, rate)}-s{seed}"] = {"kind": kind, "rate": rate, "seed": seed,
                                                            "passages": done["passages"], "chrF": done["chrF"]}
        return path
    seconds: dict[str, float] = json.loads((book / "seconds.json").read_text()) if (book / "seconds.json").is_file() else {}

    def timed(name, fn, *a, stage: Path | None = None, **k):
        """Run one stage; record its seconds unless ``stage`` (its folder) was complete already."""
        reused = stage is not None and (stage / "DONE").is_file()
        t0 = time.perf_counter()
        value = fn(*a, **k)
        if reused:  # a reused stage took no time: keep what the run that made it measured
            print(f"[reference] {name}: reused (measured before: {seconds.get(name)} s)", flush=True)
            return value
        seconds[name] = round(time.perf_counter() - t0, 1)
        (book / "seconds.json").write_text(json.dumps(seconds, indent=1) + "\n")
        print(f"[reference] {name}: {seconds[name]} s", flush=True)
        return value

    # Chapter 3: the teacher scores every candidate once; every TD run reads these scores.
    scores = timed("teacher", stages.score, cfg, out / "teacher-eng-eng", progress=False,
                   stage=out / "teacher-eng-eng" / "teacher")
    with open(scores, "rb") as src, open(book / "teacher_scores.jsonl.gz", "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:  # mtime=0: the same bytes every time
        shutil.copyfileobj(src, dst)
    runs: dict[str, Path] = {}
    labels = {"baseline": "multilingual-e5-small, not fine-tuned"}
    if chosen("baseline"):
        timed("baseline", stages.baseline, cfg, out / "baseline", progress=False,
              stage=out / "baseline" / "baseline-evaluate")
    if (out / "baseline" / "baseline-search" / "run.trec").is_file():
        runs["baseline"] = out / "baseline" / "baseline-search" / "run.trec"
    trained_now: set[str] = set()
    logs: dict[str, list[dict]] = {}
    students: dict[str, str] = {}
    for exp in experiments():
        labels[exp.name] = exp.label
        directory = out / exp.name
        if not chosen(exp.name):
            if (directory / "search" / "run.trec").is_file():
                runs[exp.name] = directory / "search" / "run.trec"
            continue
        overrides = exp.overrides
        if "data.train_translated=tdlib-mini/en/train" in overrides:
            untranslated_chrf()
        if exp.degrade:  # chapter 8: the degraded copy of the human translations, written once per seed
            kind, rate = exp.degrade
            passages = degraded(kind, rate, exp.seed)
            overrides = (*overrides, f"data.train_translated={passages}")
        ecfg = base_config(choice, overrides, exp.seed)
        extra = {}
        if ecfg.train.method == "distill":
            if ecfg.teacher.setting == cfg.teacher.setting:
                extra["scores"] = str(scores)
            else:  # another teacher setting: its own scoring stage
                extra["scores"] = str(timed(f"teacher-{ecfg.teacher.setting}", stages.score, ecfg,
                                            out / f"teacher-{ecfg.teacher.setting}", progress=False,
                                            stage=out / f"teacher-{ecfg.teacher.setting}" / "teacher"))
        timed(f"train {exp.name}", stages.train, ecfg, directory, progress=False, stage=directory / "train",
              **extra)
        trained_now.add(exp.name)
        run = timed(f"search {exp.name}", stages.search, ecfg, directory, progress=False,
                    stage=directory / "search")
        runs[exp.name] = Path(run)
    for name in [e.name for e in experiments()]:
        log = out / name / "train" / "train_log.jsonl"
        if log.is_file():
            logs[name] = [json.loads(line) for line in log.read_text().splitlines() if line]
            students[name] = str(out / name / "train" / "student")

    # Chapters 3-4: the softmax's entropy over the training groups, before and after training.
    # Results of runs whose stage directories are gone (another machine, a cleaned runs/) are kept
    # from the files recorded before: each invocation adds to the recording, it never loses a run.
    ent = _load_json(book / "entropies.json")
    ent["before training"] = timed("entropies", entropies, cfg, scores, cfg.student.model)
    if "td-s1" in students:
        ent["after Translate-Distill (td-s1)"] = entropies(cfg, scores, students["td-s1"])
    (book / "entropies.json").write_text(json.dumps(ent) + "\n")
    training_cost = _load_json(book / "training_cost.json")
    training_cost.update({name: {k: v for k, v in json.loads((out / name / "train" / "DONE").read_text()).items()
                                 if k in ("steps", "seconds", "queries_per_second", "trainable_parameters",
                                          "peak_rss_mib")}
                          for name in logs if (out / name / "train" / "DONE").is_file()})
    (book / "training_cost.json").write_text(json.dumps(_in_order(training_cost), indent=1) + "\n")
    train_logs = _load_json(book / "train_logs.json")
    train_logs.update({k: [{"step": e["step"], "loss": round(e["loss"], 5)} for e in v if "loss" in e]
                       for k, v in logs.items()})
    (book / "train_logs.json").write_text(json.dumps(_in_order(train_logs)) + "\n")
    if quality:
        quality.setdefault("human", {"kind": None, "rate": 0.0, "seed": None, "chrF": 100.0})
        (book / "translation_quality.json").write_text(json.dumps(dict(sorted(quality.items())), indent=1) + "\n")

    # Chapters 5-6: metrics overall and per query, and chapter 6's paired tests.
    import pandas as pd
    from scipy import stats

    measures = list(cfg.evaluate.measures)
    rows, per_query = [], []
    if (book / "metrics.csv").is_file() and (book / "per_query.csv").is_file():
        kept = pd.read_csv(book / "metrics.csv", dtype={"seed": str}, keep_default_na=False)
        rows = [r for r in kept.to_dict("records") if r["run"] not in runs]
        old = pd.read_csv(book / "per_query.csv", dtype={"query_id": str})
        per_query = [old[~old["run"].isin(list(runs))]]
    for name, run in runs.items():
        result = evaluate_run(read_run(run), qrels, measures)
        exp = next((e for e in experiments() if e.name == name), None)
        rows.append({"run": name, "label": labels[name], "seed": exp.seed if exp else "", **result.aggregate})
        table = result.per_query.reset_index()
        table.insert(0, "run", name)
        per_query.append(table)
    order = ["baseline", *[e.name for e in experiments()]]
    metrics_table = pd.DataFrame(rows).sort_values("run", key=lambda c: c.map(order.index))
    metrics_table.to_csv(book / "metrics.csv", index=False)
    pq = pd.concat(per_query).round(5)
    pq = pq.sort_values(["run", "query_id"], key=lambda c: c.map(order.index) if c.name == "run" else c)
    pq.to_csv(book / "per_query.csv", index=False)
    recorded = set(pq["run"])
    comps = []
    for b, a in COMPARISONS:
        if a not in recorded or b not in recorded:
            continue
        x_all = pq[pq["run"] == b].set_index("query_id")
        y_all = pq[pq["run"] == a].set_index("query_id").loc[x_all.index]
        for measure in ("nDCG@20", "AP", "R@100"):
            x, y = x_all[measure], y_all[measure]
            diff = x - y
            t, p = stats.ttest_rel(x, y) if float(diff.std()) > 0 else (0.0, 1.0)
            comps.append({"b": b, "a": a, "measure": measure, "b_mean": round(float(x.mean()), 4),
                          "a_mean": round(float(y.mean()), 4), "delta": round(float(diff.mean()), 4),
                          "t": round(float(t), 3), "p": round(float(p), 4), "queries": len(diff),
                          "b_better": int((diff > 0).sum()), "a_better": int((diff < 0).sum())})
    pd.DataFrame(comps).to_csv(book / "comparisons.csv", index=False)

    import torch

    commit, now = _git("rev-parse", "HEAD"), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    earlier = _load_json(book / "manifest.json")
    experiments_recorded = {}  # each with the commit and date of the invocation that trained it
    for e in experiments():
        if e.name in recorded:
            when = {"commit": commit, "date": now}
            if e.name not in trained_now and e.name in earlier.get("experiments", {}):
                when = {"commit": earlier.get("commit", ""), "date": earlier.get("date", ""),
                        **earlier["experiments"][e.name]}
            experiments_recorded[e.name] = {"label": e.label, "overrides": list(e.overrides), "seed": e.seed,
                                            "commit": when["commit"], "date": when["date"]}
            if e.degrade:  # trained on data.train_translated = this degraded copy (tdlib.degrade)
                experiments_recorded[e.name]["degrade"] = {"kind": e.degrade[0], "rate": e.degrade[1],
                                                           "seed": e.seed}
            note = args.note if e.name in trained_now else when.get("note", "")
            if note:
                experiments_recorded[e.name]["note"] = note
    manifest = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit, "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": now,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                   f"{'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}",
        "python": platform.python_version(), "torch": torch.__version__,
        "profile": choice.profile, "overrides": list(choice.overrides), "roles": choice.roles,
        "lang": LANG, "seeds": list(SEEDS),
        # the experiments recorded so far (runs of other invocations, kept in --out, count too)
        "experiments": experiments_recorded,
        "not_recorded": [e.name for e in experiments() if e.name not in recorded],
        "wall_seconds_this_invocation": round(time.perf_counter() - t_start, 1),
        "seconds": seconds,
        "config": cfg.to_dict(),
    }
    (book / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"[reference] wrote {book} in {manifest['wall_seconds_this_invocation']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
