import math

import pytest

from tdlib.data import Qrel
from tdlib.evaluate import compare, evaluate_run

QRELS = [Qrel("1", "a", 3), Qrel("1", "b", 1), Qrel("1", "c", 0), Qrel("2", "d", 2), Qrel("3", "e", 0)]


def test_ndcg_and_ap_by_hand():
    run = {"1": [("c", 3.0), ("a", 2.0), ("b", 1.0)], "2": [("d", 1.0)]}
    result = evaluate_run(run, QRELS, ["nDCG@20", "AP", "RR@10"])
    # query 1: gains (0, 3, 1) at ranks 1..3; ideal (3, 1)
    dcg = 3 / math.log2(3) + 1 / math.log2(4)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert result.per_query.loc["1", "nDCG@20"] == pytest.approx(dcg / idcg, abs=1e-4)
    assert result.per_query.loc["1", "AP"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-4)
    assert result.per_query.loc["2", "RR@10"] == 1.0
    # query 3 has no relevant document and is not judged; two judged queries
    assert list(result.per_query.index) == ["1", "2"]
    assert result.aggregate["RR@10"] == pytest.approx((0.5 + 1) / 2, abs=1e-4)


def test_a_judged_query_missing_from_the_run_scores_zero():
    result = evaluate_run({"1": [("a", 1.0)]}, QRELS, ["nDCG@20"])
    assert result.per_query.loc["2", "nDCG@20"] == 0.0
    assert result.aggregate["nDCG@20"] < result.per_query.loc["1", "nDCG@20"]


def test_paired_comparison():
    better = {"1": [("a", 2.0), ("b", 1.0)], "2": [("d", 1.0)]}
    worse = {"1": [("c", 2.0), ("b", 1.0), ("a", 0.5)], "2": [("x", 1.0)]}
    out = compare(worse, better, QRELS, "nDCG@20")
    assert out["delta"] > 0 and out["b_better"] == 2 and out["queries"] == 2
    assert compare(better, better, QRELS)["p"] == 1.0
