import gzip
import json
import os
import subprocess
import sys
import time

import pytest

from tdlib.cli import STAGES


def tdlib(*args, env=None, check=True):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "tdlib", *args], capture_output=True, text=True, env=full_env,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_help_lists_every_stage_and_documents_files():
    out = tdlib("--help").stdout
    for stage in STAGES:
        assert stage in out
    sub = tdlib("score", "--help").stdout
    assert "tdist line format" in sub and "--profile" in sub and "--set" in sub


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    t0 = time.perf_counter()
    proc = tdlib("pipeline", "--profile", "smoke", "--out", str(out), "--json")
    return out, json.loads(proc.stdout), time.perf_counter() - t0, proc.stderr


def test_smoke_pipeline_end_to_end(smoke_run):
    out, summary, seconds, _ = smoke_run
    assert seconds < 120
    for stage in ("teacher", "train", "index", "search"):
        assert (out / stage / "DONE").is_file() and (out / stage / "stage.json").is_file()
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
    assert set(summary["student"]) >= {"nDCG@20", "AP", "R@100", "R@1000"}
    assert 0.0 <= metrics["nDCG@20"] <= 1.0
    assert (out / "search" / "run.trec").read_text().splitlines()[0].split()[1] == "Q0"
    assert summary["baseline"]["nDCG@20"] >= 0


def test_same_seed_gives_identical_metrics_and_a_rerun_reuses_everything(smoke_run, tmp_path):
    out, summary, seconds, _ = smoke_run
    again = json.loads(tdlib("pipeline", "--profile", "smoke", "--out", str(tmp_path / "b"), "--quiet",
                             "--json").stdout)
    assert again["student"] == summary["student"]
    assert again["baseline"] == summary["baseline"]
    t0 = time.perf_counter()
    reuse = json.loads(tdlib("pipeline", "--profile", "smoke", "--out", str(out), "--quiet", "--json").stdout)
    assert reuse["student"] == summary["student"]
    assert reuse["seconds"]["train"] < 5


NOISE = ["[INFO]", "LOAD REPORT", "UNEXPECTED", "{'loss'", "train_runtime", "[transformers]", "Loading weights"]


def test_the_pipeline_prints_a_summary_and_no_library_noise(smoke_run, tmp_path):
    out, summary, _, stderr = smoke_run
    assert not [n for n in NOISE if n in stderr], stderr[-3000:]
    text = tdlib("pipeline", "--profile", "smoke", "--out", str(out), "--quiet").stdout
    assert text.splitlines()[0].startswith("pipeline done (profile smoke, lang zh)")
    assert f"{summary['student']['nDCG@20']:.4f}" in text and str(out / "summary.json") in text
    assert len(text.splitlines()) <= 6 and not [n for n in NOISE if n in text]
    verbose = tdlib("train", "--profile", "smoke", "--out", str(tmp_path), "--quiet", "--verbose",
                    "--set", "train.max_steps=2", "--set", "train.logging_steps=1").stderr
    assert "'loss'" in verbose  # --verbose brings the Trainer's log (and the libraries' logs) back


def test_a_different_config_does_not_reuse_stale_outputs(smoke_run, tmp_path):
    out, summary, _, _ = smoke_run
    other = tmp_path / "o"
    tdlib("train", "--profile", "smoke", "--out", str(other), "--quiet")
    first = json.loads((other / "train" / "stage.json").read_text())["config"]["train"]["lr"]
    tdlib("train", "--profile", "smoke", "--out", str(other), "--quiet", "--set", "train.lr=0.0005")
    record = json.loads((other / "train" / "stage.json").read_text())
    assert first != 0.0005 and record["config"]["train"]["lr"] == 0.0005


@pytest.mark.parametrize("args,match", [
    (["train", "--set", "data.candidates=/nonexistent/c.jsonl"], "candidates/scores file /nonexistent/c.jsonl does not exist"),
    (["train", "--set", "train.n_passages=60"], "are needed per step"),
    (["evaluate", "--run", "/nonexistent/run"], "run file /nonexistent/run does not exist"),
    (["index", "--student", "/nonexistent/model"], "cannot load the student encoder '/nonexistent/model'"),
    (["score", "--set", "data.test=nope"], None),
    (["search", "--set", "data.test=no-such/dataset"], "neither an existing file nor a known ir_datasets id"),
    (["train", "--set", "train.lr=fast"], "'fast' is not a valid float"),
])
def test_bad_input_exits_2_with_one_sentence(tmp_path, args, match):
    proc = tdlib(*args, "--profile", "smoke", "--out", str(tmp_path / "o"), "--quiet", check=False)
    if match is None:  # an unused bad setting does not matter to this stage
        assert proc.returncode == 0
        return
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert match in proc.stderr
    assert not any((tmp_path / "o").rglob("DONE"))  # failed before any work was done


