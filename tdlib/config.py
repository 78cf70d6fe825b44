"""Configuration as data: frozen dataclasses whose defaults are the paper's recipe, and profiles.

The defaults reproduce Translate-Distill as published (``../shared/PAPER.md``: the authors' PLAID-X
code, model cards and checkpoint metadata). A *profile* is a named set of overrides on top of them:

- ``smoke``: tiny models built in code (:mod:`tdlib.smoke`), the embedded mini collection, seconds.
- ``cpu``: small real models from the Hugging Face Hub, the mini collection, minutes on a laptop.
- ``colab``: real data (MS MARCO, neuMARCO, a NeuCLIR 2022 sub-collection) and small models, about
  an hour on a free Colab GPU.
- ``paper``: the published recipe (XLM-R large ColBERT-X, 200k steps, n = 6 of 50).

Overrides are ``section.field=value`` strings (``train.lr=1e-5``), parsed by the type of the field.
What this leaves out: no config inheritance beyond profile -> file -> overrides, no environment
variables other than ``TDLIB_PROFILE`` and ``TDLIB_SET`` (overrides that go with it: the book's build
puts real stand-in models in place this way, see :mod:`tdlib.bookprofile`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from tdlib.errors import ConfigError

LANGUAGES = ("zh", "fa", "ru")
PROFILES = ("smoke", "cpu", "colab", "paper")
INDEX_KINDS = ("exhaustive", "hnsw", "ivfpq")
LOOKUPS = ("lines", "arrow")  # data.lookup: how large training files are read by id
DEFAULT_PROFILE = "cpu"


@dataclass(frozen=True)
class DataConfig:
    """Where training and test data come from: ir_datasets ids or local files.

    ``{lang}`` in any value is replaced by :attr:`Config.lang`.
    """

    # English queries, English passages and positives (qrels) for training.
    train_english: str = "msmarco-passage/train"
    # The same passages translated into the document language (neuMARCO in the paper).
    train_translated: str = "neumarco/{lang}/train"
    # Candidates per query in the tdist line format (a path or an hf://datasets/... address); "" = the
    # ones registered with the dataset. The published teacher scores list, for each of the 809k
    # training queries, the candidates the paper used, so their file serves.
    candidates: str = "hf://datasets/hltcoe/tdist-msmarco-scores/t53b-monot5-msmarco-engeng.jsonl.gz"
    # The paper takes the top 50 ColBERTv2 passages per training query.
    max_candidates: int = 50
    # How large training files (candidates, teacher scores, JSONL passages) are read by id: "lines" (an
    # index of line offsets, rebuilt in each process) or "arrow" (an Arrow table built once with Hugging
    # Face datasets, then memory-mapped). Same results; memory and time measured on the scale page.
    lookup: str = "lines"
    # None = all training queries (about 809k for MS MARCO).
    max_train_queries: int | None = None
    # English queries, documents in the document language, graded qrels.
    test: str = "neuclir/1/{lang}/trec-2022"
    # Which query field to search with: "title" (the paper's title queries) or "description".
    query_field: str = "title"
    # None = search the whole test collection (the paper). N = a sub-collection: the documents judged
    # for the test topics plus N others drawn at random (seeded), small enough for exhaustive search.
    test_distractors: int | None = None


@dataclass(frozen=True)
class TranslateConfig:
    """Machine translation of passages with a Hugging Face seq2seq model (Marian or NLLB style)."""

    # The paper uses the neuMARCO translations (Sockeye 2); a public NLLB model covers zh, fa and ru.
    model: str = "facebook/nllb-200-distilled-600M"
    # NLLB target codes; ignored by models that do not need a forced first token (Marian).
    target_codes: Mapping[str, str] = field(
        default_factory=lambda: {"zh": "zho_Hans", "fa": "pes_Arab", "ru": "rus_Cyrl"}
    )
    source_code: str = "eng_Latn"
    batch_size: int = 16
    # Sentences are translated one by one, so 256 tokens covers nearly every sentence.
    max_length: int = 256
    num_beams: int = 1
    # Also translate the training queries (for the X-X teacher setting).
    translate_queries: bool = False
    # Translate only the first N passages (None = all): a cap for demonstrations on a CPU.
    max_passages: int | None = None


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher that scores each training query's candidates."""

    # "cross-encoder" | "monot5" | "bi-encoder" | "precomputed"
    kind: str = "monot5"
    # The paper's English teacher; the multilingual one is unicamp-dl/mt5-13b-mmarco-100k.
    model: str = "castorini/monot5-3b-msmarco-10k"
    # eng-eng: English query, English passage; eng-x: English query, translated passage;
    # x-x: translated query, translated passage.
    setting: str = "eng-eng"
    # For kind="precomputed": a file in the hltcoe/tdist-msmarco-scores line format.
    scores_file: str = ""
    # The MonoT5 score is log P(positive token) against the negative one: "false"/"true" for
    # castorini's MonoT5; mMARCO mT5 rerankers name theirs on their model cards (e.g. "no"/"yes").
    prediction_tokens: tuple[str, ...] = ("false", "true")
    batch_size: int = 32
    max_length: int = 512


