import numpy as np
import pytest
import torch

from tdlib.examples import TrainingSet
from tdlib import data, teacher
from tdlib.config import TeacherConfig, load_config
from tdlib.data import Doc, Query
from tdlib.errors import DataError

Q = [Query("q1", "flooding after rain"), Query("q1", "flooding after rain"), Query("q2", "sleep")]
P = [Doc("d1", "the river flooded the town"), Doc("d2", "rice planted early"), Doc("d4", "too little sleep")]


@pytest.mark.parametrize("kind,model", [("cross-encoder", "smoke:cross-encoder"), ("monot5", "smoke:monot5"),
                                        ("bi-encoder", "smoke:bi-encoder")])
def test_every_model_teacher_scores_aligned_pairs(kind, model):
    t = teacher.load_teacher(TeacherConfig(kind=kind, model=model, batch_size=2))
    scores = t.score(Q, P)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    # pairs are scored independently of batch order
    again = t.score(Q[::-1], P[::-1])[::-1]
    assert np.allclose(scores, again, atol=1e-4)
    if kind == "monot5":
        assert (scores <= 0).all()  # log-probabilities of "true"
    if kind == "bi-encoder":
        assert (np.abs(scores) <= 1.0001).all()  # cosines


def test_precomputed_teacher_reads_tdist_and_names_missing_pairs(tmp_path):
    data.write_tdist(tmp_path / "s.jsonl.gz", [("q1", [("d1", 2.0), ("d2", -1.0)]), ("q2", [("d4", 0.5)])])
    t = teacher.load_teacher(TeacherConfig(kind="precomputed", scores_file=str(tmp_path / "s.jsonl.gz")))
    assert t.score(Q, P).tolist() == [2.0, -1.0, 0.5]
    with pytest.raises(DataError, match="no score for query q2 and passage d9"):
        t.score([Query("q2", "x")], [Doc("d9", "y")])


def test_language_settings_pick_the_texts():
    ts = TrainingSet(queries={"q": "rain"}, passages={"p": "雨"}, english={"p": "rain"},
                          candidates={"q": ["p"]}, positives={"q": {"p"}})
    assert teacher.pair_texts(ts, "eng-eng") == ({"q": "rain"}, {"p": "rain"})
    assert teacher.pair_texts(ts, "eng-x") == ({"q": "rain"}, {"p": "雨"})
    assert teacher.pair_texts(ts, "x-x", {"q": "下雨"}) == ({"q": "下雨"}, {"p": "雨"})
    with pytest.raises(DataError, match="x-x needs translated queries"):
        teacher.pair_texts(ts, "x-x")


class Interrupt(Exception):
    pass


class FlakyTeacher:
    """Scores by a fixed rule and dies after ``fail_after`` calls, like a preempted GPU job."""

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def score(self, queries, passages):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Interrupt()
        return np.array([len(q.text) * 0.1 - len(p.text) * 0.01 for q, p in zip(queries, passages)], dtype=np.float32)


def test_scoring_resumes_after_an_interruption_with_the_same_result(tmp_path):
    cfg = load_config("smoke", overrides=["teacher.batch_size=2", "data.max_candidates=8"])
    ts = __import__("tdlib.stages", fromlist=["x"]).training_set(cfg)
    whole = teacher.score_candidates(cfg, ts, tmp_path / "a", teacher=FlakyTeacher(), progress=False)
    with pytest.raises(Interrupt):
        teacher.score_candidates(cfg, ts, tmp_path / "b", teacher=FlakyTeacher(fail_after=1), progress=False)
    partial = tmp_path / "b" / "scores.jsonl.partial"
    assert partial.exists() and not (tmp_path / "b" / "scores.jsonl").exists()
    scored_before = len(partial.read_text().splitlines())
    assert 0 < scored_before < len(ts.queries)
    resumed_teacher = FlakyTeacher()
    resumed = teacher.score_candidates(cfg, ts, tmp_path / "b", teacher=resumed_teacher, progress=False)
    assert resumed.read_text() == whole.read_text()
    # a complete stage is reused without calling the teacher again
    idle = FlakyTeacher(fail_after=0)
    teacher.score_candidates(cfg, ts, tmp_path / "b", teacher=idle, progress=False)
    assert idle.calls == 0


def test_a_kill_between_the_final_rename_and_done_resumes_without_rescoring(tmp_path, monkeypatch):
    from tdlib.artifacts import Stage

    cfg = load_config("smoke", overrides=["teacher.batch_size=2", "data.max_candidates=8"])
    ts = __import__("tdlib.stages", fromlist=["x"]).training_set(cfg)
    whole = teacher.score_candidates(cfg, ts, tmp_path / "a", teacher=FlakyTeacher(), progress=False).read_text()

    def killed(self, summary=None):
        raise Interrupt()

    with monkeypatch.context() as m:
        m.setattr(Stage, "finish", killed)
        with pytest.raises(Interrupt):
            teacher.score_candidates(cfg, ts, tmp_path / "b", teacher=FlakyTeacher(), progress=False)
    assert (tmp_path / "b" / "scores.jsonl").exists() and not (tmp_path / "b" / "DONE").exists()
    idle = FlakyTeacher(fail_after=0)  # nothing is left to score: the teacher is never called
    again = teacher.score_candidates(cfg, ts, tmp_path / "b", teacher=idle, progress=False)
    assert again.read_text() == whole and (tmp_path / "b" / "DONE").is_file() and idle.calls == 0


