"""tdlib: Translate-Distill (Yang, Lawrie, Mayfield, Oard, Miller, ECIR 2024) in small, tested pieces.

The names below are the library's public surface, the ones the book's chapters use (a test holds the
chapters to them)::

    load_config                    the frozen configuration: a profile and overrides
    stages                         each stage wired to a config and one output folder:
                                   translate, score, train, index, search, rerank, evaluate, ...
    data, examples                 collections, training sets and file formats; training examples
    translate, teacher, losses,    one module per step of the method: machine translation, teacher
    train, retrieve, rerank,       scoring, the distillation losses, fine-tuning, indexing and
    degrade                        search, reranking with a teacher, damaged translations (chapter 8)
    Student, StudentSource,        the students, the way a stage names one, their scoring function,
    maxsim, checkpoints            and the PLAID-X checkpoint layout
    BM25, analyse                  the lexical baseline and its analyser
    evaluate_run, compare          ir_measures evaluation and paired tests
    bookprofile, reference,        the book's helpers: which model plays which role, the recorded
    plots, logs, note              reference run, figures, quiet logs, notes above outputs
    TdlibError                     every error tdlib raises on purpose

Importing ``tdlib`` does no work (no model, no download, no seeding, not even torch): each name is
imported the first time it is used.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from tdlib.errors import TdlibError

_MODULES = ("stages", "data", "examples", "translate", "teacher", "losses", "train", "retrieve", "rerank", "degrade",
            "checkpoints", "bookprofile", "reference", "plots", "logs")
_NAMES = {
    "load_config": "config", "Student": "student", "StudentSource": "student", "maxsim": "student",
    "BM25": "lexical", "analyse": "lexical", "evaluate_run": "evaluate", "compare": "evaluate", "note": "notes",
}

__all__ = ["TdlibError", "__version__", *_MODULES, *_NAMES]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"tdlib.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"tdlib.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'tdlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
