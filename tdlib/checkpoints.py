"""Loading released ColBERT-X checkpoints (``hltcoe/plaidx-large-*``) into tdlib's student.

A PLAID-X checkpoint is a Hugging Face folder: ``config.json`` (XLM-RoBERTa large), the weights
(``model.safetensors`` or ``pytorch_model.bin``) whose keys are the encoder's under its base-model
prefix (``roberta.``) plus ``linear.weight`` (the 1024 -> 128 projection), the tokenizer files, and
``artifact.metadata``, the ColBERT settings: marker tokens, query and document lengths, dimension,
whether [MASK] query tokens are attended to (``attend_to_mask_tokens``; they are always scored) and
whether document punctuation is masked (``mask_punctuation``). :func:`load_plaidx` maps all of that onto
:class:`tdlib.student.Student` so the released models can be evaluated and fine-tuned with the rest
of tdlib. Weights are read without unpickling arbitrary objects (safetensors, or ``torch.load`` with
``weights_only=True``), and a checkpoint whose shapes do not fit is refused with a clear message.

What this leaves out: PLAID index files (tdlib builds its own exhaustive index).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tdlib import hub
from tdlib.config import StudentConfig
from tdlib.errors import ModelError
from tdlib.student import Student

METADATA_FILE = "artifact.metadata"
PROJECTION_KEY = "linear.weight"


def _folder(name: str) -> Path:
    """A local folder for ``name``: itself, or a Hugging Face snapshot (downloaded if allowed)."""
    path = Path(hub.resolve(name))
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(hub.load(snapshot_download, name, "PLAID-X checkpoint"))


def read_metadata(folder: Path) -> dict[str, Any]:
    """ColBERT settings from ``artifact.metadata`` (flat, or nested under ``config``)."""
    p = folder / METADATA_FILE
    if not p.is_file():
        raise ModelError(f"{folder} has no {METADATA_FILE}; it does not look like a PLAID-X checkpoint.")
    meta = json.loads(p.read_text(encoding="utf-8"))
    return meta.get("config", meta) if isinstance(meta, dict) else {}


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, never unpickling arbitrary objects."""
    st = folder / "model.safetensors"
    if st.is_file():
        from safetensors.torch import load_file

        return load_file(str(st))
    pt = folder / "pytorch_model.bin"
    if pt.is_file():
        try:
            return torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 (any unpickling refusal)
            raise ModelError(f"{pt} holds more than plain tensors and is refused ({type(e).__name__}).") from None
    raise ModelError(f"{folder} has neither model.safetensors nor pytorch_model.bin.")


def load_plaidx(name: str, doc_maxlen: int | None = None) -> Student:
    """A ColBERT-X student from a PLAID-X checkpoint folder or Hugging Face id."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = _folder(name)
    meta = read_metadata(folder)
    if meta.get("similarity", "cosine") != "cosine":
        raise ModelError(f"{folder}: {METADATA_FILE} asks for similarity={meta['similarity']!r}, but tdlib scores "
                         "with cosine only (normalised vectors); train or convert the checkpoint for cosine.")
    config = hub.load(AutoConfig.from_pretrained, str(folder), "checkpoint config")
    tokenizer = hub.load(AutoTokenizer.from_pretrained, str(folder), "checkpoint tokenizer")
    q_marker, d_marker = meta.get("query_token_id", "[unused0]"), meta.get("doc_token_id", "[unused1]")
    # PLAID-X adds the markers to the vocabulary when the tokenizer lacks them, query first.
    for marker in (q_marker, d_marker):
        if marker not in tokenizer.get_vocab():
            tokenizer.add_tokens([marker])
    weights = read_weights(folder)
    if PROJECTION_KEY not in weights:
        raise ModelError(f"{folder}: no {PROJECTION_KEY!r} among the weights; not a ColBERT checkpoint.")
    projection_weight = weights.pop(PROJECTION_KEY)
    prefix = next((p for p in (getattr(config, "model_type", "").replace("-", "_"), "roberta", "bert", "model")
                   if any(k.startswith(p + ".") for k in weights)), "")
    encoder_state = {k[len(prefix) + 1:] if prefix else k: v for k, v in weights.items()
                     if not prefix or k.startswith(prefix + ".")}
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
        raise ModelError(f"{folder}: {PROJECTION_KEY} has shape {tuple(projection_weight.shape)}, "
                         f"but the encoder's hidden size is {config.hidden_size}.")
    if len(tokenizer) > encoder.get_input_embeddings().weight.shape[0]:
        raise ModelError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but the embeddings only "
                         f"{encoder.get_input_embeddings().weight.shape[0]}.")
    dim = int(projection_weight.shape[0])
    if "dim" in meta and int(meta["dim"]) != dim:
        raise ModelError(f"{folder}: {METADATA_FILE} says dim={meta['dim']} but {PROJECTION_KEY} gives {dim}.")
    projection = nn.Linear(config.hidden_size, dim, bias=False)
    with torch.no_grad():
        projection.weight.copy_(projection_weight)
    student_cfg = StudentConfig(
        model=str(folder), kind="colbert", dim=dim,
        query_maxlen=int(meta.get("query_maxlen", 32)),
        doc_maxlen=int(doc_maxlen or meta.get("doc_maxlen", 220)),
        # ColBERT always pads queries with [MASK] and scores them; the metadata only says whether the
        # encoder attends to them (default False in ColBERT's QuerySettings).
        query_augmentation=True,
        attend_to_mask_tokens=bool(meta.get("attend_to_mask_tokens", False)),
        mask_punctuation=bool(meta.get("mask_punctuation", True)),
        query_marker=q_marker, doc_marker=d_marker,
    )
    return Student(encoder.eval(), tokenizer, student_cfg, projection)


def write_plaidx_layout(student: Student, folder: str | os.PathLike[str], base_prefix: str = "roberta") -> Path:
    """Save a student in the PLAID-X layout (used to build test checkpoints offline)."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    student.encoder.config.save_pretrained(out)
    student.tokenizer.save_pretrained(out)
    tensors = {f"{base_prefix}.{k}": v.detach().contiguous() for k, v in student.encoder.state_dict().items()}
    if student.projection is None:
        raise ModelError("only a ColBERT-X student (kind='colbert') has the PLAID-X layout.")
    tensors[PROJECTION_KEY] = student.projection.weight.detach().contiguous()
    save_file(tensors, str(out / "model.safetensors"))
    cfg = student.config
    meta = {"query_token_id": cfg.query_marker or "[unused0]", "doc_token_id": cfg.doc_marker or "[unused1]",
            "query_maxlen": cfg.query_maxlen, "doc_maxlen": cfg.doc_maxlen, "dim": cfg.dim,
            "attend_to_mask_tokens": cfg.attend_to_mask_tokens, "mask_punctuation": cfg.mask_punctuation,
            "similarity": "cosine"}
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
