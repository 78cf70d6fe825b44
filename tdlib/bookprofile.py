"""Choosing the profile the book is built in: ``cpu`` when its real models can be had, else ``smoke``.

``python -m tdlib.bookprofile`` prints the chosen profile on stdout and the reason on stderr; every
executed chapter shows both (see :func:`banner`). ``TDLIB_PROFILE`` forces a profile.
"""
from __future__ import annotations

import os
import sys

from tdlib.config import load_config


def model_available(model_id: str) -> bool:
    """True when ``model_id`` is in the Hugging Face cache, or the Hub answers for it."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return True
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        from huggingface_hub import model_info

        model_info(model_id, timeout=5)
        return True
    except Exception:  # noqa: BLE001 (any failure means: not available here)
        return False


def choose() -> tuple[str, str]:
    """(profile, reason) for building the book on this machine."""
    forced = os.environ.get("TDLIB_PROFILE")
    if forced:
        return forced, os.environ.get("TDLIB_PROFILE_REASON", "chosen by TDLIB_PROFILE")
    cfg = load_config("cpu")
    needed = [cfg.student.model, cfg.teacher.model, cfg.translate.model]
    missing = [m for m in needed if not model_available(m)]
    if missing:
        return "smoke", (f"the cpu profile's model {missing[0]} is neither cached nor downloadable here, "
                         "so the chapters ran with the tiny smoke models")
    return "cpu", "the cpu profile's models are available"


def banner(profile: str | None = None) -> str:
    """One line for the top of an executed chapter: which profile ran, and why."""
    chosen, reason = choose()
    profile = profile or chosen
    return f"Executed with the `{profile}` profile: {reason}."


def show(profile: str | None = None) -> None:
    """Display the banner as a highlighted note in a notebook (plain text elsewhere)."""
    text = banner(profile)
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"> **Profile.** {text}"))
    except ImportError:
        print(text)


def main(argv: list[str] | None = None) -> int:
    import shlex

    profile, reason = choose()
    if "--shell" in (argv if argv is not None else sys.argv[1:]):
        print(f"export TDLIB_PROFILE={shlex.quote(profile)} TDLIB_PROFILE_REASON={shlex.quote(reason)}")
        return 0
    print(profile)
    print(f"profile {profile}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