@dataclass(frozen=True)
class StudentConfig:
    """The dual-encoder student."""

    # ColBERT-X is fine-tuned from XLM-RoBERTa large.
    model: str = "xlm-roberta-large"
    # "colbert" (multi-vector, MaxSim) or "single" (mean pooling, cosine).
    kind: str = "colbert"
    # ColBERT's token vectors have 128 dimensions.
    dim: int = 128
    # ColBERT-X trains with queries of 32 tokens and documents of 220 tokens.
    query_maxlen: int = 32
    doc_maxlen: int = 220
    # ColBERT pads queries to query_maxlen with [MASK] tokens that always take part in MaxSim
    # (QueryTokenizer.tensorize and ColBERT.query in PLAID-X / stanford-futuredata ColBERT).
    query_augmentation: bool = True
    # Whether the encoder's attention mask covers those [MASK] tokens; ColBERT's default is False: they
    # are encoded and scored, but other tokens do not attend to them (``attend_to_mask_tokens``).
    attend_to_mask_tokens: bool = False
    # ColBERT drops punctuation tokens of documents from MaxSim and from the index (``mask_punctuation``).
    mask_punctuation: bool = True
    # Prefixes some encoders expect (E5: "query: " and "passage: ").
    query_prefix: str = ""
    doc_prefix: str = ""
    # ColBERT's marker tokens, put right after [CLS]: PLAID-X's "[unused0]" / "[unused1]", added to the
    # vocabulary (and the embeddings) of an encoder that lacks them, as XLM-R does. Empty for none (the
    # book's stand-in profiles). Released checkpoints name theirs in artifact.metadata.
    query_marker: str = "[unused0]"
    doc_marker: str = "[unused1]"


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning the student: Translate-Distill (KL) or the Translate-Train baseline (CE)."""

    # "distill" (Translate-Distill) or "translate-train" (the TT baseline).
    method: str = "distill"
    # Passages per query per step: 6 in the paper.
    n_passages: int = 6
    # "random": n sampled from the candidates each time (the paper); "top": the teacher's top n.
    sampling: str = "random"
    # AdamW with learning rate 5e-6 and no warm-up (PLAID-X training script).
    lr: float = 5e-6
    warmup_steps: int = 0
    weight_decay: float = 0.0
    # 200k steps of 64 queries (8 per GPU on 8 V100s).
    max_steps: int = 200_000
    batch_queries: int = 8
    # Each side's scores are divided by its own temperature before the softmax. None = chosen from the
    # model's kind (see :func:`default_temperatures`): 1 (the paper's "none") for ColBERT MaxSim and for
    # cross-encoder / MonoT5 logits; 0.05 for cosines (a single-vector student, a bi-encoder teacher),
    # which lie in [-1, 1] and give a nearly flat softmax at 1 (0.05 measured on e5-small).
    student_temperature: float | None = None
    teacher_temperature: float | None = None
    # Mixed precision on GPU ("fp16" in the paper); ignored on CPU.
    mixed_precision: str = "fp16"
    save_steps: int = 25_000
    logging_steps: int = 500
    grad_accumulation: int = 1
    # Keep the encoder's word embeddings fixed (the paper trains them). In multilingual-e5-small they are
    # 96M of 118M parameters, so freezing them saves the optimiser most of its work and memory.
    freeze_embeddings: bool = False


@dataclass(frozen=True)
class IndexConfig:
    """Splitting documents into passages and encoding them."""

    # PLAID-X indexes 180-token passages with a stride of 90 and scores a document by MaxP.
    passage_tokens: int = 180
    stride: int = 90
    # The authors' passage script keeps every window that starts inside the document, so the last ones
    # are tails of earlier windows (a 200-token document gives 0-179, 90-199 and 180-199). ColBERT's
    # MaxSim hardly notices them; a mean-pooled single vector of a short tail is noise (measured on the
    # mini collection: zero-shot e5-small nDCG@20 0.761 without tails, 0.589 with), so the single-vector
    # profiles stop at the window that reaches the end.
    tail_windows: bool = True
    batch_size: int = 64
    # Documents encoded and saved together: a stopped index stage resumes after its last saved part,
    # and shards (--shard I/N, or one per process under torchrun) take every N-th part.
    part_documents: int = 2000
    # How the passage vectors are searched: "exhaustive" (every passage, exact: the reference), or a
    # faiss index: "hnsw" (a graph over the full vectors; single-vector students) or "ivfpq" (inverted
    # lists over product-quantised vectors, trained on a sample: a few bytes per vector). For ColBERT-X,
    # "ivfpq" indexes the token vectors to find candidate passages, which exact MaxSim then scores from
    # the full vectors (float16, memory-mapped), as ColBERT v1 did.
    kind: str = "exhaustive"
    # IVF-PQ: lists (0 = about 4 sqrt(passages); for token vectors ColBERT v1's 2^ceil(log2(8 sqrt(tokens)))),
    # sub-vectors per vector (0 = one per 4 dimensions; 16 for token vectors, as ColBERT v1) and bits per
    # sub-vector code; the quantisers are trained on at most train_sample vectors.
    nlist: int = 0
    m: int = 0
    nbits: int = 8
    train_sample: int = 100_000
    # HNSW: neighbours per node, and the breadth of the search while building.
    hnsw_m: int = 32
    ef_construction: int = 200


@dataclass(frozen=True)
class SearchConfig:
    # Depth of the run: recall is reported at 1000.
    k: int = 1000
    batch_size: int = 16
    # faiss indexes only (index.kind): inverted lists visited per query vector (0 = nlist / 8, at least
    # 16; for ColBERT-X token vectors nlist / 64, at least 10, ColBERT v1's default), HNSW's search
    # breadth (0 = twice the passages asked for), and for ColBERT-X the token vectors fetched per query
    # token, whose passages exact MaxSim then scores (ColBERT v1's faiss_depth). Search-time settings:
    # no re-indexing.
    nprobe: int = 0
    ef_search: int = 0
    faiss_depth: int = 1024


@dataclass(frozen=True)
class EvalConfig:
    # nDCG@20 is the paper's main measure; MAP and recall at 100 and 1000 complete its tables.
    measures: tuple[str, ...] = ("nDCG@20", "AP", "R@100", "R@1000", "nDCG@10", "RR@10")


@dataclass(frozen=True)
class Config:
    """Everything one run of the pipeline needs."""

    profile: str = "paper"
    lang: str = "zh"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)

    def fill(self, value: str) -> str:
        """Replace ``{lang}`` in a data id or path by this config's language."""
        return value.replace("{lang}", self.lang)

    def temperatures(self) -> tuple[float, float]:
        """(student, teacher) softmax temperatures of distillation: see :func:`default_temperatures`."""
        return default_temperatures(self)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


