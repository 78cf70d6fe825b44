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


def test_an_output_renamed_before_done_is_resumed_not_misread(tmp_path):
    """A kill between renaming the final file into place and writing DONE."""
    s = Stage(tmp_path / "st", "demo", {"a": 1})
    s.begin()
    s.path("out.jsonl").write_text("1\n2\n")  # renamed into place, then killed: no DONE
    again = Stage(tmp_path / "st", "demo", {"a": 1})
    assert not again.is_complete() and again.begin() is True
    partial = again.partial("out.jsonl")
    assert partial.name == "out.jsonl.partial" and partial.read_text() == "1\n2\n"
    assert not again.path("out.jsonl").exists()


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    from tdlib.artifacts import atomic_dir

    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("first")
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b"] and list(tmp_path.iterdir()) == [target]
    (tmp_path / ".model.999.tmp").mkdir()  # left by a process that was killed
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("third")
    assert list(tmp_path.iterdir()) == [target]


def test_resume_cuts_a_half_written_record_and_nothing_else(tmp_path):
    import json

    stage = Stage(tmp_path / "s", "demo", {"n": 1})
    stage.begin()
    partial = stage.partial("out.jsonl")
    # a line separator inside a text is data, not a line end: that record is complete
    complete = [json.dumps({"id": "a", "text": "one\u2028two"}, ensure_ascii=False) + "\n",
                json.dumps({"id": "b", "text": "three"}) + "\n"]
    partial.write_text("".join(complete) + '{"id": "c", "te', encoding="utf-8")

    def ids(p):
        return (json.loads(line)["id"] for line in p.read_text(encoding="utf-8").split("\n") if line)

    same, done = stage.resume("out.jsonl", True, ids)
    assert same == partial and done == {"a", "b"}
    assert partial.read_text(encoding="utf-8") == "".join(complete)
    assert [p.name for p in partial.parent.iterdir() if p.name.endswith(".tmp")] == []  # written atomically
    # not resumable (another config): the partial file goes
    assert stage.resume("out.jsonl", False, ids) == (partial, set()) and not partial.exists()


def test_shards_finishing_together_merge_once(tmp_path):
    """The merge of a sharded stage holds a lock: a shard that finds it taken leaves the merge to its
    holder, and the lock goes with the process that holds it."""
    import multiprocessing

    from tdlib.artifacts import merge_lock, merge_shards, shard_dir

    stage = Stage(tmp_path / "st", "demo", {"a": 1})
    for i in range(2):
        part = Stage(shard_dir(stage.dir, (i, 2)), "demo-shard", {"i": i})
        part.begin()
        part.path("out.txt").write_text(f"line {i}\n")
        part.finish()
    with merge_lock(tmp_path / "st-shards") as mine:
        assert mine
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:  # another process, while this one holds the lock
            assert pool.apply(merge_shards, (stage.dir, stage, 2, "out.txt")) is None
        assert not stage.is_complete()
    merged = merge_shards(stage.dir, stage, 2, "out.txt")
    assert merged.read_text() == "line 0\nline 1\n" and stage.summary() == {"merged_shards": 2}
