"""Parity with the authors' code: the same token ids, masks, vectors, MaxSim scores and passages.

The reference is PLAID-X itself (PyPI ``PLAID-X`` 0.3.3, the ``plaid-x`` branch of hltcoe/ColBERT-X),
installed without its dependencies into a folder by ``.ci/run`` (``TDLIB_PLAIDX_DIR``; it pulls a CUDA
torch otherwise). Two shims make its code run here, and neither touches what it computes:

- PLAID-X 0.3.3 does not import on Python 3.11+: its config's ``DefaultVal`` is an unhashable
  dataclass used as a field default (``colbert/infra/config/core_config.py``), which 3.11's dataclasses
  refuse; the test gives it a hash before the config classes are built, and skips the package's
  ``__init__`` (which imports the trainer).
- Its model class ``HF_ColBERT`` (``colbert/modeling/hf_colbert.py``, written for transformers 4) calls
  ``init_weights`` but never ``post_init``, which transformers 5 needs for its tied-weights
  bookkeeping; the test declares no tied weights and loads the checkpoint's tensors with
  ``load_state_dict`` instead of ``from_pretrained``.

Everything that computes is PLAID-X code: ``QueryTokenizer.tensorize``, ``DocTokenizer.tensorize``,
``ColBERT.__init__``'s punctuation skip list, ``ColBERT.query``/``doc``/``mask``/``score``
(``colbert_score``), and the passage script's ``_process_documents``. Its C++ MaxSim extension
(compiled at first use on CPU) is not used by these functions and is not built.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import types
from argparse import Namespace
from pathlib import Path

import pytest
import torch

PLAIDX_VERSION = "0.3.3"
PLAIDX_DIR = Path(os.environ.get("TDLIB_PLAIDX_DIR", Path(__file__).parents[1] / ".ci" / "plaidx"))
if not (PLAIDX_DIR / "colbert" / "modeling" / "colbert.py").is_file():
    if os.environ.get("CI"):
        raise RuntimeError(f"PLAID-X is not in {PLAIDX_DIR}; .ci/run installs it with pip install --no-deps "
                           f"--target {PLAIDX_DIR} PLAID-X=={PLAIDX_VERSION}.")
    pytest.skip(f"PLAID-X is not in {PLAIDX_DIR}: pip install --no-deps --target {PLAIDX_DIR} "
                f"PLAID-X=={PLAIDX_VERSION} (and GitPython ujson more-itertools), as .ci/run does",
                allow_module_level=True)

from tdlib.student import load_plaidx, write_plaidx_layout  # noqa: E402
from tdlib.config import StudentConfig  # noqa: E402
from tdlib.smoke import build  # noqa: E402
from tdlib.student import Student  # noqa: E402

QUERIES = [
    "rain in the city",
    "what did the minister say about the new bridge, and why? (2021)",
    "a very long query " + " ".join(f"word{i}" for i in range(40)),  # longer than query_maxlen
]
DOCS = [
    "The river flooded; the bridge closed. Officials said: \"no one was hurt!\"",
    "Short.",
    "长江 的 水位 上涨 了 , 城市 关闭 了 桥梁 。",
    "Дождь шёл весь день, и мост закрыли — сказали власти.",
    " ".join(["the storm, the wind; the rain."] * 30),  # longer than doc_maxlen
]


def _bert_checkpoint(folder: Path) -> Path:
    """A tiny BERT ColBERT-X checkpoint in the PLAID-X layout (markers added to the vocabulary)."""
    smoke = Student.from_pretrained("smoke:encoder", StudentConfig(model="smoke:encoder", dim=32), seed=7)
    smoke.tokenizer.add_tokens(["[unused0]", "[unused1]"])
    smoke.encoder.resize_token_embeddings(len(smoke.tokenizer))
    student = Student(smoke.encoder, smoke.tokenizer, StudentConfig(
        model="", dim=32, query_maxlen=16, doc_maxlen=48, query_marker="[unused0]", doc_marker="[unused1]"),
        smoke.projection)
    return write_plaidx_layout(student, folder, base_prefix="bert")


def _exported_checkpoint(folder: Path) -> Path:
    """A student saved in tdlib's own folder format, then exported with ``python -m tdlib export``: the
    route a student fine-tuned here (from a PLAID-X checkpoint, as chapter 7 does) takes to PLAID-X."""
    import subprocess

    Student.from_pretrained(str(build("plaidx"))).save(folder / "tdlib-student")
    proc = subprocess.run([sys.executable, "-m", "tdlib", "export", "--profile", "smoke", "--out", str(folder / "out"),
                           "--student", str(folder / "tdlib-student"), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    exported = Path(proc.stdout.strip().splitlines()[-1])
    assert exported == folder / "out" / "plaidx" / "checkpoint" and (exported / "artifact.metadata").is_file()
    return exported


@pytest.fixture(params=["xlm-roberta", "bert", "exported"])
def checkpoint(request, tmp_path) -> Path:
    folder = tmp_path / request.param
    if request.param == "xlm-roberta":
        shutil.copytree(build("plaidx"), folder)
    elif request.param == "bert":
        _bert_checkpoint(folder)
    else:
        folder = _exported_checkpoint(folder)
    return folder


def _set_metadata(folder: Path, **settings) -> None:
    meta = json.loads((folder / "artifact.metadata").read_text())
    meta.update(settings)
    (folder / "artifact.metadata").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def plaidx():
    """PLAID-X's modules, imported from PLAIDX_DIR; any other ``colbert`` package is set aside meanwhile."""
    saved = {k: v for k, v in sys.modules.items() if k == "colbert" or k.startswith("colbert.")}
    for k in saved:
        del sys.modules[k]
    root = PLAIDX_DIR / "colbert"
    for name, path in (("colbert", root), ("colbert.infra", root / "infra"),
                       ("colbert.infra.config", root / "infra" / "config")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(path)]
        sys.modules[name] = stub
    core = importlib.import_module("colbert.infra.config.core_config")
    core.DefaultVal.__hash__ = lambda self: hash(repr(self.val))  # shim 1 (see the module docstring)
    del sys.modules["colbert.infra"], sys.modules["colbert.infra.config"]  # now run their real __init__
    mods = Namespace(
        infra=importlib.import_module("colbert.infra"),
        base=importlib.import_module("colbert.modeling.base_colbert"),
        colbert=importlib.import_module("colbert.modeling.colbert"),
        tokenization=importlib.import_module("colbert.modeling.tokenization"),
        passages=importlib.import_module("colbert.scripts.collection_utils"),
    )
    assert Path(mods.colbert.__file__).is_relative_to(PLAIDX_DIR)
    yield mods
    for k in [k for k in sys.modules if k == "colbert" or k.startswith("colbert.")]:
        del sys.modules[k]
    sys.modules.update(saved)


