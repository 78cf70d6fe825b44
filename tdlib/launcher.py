"""One process per GPU: the shard and the device of this process under ``torchrun`` or ``accelerate launch``.

Both launchers start one copy of a command per GPU and tell each its place through the environment:
``RANK`` (0 .. ``WORLD_SIZE`` - 1 over every machine) and ``LOCAL_RANK`` (its GPU on this machine).
Scoring, translation and encoding need no communication between processes: each does shard ``RANK``
of ``WORLD_SIZE`` into its own folder and the last to finish merges (:func:`tdlib.artifacts.run_shard`),
so one launch uses every GPU of one or several machines (several machines must share the output
folder). Training is the one stage that talks between processes (DDP, :mod:`tdlib.train`).
"""
from __future__ import annotations

import os
from typing import Mapping


def shard(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` when a launcher started several processes, else None (``env``: the
    process's environment unless given).

    >>> shard({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    (1, 4)
    >>> shard({}) is None and shard({"WORLD_SIZE": "1"}) is None
    True
    """
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return int(env.get("RANK", "0") or 0), world


def device() -> str:
    """This process's device: its own GPU (``cuda:LOCAL_RANK``) when there are GPUs, else the CPU."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    return f"cuda:{local % torch.cuda.device_count()}"
