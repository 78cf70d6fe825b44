"""tdlib: Translate-Distill (Yang, Lawrie, Mayfield, Oard, Miller, ECIR 2024) in small, tested pieces.

Each stage of the method is one module: ``translate`` (machine translation of passages),
``teacher`` (scoring candidates with a teacher), ``losses`` (the KL distillation and Translate-Train
losses), ``student`` (ColBERT-X and single-vector students), ``train`` (fine-tuning with the Hugging
Face Trainer), ``retrieve`` (indexing and exhaustive search with MaxP) and ``evaluate`` (ir_measures).
``config`` holds the frozen configuration and the profiles, ``data`` the records and file formats,
``artifacts`` the atomic, resumable stage directories and ``cli`` the ``python -m tdlib`` command line.

Importing ``tdlib`` does no work: no model, no download, no seeding.
"""
from __future__ import annotations

__version__ = "0.1.0"

from tdlib.errors import TdlibError

__all__ = ["TdlibError", "__version__"]
