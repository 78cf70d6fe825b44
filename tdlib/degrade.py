"""Translations made worse on purpose, in controlled ways, to measure how translation quality carries into the student.

Chapter 8 trains the same student on the human translations of the training passages and on copies
degraded at a chosen rate in one of three ways:

- ``drop``: each word is left out with probability ``rate`` (an MT system that skips content);
- ``shuffle``: in each sentence, a share ``rate`` of the words trade places at random (garbled word order);
- ``replace``: each word is swapped, with probability ``rate``, for a word of another passage
  (mistranslated words: fluent-looking noise on the wrong subject).

A *word* is a whitespace-separated token, except in Chinese, Japanese and Thai, which do not separate
words: there it is one character (or a run of Latin letters and digits, such as "24" or "3G"). The
quality of a version is its chrF against the human translation (:func:`chrf`), the character n-gram
F-score that chapter 2 uses for machine translation.

A degraded version is a stage (``out/degrade-KIND-RATE/passages.jsonl``, see :mod:`tdlib.artifacts`)
in the format of the translate stage's output, so training reads it through
``data.train_translated=<that file>`` like any other translation. The same seed gives the same bytes.
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Sequence

from tdlib.artifacts import Stage
from tdlib.data import Doc, source_fingerprint, write_docs
from tdlib.errors import TdlibError

KINDS = ("drop", "shuffle", "replace")
# Languages written without spaces between words: a character is the unit.
UNSPACED = ("zh", "ja", "th")
_UNSPACED_UNIT = re.compile(r"[A-Za-z0-9]+(?:[.,:][0-9]+)*%?|\S")
# A sentence ends at its final mark (kept with it); Chinese marks need no space after them.
_SENTENCE_END = {"unspaced": re.compile(r"(?<=[。！？!?；])"), "spaced": re.compile(r"(?<=[.!?؟])\s+")}


def split_sentences(text: str, lang: str) -> list[list[str]]:
    """``text`` as sentences, each a list of words (characters in :data:`UNSPACED` languages)."""
    unspaced = lang in UNSPACED
    sentences = _SENTENCE_END["unspaced" if unspaced else "spaced"].split(text.strip())
    units = [_UNSPACED_UNIT.findall(s) if unspaced else s.split() for s in sentences]
    return [u for u in units if u]


def join_sentences(sentences: Sequence[Sequence[str]], lang: str) -> str:
    glue = "" if lang in UNSPACED else " "
    return glue.join(glue.join(s) for s in sentences if s)


def degrade_text(text: str, kind: str, rate: float, rng: random.Random, lang: str,
                 others: Sequence[Sequence[str]] = ()) -> str:
    """One passage degraded: ``kind`` at ``rate`` (0 gives the text back with its words re-joined).

    ``others``: the words of the other passages, from which ``replace`` draws (a passage first, then
    one of its words, so long passages are not favoured). A passage never loses every word.
    """
    check(kind, rate)
    sentences = split_sentences(text, lang)
    if kind == "drop":
        kept = [[w for w in s if rng.random() >= rate] for s in sentences]
        if not any(kept):  # keep one word rather than write an empty passage
            words = [w for s in sentences for w in s]
            kept = [[words[rng.randrange(len(words))]]] if words else []
        sentences = kept
    elif kind == "shuffle":
        for s in sentences:
            chosen = [i for i in range(len(s)) if rng.random() < rate]
            moved = [s[i] for i in chosen]
            rng.shuffle(moved)
            for i, w in zip(chosen, moved):
                s[i] = w
    else:
        pools = [p for p in others if p]
        if not pools and rate > 0:
            raise TdlibError("replace needs the words of other passages to draw from; give it more than one passage.")
        for s in sentences:
            for i in range(len(s)):
                if rng.random() < rate:
                    pool = pools[rng.randrange(len(pools))]
                    s[i] = pool[rng.randrange(len(pool))]
    return join_sentences(sentences, lang)


def check(kind: str, rate: float) -> None:
    if kind not in KINDS:
        raise TdlibError(f"unknown degradation {kind!r}; choose one of {', '.join(KINDS)}.")
    if not 0.0 <= rate <= 1.0:
        raise TdlibError(f"a degradation rate is a share of words, between 0 and 1; got {rate}.")


def degrade_docs(docs: Sequence[Doc], kind: str, rate: float, seed: int, lang: str) -> list[Doc]:
    """Every passage of ``docs`` degraded with one random generator seeded by ``seed`` (in order of id)."""
    check(kind, rate)
    ordered = sorted(docs, key=lambda d: d.doc_id)
    rng = random.Random(f"{kind}:{rate}:{seed}")
    words = [[w for s in split_sentences(d.text, lang) for w in s] for d in ordered] if kind == "replace" else []
    out = []
    for i, d in enumerate(ordered):
        others = words[:i] + words[i + 1:] if words else ()
        out.append(Doc(d.doc_id, degrade_text(d.text, kind, rate, rng, lang, others)))
    return out


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, beta 2) of ``hypotheses`` against ``references``."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise TdlibError(f"chrF needs one reference per hypothesis; got {len(hypotheses)} and {len(references)}.")
    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def degraded_passages(passages: dict[str, str], kind: str, rate: float, seed: int, lang: str,
                      out: str | Path, source: str = "") -> Path:
    """Write the degraded version of ``passages`` (id -> human translation) as a stage; return its JSONL file.

    ``out/degrade-KIND-RATE/passages.jsonl``, with ``chrF`` (against ``passages``) in the stage's
    ``DONE``. ``source`` names where the passages came from (a data id or file), so a change of
    collection makes a new version instead of reusing the old one.
    """
    check(kind, rate)
    stage = Stage(Path(out) / f"degrade-{kind}-{rate:g}", "degrade",
                  {"kind": kind, "rate": rate, "seed": seed, "lang": lang,
                   "source": source_fingerprint(source) if source else None, "passages": len(passages)})
    target = stage.path("passages.jsonl")
    if stage.is_complete() and target.is_file():
        return target
    stage.begin()
    docs = degrade_docs([Doc(pid, text) for pid, text in passages.items()], kind, rate, seed, lang)
    write_docs(target, docs, lang)  # atomically, as every writer of tdlib.data does
    stage.finish({"passages": len(docs), "chrF": round(chrf([d.text for d in docs],
                                                            [passages[d.doc_id] for d in docs]), 2)})
    return target


def version_name(kind: str | None, rate: float = 0.0) -> str:
    """``human`` for the undegraded translation, else ``KIND-RATE`` (``drop-0.5``)."""
    return "human" if kind is None or rate == 0 else f"{kind}-{rate:g}"
