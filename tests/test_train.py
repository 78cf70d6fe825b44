import json
import logging
import os

import pytest
import torch
from transformers import TrainerCallback

from tdlib import stages
from tdlib.config import load_config
from tdlib.data import write_tdist
from tdlib.errors import DataError
from tdlib.student import Student
from tdlib.examples import TrainingExamples
from tdlib.train import read_log, train_student


class Preempted(Exception):
    pass


class PreemptAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Preempted()


def _weights(folder):
    s = Student.from_pretrained(str(folder))
    return {k: v.clone() for k, v in s.state_dict().items()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = load_config("smoke", overrides=["train.max_steps=8", "train.save_steps=4", "data.max_candidates=8"])
    root = tmp_path_factory.mktemp("train")
    ts = stages.training_set(cfg)
    scores = stages.score(cfg, root, progress=False)
    return cfg, ts, scores, root


def test_interrupted_training_resumes_to_the_identical_student(setup):
    cfg, ts, scores, root = setup
    whole = train_student(cfg, ts, root / "whole", scores_file=scores, progress=False)
    with pytest.raises(Preempted):
        train_student(cfg, ts, root / "cut", scores_file=scores, progress=False, callbacks=[PreemptAt(6)])
    assert not (root / "cut" / "DONE").exists()
    resumed = train_student(cfg, ts, root / "cut", scores_file=scores, progress=False)
    assert json.loads((root / "cut" / "DONE").read_text())["resumed_from"] == "checkpoint-4"
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the student moved away from its starting point
    start = Student.from_pretrained(cfg.student.model, cfg.student, seed=cfg.seed).state_dict()
    assert not torch.equal(start["projection.weight"], a["projection.weight"])
    losses = [e["loss"] for e in read_log(root / "whole")]
    assert len(losses) == 4 and all(l >= 0 for l in losses)


def _stop_in_save_model(monkeypatch, step):
    """Killed right after the Trainer created checkpoint-STEP: the folder holds only a temporary file."""
    from transformers import Trainer

    real = Trainer.save_model

    def save_model(self, output_dir=None, _internal_call=False):
        if output_dir and output_dir.endswith(f"checkpoint-{step}"):
            os.makedirs(output_dir, exist_ok=True)
            open(os.path.join(output_dir, "tmp3f9a.safetensors"), "wb").close()
            raise Preempted()
        return real(self, output_dir, _internal_call)

    monkeypatch.setattr(Trainer, "save_model", save_model)


def _stop_in_trainer_state(monkeypatch, step):
    """Killed while writing trainer_state.json, the last file of checkpoint-STEP: weights and optimizer are there."""
    from transformers import TrainerState

    real = TrainerState.save_to_json

    def save_to_json(self, json_path):
        if f"checkpoint-{step}" in json_path:
            with open(json_path, "w") as f:
                f.write('{"best_global_step": null, "global_st')
            raise Preempted()
        return real(self, json_path)

    monkeypatch.setattr(TrainerState, "save_to_json", save_to_json)


@pytest.mark.parametrize("stop", [_stop_in_save_model, _stop_in_trainer_state])
def test_a_kill_inside_a_checkpoint_write_is_skipped_on_resume(setup, monkeypatch, caplog, stop):
    cfg, ts, scores, root = setup
    whole = train_student(cfg, ts, root / "whole", scores_file=scores, progress=False)  # reused if built
    out = root / f"cut-{stop.__name__}"
    with monkeypatch.context() as m:
        stop(m, 8)
        with pytest.raises(Preempted):
            train_student(cfg, ts, out, scores_file=scores, progress=False)
    assert (out / "checkpoints" / "checkpoint-8").is_dir() and not (out / "DONE").exists()
    with caplog.at_level(logging.WARNING, logger="tdlib.train"):
        resumed = train_student(cfg, ts, out, scores_file=scores, progress=False)
    said = [r.getMessage() for r in caplog.records if r.name == "tdlib.train"]
    assert len(said) == 1 and "checkpoint-8 was not completely written" in said[0]
    assert "resuming from checkpoint-4" in said[0] and "\n" not in said[0]
    assert json.loads((out / "DONE").read_text())["resumed_from"] == "checkpoint-4"
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_point_starts_over_when_no_checkpoint_is_complete(tmp_path, caplog):
    from tdlib.train import resume_point

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{")
    (tmp_path / "checkpoint-10").mkdir()
    (tmp_path / "other").mkdir()
    with caplog.at_level(logging.WARNING, logger="tdlib.train"):
        assert resume_point(tmp_path) is None
    assert "checkpoint-10, checkpoint-2 were not completely written" in caplog.text
    assert "starting over" in caplog.text and len(caplog.records) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "trainer_state.json").write_text("{}")
    assert resume_point(tmp_path) == str(tmp_path / "checkpoint-3")


def test_translate_train_baseline_trains(setup):
    cfg, ts, _, root = setup
    tt = load_config("smoke", overrides=["train.method=translate-train", "train.max_steps=4", "data.max_candidates=8"])
    folder = train_student(tt, ts, root / "tt", progress=False)
    assert (folder / "tdlib_student.json").is_file()
    assert read_log(root / "tt")[0]["loss"] > 0


def test_sampling_random_and_top(setup):
    cfg, ts, scores, _ = setup
    table = {q: dict(p) for q, p in __import__("tdlib.data", fromlist=["x"]).read_tdist(scores).items()}
    ex = TrainingExamples(ts, cfg, table, epochs=2)
    first, second = ex[0], ex[len(ts.queries)]  # the same query in two epochs
    assert first["query"] == second["query"] and len(first["passages"]) == cfg.train.n_passages
    assert ex[0] == ex[0]  # deterministic per index
    top = TrainingExamples(ts, load_config("smoke", overrides=["train.sampling=top"]), table)[0]
    assert top["teacher"] == sorted(top["teacher"], reverse=True)
    assert top["teacher"][0] == max(table[sorted(ts.queries)[0]].values())


def test_too_few_scored_candidates_fails_before_training(setup, tmp_path):
    cfg, ts, _, _ = setup
    qid = sorted(ts.queries)[0]
    write_tdist(tmp_path / "s.jsonl", [(q, [(p, 0.0) for p in ts.candidates[q][:2]]) for q in ts.queries])
    with pytest.raises(DataError, match=f"query {qid} has 2 scored candidates, fewer than train.n_passages=4"):
        train_student(cfg, ts, tmp_path / "t", scores_file=tmp_path / "s.jsonl", progress=False)
    assert not (tmp_path / "t" / "DONE").exists()


def test_translate_train_uses_the_judged_positive_even_outside_the_candidates():
    """MS MARCO's judged passage is often not among a query's 50 candidates; TT still trains on it."""
    from tdlib.examples import TrainingSet

    ts = TrainingSet(queries={"q": "rain"}, passages={"pos": "雨", "a": "晴", "b": "风", "c": "雪"},
                     english={}, candidates={"q": ["a", "b", "c"]}, positives={"q": {"pos"}})
    tt = load_config("smoke", overrides=["train.method=translate-train", "train.n_passages=3"])
    example = TrainingExamples(ts, tt, None)[0]
    assert example["passages"][0] == "雨" and set(example["passages"][1:]) <= {"晴", "风", "雪"}
    with pytest.raises(DataError, match="no judged positive"):
        TrainingExamples(ts._replace(positives={"q": set()}), tt, None)


def test_softmax_entropies_of_the_training_groups(smoke_cfg, tmp_path):
    from tdlib import stages
    from tdlib.data import TdistIndex
    from tdlib.student import Student
    from tdlib.train import softmax_entropies

    scores = TdistIndex(stages.score(smoke_cfg, tmp_path, progress=False))
    training = stages.training_set(smoke_cfg)
    student = Student.from_pretrained(smoke_cfg.student.model, smoke_cfg.student, seed=0)
    h = softmax_entropies(smoke_cfg, training, scores, student, groups=10, batch_queries=4)
    assert len(h["teacher"]) == len(h["student"]) == 10
    assert all(0.0 <= x <= 1.0 + 1e-6 for x in h["teacher"] + h["student"])
    # a teacher temperature 100 times larger flattens its softmax
    from dataclasses import replace

    hot = replace(smoke_cfg, train=replace(smoke_cfg.train, teacher_temperature=100.0))
    assert sum(softmax_entropies(hot, training, scores, groups=10)["teacher"]) > sum(h["teacher"])


def test_frozen_word_embeddings_stay_put_while_the_rest_learns(setup):
    cfg, ts, scores, root = setup
    frozen = load_config("smoke", overrides=["train.max_steps=4", "train.save_steps=4", "data.max_candidates=8",
                                             "train.freeze_embeddings=true"])
    after = _weights(train_student(frozen, ts, root / "frozen", scores_file=scores, progress=False))
    start = Student.from_pretrained(cfg.student.model, cfg.student, seed=cfg.seed).state_dict()
    key = "encoder.embeddings.word_embeddings.weight"
    assert torch.equal(start[key], after[key])
    assert not torch.equal(start["encoder.encoder.layer.0.attention.self.query.weight"],
                           after["encoder.encoder.layer.0.attention.self.query.weight"])
