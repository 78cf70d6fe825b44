"""Each profile's temperatures keep both softmaxes informative: neither one-hot nor flat.

Synthetic scores of the scale each kind of scorer gives: cross-encoder / MonoT5 logits spread over
about 10 units, cosines (a single-vector student, a bi-encoder teacher) within 0.3, ColBERT MaxSim a
sum of ``query_maxlen`` cosines. Groups of ``n_passages`` are drawn from 50 candidates, as in training.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tdlib.config import PROFILES, default_temperatures, load_config
from tdlib.losses import kl_distillation, normalised_entropy

ONE_HOT, FLAT = 0.05, 0.95


def synthetic_scores(kind: str, groups: int, n: int, query_maxlen: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if kind in ("cross-encoder", "monot5", "precomputed"):
        candidates = rng.uniform(-5.0, 5.0, (groups, 50))  # logits spread over 10 units
    elif kind in ("bi-encoder", "single"):
        candidates = rng.uniform(0.5, 0.8, (groups, 50))  # cosines within 0.3
    elif kind == "colbert":
        candidates = query_maxlen * rng.uniform(0.5, 0.8, (groups, 50))  # a sum of per-token cosines
    else:
        raise ValueError(kind)
    chosen = np.stack([rng.choice(50, n, replace=False) for _ in range(groups)])
    return torch.tensor(np.take_along_axis(candidates, chosen, axis=1), dtype=torch.float32)


CASES = [(p, ()) for p in PROFILES] + [
    # the real stand-ins the book uses where no cross-encoder can be had
    ("cpu", ("teacher.kind=bi-encoder", "teacher.model=sentence-transformers/all-MiniLM-L6-v2")),
    ("paper", ("teacher.kind=precomputed", "teacher.scores_file=x.jsonl.gz")),
    ("paper", ("student.kind=single",)),
]


@pytest.mark.parametrize("profile,overrides", CASES)
def test_profile_temperatures_are_not_degenerate(profile, overrides):
    cfg = load_config(profile, overrides=list(overrides))
    t_student, t_teacher = default_temperatures(cfg)
    n = cfg.train.n_passages
    teacher = synthetic_scores(cfg.teacher.kind, 400, n, cfg.student.query_maxlen, seed=1)
    student = synthetic_scores(cfg.student.kind, 400, n, cfg.student.query_maxlen, seed=2)
    for side, scores, t in (("teacher", teacher, t_teacher), ("student", student, t_student)):
        h = float(normalised_entropy(scores, t).mean())
        assert ONE_HOT < h < FLAT, f"{profile} {overrides}: the {side}'s softmax at T={t} has entropy {h:.3f}"


def test_one_temperature_for_both_sides_was_degenerate():
    # What the cpu profile did before: a cross-encoder teacher at T = 0.05 is one-hot (hard labels) ...
    logits = synthetic_scores("cross-encoder", 400, 6, 32, seed=1)
    assert float(normalised_entropy(logits, 0.05).mean()) < ONE_HOT
    # ... and a cosine side at T = 1 is flat.
    cosines = synthetic_scores("single", 400, 6, 32, seed=2)
    assert float(normalised_entropy(cosines, 1.0).mean()) > FLAT


def test_resolved_temperatures_are_written_into_the_config():
    cfg = load_config("cpu")
    assert (cfg.train.student_temperature, cfg.train.teacher_temperature) == (0.05, 1.0)
    cfg = load_config("cpu", overrides=["train.teacher_temperature=0.5"])
    assert (cfg.train.student_temperature, cfg.train.teacher_temperature) == (0.05, 0.5)


def test_kl_with_two_temperatures_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(3, 6)), rng.normal(size=(3, 6)) * 4

    def softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_s, p_t = softmax(s / 0.05), softmax(t / 1.0)
    expected = float(np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1)))
    got = float(kl_distillation(torch.tensor(s), torch.tensor(t), student_temperature=0.05, teacher_temperature=1.0))
    assert got == pytest.approx(expected, rel=1e-4)
    # one temperature still means both sides
    assert float(kl_distillation(torch.tensor(s), torch.tensor(t), 0.5)) == pytest.approx(
        float(kl_distillation(torch.tensor(s), torch.tensor(t), student_temperature=0.5, teacher_temperature=0.5)))


def test_normalised_entropy_by_hand():
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, divided by ln 3
    scores = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert float(normalised_entropy(scores)) == pytest.approx(1.5 * math.log(2) / math.log(3), abs=1e-6)
