"""Benchmarks: tdlib against the plain-library way of doing the same work, in one process, interleaved.

    python benchmarks/run.py                 # smoke models (shape only), and the book's timings
    HF_HUB_OFFLINE=1 python benchmarks/run.py --real   # e5-small / MiniLM from the HF cache

Each pair is timed ``--repeats`` times, alternating A and B so that machine noise hits both; the
table shows medians and the ratio tdlib / baseline in throughput (higher is better for tdlib).
Results go to ``benchmarks/results-{smoke,real}.json``, which the book's performance page shows.

1. training step: tdlib's Trainer-based distillation (sampling, tokenising, loss, AdamW) against a bare
   PyTorch loop over the same model on pre-tokenised batches;
2. encoding: ``Student.encode`` against ``SentenceTransformer.encode`` on mixed-length passages;
3. teacher scoring: tdlib's cross-encoder teacher against ``CrossEncoder.predict`` on the same pairs;
4. search: tdlib's chunked MaxSim + MaxP against a straightforward exhaustive loop, at three sizes;
5. evaluation: ``tdlib.evaluate.evaluate_run`` on 1,000 queries x 1,000 documents;
6. the book (smoke runs only): each chapter run alone with papermill, and the whole
   ``jupyter-book build``, both on a copy of the committed book in a temporary folder, in the smoke
   profile as CI builds it; ``--only book`` times just these (several minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 2  # training steps left out of the timing (allocator and kernel warm-up)
sys.path.insert(0, str(ROOT))

from tdlib import data  # noqa: E402
from tdlib.config import StudentConfig, TeacherConfig, default_temperatures, load_config  # noqa: E402


def interleaved(a: Callable[[], float], b: Callable[[], float], repeats: int,
                warmup: bool = True) -> tuple[list[float], list[float]]:
    """Run a and b alternately; each returns the seconds it measured.

    With ``warmup``, each runs once untimed first, so neither pays for first-call set-up (kernel
    selection, allocator growth) inside the timed runs.
    """
    if warmup:
        a(), b()
    ta, tb = [], []
    for i in range(repeats):
        if i % 2 == 0:
            ta.append(a())
            tb.append(b())
        else:
            tb.append(b())
            ta.append(a())
    return ta, tb


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def passages(n: int, seed: int = 0) -> list[str]:
    docs = [d.text for d in data.load_docs("tdlib-mini/zh/test")] + [d.text for d in data.load_docs("tdlib-mini/ru/train")]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(docs)
        out.append(text[: rng.randint(max(20, len(text) // 4), len(text))])  # mixed lengths
    return out


# ---------------------------------------------------------------- 1. training step


def bench_training(cfg, steps: int, repeats: int) -> dict:
    from tdlib import stages
    from tdlib.losses import kl_distillation
    from tdlib.student import Student
    from tdlib.train import Collator, TrainingExamples, train_student

    work = Path(tempfile.mkdtemp())
    training = stages.training_set(cfg)
    scores_file = work / "scores.jsonl"
    rng = random.Random(0)
    data.write_tdist(scores_file, [(q, [(p, rng.gauss(0, 3)) for p in ps]) for q, ps in training.candidates.items()])
    table = {q: dict(p) for q, p in data.read_tdist(scores_file).items()}
    run_cfg = load_config(cfg.profile, overrides=_overrides(cfg) + [f"train.max_steps={steps}", "train.save_steps=100000",
                                                                     "train.logging_steps=100000"])
    bq = run_cfg.train.batch_queries

    # the bare loop: same model and optimiser, batches tokenised beforehand
    examples = TrainingExamples(training, run_cfg, table, epochs=4)
    student0 = Student.from_pretrained(run_cfg.student.model, run_cfg.student, seed=run_cfg.seed)
    collate = Collator(student0)
    batches = [collate([examples[i * bq + j] for j in range(bq)]) for i in range(steps)]

    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    def tdlib_run() -> float:
        clock = StepClock()
        train_student(run_cfg, training, Path(tempfile.mkdtemp()), scores_file=scores_file, progress=False,
                      callbacks=[clock])
        return clock.times[-1] - clock.times[WARMUP - 1]  # steady state: steps after the warm-up

    t_student, t_teacher = default_temperatures(run_cfg)

    def bare_run() -> float:
        student = Student.from_pretrained(run_cfg.student.model, run_cfg.student, seed=run_cfg.seed)
        student.train()
        opt = torch.optim.AdamW(student.parameters(), lr=run_cfg.train.lr, weight_decay=0.0)
        times = []
        for b in batches:
            s = student(b["q_input_ids"], b["q_attention_mask"], b["d_input_ids"], b["d_attention_mask"])
            loss = kl_distillation(s, b["teacher_scores"], student_temperature=t_student, teacher_temperature=t_teacher)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter())
        return times[-1] - times[WARMUP - 1]

    ta, tb = interleaved(tdlib_run, bare_run, repeats, warmup=False)  # the first steps are left out instead
    qps = lambda t: (steps - WARMUP) * bq / statistics.median(t)  # noqa: E731
    return {"what": f"training step, {bq} queries x {run_cfg.train.n_passages} passages ({steps - WARMUP} timed)",
            "unit": "queries/s", "tdlib": qps(ta), "baseline": qps(tb), "baseline_name": "bare PyTorch loop",
            "note": "steady state after the first steps; tdlib samples and tokenises each batch, the bare loop "
                    "gets pre-tokenised batches; start-up (about 2 s) is not counted"}


# ---------------------------------------------------------------- 2. encoding


def bench_encoding(model: str, n: int, repeats: int, prefix: str) -> dict:
    from sentence_transformers import SentenceTransformer

    from tdlib import hub
    from tdlib.student import Student

    texts = passages(n)
    scfg = StudentConfig(model=model, kind="single", doc_maxlen=256, doc_prefix=prefix, query_marker="", doc_marker="")
    student = Student.from_pretrained(model, scfg)
    st = SentenceTransformer(hub.resolve(model), device="cpu")
    st.max_seq_length = 256
    ta, tb = interleaved(lambda: timed(lambda: student.encode(texts, is_query=False, batch_size=32)),
                         lambda: timed(lambda: st.encode([prefix + t for t in texts], batch_size=32)), repeats)
    return {"what": f"encoding {n} mixed-length passages", "unit": "passages/s",
            "tdlib": n / statistics.median(ta), "baseline": n / statistics.median(tb),
            "baseline_name": "SentenceTransformer.encode"}


# ---------------------------------------------------------------- 3. teacher scoring


def bench_teacher(model: str, n: int, repeats: int) -> dict:
    from sentence_transformers import CrossEncoder

    from tdlib import hub
    from tdlib.data import Doc, Query
    from tdlib.teacher import CrossEncoderTeacher

    texts = passages(n, seed=1)
    qs = [Query(str(i), "what is the effect of " + t.split()[0]) for i, t in enumerate(texts)]
    ps = [Doc(str(i), t) for i, t in enumerate(texts)]
    teacher = CrossEncoderTeacher(TeacherConfig(kind="cross-encoder", model=model, batch_size=32, max_length=256))
    plain = CrossEncoder(hub.resolve(model), max_length=256, device="cpu", num_labels=1)
    pairs = [(q.text, p.text) for q, p in zip(qs, ps)]
    ta, tb = interleaved(lambda: timed(lambda: teacher.score(qs, ps)),
                         lambda: timed(lambda: plain.predict(pairs, batch_size=32, show_progress_bar=False)), repeats)
    return {"what": f"cross-encoder scoring of {n} pairs", "unit": "pairs/s", "tdlib": n / statistics.median(ta),
            "baseline": n / statistics.median(tb), "baseline_name": "CrossEncoder.predict"}


# ---------------------------------------------------------------- 4. search


def naive_search(q, q_mask, vectors, offsets, owners, k):
    """The straightforward way: one passage at a time, then the best passage per document."""
    best: dict[str, torch.Tensor] = {}
    for p in range(len(owners)):
        d = vectors[offsets[p]:offsets[p + 1]].float()
        s = (torch.einsum("qid,jd->qij", q, d).max(-1).values * q_mask).sum(-1)  # (queries,)
        best[owners[p]] = torch.maximum(best[owners[p]], s) if owners[p] in best else s
    ids = list(best)
    scores = torch.stack([best[i] for i in ids], 1)
    return scores.topk(min(k, len(ids)), dim=1)


def bench_search(sizes: list[int], repeats: int, dim: int = 128, doc_len: int = 120, nq: int = 16) -> list[dict]:
    from safetensors.torch import save_file

    from tdlib.retrieve import Index

    gen = torch.Generator().manual_seed(0)
    rows = []
    q = torch.nn.functional.normalize(torch.randn(nq, 32, dim, generator=gen), dim=-1)
    q_mask = torch.ones(nq, 32)
    for n in sizes:
        lengths = torch.randint(doc_len // 2, doc_len, (n,), generator=gen)
        offsets = torch.zeros(n + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        vectors = torch.nn.functional.normalize(torch.randn(int(offsets[-1]), dim, generator=gen), dim=-1).half()
        owners = [f"d{i // 2}" for i in range(n)]  # two passages per document
        folder = Path(tempfile.mkdtemp())
        save_file({"vectors": vectors, "offsets": offsets}, str(folder / "index.safetensors"))
        (folder / "passage_doc_ids.json").write_text(json.dumps(owners))
        index = Index(folder)
        a, b = index.search(q, q_mask, 10), naive_search(q, q_mask, vectors, offsets, owners, 10)
        assert torch.allclose(a[0], b[0], atol=1e-2), "the two searches disagree"
        runs = max(1, repeats // 2) if n > 4000 else repeats
        ta, tb = interleaved(lambda: timed(lambda: index.search(q, q_mask, 100)),
                             lambda: timed(lambda: naive_search(q, q_mask, vectors, offsets, owners, 100)), runs)
        rows.append({"what": f"MaxSim search, {nq} queries x {n} passages", "unit": "passages/s",
                     "tdlib": n / statistics.median(ta), "baseline": n / statistics.median(tb),
                     "baseline_name": "passage-by-passage PyTorch", "passages": n, "repeats": runs})
    return rows


# ---------------------------------------------------------------- 5. evaluation


def bench_evaluate(repeats: int) -> dict:
    from tdlib.data import Qrel
    from tdlib.evaluate import evaluate_run

    rng = random.Random(0)
    run = {str(q): [(f"d{d}", rng.random()) for d in range(1000)] for q in range(1000)}
    qrels = [Qrel(str(q), f"d{rng.randrange(1000)}", rng.randint(0, 3)) for q in range(1000) for _ in range(20)]
    times = [timed(lambda: evaluate_run(run, qrels)) for _ in range(repeats)]
    return {"what": "evaluate 1,000 queries x 1,000 documents (6 measures)", "unit": "seconds",
            "tdlib": statistics.median(times), "baseline": None, "baseline_name": ""}


# ---------------------------------------------------------------- 6. the book

BOOK_ENV = {"TDLIB_PROFILE": "smoke", "TDLIB_PROFILE_REASON": "the benchmark times the book in smoke",
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # as .ci/run builds it


def book_copy() -> tuple[Path, str]:
    """The committed book (git HEAD) unpacked in a temporary folder, with the MathJax it serves; and the commit."""
    work = Path(tempfile.mkdtemp(prefix="tdlib-book-"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    static = ROOT / "_build" / "static"
    if (static / "mathjax").is_dir():
        shutil.copytree(static, work / "_build" / "static")
    else:
        subprocess.run(["bash", "scripts/fetch-mathjax.sh"], cwd=work, check=True)
    return work, commit


def book_env(book: Path) -> dict[str, str]:
    """The environment of a smoke book build whose chapters import the copy's tdlib."""
    path = [str(book)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, **BOOK_ENV, "PYTHONPATH": os.pathsep.join(path)}


