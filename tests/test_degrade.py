"""Degraded translations (chapter 8): each kind does what it says, at its rate, reproducibly."""
import random
from collections import Counter

import pytest

from tdlib import stages
from tdlib.config import load_config
from tdlib.data import Doc, read_docs
from tdlib.degrade import (chrf, degrade_docs, degrade_text, degraded_passages, split_sentences,
                           version_name)
from tdlib.errors import TdlibError


@pytest.fixture(scope="module")
def zh_passages():
    cfg = load_config("smoke", overrides=["lang=zh"])
    training = stages.training_set(cfg, english=False)
    pids = sorted({p for ps in training.candidates.values() for p in ps})
    return {p: training.passages[p] for p in pids}


def _words(text, lang):
    return [w for s in split_sentences(text, lang) for w in s]


def test_units_are_characters_in_chinese_and_words_elsewhere():
    assert split_sentences("建议在24小时内吃完。而美国允许3G网络！", "zh") == [
        ["建", "议", "在", "24", "小", "时", "内", "吃", "完", "。"], ["而", "美", "国", "允", "许", "3G", "网", "络", "！"]]
    assert split_sentences("Rice spoils fast. Cool it within an hour!  Then store it.", "en") == [
        ["Rice", "spoils", "fast."], ["Cool", "it", "within", "an", "hour!"], ["Then", "store", "it."]]


def test_rate_zero_changes_nothing(zh_passages):
    docs = [Doc(p, t) for p, t in zh_passages.items()]
    for kind in ("drop", "shuffle", "replace"):
        assert {d.doc_id: d.text for d in degrade_docs(docs, kind, 0.0, 1, "zh")} == zh_passages


def test_drop_removes_about_its_share_of_the_words(zh_passages):
    docs = [Doc(p, t) for p, t in zh_passages.items()]
    before = sum(len(_words(t, "zh")) for t in zh_passages.values())
    for rate in (0.1, 0.3, 0.6):
        after = sum(len(_words(d.text, "zh")) for d in degrade_docs(docs, "drop", rate, 1, "zh"))
        assert abs((1 - after / before) - rate) < 0.02, (rate, after / before)
    # a passage never ends up empty, even when every word is drawn for dropping
    assert degrade_text("一二三", "drop", 1.0, random.Random(0), "zh") in ("一", "二", "三")


def test_shuffle_keeps_each_sentence_s_words_and_moves_some(zh_passages):
    rng = random.Random(3)
    moved = 0
    for text in list(zh_passages.values())[:50]:
        out = degrade_text(text, "shuffle", 0.5, rng, "zh")
        # the same characters, in another order (digit runs that meet read as one word again, "18" "30"
        # -> "1830", so the characters are compared rather than the words)
        assert Counter(out) == Counter(text)
        moved += out != text
    assert moved >= 45


def test_replace_draws_words_from_other_passages_and_keeps_the_length():
    docs = [Doc("a", "one two three four"), Doc("b", "red green blue"), Doc("c", "cat dog")]
    out = {d.doc_id: d.text.split() for d in degrade_docs(docs, "replace", 1.0, 7, "en")}
    assert [len(out[k]) for k in "abc"] == [4, 3, 2]
    assert not set(out["a"]) & {"one", "two", "three", "four"}
    assert set(out["a"]) <= {"red", "green", "blue", "cat", "dog"}
    with pytest.raises(TdlibError, match="other passages"):
        degrade_text("only one", "replace", 0.5, random.Random(0), "en")


def test_same_seed_same_bytes_other_seed_other_bytes(zh_passages):
    docs = [Doc(p, t) for p, t in zh_passages.items()]
    one = degrade_docs(docs, "replace", 0.3, 1, "zh")
    assert one == degrade_docs(list(reversed(docs)), "replace", 0.3, 1, "zh")  # order of input does not matter
    assert one != degrade_docs(docs, "replace", 0.3, 2, "zh")


def test_chrf_falls_as_the_rate_rises(zh_passages):
    docs = [Doc(p, t) for p, t in zh_passages.items()]
    refs = [zh_passages[d.doc_id] for d in sorted(docs, key=lambda d: d.doc_id)]
    assert chrf(refs, refs) == pytest.approx(100.0)
    for kind in ("drop", "shuffle", "replace"):
        scores = [chrf([d.text for d in degrade_docs(docs, kind, r, 1, "zh")], refs) for r in (0.1, 0.3, 0.6)]
        assert 100 > scores[0] > scores[1] > scores[2] > 0, (kind, scores)
    with pytest.raises(TdlibError, match="one reference per hypothesis"):
        chrf(["a"], ["a", "b"])


def test_bad_kind_or_rate_is_refused_with_the_choices():
    with pytest.raises(TdlibError, match="drop, shuffle, replace"):
        degrade_docs([Doc("a", "x")], "blur", 0.1, 1, "en")
    with pytest.raises(TdlibError, match="between 0 and 1"):
        degrade_docs([Doc("a", "x")], "drop", 30, 1, "en")


def test_a_degraded_version_is_a_reused_stage_that_training_reads(tmp_path, zh_passages):
    cfg = load_config("smoke", overrides=["lang=zh", "seed=5"])
    path = stages.degrade(cfg, tmp_path, "drop", 0.3)
    assert path == tmp_path / "degrade-drop-0.3" / "passages.jsonl"
    assert version_name("drop", 0.3) == "drop-0.3" and version_name(None) == "human"
    written = {d.doc_id: d.text for d in read_docs(path)}
    assert written.keys() == zh_passages.keys() and written != zh_passages
    done = (path.parent / "DONE").read_text()
    assert '"chrF"' in done
    mtime = path.stat().st_mtime_ns
    assert stages.degrade(cfg, tmp_path, "drop", 0.3) == path and path.stat().st_mtime_ns == mtime
    # the same call by hand gives the same bytes (the seed is the configuration's)
    again = degraded_passages(zh_passages, "drop", 0.3, 5, "zh", tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()
    trained_on = load_config("smoke", overrides=["lang=zh", f"data.train_translated={path}"])
    training = stages.training_set(trained_on, english=False)
    pid = next(iter(written))
    assert training.passages[pid] == written[pid]
