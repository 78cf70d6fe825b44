"""Tiny models built in code for the ``smoke`` profile: no download, seconds, deterministic.

``build(kind)`` writes a Hugging Face folder under ``$TDLIB_CACHE/smoke`` (default
``~/.cache/tdlib/smoke``) and returns its path, so smoke models load through exactly the same code as
real ones (``AutoModel.from_pretrained``, ``CrossEncoder``, ``SentenceTransformer``). The kinds:

- ``encoder``: a 2-layer BERT with 64-dimensional states (the student);
- ``cross-encoder``: the same BERT with a one-logit head (a ``CrossEncoder`` teacher);
- ``bi-encoder``: the encoder with mean pooling as a sentence-transformers folder;
- ``monot5``: a 2-layer T5 whose vocabulary has the words "true" and "false";
- ``translator``: a 2-layer Marian encoder-decoder (translation with random weights: shape, not meaning);
- ``plaidx``: a 2-layer XLM-RoBERTa ColBERT-X checkpoint in the released PLAID-X layout.

All share one WordPiece tokenizer trained on the texts of the embedded mini collection, in all four
languages. Weights are random but fixed by the seed. What this leaves out: any model quality; smoke
checks that the pipeline runs and is wired right, the ``cpu`` profile checks that it learns.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import torch

from tdlib.data import MINI_DIR, iter_jsonl

VERSION = 5
SEED = 1234
VOCAB_SIZE = 4000
KINDS = ("encoder", "cross-encoder", "bi-encoder", "monot5", "translator", "plaidx")


def cache_root() -> Path:
    return Path(os.environ.get("TDLIB_CACHE", Path.home() / ".cache" / "tdlib")) / "smoke"


def _corpus_files() -> list[Path]:
    patterns = ("test/docs.*.jsonl", "test/topics.jsonl", "train/passages.*.jsonl", "train/queries.tsv")
    return sorted(p for pattern in patterns for p in MINI_DIR.glob(pattern))


def _texts() -> Iterator[str]:
    for p in _corpus_files():
        if p.suffix == ".tsv":
            for line in p.read_text(encoding="utf-8").splitlines():
                yield line.split("\t", 1)[-1]
        else:
            for obj in iter_jsonl(p):
                for key in ("text", "title", "description"):
                    if obj.get(key):
                        yield obj[key]
    # MonoT5 reads the "true" / "false" tokens after "Query: ... Document: ... Relevant:".
    for _ in range(50):
        yield "Query: Document: Relevant: true false"


def _fingerprint() -> str:
    h = hashlib.sha1(f"v{VERSION}-{SEED}-{VOCAB_SIZE}".encode())
    for p in _corpus_files():
        h.update(p.name.encode())
        h.update(str(p.stat().st_size).encode())
    return h.hexdigest()[:12]


def _build_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # BertNormalizer puts spaces around CJK characters, so Chinese splits into characters.
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=special, min_frequency=1,
                                         show_progress=False)
    tok.train_from_iterator(_texts(), trainer=trainer)
    # The trainer numbers equally frequent pieces in the order of its hash maps, which changes from one
    # process to the next: the same 4,000 pieces, ids shuffled. Renumber them in a fixed order (the
    # special tokens, then by length and text), so every machine builds the same model.
    pieces = sorted(set(tok.get_vocab()) - set(special), key=lambda t: (len(t.removeprefix("##")), t))
    tok.model = models.WordPiece({t: i for i, t in enumerate(special + pieces)}, unk_token="[UNK]")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", eos_token="[SEP]", model_max_length=512,
    )
    from tokenizers import AddedToken

    # MonoT5 compares two single tokens; make sure they are whole words of this vocabulary.
    fast.add_tokens([AddedToken(w, single_word=True, normalized=True) for w in ("true", "false")])
    fast.save_pretrained(out)
    return fast


def _bert_config(vocab_size: int, **extra):
    from transformers import BertConfig

    # A wider initialisation than BERT's 0.02 so random models give visibly different scores; no
    # dropout, so a run gives the same losses on one process or several (tests/test_distributed.py).
    return BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=128, max_position_embeddings=512, initializer_range=0.2,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)


def _build(kind: str, out: Path) -> None:
    from transformers import (BertForSequenceClassification, BertModel, MarianConfig, MarianMTModel,
                              T5Config, T5ForConditionalGeneration)

    tok = _build_tokenizer(out)
    vocab = len(tok)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        if kind in ("encoder", "bi-encoder"):
            BertModel(_bert_config(vocab)).save_pretrained(out)
        elif kind == "cross-encoder":
            cfg = _bert_config(vocab, num_labels=1)
            BertForSequenceClassification(cfg).save_pretrained(out)
        elif kind == "monot5":
            cfg = T5Config(vocab_size=vocab, d_model=64, d_kv=32, d_ff=128, num_layers=2, num_heads=2,
                           pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                           decoder_start_token_id=tok.pad_token_id)
            T5ForConditionalGeneration(cfg).save_pretrained(out)
        elif kind == "plaidx":
            from transformers import XLMRobertaConfig, XLMRobertaModel

            from tdlib.checkpoints import write_layout

            tok.add_tokens(["[unused0]", "[unused1]"])  # PLAID-X adds its markers, query first
            cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=128, max_position_embeddings=520,
                                   pad_token_id=tok.pad_token_id)
            encoder = XLMRobertaModel(cfg)
            encoder.pooler = None  # the students use no [CLS] pooler, and the layout carries none
            projection = torch.nn.Linear(64, 32, bias=False)  # drawn after the encoder, from the same seed
            write_layout(out, encoder, tok, projection.weight, {
                "query_marker": "[unused0]", "doc_marker": "[unused1]", "query_maxlen": 16, "doc_maxlen": 64,
                "dim": 32, "attend_to_mask_tokens": False, "mask_punctuation": True})
            return
        elif kind == "translator":
            cfg = MarianConfig(vocab_size=vocab, d_model=64, encoder_layers=2, decoder_layers=2,
                               encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
                               decoder_ffn_dim=128, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                               eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id,
                               forced_eos_token_id=tok.sep_token_id)
            MarianMTModel(cfg).save_pretrained(out)
        else:
            raise ValueError(kind)
    if kind == "bi-encoder":
        # A sentence-transformers folder: Transformer module at the root, then mean pooling.
        (out / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]), encoding="utf-8")
        (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}), encoding="utf-8")
        (out / "1_Pooling").mkdir()
        (out / "1_Pooling" / "config.json").write_text(json.dumps(
            {"word_embedding_dimension": 64, "pooling_mode_mean_tokens": True}), encoding="utf-8")


def build(kind: str) -> Path:
    """Build (once) and return the folder of the smoke model ``kind``."""
    from tdlib.errors import ModelError

    if kind not in KINDS:
        raise ModelError(f"unknown smoke model {kind!r}; choose one of {', '.join(KINDS)}.")
    out = cache_root() / f"{kind}-{_fingerprint()}"
    if (out / "config.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=out.parent))
    try:
        _build(kind, tmp)
        try:
            os.replace(tmp, out)  # atomic; another process may have won the race
        except OSError:
            if not (out / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
