import subprocess
import sys

import numpy as np
import pytest

from tdlib import BM25, data, load_config, stages
from tdlib.errors import DataError, TdlibError
from tdlib.rerank import rerank_run


class ByLength:
    """A stand-in teacher: longer documents score higher."""

    def __init__(self):
        self.pairs = 0

    def score(self, queries, passages):
        self.pairs += len(passages)
        return np.array([len(p.text) for p in passages], dtype=np.float32)


def test_rerank_reorders_the_top_depth_and_keeps_the_rest_below():
    run = {"q": [("a", 9.0), ("b", 8.0), ("c", 7.0), ("d", 6.0)]}
    docs = {"a": "x", "b": "xxx", "c": "xx", "d": "xxxxxxxx"}
    teacher = ByLength()
    out = rerank_run(teacher, run, {"q": "query"}, docs, depth=3, progress=False)
    assert [d for d, _ in out["q"]] == ["b", "c", "a", "d"]  # d is beyond the depth: first-stage order below
    scores = [s for _, s in out["q"]]
    assert scores == sorted(scores, reverse=True) and teacher.pairs == 3
    with pytest.raises(DataError, match="have no text to rerank, e.g. 'b'"):
        rerank_run(teacher, run, {"q": "query"}, {"a": "x"}, depth=2, progress=False)


def test_the_rerank_stage_and_command_rerank_a_bm25_run_with_the_teacher(tmp_path):
    cfg = load_config("smoke")
    test = cfg.fill(cfg.data.test)
    queries = data.load_queries(test)
    first = data.write_run(tmp_path / "bm25.trec", BM25(data.load_docs("tdlib-mini/en/test")).search(queries, k=20))
    reranked = stages.rerank(cfg, tmp_path / "out", run=str(first), docs="tdlib-mini/en/test", depth=10,
                             progress=False)
    before, after = data.read_run(first), data.read_run(reranked)
    assert set(after) == set(before)
    for qid in before:
        assert {d for d, _ in after[qid][:10]} == {d for d, _ in before[qid][:10]}
        assert [d for d, _ in after[qid][10:]] == [d for d, _ in before[qid][10:]]
    done = stages.summary(reranked.parent)
    assert done["pairs"] == sum(min(10, len(v)) for v in before.values()) and done["ms_per_query"] > 0
    mtime = reranked.stat().st_mtime_ns
    assert stages.rerank(cfg, tmp_path / "out", run=str(first), docs="tdlib-mini/en/test", depth=10,
                         progress=False).stat().st_mtime_ns == mtime  # reused
    with pytest.raises(TdlibError, match="rerank needs a teacher model"):
        stages.rerank(load_config("smoke", overrides=["teacher.kind=precomputed", f"teacher.scores_file={first}"]),
                      tmp_path / "out2", run=str(first))
    proc = subprocess.run([sys.executable, "-m", "tdlib", "rerank", "--profile", "smoke", "--out", str(tmp_path / "cli"),
                           "--run", str(first), "--docs", "tdlib-mini/en/test", "--depth", "5", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("rerank/run.trec")
