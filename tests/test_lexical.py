import math

import pytest

from tdlib.data import Doc, Query, read_docs
from tdlib.lexical import BM25, analyse


def test_analyser_words_and_chinese_bigrams():
    assert analyse("The RIVER, flooded!") == ["the", "river", "flooded"]
    assert analyse("河水淹没") == ["河水", "水淹", "淹没"]
    assert analyse("Москва и Тегеран") == ["москва", "и", "тегеран"]


def test_bm25_by_hand():
    docs = [Doc("a", "rain rain city"), Doc("b", "city park"), Doc("c", "sun")]
    bm = BM25(docs, k1=1.0, b=0.0)
    # idf(rain) = ln(1 + (3 - 1 + .5) / (1 + .5)); tf part with b = 0: 2 * 2 / (2 + 1)
    idf = math.log(1 + 2.5 / 1.5)
    assert bm.scores("rain")[0] == pytest.approx(idf * 4 / 3)
    assert bm.search([Query("q", "rain city")], k=2)["q"][0][0] == "a"


def test_bm25_fails_across_languages(tiny):
    en, zh = read_docs(tiny / "docs.en.jsonl"), read_docs(tiny / "docs.zh.jsonl")
    q = [Query("t1", "river flooded the town")]
    assert BM25(en).search(q)["t1"][0][0] == "d1"
    assert BM25(zh).search(q)["t1"] == []  # no English word occurs in Chinese text