def test_shards_merge_into_the_unsharded_file(tmp_path):
    cfg = load_config("smoke", overrides=["teacher.batch_size=4", "data.max_candidates=8"])
    ts = __import__("tdlib.stages", fromlist=["x"]).training_set(cfg)
    whole = teacher.score_candidates(cfg, ts, tmp_path / "one", teacher=FlakyTeacher(), progress=False)
    first = teacher.score_candidates(cfg, ts, tmp_path / "three", teacher=FlakyTeacher(), progress=False, shard=(2, 3))
    assert first.parent.name == "2-of-3" and not (tmp_path / "three" / "scores.jsonl").exists()
    teacher.score_candidates(cfg, ts, tmp_path / "three", teacher=FlakyTeacher(), progress=False, shard=(0, 3))
    merged = teacher.score_candidates(cfg, ts, tmp_path / "three", teacher=FlakyTeacher(), progress=False, shard=(1, 3))
    assert merged == tmp_path / "three" / "scores.jsonl"
    assert merged.read_text() == whole.read_text()
    # an unsharded call now reuses the merged output
    idle = FlakyTeacher(fail_after=0)
    assert teacher.score_candidates(cfg, ts, tmp_path / "three", teacher=idle, progress=False) == merged


def test_shard_argument_is_checked():
    from tdlib.artifacts import parse_shard
    from tdlib.errors import ConfigError

    assert parse_shard("3/4") == (3, 4)
    with pytest.raises(ConfigError, match="between 0 and N-1"):
        parse_shard("4/4")
    with pytest.raises(ConfigError, match="must look like I/N"):
        parse_shard("half")


def test_cross_encoder_scores_match_predict_and_ignore_batching():
    t = teacher.load_teacher(TeacherConfig(kind="cross-encoder", model="smoke:cross-encoder", batch_size=2,
                                           max_length=16))
    assert t.direct
    qs = Q + [Query("q3", "a long query " * 10)]
    ps = P + [Doc("d9", "a passage long enough to be truncated " * 5)]
    scores = t.score(qs, ps)
    pairs = [(q.text, p.text) for q, p in zip(qs, ps)]
    expected = t.model.predict(pairs, batch_size=len(pairs), activation_fn=torch.nn.Identity(), show_progress_bar=False)
    assert np.allclose(scores, expected, atol=1e-5)
    t.direct = False  # the predict path (other cross-encoder layouts) gives the same scores
    assert np.allclose(t.score(qs, ps), scores, atol=1e-5)


def test_bi_encoder_teacher_encodes_each_distinct_text_once(smoke_cfg, tmp_path):
    from dataclasses import replace

    from tdlib import stages

    cfg = replace(smoke_cfg, teacher=TeacherConfig(kind="bi-encoder", model="smoke:bi-encoder", batch_size=4))
    training = stages.training_set(cfg)
    t = teacher.load_teacher(cfg.teacher)
    fresh = teacher.load_teacher(cfg.teacher)
    teacher.score_candidates(cfg, training, tmp_path / "teacher", teacher=t, progress=False)
    distinct = len(set(training.queries.values())) + len({training.passages[p] if cfg.teacher.setting != "eng-eng"
                                                          else training.english[p]
                                                          for ps in training.candidates.values() for p in ps})
    assert t.encoded == distinct
    # the cache changes nothing: a fresh teacher scoring pair by pair gives the same scores
    qid = next(iter(training.candidates))
    pid = training.candidates[qid][0]
    one = fresh.score([Query(qid, training.queries[qid])], [Doc(pid, training.english[pid])])
    line = next(data.iter_tdist(tmp_path / "teacher" / "scores.jsonl"))
    assert line[0] == qid and dict(line[1])[pid] == pytest.approx(float(one[0]), abs=1e-5)


def test_monot5_tokens_are_checked_before_the_model_is_loaded(monkeypatch):
    import transformers

    from tdlib.errors import ConfigError

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the prediction tokens were checked")

    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", no_model)
    with pytest.raises(ConfigError, match="needs two tokens"):
        teacher.MonoT5Teacher(TeacherConfig(kind="monot5", model="smoke:monot5", prediction_tokens=["true"]))
    with pytest.raises(ConfigError, match="must each be one token"):
        teacher.MonoT5Teacher(TeacherConfig(kind="monot5", model="smoke:monot5",
                                            prediction_tokens=["false", "definitely relevant"]))