_MINI = dict(
    train_english="tdlib-mini/en/train",
    train_translated="tdlib-mini/{lang}/train",
    test="tdlib-mini/{lang}/test",
    candidates="",  # the mini collection's own, registered with it
    max_candidates=50,
)

# Each profile is a set of overrides on top of the paper's defaults.
PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {},
    "smoke": {
        "data": _MINI | {"max_train_queries": 64},
        # Random weights never emit an end token: keep generation short.
        "translate": {"model": "smoke:translator", "batch_size": 8, "max_length": 16, "max_passages": 48},
        "teacher": {"kind": "cross-encoder", "model": "smoke:cross-encoder", "max_length": 128},
        "student": {"model": "smoke:encoder", "dim": 32, "query_maxlen": 16, "doc_maxlen": 64,
                    "query_marker": "", "doc_marker": ""},
        "train": {"lr": 1e-3, "max_steps": 12, "batch_queries": 4, "save_steps": 6,
                  "logging_steps": 2, "n_passages": 4},
        "index": {"passage_tokens": 48, "stride": 24, "batch_size": 32},
        "search": {"k": 100},
    },
    "cpu": {
        "data": _MINI,
        "translate": {"batch_size": 8, "max_passages": 64},
        "teacher": {"kind": "cross-encoder", "model": "cross-encoder/ms-marco-MiniLM-L-6-v2",
                    "max_length": 256},
        "student": {"model": "intfloat/multilingual-e5-small", "kind": "single",
                    "query_prefix": "query: ", "doc_prefix": "passage: ", "doc_maxlen": 160,
                    "query_marker": "", "doc_marker": ""},
        # Temperatures follow the kinds: 0.05 for the cosine student, 1 for the cross-encoder's logits.
        "train": {"lr": 2e-5, "max_steps": 100, "batch_queries": 8, "save_steps": 50, "logging_steps": 10},
        "index": {"passage_tokens": 160, "stride": 80, "tail_windows": False},
        "search": {"k": 100},
    },
    # Real data on a free Colab GPU (T4, 15 GB): MS MARCO and neuMARCO through ir_datasets, the
    # candidates of the published MonoT5-3B score file, a computed MiniLM teacher, and NeuCLIR 2022 cut
    # to its judged documents plus 20,000 random others (book/scale.md explains the recipe and its cost).
    "colab": {
        "data": {"max_train_queries": 4000, "test_distractors": 20_000},
        "translate": {"max_passages": 256},
        "teacher": {"kind": "cross-encoder", "model": "cross-encoder/ms-marco-MiniLM-L-6-v2",
                    "max_length": 256, "batch_size": 256},
        "student": {"model": "intfloat/multilingual-e5-small", "kind": "single",
                    "query_prefix": "query: ", "doc_prefix": "passage: ", "doc_maxlen": 180,
                    "query_marker": "", "doc_marker": ""},
        "train": {"lr": 2e-5, "max_steps": 500, "batch_queries": 8, "save_steps": 250, "logging_steps": 25},
        "index": {"batch_size": 256, "tail_windows": False},
        "search": {"k": 1000},
    },
}


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, mappings and tuples as plain JSON values."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Turn a JSON value or an override string into the field's declared type."""
    hint = annotation
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) else int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
        if origin is tuple:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            return tuple(value)
        if origin in (Mapping, dict) or hint is Mapping:
            if isinstance(value, str):
                value = json.loads(value)
            return dict(value)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise ConfigError(f"{where}: {value!r} is not a valid {getattr(hint, '__name__', hint)}.") from None
    return value


