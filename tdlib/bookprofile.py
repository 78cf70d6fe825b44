"""Choosing how the book is built here: the best real model for each role that can be had, else ``smoke``.

The ``cpu`` profile names a model for each role: the student (``intfloat/multilingual-e5-small``), the
teacher (the cross-encoder ``cross-encoder/ms-marco-MiniLM-L-6-v2``) and the translator (NLLB). Role
by role, :func:`choose` takes the profile's model when it is cached or downloadable, else a real
stand-in that is: the English bi-encoder ``sentence-transformers/all-MiniLM-L6-v2`` as teacher (its
cosines, with the cosine temperature), and the collection's own human translations in place of
machine translation (the chapters that translate say they could not). Only when no real student can be
had does the book run in ``smoke`` (tiny random models).

``python -m tdlib.bookprofile --shell`` prints ``export`` lines for ``TDLIB_PROFILE``, ``TDLIB_SET``
(the stand-ins' overrides, read by :func:`tdlib.config.load_config`) and ``TDLIB_PROFILE_REASON``;
every executed chapter shows which model played which role, and why (:func:`banner`).
``TDLIB_PROFILE`` set by hand forces a profile (with ``TDLIB_SET`` if given).
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tdlib.config import load_config
from tdlib.notes import note

# Real models that can stand in for the cpu profile's, role by role (see the module docstring).
STAND_IN_TEACHER = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Choice:
    """The profile, the overrides that put stand-ins in place, and one line per role."""

    profile: str
    overrides: tuple[str, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    reason: str = ""


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


def checkpoint_folder(name: str) -> Path:
    """The folder of a checkpoint a chapter reads file by file: a local folder as it is, ``smoke:NAME``
    built here (tiny and random, in the same layout), a Hub id downloaded once into the Hugging Face cache."""
    from huggingface_hub import snapshot_download

    from tdlib import hub

    if Path(name).is_dir():
        return Path(name)
    if name.startswith("smoke:"):
        return Path(hub.resolve(name))
    return Path(hub.load(snapshot_download, name, "checkpoint"))


def _forced() -> Choice | None:
    forced = os.environ.get("TDLIB_PROFILE")
    if not forced:
        return None
    sets = tuple(os.environ.get("TDLIB_SET", "").split())
    return Choice(forced, sets, {}, os.environ.get("TDLIB_PROFILE_REASON", "chosen by TDLIB_PROFILE"))


def choose() -> Choice:
    """What to build the book with on this machine (``TDLIB_PROFILE`` forces a profile)."""
    forced = _forced()
    if forced:
        return forced
    cfg = load_config("cpu")
    if not model_available(cfg.student.model):
        return Choice("smoke", (), {}, f"the cpu profile's student {cfg.student.model} is neither cached nor "
                                       "downloadable here, so the chapters ran with the tiny smoke models")
    overrides: list[str] = []
    roles = {"student": f"{cfg.student.model} (the cpu profile's)"}
    if model_available(cfg.teacher.model):
        roles["teacher"] = f"{cfg.teacher.model} (the cpu profile's {cfg.teacher.kind})"
    elif model_available(STAND_IN_TEACHER):
        overrides += ["teacher.kind=bi-encoder", f"teacher.model={STAND_IN_TEACHER}"]
        roles["teacher"] = (f"{STAND_IN_TEACHER}, an English bi-encoder, in place of the {cfg.teacher.kind} "
                            f"{cfg.teacher.model}, which cannot be had here")
    else:
        return Choice("smoke", (), {}, f"neither the cpu profile's teacher {cfg.teacher.model} nor the stand-in "
                                       f"{STAND_IN_TEACHER} can be had here, so the chapters ran with the tiny "
                                       "smoke models")
    if model_available(cfg.translate.model):
        roles["translator"] = f"{cfg.translate.model} (the cpu profile's)"
    else:
        roles["translator"] = (f"none: the collection's human translations are used, as {cfg.translate.model} "
                               "cannot be had here")
    reason = "; ".join(f"{role}: {text}" for role, text in roles.items())
    return Choice("cpu", tuple(overrides), roles, reason)


def translator_available(model: str) -> bool:
    """Whether the translation model ``model`` (a config's ``translate.model``) can run here.

    Asked of the model itself, not of :func:`choose`'s roles, so that it holds in a build where
    ``TDLIB_PROFILE`` was exported (the roles are then not known). The smoke models are built in code.
    """
    return model.startswith("smoke:") or model_available(model)


def banner(profile: str | None = None) -> str:
    """One line for the top of an executed chapter: which profile ran, which model played which role, why."""
    chosen = choose()
    profile = profile or chosen.profile
    return f"Executed with the `{profile}` profile: {chosen.reason}."


def show(profile: str | None = None) -> None:
    """Display the banner as a highlighted note in a notebook (plain text elsewhere)."""
    note(f"**Profile.** {banner(profile)}")


def main(argv: list[str] | None = None) -> int:
    choice = choose()
    if "--shell" in (argv if argv is not None else sys.argv[1:]):
        print(f"export TDLIB_PROFILE={shlex.quote(choice.profile)} "
              f"TDLIB_SET={shlex.quote(' '.join(choice.overrides))} "
              f"TDLIB_PROFILE_REASON={shlex.quote(choice.reason)}")
        return 0
    print(choice.profile, *choice.overrides)
    print(f"profile {choice.profile}: {choice.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
