import json

import pytest

from tdlib.config import PROFILES, Config, default_temperatures, load_config
from tdlib.errors import ConfigError


def test_defaults_are_the_papers_recipe():
    cfg = Config()
    assert (cfg.train.n_passages, cfg.train.lr, cfg.train.max_steps, cfg.train.batch_queries) == (6, 5e-6, 200_000, 8)
    assert (cfg.student.dim, cfg.student.query_maxlen, cfg.student.doc_maxlen) == (128, 32, 220)
    assert (cfg.index.passage_tokens, cfg.index.stride, cfg.data.max_candidates) == (180, 90, 50)
    assert cfg.train.sampling == "random"
    assert default_temperatures(cfg) == (1.0, 1.0)  # the paper distils with no temperature


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_resolves(profile):
    assert load_config(profile).profile == profile


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("TDLIB_PROFILE", "smoke")
    assert load_config().student.model == "smoke:encoder"


def test_file_then_overrides(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"train": {"lr": 0.5, "sampling": "top"}, "lang": "fa"}))
    cfg = load_config("smoke", tmp_path / "c.json", ["train.lr=0.25", "evaluate.measures=AP,nDCG@20",
                                                      "data.max_train_queries=none"])
    assert (cfg.train.lr, cfg.train.sampling, cfg.lang) == (0.25, "top", "fa")
    assert cfg.evaluate.measures == ("AP", "nDCG@20") and cfg.data.max_train_queries is None
    assert cfg.fill("tdlib-mini/{lang}/test") == "tdlib-mini/fa/test"


def test_config_is_frozen():
    with pytest.raises(Exception):
        load_config("smoke").train.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("content,match", [
    ('[{"train": {"lr": 0.1}}]', r"c\.json holds a JSON list; it must hold one object of settings"),
    ('"smoke"', r"c\.json holds a JSON str"),
    ('{"train": {"lr": 0.1', r"c\.json is not valid JSON \(line 1\)"),
    ('{"lang": "caf\xe9"}'.encode("latin-1"), r"c\.json is not UTF-8 text"),
    (None, r"c\.json is a folder; give the path of a JSON file"),
])
def test_bad_config_files_are_one_sentence(tmp_path, content, match):
    path = tmp_path / "c.json"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_config("smoke", path)


@pytest.mark.parametrize("override,match", [
    ("train.nope=1", "unknown setting 'nope'"),
    ("train.lr=fast", "'fast' is not a valid float"),
    ("train.n_passages=1", "at least 2"),
    ("teacher.setting=fr-fr", "teacher.setting is 'fr-fr'"),
    ("lr", "must look like section.setting=value"),
    ("teacher.kind=precomputed", "needs teacher.scores_file"),
])
def test_bad_settings_are_one_sentence(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config("smoke", overrides=[override])


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        load_config("gpu")
