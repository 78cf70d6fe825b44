import json

from tdlib.config import TranslateConfig
from tdlib.data import Doc
from tdlib.translate import Translator, join_sentences, split_sentences, translate_docs


def test_sentence_split_and_join():
    assert split_sentences("Dr. Who arrived. It rained! Was it 3.5 mm? Yes") == [
        "Dr.", "Who arrived.", "It rained!", "Was it 3.5 mm?", "Yes"]
    assert split_sentences("一句。两句！") == ["一句。", "两句！"]
    assert join_sentences(["一句。", "两句。"], "zh") == "一句。两句。"
    assert join_sentences(["Раз.", "Два."], "ru") == "Раз. Два."


def test_translation_stage_keeps_ids_and_resumes(tmp_path):
    cfg = TranslateConfig(model="smoke:translator", batch_size=4, max_length=12)
    docs = [Doc(f"p{i}", f"Sentence number {i}. Another one here.") for i in range(7)]
    translator = Translator(cfg, "ru")
    out = translate_docs(cfg, docs, "ru", tmp_path / "t", chunk=3, progress=False, translator=translator)
    rows = [json.loads(l) for l in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [d.doc_id for d in docs]
    assert all(r["lang"] == "ru" and r["text"] for r in rows)
    # resume: cut the output back to a partial file with two records and half a line
    partial = tmp_path / "t2" / "passages.jsonl.partial"
    first = translate_docs(cfg, docs, "ru", tmp_path / "t2", chunk=3, progress=False, translator=translator)
    lines = first.read_text(encoding="utf-8").splitlines(keepends=True)
    first.unlink()
    (tmp_path / "t2" / "DONE").unlink()
    partial.write_text("".join(lines[:2]) + lines[2][:10], encoding="utf-8")
    again = translate_docs(cfg, docs, "ru", tmp_path / "t2", chunk=3, progress=False, translator=translator)
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "t2" / "DONE").read_text())["translated_now"] == 5


def test_a_kill_between_the_final_rename_and_done_resumes_without_retranslating(tmp_path, monkeypatch):
    import pytest

    from tdlib.artifacts import Stage

    cfg = TranslateConfig(model="smoke:translator", batch_size=4, max_length=8)
    docs = [Doc(f"p{i}", f"Sentence number {i}.") for i in range(5)]
    translator = Translator(cfg, "fa")

    def killed(self, summary=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Stage, "finish", killed)
        with pytest.raises(KeyboardInterrupt):
            translate_docs(cfg, docs, "fa", tmp_path / "t", progress=False, translator=translator)
    first = (tmp_path / "t" / "passages.jsonl").read_text(encoding="utf-8")

    class Refuses:
        def translate(self, texts):
            raise AssertionError("nothing should be left to translate")

    again = translate_docs(cfg, docs, "fa", tmp_path / "t", progress=False, translator=Refuses())
    assert again.read_text(encoding="utf-8") == first
    assert json.loads((tmp_path / "t" / "DONE").read_text())["translated_now"] == 0


def test_translation_shards_merge_in_order(tmp_path):
    cfg = TranslateConfig(model="smoke:translator", batch_size=4, max_length=8)
    docs = [Doc(f"p{i}", f"Sentence number {i}.") for i in range(5)]
    translator = Translator(cfg, "zh")
    whole = translate_docs(cfg, docs, "zh", tmp_path / "one", progress=False, translator=translator)
    translate_docs(cfg, docs, "zh", tmp_path / "two", progress=False, translator=translator, shard=(1, 2))
    merged = translate_docs(cfg, docs, "zh", tmp_path / "two", progress=False, translator=translator, shard=(0, 2))
    assert merged.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")