def _upstream(folder: Path, plaidx, monkeypatch):
    """PLAID-X's tokenizers and ColBERT model for a checkpoint folder (CPU)."""
    import transformers
    from safetensors.torch import load_file

    real_factory = plaidx.base.class_factory

    def loadable_factory(name):
        cls = real_factory(name)
        cls.all_tied_weights_keys = {}  # shim 2: the model ties no weights

        def from_pretrained(path, colbert_config):  # the one step that fails under transformers 5
            model = cls(transformers.AutoConfig.from_pretrained(path), colbert_config)
            missing, unexpected = model.load_state_dict(load_file(str(Path(path) / "model.safetensors")), strict=False)
            assert not unexpected and all(".pooler." in k for k in missing), (missing, unexpected)
            return model.eval()

        cls.from_pretrained = staticmethod(from_pretrained)
        return cls

    monkeypatch.setattr(plaidx.base, "class_factory", loadable_factory)
    monkeypatch.setattr(plaidx.colbert.ColBERT, "loaded_extensions", True, raising=False)  # no C++ build
    ColBERTConfig = plaidx.infra.ColBERTConfig
    config = ColBERTConfig.load_from_checkpoint(str(folder))  # reads artifact.metadata
    config = ColBERTConfig.from_existing(config, ColBERTConfig(checkpoint=str(folder), model_name=str(folder), gpus=0))
    model = plaidx.colbert.ColBERT(name=str(folder), colbert_config=config).eval()
    return plaidx.tokenization.QueryTokenizer(config), plaidx.tokenization.DocTokenizer(config), model


