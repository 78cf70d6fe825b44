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
