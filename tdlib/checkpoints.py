"""The PLAID-X checkpoint layout (``hltcoe/plaidx-large-*``): what is in the folder, read and written.

A PLAID-X checkpoint is a Hugging Face folder: ``config.json`` (XLM-RoBERTa large), the weights
(``model.safetensors`` or ``pytorch_model.bin``) whose keys are the encoder's under its base-model
prefix (``roberta.``) plus ``linear.weight`` (the 1024 -> 128 projection), the tokenizer files, and
``artifact.metadata``, the ColBERT settings: marker tokens, query and document lengths, dimension,
whether [MASK] query tokens are attended to (``attend_to_mask_tokens``; they are always scored) and
whether document punctuation is masked (``mask_punctuation``).

This module knows the files and nothing of the student: it reads and writes folders, splits the
weights into encoder and projection, and maps the metadata to the student's settings and back.
:func:`tdlib.student.load_plaidx` builds a :class:`tdlib.student.Student` from them, and
:mod:`tdlib.smoke` writes its tiny checkpoint through :func:`write_layout`. Weights are read without
unpickling arbitrary objects (safetensors, or ``torch.load`` with ``weights_only=True``).

What this leaves out: PLAID index files (tdlib builds its own exhaustive index).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from tdlib.errors import ModelError

METADATA_FILE = "artifact.metadata"
PROJECTION_KEY = "linear.weight"
WEIGHTS_FILE = "model.safetensors"


def is_layout(folder: str | Path) -> bool:
    """True when ``folder`` holds a PLAID-X checkpoint (its ``artifact.metadata``)."""
    return (Path(folder) / METADATA_FILE).is_file()


def read_metadata(folder: Path) -> dict[str, Any]:
    """ColBERT settings from ``artifact.metadata`` (flat, or nested under ``config``)."""
    p = folder / METADATA_FILE
    if not p.is_file():
        raise ModelError(f"{folder} has no {METADATA_FILE}; it does not look like a PLAID-X checkpoint.")
    meta = json.loads(p.read_text(encoding="utf-8"))
    meta = meta.get("config", meta) if isinstance(meta, dict) else {}
    if meta.get("similarity", "cosine") != "cosine":
        raise ModelError(f"{folder}: {METADATA_FILE} asks for similarity={meta['similarity']!r}, but tdlib scores "
                         "with cosine only (normalised vectors); train or convert the checkpoint for cosine.")
    return meta


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, never unpickling arbitrary objects."""
    st = folder / WEIGHTS_FILE
    if st.is_file():
        from safetensors.torch import load_file

        return load_file(str(st))
    pt = folder / "pytorch_model.bin"
    if pt.is_file():
        try:
            return torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 (any unpickling refusal)
            raise ModelError(f"{pt} holds more than plain tensors and is refused ({type(e).__name__}).") from None
    raise ModelError(f"{folder} has neither {WEIGHTS_FILE} nor pytorch_model.bin.")


def has_projection_weights(folder: Path) -> bool:
    """True when the folder's safetensors weights hold a PLAID-X projection beside an encoder."""
    st = folder / WEIGHTS_FILE
    if not st.is_file():
        return False
    from safetensors import safe_open

    with safe_open(str(st), framework="pt") as f:
        keys = set(f.keys())
    return PROJECTION_KEY in keys and len(keys) > 1


def split_weights(folder: Path, weights: dict[str, torch.Tensor],
                  model_type: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(encoder state without its base-model prefix, projection weight) from a checkpoint's tensors."""
    if PROJECTION_KEY not in weights:
        raise ModelError(f"{folder}: no {PROJECTION_KEY!r} among the weights; not a ColBERT checkpoint.")
    weights = dict(weights)
    projection = weights.pop(PROJECTION_KEY)
    prefix = next((p for p in (model_type.replace("-", "_"), "roberta", "bert", "model")
                   if any(k.startswith(p + ".") for k in weights)), "")
    state = {k[len(prefix) + 1:] if prefix else k: v for k, v in weights.items()
             if not prefix or k.startswith(prefix + ".")}
    return state, projection


def settings(meta: Mapping[str, Any], dim: int, doc_maxlen: int | None = None) -> dict[str, Any]:
    """The student's settings (``StudentConfig`` fields) that the metadata gives, with PLAID-X's defaults."""
    return {
        "kind": "colbert", "dim": dim,
        "query_maxlen": int(meta.get("query_maxlen", 32)),
        "doc_maxlen": int(doc_maxlen or meta.get("doc_maxlen", 220)),
        # ColBERT always pads queries with [MASK] and scores them; the metadata only says whether the
        # encoder attends to them (default False in ColBERT's QuerySettings).
        "query_augmentation": True,
        "attend_to_mask_tokens": bool(meta.get("attend_to_mask_tokens", False)),
        "mask_punctuation": bool(meta.get("mask_punctuation", True)),
        "query_marker": meta.get("query_token_id", "[unused0]"),
        "doc_marker": meta.get("doc_token_id", "[unused1]"),
    }


def write_layout(folder: str | Path, encoder: torch.nn.Module, tokenizer, projection: torch.Tensor,
                 student: Mapping[str, Any], base_prefix: str = "roberta") -> Path:
    """Write an encoder, its tokenizer and a (dim, hidden) projection in the PLAID-X layout.

    ``student`` holds the settings the metadata records (``StudentConfig`` fields: markers, lengths,
    dim, ``attend_to_mask_tokens``, ``mask_punctuation``).
    """
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    encoder.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tensors = {f"{base_prefix}.{k}": v.detach().contiguous() for k, v in encoder.state_dict().items()}
    tensors[PROJECTION_KEY] = projection.detach().contiguous()
    save_file(tensors, str(out / WEIGHTS_FILE))
    meta = {"query_token_id": student["query_marker"] or "[unused0]",
            "doc_token_id": student["doc_marker"] or "[unused1]",
            "query_maxlen": student["query_maxlen"], "doc_maxlen": student["doc_maxlen"], "dim": student["dim"],
            "attend_to_mask_tokens": student["attend_to_mask_tokens"],
            "mask_punctuation": student["mask_punctuation"], "similarity": "cosine"}
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
