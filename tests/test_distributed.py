"""Training with 2 processes (gloo, CPU) follows the 1-process loss trajectory at the same global batch."""
import json
import os
import shutil
import subprocess
import sys


def _run(args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _losses(out):
    return [e["loss"] for e in map(json.loads, (out / "train" / "train_log.jsonl").read_text().splitlines()) if "loss" in e]


def test_two_processes_match_one(tmp_path):
    common = ["--profile", "smoke", "--quiet", "--set", "train.logging_steps=1", "--set", "train.max_steps=8"]
    one, two = tmp_path / "one", tmp_path / "two"
    _run(["-m", "tdlib", "score", "--out", str(one), *common], tmp_path)
    shutil.copytree(one, two)  # the same teacher scores for both
    _run(["-m", "tdlib", "train", "--out", str(one), *common, "--set", "train.batch_queries=4"], tmp_path)
    _run(["-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "tdlib", "train", "--out", str(two), *common,
          "--set", "train.batch_queries=2"], tmp_path)
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == 8
    # Same examples, same global batch, gradients averaged by DDP: equal up to float summation order.
    assert all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b)), (a, b)
    assert (two / "train" / "student" / "tdlib_student.json").is_file()
