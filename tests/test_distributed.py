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


def test_launched_processes_score_and_index_by_rank(tmp_path):
    """Under torchrun each process takes shard RANK of WORLD_SIZE by itself; the last to finish merges, and
    the merged scores and index are those of one process."""
    from safetensors.torch import load_file

    common = ["--profile", "smoke", "--quiet", "--set", "index.part_documents=60"]
    one, two = tmp_path / "one", tmp_path / "two"
    for stage, extra in (("score", []), ("index", ["--student", "smoke:encoder"])):
        _run(["-m", "tdlib", stage, "--out", str(one), *common, *extra], tmp_path)
        _run(["-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "tdlib", stage, "--out", str(two),
              *common, *extra], tmp_path)
    # the same queries, candidates and order; scores equal up to the float order of other batches
    lines = [[json.loads(x) for x in (d / "teacher" / "scores.jsonl").read_text().splitlines()] for d in (one, two)]
    assert [(q, [p for p, _ in c]) for q, c in lines[0]] == [(q, [p for p, _ in c]) for q, c in lines[1]]
    assert all(abs(x - y) < 1e-4 for (_, a), (_, b) in zip(*lines) for (_, x), (_, y) in zip(a, b))
    assert json.loads((two / "teacher" / "DONE").read_text())["merged_shards"] == 2
    assert sorted(p.name for p in (two / "teacher-shards").iterdir() if p.is_dir()) == ["0-of-2", "1-of-2"]
    a, b = (load_file(str(d / "index" / "index.safetensors")) for d in (one, two))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert (one / "index" / "passage_doc_ids.json").read_text() == (two / "index" / "passage_doc_ids.json").read_text()
    done = json.loads((two / "index" / "DONE").read_text())
    assert done["merged_shards"] == 2 and done["parts"] == 6  # 320 documents, 60 a part