@pytest.mark.parametrize("attend", [False, True])
def test_same_tokens_vectors_and_scores_as_upstream(checkpoint, attend, plaidx, monkeypatch):
    _set_metadata(checkpoint, attend_to_mask_tokens=attend)
    q_tok, d_tok, model = _upstream(checkpoint, plaidx, monkeypatch)
    student = load_plaidx(str(checkpoint))
    assert student.config.attend_to_mask_tokens is attend and student.config.mask_punctuation

    # Tokenisation: ids and attention masks.
    uq_ids, uq_mask = q_tok.tensorize(QUERIES)
    ud_ids, ud_mask = d_tok.tensorize(DOCS)
    q = student.tokenize(QUERIES, is_query=True)
    d = student.tokenize(DOCS, is_query=False)
    assert torch.equal(q["input_ids"], uq_ids) and torch.equal(q["attention_mask"], uq_mask)
    assert torch.equal(d["input_ids"], ud_ids) and torch.equal(d["attention_mask"], ud_mask)
    assert (uq_ids == student.tokenizer.mask_token_id).any()  # queries were augmented
    assert not bool(uq_mask.all()) is not attend  # [MASK] attended to only when asked

    with torch.inference_mode():
        # Query vectors: every position scores (upstream masks pads only, and pads became [MASK]).
        uq = model.query(uq_ids, uq_mask)
        tq, tq_mask = student.embed(q["input_ids"], q["attention_mask"], is_query=True)
        assert torch.equal(tq_mask.bool(), torch.tensor(model.mask(uq_ids, skiplist=[])))
        assert torch.allclose(tq, uq, atol=1e-5)
        # Document vectors: punctuation and padding left out.
        ud, ud_keep = model.doc(ud_ids, ud_mask, keep_dims="return_mask")
        td, td_mask = student.embed(d["input_ids"], d["attention_mask"], is_query=False)
        assert torch.equal(td_mask.bool(), ud_keep.squeeze(-1))
        assert (~ud_keep.squeeze(-1) & ud_mask.bool()).any()  # some real tokens were punctuation
        keep = td_mask.bool()
        assert torch.allclose(td[keep], ud[keep], atol=1e-5)
        # The index keeps the same vectors per document as upstream's doc(keep_dims=False).
        indexed = student.encode(DOCS, is_query=False, batch_size=2)
        for mine, theirs in zip(indexed, model.doc(ud_ids, ud_mask, keep_dims=False)):
            assert torch.allclose(mine.float(), theirs, atol=2e-3)  # tdlib stores float16
        # MaxSim of every query with every document.
        n_q, n_d = len(QUERIES), len(DOCS)
        upstream_scores = model.score(uq.repeat_interleave(n_d, 0), ud.repeat(n_q, 1, 1),
                                      ud_keep.repeat(n_q, 1, 1)).view(n_q, n_d)
        from tdlib.student import maxsim

        assert torch.allclose(maxsim(tq, tq_mask, td, td_mask), upstream_scores, atol=1e-4)
        # and the training forward pass (each query with its own passages) agrees too
        ids = d["input_ids"].repeat(n_q, 1)
        mask = d["attention_mask"].repeat(n_q, 1)
        assert torch.allclose(student(q["input_ids"], q["attention_mask"], ids, mask), upstream_scores, atol=1e-4)


def test_punctuation_skip_list_is_upstreams(checkpoint, plaidx, monkeypatch):
    _, _, model = _upstream(checkpoint, plaidx, monkeypatch)
    student = load_plaidx(str(checkpoint))
    upstream_ids = {k for k in model.skiplist if isinstance(k, int)}
    assert student.punctuation_ids() == upstream_ids


def test_without_punctuation_masking_every_document_token_scores(checkpoint, plaidx, monkeypatch):
    _set_metadata(checkpoint, mask_punctuation=False)
    _, d_tok, model = _upstream(checkpoint, plaidx, monkeypatch)
    student = load_plaidx(str(checkpoint))
    ids, mask = d_tok.tensorize(DOCS)
    with torch.inference_mode():
        _, keep = model.doc(ids, mask, keep_dims="return_mask")
        _, td_mask = student.embed(ids, mask, is_query=False)
    assert torch.equal(td_mask.bool(), keep.squeeze(-1)) and torch.equal(td_mask, mask)


def test_same_passages_as_the_authors_passage_script(checkpoint, plaidx, tmp_path):
    """PLAID-X's create_passage_collection (180 tokens, its --stride 90 = overlap) against split_passages."""
    from tdlib.retrieve import split_passages

    student = load_plaidx(str(checkpoint))
    tok = student.tokenizer
    docs = [{"id": "d0", "title": "Floods in the north", "text": DOCS[4]},
            {"id": "d1", "text": DOCS[0]},
            {"id": "d2", "text": " ".join(DOCS) * 3}]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    for length, step in ((180, 90), (48, 24), (40, 30)):
        args = Namespace(corpus=str(corpus), docid="id", title="title", body="text", lower=False,
                         tokenizer=tok, length=length, stride=length - step)
        theirs = {}
        for text, pid in plaidx.passages._process_documents(args):
            theirs.setdefault(pid.rsplit("_", 1)[0], []).append(text)
        for d in docs:
            text = f"{d['title']} {d['text']}" if d.get("title") else d["text"]
            assert split_passages(text, tok, length, step) == theirs[d["id"]], (d["id"], length, step)
