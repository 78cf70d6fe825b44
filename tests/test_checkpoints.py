import json
import shutil

import pytest
import torch

from tdlib.checkpoints import read_metadata
from tdlib.errors import ModelError
from tdlib.smoke import build
from tdlib.student import Student, load_plaidx


@pytest.fixture
def plaidx(tmp_path):
    folder = tmp_path / "plaidx-tiny"
    shutil.copytree(build("plaidx"), folder)
    return folder


def test_layout_matches_released_checkpoints(plaidx):
    from safetensors.torch import load_file

    keys = load_file(str(plaidx / "model.safetensors")).keys()
    assert "linear.weight" in keys and all(k == "linear.weight" or k.startswith("roberta.") for k in keys)
    assert json.loads((plaidx / "config.json").read_text())["model_type"] == "xlm-roberta"
    meta = read_metadata(plaidx)
    assert meta["query_token_id"] == "[unused0]" and meta["doc_token_id"] == "[unused1]"


def test_loads_into_the_student_with_markers_and_mask_padding(plaidx):
    student = load_plaidx(str(plaidx))
    assert student.config.kind == "colbert" and student.config.dim == 32
    q = student.tokenize(["rain in the city"], is_query=True)
    d = student.tokenize(["the river flooded"], is_query=False)
    tok = student.tokenizer
    assert q["input_ids"][0, 0] == tok.cls_token_id
    assert q["input_ids"][0, 1] == tok.convert_tokens_to_ids("[unused0]")
    assert d["input_ids"][0, 1] == tok.convert_tokens_to_ids("[unused1]")
    assert q["input_ids"].shape[1] == 16 and (q["input_ids"][0] == tok.mask_token_id).any()
    # the generic loader recognises the layout too, and scores match
    same = Student.from_pretrained(str(plaidx))
    a = student(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"])
    b = same(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"])
    assert torch.allclose(a, b)


def test_refuses_mismatched_shapes_and_pickles(plaidx):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(plaidx / "model.safetensors"))
    tensors["linear.weight"] = torch.zeros(32, 48)
    save_file(tensors, str(plaidx / "model.safetensors"))
    with pytest.raises(ModelError, match=r"linear.weight has shape \(32, 48\).*hidden size is 64"):
        load_plaidx(str(plaidx))
    (plaidx / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"x": Evil()}, plaidx / "pytorch_model.bin")
    with pytest.raises(ModelError, match="more than plain tensors"):
        load_plaidx(str(plaidx))


def test_missing_metadata_is_explained(tmp_path):
    with pytest.raises(ModelError, match="does not look like a PLAID-X checkpoint"):
        read_metadata(tmp_path)


def test_refuses_what_it_would_otherwise_load_wrongly(plaidx, tmp_path):
    """Three broken copies that used to load without a word (chapter 7, exercise 4)."""
    def copy(name):
        return shutil.copytree(plaidx, tmp_path / name)

    fewer = copy("fewer-layers")
    config = json.loads((fewer / "config.json").read_text())
    config["num_hidden_layers"] -= 1
    (fewer / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"stored weights have no place in it, e\.g\. encoder\.layer\.1\."):
        load_plaidx(str(fewer))

    l2 = copy("l2")
    meta = json.loads((l2 / "artifact.metadata").read_text())
    meta["similarity"] = "l2"
    (l2 / "artifact.metadata").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="similarity='l2'.*cosine only"):
        load_plaidx(str(l2))

    bare = copy("no-metadata")
    (bare / "artifact.metadata").unlink()
    with pytest.raises(ModelError, match="PLAID-X weights .* but no artifact.metadata"):
        Student.from_pretrained(str(bare))
    # the intact copy still loads both ways
    assert Student.from_pretrained(str(plaidx)).config.kind == "colbert"


def test_a_student_without_marker_tokens_is_not_exported_to_plaidx(tmp_path):
    from tdlib import stages
    from tdlib.config import load_config

    cfg = load_config("smoke")
    Student.from_pretrained("smoke:encoder", cfg.student).save(tmp_path / "student")
    with pytest.raises(ModelError, match="reads no marker tokens"):
        stages.export(cfg, tmp_path / "out", student=str(tmp_path / "student"))
