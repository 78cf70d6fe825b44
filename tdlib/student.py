"""The dual-encoder students: ColBERT-X (multi-vector, MaxSim) and a single-vector student.

ColBERT-X (the paper's student) encodes every token: encoder states -> a linear projection to 128
dimensions -> L2 normalisation; a query and a passage score by MaxSim, the sum over query tokens of
the best cosine with any passage token. The single-vector student mean-pools the encoder states and
L2-normalises them; it is MaxSim with one vector per text, so both students share one scoring function.

The ColBERT side follows the authors' code (``colbert/modeling/tokenization/*_tokenization.py`` and
``colbert/modeling/colbert.py`` in the ``plaid-x`` branch of hltcoe/ColBERT-X, as in
stanford-futuredata/ColBERT), checked against the ``colbert-ai`` package in ``tests/test_colbert_parity.py``:

- texts are tokenised as ``". " + text`` and the "." is overwritten by the marker token ([Q] / [D]);
- queries are padded to ``query_maxlen`` with [MASK] tokens ("query augmentation") that always take
  part in MaxSim; the encoder attends to them only with ``attend_to_mask_tokens`` (default off);
- document tokens that are punctuation (the first token of each ``string.punctuation`` character) are
  left out of MaxSim and of the index (``mask_punctuation``, default on).

What this leaves out: residual compression and PLAID's candidate generation (search is exhaustive).
"""
from __future__ import annotations

import json
import logging
import os
import string
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tdlib import checkpoints, hub
from tdlib.batching import map_by_length
from tdlib.config import StudentConfig
from tdlib.errors import ModelError

STUDENT_FILE = "tdlib_student.json"
PROJECTION_FILE = "projection.safetensors"


def maxsim(q: torch.Tensor, q_mask: torch.Tensor, d: torch.Tensor, d_mask: torch.Tensor) -> torch.Tensor:
    """Late-interaction scores of every query against every document.

    Parameters
    ----------
    q, d
        Token vectors shaped (nq, lq, dim) and (nd, ld, dim).
    q_mask, d_mask
        Ones for real tokens, zeros for padding, shaped (nq, lq) and (nd, ld).

    Returns
    -------
    Tensor shaped (nq, nd): for each pair, the sum over unmasked query tokens of the maximum dot
    product with any unmasked document token.

    >>> q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]); d = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])
    >>> maxsim(q, torch.ones(1, 2), d, torch.ones(1, 2))  # max(1, .6) + max(0, .8)
    tensor([[1.8000]])
    """
    if q.dim() != 3 or d.dim() != 3 or q.shape[-1] != d.shape[-1]:
        raise ValueError(f"q and d must be (n, length, dim) with the same dim, got {tuple(q.shape)} and {tuple(d.shape)}.")
    if q_mask.shape != q.shape[:2] or d_mask.shape != d.shape[:2]:
        raise ValueError(
            f"masks must be shaped like the tokens: q_mask {tuple(q_mask.shape)} for q {tuple(q.shape[:2])}, "
            f"d_mask {tuple(d_mask.shape)} for d {tuple(d.shape[:2])}."
        )
    nq, lq, dim = q.shape
    nd, ld, _ = d.shape
    # One matrix product over all token pairs: (nq*lq, dim) x (dim, nd*ld).
    sim = (q.reshape(nq * lq, dim) @ d.reshape(nd * ld, dim).T).view(nq, lq, nd, ld)
    if not bool(d_mask.all()):  # padding never wins the max
        sim = sim.masked_fill(d_mask[None, None, :, :] == 0, float("-inf"))
    best = sim.amax(dim=-1)  # (nq, lq, nd)
    if not bool(q_mask.all()):  # padding query tokens add nothing
        best = best.masked_fill(q_mask[:, :, None] == 0, 0.0)
    return best.sum(dim=1)  # (nq, nd)


def _is_plaidx(name: str, path: str) -> bool:
    """A PLAID-X checkpoint: a folder with artifact.metadata, or a Hub id whose repository has one."""
    if (Path(path) / STUDENT_FILE).is_file():
        return False
    if Path(path).exists():
        return checkpoints.is_layout(path)
    from huggingface_hub import file_exists, try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(name, checkpoints.METADATA_FILE), str):
            return True
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            return False  # not cached: the loader below reports the missing model
        return file_exists(name, checkpoints.METADATA_FILE)
    except Exception:  # noqa: BLE001 (not a Hub id, or no network: the normal loader reports it)
        return False


