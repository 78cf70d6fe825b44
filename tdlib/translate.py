"""Machine translation of passages (and queries) with a Hugging Face seq2seq model.

Translate-Distill trains on MS MARCO passages translated into the document language (neuMARCO, made
with Sockeye 2). This module translates with any Marian or NLLB style model: passages are split into
sentences, sentences are translated in length-sorted batches, and rejoined; ids are kept. The stage
writes ``passages.jsonl`` record by record to a partial file, so an interrupted run resumes.

Translation can be sharded over processes (``shard=(i, n)``, ``--shard I/N``), as teacher scoring is.
What this leaves out: document-level MT.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from tdlib import hub, launcher
from tdlib.batching import map_by_length
from tdlib.artifacts import Stage, append_records, run_shard
from tdlib.config import TranslateConfig
from tdlib.data import Doc, iter_jsonl
from tdlib.logs import progress_bar

PASSAGES_FILE = "passages.jsonl"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[。！？])")
_NO_SPACE_LANGS = {"zh", "ja"}


def split_sentences(text: str) -> list[str]:
    """Split at sentence ends; keeps every character except the spaces between sentences.

    >>> split_sentences("It rained. Then it stopped! OK")
    ['It rained.', 'Then it stopped!', 'OK']
    """
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def join_sentences(sentences: Sequence[str], lang: str) -> str:
    return ("" if lang in _NO_SPACE_LANGS else " ").join(s.strip() for s in sentences)


class Translator:
    """Translate English text into ``lang`` with a seq2seq model."""

    def __init__(self, cfg: TranslateConfig, lang: str):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.cfg, self.lang = cfg, lang
        self.tokenizer = hub.load(AutoTokenizer.from_pretrained, cfg.model, "translation tokenizer")
        self.model = hub.load(AutoModelForSeq2SeqLM.from_pretrained, cfg.model, "translation model")
        self.model.to(launcher.device()).eval()  # its own GPU under torchrun / accelerate launch
        self.generate_kwargs: dict = {"num_beams": cfg.num_beams, "max_new_tokens": cfg.max_length}
        # NLLB-style models need the source language set and the target forced as the first token.
        if hasattr(self.tokenizer, "src_lang") and cfg.target_codes.get(lang):
            self.tokenizer.src_lang = cfg.source_code
            self.generate_kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(cfg.target_codes[lang])

    @torch.no_grad()
    def translate_sentences(self, sentences: Sequence[str]) -> list[str]:
        def run(idx: list[int]) -> list[str]:
            enc = self.tokenizer([sentences[i] for i in idx], max_length=self.cfg.max_length, truncation=True,
                                 padding=True, return_tensors="pt").to(self.model.device)
            generated = self.model.generate(**enc, **self.generate_kwargs)
            return [text.strip() for text in self.tokenizer.batch_decode(generated, skip_special_tokens=True)]

        # in order of characters, a guide good enough within one language (the source is always English)
        return map_by_length([len(s) for s in sentences], self.cfg.batch_size, run)

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Translate whole passages: split, translate all sentences together, rejoin."""
        split = [split_sentences(t) for t in texts]
        flat = [s for sents in split for s in sents]
        translated = iter(self.translate_sentences(flat))
        return [join_sentences([next(translated) for _ in sents], self.lang) for sents in split]


def translate_docs(
    cfg: TranslateConfig,
    docs: Sequence[Doc],
    lang: str,
    out_dir: str | Path,
    inputs: object = None,
    chunk: int = 64,
    progress: bool = True,
    translator: Translator | None = None,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Translate ``docs`` into ``lang`` and write ``passages.jsonl`` (``id``, ``text``, ``lang``).

    ``shard=(i, n)`` translates passages ``i, i+n, ...`` only; the last shard to finish merges them
    (see :func:`tdlib.teacher.score_candidates`).
    """
    import json

    record = {"translate": cfg, "lang": lang, "inputs": inputs, "ids": len(docs)}
    stage = Stage(out_dir, "translate", record)
    if stage.is_complete():
        return stage.path(PASSAGES_FILE)
    if shard is not None:
        return run_shard(out_dir, stage, shard, PASSAGES_FILE, lambda d, shard_inputs: translate_docs(
            cfg, list(docs)[shard[0]::shard[1]], lang, d, inputs=shard_inputs, chunk=chunk, progress=progress,
            translator=translator))
    state: dict = {"translator": translator}

    def prepare(passages: int) -> None:  # only when something is left to translate
        state["translator"] = state["translator"] or Translator(cfg, lang)
        state["bar"] = progress_bar(total=passages, desc=f"translate en->{lang}", unit="passage", progress=progress)

    def translated(batch: list[Doc]) -> tuple[list[str], int]:
        texts = state["translator"].translate([d.text for d in batch])
        return [json.dumps({"id": d.doc_id, "text": text or d.text, "lang": lang}, ensure_ascii=False) + "\n"
                for d, text in zip(batch, texts)], len(batch)

    final, done_now, _, seconds = append_records(
        stage, PASSAGES_FILE, docs, key=lambda d: d.doc_id, record_ids=lambda p: (str(o["id"]) for o in iter_jsonl(p)),
        lines=translated, chunk=chunk, prepare=prepare, on_chunk=lambda n, _: state["bar"].update(n))
    if "bar" in state:
        state["bar"].close()
    stage.finish({"passages": len(docs), "translated_now": done_now, "seconds": round(seconds, 2),
                  "seconds_per_passage": round(seconds / max(1, done_now), 4)})
    return final
