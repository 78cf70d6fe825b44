"""How much the libraries say: quiet for the book's pages and the command line, all of it when verbose.

Left alone, the libraries under ``tdlib`` fill a page or a terminal with lines a reader cannot act on:
``ir_datasets`` logs ``[INFO] Opening ... docstore`` every time a collection is read, ``transformers``
prints a ``LOAD REPORT`` table whenever a checkpoint carries weights the model does not use (every
smoke encoder has a ``[CLS]`` pooler that the students drop) and a bar for loading and saving
weights, and the Trainer prints its log dictionaries (``{'loss': ...}``). The stages show progress
bars of their own, and the Trainer's log is kept in ``train/train_log.jsonl``.

:func:`quiet` is the one place that turns this down; the command line calls it (``--verbose`` calls
``quiet(verbose=True)``) and so does every chapter's setup cell. Warnings from ``tdlib`` and errors
from the libraries still show. The stages draw their bars with :func:`progress_bar`, one per long
stage. What this leaves out: it does not touch the bars of downloads, nor ``ir_datasets``' bar while
it builds a docstore (minutes on a real collection); ``TQDM_DISABLE=1`` turns every bar off.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

LOGGER = "tdlib"


def quiet(verbose: bool = False) -> None:
    """Silence the libraries' chatter (``verbose=False``) or restore their own defaults and more.

    Parameters
    ----------
    verbose
        ``False``: no INFO records from any logger (``ir_datasets`` gives each of its loggers level
        INFO and a handler of its own when first used, so only :func:`logging.disable` reaches them),
        ``transformers`` and ``huggingface_hub`` report errors only (no "could not reach the Hub" for
        each cached model offline) and show no bars for loading or saving weights (the Hub's download
        bars stay as they were). ``True``: the
        libraries' defaults, plus ``tdlib``'s INFO records (the Trainer's log at each logging step).

    Example
    -------
    >>> from tdlib import logs
    >>> logs.quiet()
    >>> import logging
    >>> logging.getLogger("ir_datasets").isEnabledFor(logging.INFO)
    False
    >>> logging.getLogger("huggingface_hub.hf_api").isEnabledFor(logging.WARNING)
    False
    >>> logs.quiet(verbose=True)
    """
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    if verbose:
        logging.disable(logging.NOTSET)
        hf_logging.set_verbosity_warning()
        hub_logging.set_verbosity_warning()
        hf_logging.enable_progress_bar()
        ours = logging.getLogger(LOGGER)
        ours.setLevel(logging.INFO)
        if not (ours.handlers or logging.getLogger().handlers):  # a notebook has no handler of its own
            ours.addHandler(logging.StreamHandler(sys.stderr))
    else:
        from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

        logging.disable(logging.INFO)
        hf_logging.set_verbosity_error()
        # offline (HF_HUB_OFFLINE=1), every cached model would warn that the Hub could not be reached
        hub_logging.set_verbosity_error()
        downloads = not are_progress_bars_disabled()
        hf_logging.disable_progress_bar()  # also turns off the Hub's bars ...
        if downloads:
            enable_progress_bars()  # ... but a download takes minutes: keep its bar


def progress_bar(*args: Any, progress: bool = True, **kwargs: Any):
    """A ``tqdm.auto`` bar for one long stage, or none when ``progress=False``.

    Unlike ``tqdm(..., disable=not progress)``, a wanted bar still gives way to ``TQDM_DISABLE=1``
    (tqdm reads it only for arguments left unset), which is how the book is built: a bar in an
    executed notebook is a widget that would need JavaScript from the internet to show.
    """
    from tqdm.auto import tqdm

    # tqdm reads TQDM_DISABLE, but its notebook bar (what tqdm.auto gives in a kernel) overrides it.
    if not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        kwargs["disable"] = True
    return tqdm(*args, **kwargs)