def _folder(name: str) -> Path:
    """A local folder for ``name``: itself, or a Hugging Face snapshot (downloaded if allowed)."""
    path = Path(hub.resolve(name))
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(hub.load(snapshot_download, name, "PLAID-X checkpoint"))


def _load_encoder(path: str) -> nn.Module:
    """The encoder without its [CLS] pooler, which neither student uses.

    transformers' load report would list a checkpoint's pooler weights as unexpected, on stderr, even
    with ``--quiet``; it is held back, and only weights the encoder lacks (they would start at random)
    are reported, in one line.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        try:
            encoder, info = hub.load(AutoModel.from_pretrained, path, "student encoder", add_pooling_layer=False,
                                     output_loading_info=True)
        except TypeError:  # an encoder class without a pooler option
            encoder, info = hub.load(AutoModel.from_pretrained, path, "student encoder", output_loading_info=True)
    finally:
        hf_logging.set_verbosity(level)
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith("pooler."))
    if missing:
        logging.getLogger(__name__).warning("%s: %d encoder weights are not in the checkpoint (e.g. %s); they "
                                            "start at random.", path, len(missing), missing[0])
    return encoder


class Student(nn.Module):
    """A Hugging Face encoder turned into a ColBERT-X or single-vector retriever."""

    def __init__(self, encoder: nn.Module, tokenizer, config: StudentConfig, projection: nn.Linear | None = None):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            # The [CLS] pooler is not used by either student; unused parameters would stall DDP.
            encoder.pooler = None
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.config = config
        hidden = encoder.config.hidden_size
        if config.kind == "colbert":
            self.projection = projection if projection is not None else nn.Linear(hidden, config.dim, bias=False)
        else:
            self.projection = None
        # Start in the encoder's mode (from_pretrained gives eval), so encode() restores the same mode.
        self.train(encoder.training)

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, name: str, config: StudentConfig | None = None, seed: int = 0) -> "Student":
        """Load a saved student folder, or start a new student from a Hugging Face encoder.

        A new ColBERT-X projection is initialised from ``seed`` so that runs are repeatable.
        """
        from transformers import AutoTokenizer

        path = hub.resolve(name)
        if _is_plaidx(name, path):
            return load_plaidx(name)
        saved = Path(path) / STUDENT_FILE
        if saved.is_file():
            stored = json.loads(saved.read_text(encoding="utf-8"))
            config = StudentConfig(**{**stored, "model": str(path)})
        elif checkpoints.has_projection_weights(Path(path)):
            # loaded as a plain encoder, the trained projection would silently be dropped
            raise ModelError(f"{path} holds PLAID-X weights (a {checkpoints.PROJECTION_KEY} projection beside the "
                             f"encoder) but no {checkpoints.METADATA_FILE}; restore that file (its query and document "
                             "markers and lengths) to load it as a ColBERT-X student.")
        config = config or StudentConfig(model=name)
        encoder = _load_encoder(path)
        tokenizer = hub.load(AutoTokenizer.from_pretrained, path, "student tokenizer")
        if not saved.is_file():
            _add_markers(encoder, tokenizer, config, seed)
        projection = None
        if config.kind == "colbert":
            projection = nn.Linear(encoder.config.hidden_size, config.dim, bias=False)
            weights = Path(path) / PROJECTION_FILE
            if weights.is_file():
                from safetensors.torch import load_file

                state = load_file(str(weights))
                expected = tuple(projection.weight.shape)
                if tuple(state["weight"].shape) != expected:
                    raise ModelError(
                        f"{weights} holds a projection of shape {tuple(state['weight'].shape)}, but this "
                        f"encoder and dim={config.dim} need {expected}."
                    )
                projection.load_state_dict(state)
            else:
                gen = torch.Generator().manual_seed(seed)
                with torch.no_grad():
                    bound = 1.0 / encoder.config.hidden_size ** 0.5
                    projection.weight.copy_(torch.rand(projection.weight.shape, generator=gen) * 2 * bound - bound)
        return cls(encoder, tokenizer, config, projection)

    @classmethod
    def from_plaidx(cls, name: str, doc_maxlen: int | None = None) -> "Student":
        """A ColBERT-X student from a PLAID-X checkpoint (folder or Hub id), checked strictly: see :func:`load_plaidx`."""
        return load_plaidx(name, doc_maxlen)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as a folder: the encoder and tokenizer (Hugging Face layout), projection, settings.

        The folder is written beside ``path`` and renamed into place when complete, so a kill never
        leaves a half-saved student under ``path``.
        """
        from safetensors.torch import save_file

        from tdlib.artifacts import atomic_dir

        with atomic_dir(path) as out:
            self.encoder.save_pretrained(out)
            self.tokenizer.save_pretrained(out)
            if self.projection is not None:
                save_file({"weight": self.projection.weight.detach().cpu().contiguous()}, str(out / PROJECTION_FILE))
            settings = asdict(replace(self.config, model=""))
            (out / STUDENT_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return Path(path)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ tokenising and encoding

    def token_ids(self, texts: Sequence[str], is_query: bool) -> list[list[int]]:
        """Unpadded token ids of each text: prefix and marker added, truncated to the length limit."""
        cfg = self.config
        prefix = cfg.query_prefix if is_query else cfg.doc_prefix
        marker = cfg.query_marker if is_query else cfg.doc_marker
        # ColBERT reserves position 1 for its marker: tokenise ". text", then overwrite the ".".
        texts = [(". " if marker else "") + prefix + t for t in texts]
        maxlen = cfg.query_maxlen if is_query else cfg.doc_maxlen
        ids = self.tokenizer(texts, max_length=maxlen, truncation=True)["input_ids"]
        if marker:
            marker_id = self.tokenizer.convert_tokens_to_ids(marker)
            for row in ids:
                row[1] = marker_id
        return ids

    def pad(self, ids: Sequence[list[int]], is_query: bool) -> dict[str, torch.Tensor]:
        """Token ids and attention masks padded to the longest row; ColBERT queries to query_maxlen with [MASK].

        The [MASK] tokens are attended to only with ``attend_to_mask_tokens`` (ColBERT's default: not);
        they take part in MaxSim either way (see :meth:`scoring_mask`).
        """
        cfg = self.config
        augment = self._augments(is_query)
        batch = self.tokenizer.pad({"input_ids": list(ids)}, padding="max_length" if augment else "longest",
                                   max_length=cfg.query_maxlen if augment else None, return_tensors="pt")
        if augment:
            pad = batch["attention_mask"] == 0
            batch["input_ids"] = batch["input_ids"].masked_fill(pad, self.tokenizer.mask_token_id)
            if cfg.attend_to_mask_tokens:
                batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def _augments(self, is_query: bool) -> bool:
        cfg = self.config
        return (is_query and cfg.kind == "colbert" and cfg.query_augmentation
                and self.tokenizer.mask_token_id is not None)

    def punctuation_ids(self) -> set[int]:
        """ColBERT's skip list: the first token id of each ASCII punctuation character."""
        if not hasattr(self, "_punctuation_ids"):
            firsts = (self.tokenizer.encode(c, add_special_tokens=False) for c in string.punctuation)
            self._punctuation_ids = {ids[0] for ids in firsts if ids}
        return self._punctuation_ids

    def scoring_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, is_query: bool) -> torch.Tensor:
        """Which tokens take part in MaxSim (ColBERT-X), shaped like ``input_ids``.

        Queries: every real token and, with query augmentation, every [MASK] pad. Documents: every real
        token except punctuation when ``mask_punctuation`` is on.
        """
        mask = attention_mask.bool()
        if is_query:
            if self._augments(True):
                mask = mask | (input_ids == self.tokenizer.mask_token_id)
        elif self.config.mask_punctuation:
            skip = torch.tensor(sorted(self.punctuation_ids()), dtype=input_ids.dtype, device=input_ids.device)
            mask = mask & ~torch.isin(input_ids, skip)
        return mask.to(attention_mask.dtype)

    def tokenize(self, texts: Sequence[str], is_query: bool) -> dict[str, torch.Tensor]:
        """Token ids and attention masks; ColBERT queries are padded with [MASK] to query_maxlen."""
        return self.pad(self.token_ids(texts, is_query), is_query)

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, is_query: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (n, length, dim) and the mask of those that score (n, length); single-vector: length 1."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.to(states.dtype)
        if self.projection is not None:
            vectors = F.normalize(self.projection(states), dim=-1)  # (n, length, dim)
            return vectors, self.scoring_mask(input_ids, attention_mask, is_query)
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (n, hidden)
        vectors = F.normalize(pooled, dim=-1)[:, None, :]  # (n, 1, hidden)
        return vectors, torch.ones(vectors.shape[:2], dtype=attention_mask.dtype, device=vectors.device)

    def forward(
        self,
        q_input_ids: torch.Tensor,
        q_attention_mask: torch.Tensor,
        d_input_ids: torch.Tensor,
        d_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Scores (queries, passages): query i against its own passages, rows i*n .. i*n+n-1 of d."""
        nq = q_input_ids.shape[0]
        if d_input_ids.shape[0] % nq:
            raise ValueError(f"{d_input_ids.shape[0]} passages cannot be split evenly over {nq} queries.")
        n = d_input_ids.shape[0] // nq
        q, qm = self.embed(q_input_ids, q_attention_mask, is_query=True)
        d, dm = self.embed(d_input_ids, d_attention_mask, is_query=False)
        all_pairs = maxsim(q, qm, d, dm).view(nq, nq, n)  # (queries, queries, passages)
        idx = torch.arange(nq, device=all_pairs.device)
        return all_pairs[idx, idx]  # (queries, passages)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], is_query: bool, batch_size: int = 32) -> list[torch.Tensor]:
        """One float16 tensor (tokens, dim) per text, padding removed.

        The texts are tokenised once and batched in order of token count, so each batch is padded
        only to its own longest text (character counts are a poor guide across scripts).
        """
        was_training = self.training
        self.eval()
        ids = self.token_ids(texts, is_query)

        def run(idx: list[int]) -> list[torch.Tensor]:
            batch = self.pad([ids[i] for i in idx], is_query)
            vectors, mask = self.embed(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device),
                                       is_query)
            return _unpadded(vectors, mask)

        out = map_by_length([len(i) for i in ids], batch_size, run)
        self.train(was_training)
        return out


@dataclass(frozen=True)
class StudentSource:
    """Which student a stage uses, named once: a trained student's folder, a PLAID-X checkpoint (a
    folder or a Hub id), or a Hugging Face encoder to start from, with the settings a plain encoder needs.

    Stages fingerprint ``name`` and call :meth:`load` only when they have work to do.
    """

    name: str
    config: StudentConfig | None = None
    seed: int = 0

    def load(self) -> Student:
        return Student.from_pretrained(self.name, self.config, seed=self.seed)


def _add_markers(encoder: nn.Module, tokenizer, config: StudentConfig, seed: int) -> None:
    """Give a new student's vocabulary the marker tokens it lacks, as PLAID-X does (``HF_ColBERT``'s
    ``raw_tokenizer_from_pretrained`` in ``colbert/modeling/hf_colbert.py``: the query marker first, then
    the document marker, then the embeddings resized). XLM-R, for one, has no ``[unused0]``. The new
    embedding rows are drawn from ``seed`` with the encoder's initializer range, so runs repeat."""
    missing = [m for m in (config.query_marker, config.doc_marker) if m and m not in tokenizer.get_vocab()]
    if not missing:
        return
    for marker in missing:
        tokenizer.add_tokens([marker])
    old = encoder.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= old:  # the embeddings had spare rows (some checkpoints pad their vocabulary)
        return
    encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = encoder.get_input_embeddings().weight
    std = float(getattr(encoder.config, "initializer_range", 0.02))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight[old:] = torch.randn(weight.shape[0] - old, weight.shape[1], generator=gen) * std


