import pytest

from tdlib.artifacts import Stage, atomic_path, atomic_write_text


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    atomic_write_text(target, "whole")
    assert target.read_text() == "whole"


def test_stage_reuse_resume_and_clear(tmp_path):
    s = Stage(tmp_path / "st", "demo", {"a": 1})
    assert s.begin() is False  # nothing to resume
    s.path("x.partial").write_text("part")
    assert Stage(tmp_path / "st", "demo", {"a": 1}).begin() is True  # same config: resume
    assert s.path("x.partial").exists()
    s.finish({"n": 1})
    assert Stage(tmp_path / "st", "demo", {"a": 1}).is_complete()
    other = Stage(tmp_path / "st", "demo", {"a": 2})
    assert not other.is_complete()
    assert other.begin() is False and not s.path("x.partial").exists()  # stale outputs cleared
