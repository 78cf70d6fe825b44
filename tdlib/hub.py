"""Loading models by name: Hugging Face ids, local folders, and the ``smoke:`` models built in code.

One place turns a failed load into a sentence a person can act on (no network, a typo, a missing
folder), so every stage reports it the same way.
"""
from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

from tdlib.errors import ModelError

T = TypeVar("T")


def resolve(name: str) -> str:
    """A loadable name or path: ``smoke:NAME`` is built (once) by :mod:`tdlib.smoke`."""
    if name.startswith("smoke:"):
        from tdlib import smoke

        return str(smoke.build(name.split(":", 1)[1]))
    return name


def load(loader: Callable[..., T], name: str, what: str, **kwargs: Any) -> T:
    """Call ``loader(resolve(name), **kwargs)``, turning load failures into one clear ``ModelError``."""
    path = resolve(name)
    try:
        return loader(path, **kwargs)
    except (OSError, ValueError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = (
            "it is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading"
            if offline
            else "check the id or path, and the network if it must be downloaded"
        )
        raise ModelError(
            f"cannot load the {what} {name!r}: {hint}; offline, use --profile smoke "
            f"(tiny models built in code). ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