def _unpadded(vectors: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Each row's vectors where its mask is set, in float16 on the CPU: one copy per batch, not per row."""
    counts = mask.sum(dim=1).tolist()
    kept = vectors[mask.bool()].to(torch.float16).cpu()
    return [piece.clone() for piece in kept.split(counts)]


# ---------------------------------------------------------------------- the PLAID-X layout


def load_plaidx(name: str, doc_maxlen: int | None = None) -> Student:
    """A ColBERT-X student from a PLAID-X checkpoint folder or Hugging Face id (:mod:`tdlib.checkpoints`).

    The encoder is built from ``config.json`` and must take every stored weight, with the right shapes;
    the projection must fit the encoder and the metadata's ``dim``. Anything else is refused, naming
    the folder.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = _folder(name)
    meta = checkpoints.read_metadata(folder)
    config = hub.load(AutoConfig.from_pretrained, str(folder), "checkpoint config")
    tokenizer = hub.load(AutoTokenizer.from_pretrained, str(folder), "checkpoint tokenizer")
    q_marker, d_marker = meta.get("query_token_id", "[unused0]"), meta.get("doc_token_id", "[unused1]")
    # PLAID-X adds the markers to the vocabulary when the tokenizer lacks them, query first.
    for marker in (q_marker, d_marker):
        if marker not in tokenizer.get_vocab():
            tokenizer.add_tokens([marker])
    encoder_state, projection_weight = checkpoints.split_weights(
        folder, checkpoints.read_weights(folder), getattr(config, "model_type", ""))
    encoder = AutoModel.from_config(config)
    embeddings = encoder_state.get("embeddings.word_embeddings.weight")
    if embeddings is not None and embeddings.shape[0] != encoder.get_input_embeddings().weight.shape[0]:
        encoder.resize_token_embeddings(embeddings.shape[0])
    expected = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    wrong = [k for k, v in encoder_state.items() if k in expected and tuple(v.shape) != expected[k]]
    # tdlib drops the unused [CLS] pooler, so a checkpoint may or may not carry its weights.
    missing = [k for k in expected if k not in encoder_state and not k.endswith("position_ids")
               and not k.startswith("pooler.")]
    # weights the configuration has no place for (config.json with fewer layers than were trained, say)
    unused = [k for k in encoder_state if k not in expected and not k.startswith("pooler.")]
    if wrong or missing or unused:
        what = (f"{wrong[0]} has shape {tuple(encoder_state[wrong[0]].shape)}, the config needs {expected[wrong[0]]}"
                if wrong else f"{len(missing)} encoder weights are missing, e.g. {missing[0]}" if missing
                else f"{len(unused)} stored weights have no place in it, e.g. {unused[0]}")
        raise ModelError(f"{folder}: the weights do not match config.json ({what}).")
    encoder.load_state_dict(encoder_state, strict=False)
    if projection_weight.dim() != 2 or projection_weight.shape[1] != config.hidden_size:
        raise ModelError(f"{folder}: {checkpoints.PROJECTION_KEY} has shape {tuple(projection_weight.shape)}, "
                         f"but the encoder's hidden size is {config.hidden_size}.")
    if len(tokenizer) > encoder.get_input_embeddings().weight.shape[0]:
        raise ModelError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but the embeddings only "
                         f"{encoder.get_input_embeddings().weight.shape[0]}.")
    dim = int(projection_weight.shape[0])
    if "dim" in meta and int(meta["dim"]) != dim:
        raise ModelError(f"{folder}: {checkpoints.METADATA_FILE} says dim={meta['dim']} but "
                         f"{checkpoints.PROJECTION_KEY} gives {dim}.")
    projection = nn.Linear(config.hidden_size, dim, bias=False)
    with torch.no_grad():
        projection.weight.copy_(projection_weight)
    student_cfg = StudentConfig(model=str(folder), **checkpoints.settings(meta, dim, doc_maxlen))
    return Student(encoder.eval(), tokenizer, student_cfg, projection)


def write_plaidx_layout(student: Student, folder: str | os.PathLike[str], base_prefix: str = "roberta") -> Path:
    """Save a ColBERT-X student in the PLAID-X layout (the authors' loaders read it)."""
    if student.projection is None:
        raise ModelError("only a ColBERT-X student (kind='colbert') has the PLAID-X layout.")
    if not (student.config.query_marker and student.config.doc_marker):
        raise ModelError("this student reads no marker tokens (student.query_marker and student.doc_marker are "
                         "empty), but PLAID-X always puts them after the first token, so its vectors would differ; "
                         "export a student trained with markers, such as one fine-tuned from a PLAID-X checkpoint.")
    return checkpoints.write_layout(folder, student.encoder, student.tokenizer, student.projection.weight,
                                    asdict(student.config), base_prefix)
