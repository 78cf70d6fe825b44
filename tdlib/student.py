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
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tdlib import hub
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


def _refuse_plaidx_weights_without_metadata(folder: Path) -> None:
    """A local folder of PLAID-X weights (a ColBERT projection beside the encoder) with no artifact.metadata.

    Loaded as a plain encoder, it would silently drop its trained projection; refuse it instead.
    """
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        keys = set(f.keys())
    if "linear.weight" in keys and len(keys) > 1:
        raise ModelError(f"{folder} holds PLAID-X weights (a linear.weight projection beside the encoder) but "
                         "no artifact.metadata; restore that file (its query and document markers and lengths) "
                         "to load it as a ColBERT-X student.")


def _is_plaidx(name: str, path: str) -> bool:
    """A released PLAID-X checkpoint: a folder (or cached Hub snapshot) with artifact.metadata."""
    if (Path(path) / STUDENT_FILE).is_file():
        return False
    if (Path(path) / "artifact.metadata").is_file():
        return True
    if Path(path).exists():
        return False
    from huggingface_hub import try_to_load_from_cache

    if name.startswith("hltcoe/plaidx"):
        return True
    try:
        return isinstance(try_to_load_from_cache(name, "artifact.metadata"), str)
    except ValueError:  # not a valid Hub id either: let the normal loader report it
        return False


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
            from tdlib.checkpoints import load_plaidx

            return load_plaidx(name)
        saved = Path(path) / STUDENT_FILE
        if saved.is_file():
            stored = json.loads(saved.read_text(encoding="utf-8"))
            config = StudentConfig(**{**stored, "model": str(path)})
        else:
            _refuse_plaidx_weights_without_metadata(Path(path))
        config = config or StudentConfig(model=name)
        encoder = _load_encoder(path)
        tokenizer = hub.load(AutoTokenizer.from_pretrained, path, "student tokenizer")
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


def _unpadded(vectors: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Each row's vectors where its mask is set, in float16 on the CPU: one copy per batch, not per row."""
    counts = mask.sum(dim=1).tolist()
    kept = vectors[mask.bool()].to(torch.float16).cpu()
    return [piece.clone() for piece in kept.split(counts)]