def _merge(section: Any, updates: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(type(section))
    names = {f.name for f in fields(section)}
    changes = {}
    for key, value in updates.items():
        if key not in names:
            raise ConfigError(
                f"{where}: unknown setting {key!r}; valid ones are {', '.join(sorted(names))}."
            )
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{key} is a section; give it a mapping of settings.")
            changes[key] = _merge(current, value, f"{where}.{key}")
        else:
            changes[key] = _coerce(value, hints[key], f"{where}.{key}")
    return replace(section, **changes)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["train.lr=1e-5", "lang=fa"]`` -> ``{"train": {"lr": "1e-5"}, "lang": "fa"}``."""
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.setting=value (e.g. train.lr=1e-5).")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def load_config(
    profile: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> Config:
    """Resolve a configuration: paper defaults, then the profile, then a JSON file, then overrides.

    The profile is ``profile``, else ``$TDLIB_PROFILE``, else ``cpu``. When it is the profile named by
    ``$TDLIB_PROFILE``, the whitespace-separated overrides in ``$TDLIB_SET`` are applied after the
    profile and the file, before ``overrides``.

    >>> load_config("smoke", overrides=["train.lr=0.01"]).train.lr
    0.01
    """
    name = profile or os.environ.get("TDLIB_PROFILE") or DEFAULT_PROFILE
    env_sets = os.environ.get("TDLIB_SET", "").split() if name == os.environ.get("TDLIB_PROFILE") else []
    if name not in PROFILE_OVERRIDES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}.")
    cfg = _merge(Config(), PROFILE_OVERRIDES[name], f"profile {name}")
    cfg = replace(cfg, profile=name)
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} "
                              f"{'is a folder; give the path of a JSON file' if path.is_dir() else 'does not exist'}.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON (line {e.lineno}): {e.msg}.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8 JSON.") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} holds a JSON {type(data).__name__}; it must hold one object of "
                              'settings, e.g. {"train": {"lr": 1e-5}}.')
        data.pop("profile", None)
        cfg = _merge(cfg, data, str(path))
    if env_sets:
        cfg = _merge(cfg, parse_overrides(env_sets), "TDLIB_SET")
    tree = parse_overrides(overrides) if not isinstance(overrides, Mapping) else overrides
    if tree:
        cfg = _merge(cfg, tree, "override")
    student_t, teacher_t = default_temperatures(cfg)
    cfg = replace(cfg, train=replace(cfg.train, student_temperature=student_t, teacher_temperature=teacher_t))
    validate(cfg)
    return cfg


# Temperatures by kind of scorer (see TrainConfig): scores that are cosines need 0.05, others 1.
COSINE_TEMPERATURE = 0.05


def default_temperatures(cfg: Config) -> tuple[float, float]:
    """(student, teacher) temperatures: the configured ones, or the ones that suit each kind of scorer.

    >>> default_temperatures(Config())  # ColBERT-X student, MonoT5 teacher: the paper's T = 1
    (1.0, 1.0)
    >>> default_temperatures(load_config("cpu", overrides=["teacher.kind=bi-encoder"]))
    (0.05, 0.05)
    """
    student = cfg.train.student_temperature
    if student is None:
        student = 1.0 if cfg.student.kind == "colbert" else COSINE_TEMPERATURE
    teacher = cfg.train.teacher_temperature
    if teacher is None:
        teacher = COSINE_TEMPERATURE if cfg.teacher.kind == "bi-encoder" else 1.0
    return float(student), float(teacher)


def validate(cfg: Config) -> None:
    """Refuse values that would fail later, deep inside a library."""
    choices = {
        "lang": (cfg.lang, ("en",) + LANGUAGES),
        "teacher.kind": (cfg.teacher.kind, ("cross-encoder", "monot5", "bi-encoder", "precomputed")),
        "teacher.setting": (cfg.teacher.setting, ("eng-eng", "eng-x", "x-x")),
        "student.kind": (cfg.student.kind, ("colbert", "single")),
        "train.method": (cfg.train.method, ("distill", "translate-train")),
        "train.sampling": (cfg.train.sampling, ("random", "top")),
        "data.query_field": (cfg.data.query_field, ("title", "description")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{name} is {value!r}; choose one of {', '.join(allowed)}.")
    positive = {
        "train.n_passages": cfg.train.n_passages,
        "train.batch_queries": cfg.train.batch_queries,
        "train.max_steps": cfg.train.max_steps,
        "student.query_maxlen": cfg.student.query_maxlen,
        "student.doc_maxlen": cfg.student.doc_maxlen,
        "index.passage_tokens": cfg.index.passage_tokens,
        "index.stride": cfg.index.stride,
        "search.k": cfg.search.k,
    }
    for name, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}.")
    if cfg.train.n_passages < 2:
        raise ConfigError("train.n_passages must be at least 2: the loss compares passages of one query.")
    for name in ("student_temperature", "teacher_temperature"):
        value = getattr(cfg.train, name)
        if value is not None and value <= 0:
            raise ConfigError(f"train.{name} must be positive, got {value}.")
    if cfg.index.stride > cfg.index.passage_tokens:
        raise ConfigError("index.stride must not exceed index.passage_tokens, or text would be skipped.")
    if cfg.index.kind not in INDEX_KINDS:
        raise ConfigError(f"index.kind={cfg.index.kind!r}: use one of {', '.join(INDEX_KINDS)}.")
    if cfg.index.kind == "hnsw" and cfg.student.kind == "colbert":
        raise ConfigError("index.kind=hnsw serves single-vector students: a graph over every token vector of a "
                          "ColBERT-X student would be larger than the vectors themselves; use index.kind=ivfpq "
                          "(candidates from the token vectors, then exact MaxSim) or exhaustive.")
    if cfg.index.part_documents <= 0:
        raise ConfigError(f"index.part_documents must be positive, got {cfg.index.part_documents}.")
    if cfg.data.lookup not in LOOKUPS:
        raise ConfigError(f"data.lookup={cfg.data.lookup!r}: use one of {', '.join(LOOKUPS)}.")
    if cfg.teacher.kind == "precomputed" and not cfg.teacher.scores_file:
        raise ConfigError("teacher.kind=precomputed needs teacher.scores_file=PATH (tdist line format).")