def test_bad_lines_in_user_files_name_file_and_line(tmp_path):
    bad = tmp_path / "c.jsonl"
    bad.write_text('["q1", [["p1", 1.0]]]\nnot json\n')
    proc = tdlib("score", "--profile", "smoke", "--out", str(tmp_path / "o"), "--set", f"data.candidates={bad}",
                 check=False)
    assert proc.returncode == 2 and f"{bad}, line 2" in proc.stderr and "Traceback" not in proc.stderr


def _cut_gzip(path):
    data = gzip.compress(b'["q1001", [["p1002", 15.1], ["p1001", 11.6]]]\n' * 50)
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("stage,option,write,match", [
    ("score", "data.candidates", lambda p: p.write_text('["q1001", [["p1002", 15.1], ["p1001", 11.6]]]\n'
                                                        '["q1002", [["p1003", 6.6], ["p10'),
     "line 2: expected [qid, [[pid, score], ...]]"),
    ("score", "data.candidates", _cut_gzip, "the gzip data is cut off or damaged"),
    ("score", "data.candidates", lambda p: p.write_bytes(b'["q1001", [["p\xff", 1.0]]]\n'), "line 1: byte 0xff is not valid UTF-8"),
    ("score", "data.candidates", lambda p: p.write_text(""), "holds no candidates"),
    ("score", "data.candidates", lambda p: p.mkdir(), "is a folder; give the path of a file"),
    ("evaluate", "--run", lambda p: p.write_bytes(b"101 Q0 d\xff 1 2.0 t\n"), "line 1: byte 0xff is not valid UTF-8"),
    ("evaluate", "--run", lambda p: p.write_text(""), "holds no results"),
    ("evaluate", "--run", lambda p: p.mkdir(), "is a folder; give the path of a file"),
    ("train", "--config", lambda p: p.write_text('[{"train": {"lr": 0.1}}]'), "holds a JSON list"),
    ("train", "--config", lambda p: p.mkdir(), "is a folder; give the path of a JSON file"),
])
def test_bad_files_exit_2_with_one_sentence_and_leave_nothing_complete(tmp_path, stage, option, write, match):
    bad = tmp_path / "bad.jsonl.gz" if write is _cut_gzip else tmp_path / "bad"
    write(bad)
    where = ["--set", f"{option}={bad}"] if "." in option else [option, str(bad)]
    proc = tdlib(stage, *where, "--profile", "smoke", "--out", str(tmp_path / "o"), "--quiet", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert match in proc.stderr and str(bad) in proc.stderr
    assert not any((tmp_path / "o").rglob("DONE"))


@pytest.mark.parametrize("file,old,new,match", [
    ("docs.ru.jsonl", '"id": "d5", "text": "', '"id": "d5", "text": "  ", "x": "', "document d5: the text is empty"),
    ("docs.ru.jsonl", '"id": "d5"', '"id": "d1"', "document id 'd1' appears twice"),
    ("qrels.txt", "t1 0 d5 0", "t1 0 d5 1.5", r"qrels\.txt, line 2: relevance '1\.5' is not an integer"),
])
def test_a_bad_test_collection_fails_before_scoring_and_training(tmp_path, tiny, file, old, new, match):
    """book/formats.md promises these errors before any model is loaded, not after hours of training."""
    from tdlib import data, stages
    from tdlib.config import load_config
    from tdlib.errors import DataError

    for f in tiny.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    text = (tmp_path / file).read_text(encoding="utf-8")
    assert old in text
    (tmp_path / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    name = f"test-early-{abs(hash(str(tmp_path)))}/ru"
    data.register_collection(name, docs=tmp_path / "docs.ru.jsonl", queries=tmp_path / "topics.jsonl",
                             qrels=tmp_path / "qrels.txt", lang="ru")
    cfg = load_config("smoke", overrides=["lang=ru", f"data.test={name}"])
    out = tmp_path / "o"
    with pytest.raises(DataError, match=match):
        stages.run_all(cfg, out, progress=False)
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(DataError, match=match):  # index builds the student first: the same check comes first
        stages.index(cfg, out, progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_stage_bars_give_way_to_tqdm_disable_even_as_notebook_widgets(monkeypatch):
    # tqdm.auto gives a notebook bar in a kernel, and that bar ignores TQDM_DISABLE: the book's
    # executed chapters then carried widgets that load JavaScript from the internet.
    import tqdm.auto
    import tqdm.notebook

    from tdlib.logs import progress_bar

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(3), desc="index").disable
    monkeypatch.delenv("TQDM_DISABLE")
    assert progress_bar(range(3), desc="index", progress=False).disable