def time_chapter(book: Path, notebook: str) -> float:
    """Seconds to run one chapter alone with papermill (fresh output folder, smoke), as the tests do."""
    out = Path(tempfile.mkdtemp(prefix="tdlib-chapter-"))
    command = [sys.executable, "-c", "import sys, time, papermill; t = time.perf_counter(); "
               "papermill.execute_notebook(sys.argv[1], sys.argv[2], parameters={'profile': 'smoke', "
               "'output_dir': sys.argv[3]}, kernel_name='python3', cwd=sys.argv[4], progress_bar=False); "
               "print(time.perf_counter() - t)",
               str(book / "notebooks" / notebook), str(out / notebook), str(out / "runs"), str(book / "notebooks")]
    done = subprocess.run(command, env=book_env(book), capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode:
        raise RuntimeError(f"chapter {notebook} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def time_build(book: Path) -> float:
    """Seconds of the whole ``jupyter-book build -W --keep-going`` in smoke, every chapter executed."""
    shutil.rmtree(book / "_build" / "html", ignore_errors=True)
    shutil.rmtree(book / "_build" / "jupyter_execute", ignore_errors=True)
    t0 = time.perf_counter()
    done = subprocess.run(["jupyter-book", "build", "-W", "--keep-going", "."], cwd=book, env=book_env(book),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"the book build failed in {book}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def bench_book(repeats: int) -> list[dict]:
    book, commit = book_copy()
    chapters = sorted(p.name for p in (book / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows = []
    for name in chapters:
        seconds = statistics.median(time_chapter(book, name) for _ in range(repeats))
        rows.append({"what": f"chapter {int(name[:2])} alone ({Path(name).stem}), smoke", "unit": "seconds",
                     "tdlib": seconds, "baseline": None, "baseline_name": "", "chapter": Path(name).stem,
                     "commit": commit, "repeats": repeats})
    seconds = statistics.median(time_build(book) for _ in range(repeats))
    rows.append({"what": "whole book build (jupyter-book, every page executed), smoke", "unit": "seconds",
                 "tdlib": seconds, "baseline": None, "baseline_name": "", "book_build": True, "commit": commit,
                 "repeats": repeats,
                 "note": "the chapters share one output folder, so later ones reuse what earlier ones built"})
    shutil.rmtree(book, ignore_errors=True)
    return rows


def _overrides(cfg) -> list[str]:
    return [f"lang={cfg.lang}"]


def merged(old: list[dict], new: list[dict]) -> list[dict]:
    """The old rows with each one that was measured again replaced in place; new kinds of row last."""
    fresh = {r["what"]: r for r in new}
    return [fresh.pop(r["what"], r) for r in old] + list(fresh.values())


BENCHMARKS = ["training", "encoding", "teacher", "search", "evaluate", "book"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true", help="e5-small and MiniLM from the Hugging Face cache")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, choices=BENCHMARKS, metavar="NAME",
                        help=" ".join(BENCHMARKS) + " (book: smoke only)")
    parser.add_argument("--book-repeats", type=int, default=3, help="runs of each chapter and of the whole build")
    args = parser.parse_args()
    if args.real and "book" in (args.only or []):
        parser.error("the book is timed in the smoke profile: drop --real")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    if args.real:
        cfg = load_config("cpu", overrides=["train.batch_queries=8"])
        encoder, prefix = "intfloat/multilingual-e5-small", "passage: "
        cross = "sentence-transformers/all-MiniLM-L6-v2"  # MiniLM-L6 with a one-logit head: a cross-encoder's cost
        steps, n_enc, n_pairs, sizes = 8, 256, 256, [1000, 4000, 16000]
    else:
        cfg = load_config("smoke")
        encoder, prefix, cross = "smoke:bi-encoder", "", "smoke:cross-encoder"
        steps, n_enc, n_pairs, sizes = 12, 256, 256, [1000, 4000, 16000]
    want = set(args.only or [b for b in BENCHMARKS if b != "book" or not args.real])
    rows: list[dict] = []
    if "training" in want:
        rows.append(bench_training(cfg, steps, args.repeats))
    if "encoding" in want:
        rows.append(bench_encoding(encoder, n_enc, args.repeats, prefix))
    if "teacher" in want:
        rows.append(bench_teacher(cross, n_pairs, args.repeats))
    if "search" in want:
        rows.extend(bench_search(sizes, args.repeats))
    if "evaluate" in want:
        rows.append(bench_evaluate(args.repeats))
    if "book" in want:
        rows.extend(bench_book(args.book_repeats))
    for r in rows:
        r["ratio"] = (r["tdlib"] / r["baseline"]) if r.get("baseline") else None
        r.setdefault("repeats", args.repeats)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
               "platform": platform.platform(), "threads": torch.get_num_threads()}
    result = {"models": "real (e5-small, MiniLM-L6)" if args.real else "smoke (tiny random models)",
              "machine": machine, "rows": rows}  # each row says how many runs its median is of
    out = ROOT / "benchmarks" / f"results-{'real' if args.real else 'smoke'}.json"
    if args.only and out.is_file():  # a partial rerun replaces its own rows and keeps the others
        result["rows"] = merged(json.loads(out.read_text())["rows"], rows)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'benchmark':<58} {'tdlib':>10} {'baseline':>10} {'ratio':>6}  unit")
    for r in rows:
        base = f"{r['baseline']:>10.1f}" if r.get("baseline") else f"{'-':>10}"
        ratio = f"{r['ratio']:>6.2f}" if r.get("ratio") else f"{'-':>6}"
        print(f"{r['what']:<58} {r['tdlib']:>10.1f} {base} {ratio}  {r['unit']}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
