"""The book's build picks, role by role, the best model that can be had here."""
from __future__ import annotations

import pytest

from tdlib import bookprofile
from tdlib.config import load_config


@pytest.fixture
def have(monkeypatch):
    """Pretend exactly these models can be had."""
    available: set[str] = set()
    monkeypatch.delenv("TDLIB_PROFILE", raising=False)
    monkeypatch.delenv("TDLIB_SET", raising=False)
    monkeypatch.setattr(bookprofile, "model_available", lambda m: m in available)
    return available


def test_all_cpu_models_give_the_cpu_profile_unchanged(have):
    cfg = load_config("cpu")
    have.update({cfg.student.model, cfg.teacher.model, cfg.translate.model})
    choice = bookprofile.choose()
    assert (choice.profile, choice.overrides) == ("cpu", ())
    assert "the cpu profile's" in choice.roles["teacher"] and bookprofile.translator_available(cfg.translate.model)


def test_offline_machine_gets_real_stand_ins(have):
    have.update({"intfloat/multilingual-e5-small", bookprofile.STAND_IN_TEACHER})
    choice = bookprofile.choose()
    assert choice.profile == "cpu"
    assert choice.overrides == ("teacher.kind=bi-encoder", f"teacher.model={bookprofile.STAND_IN_TEACHER}")
    assert "in place of the cross-encoder" in choice.roles["teacher"]
    assert choice.roles["translator"].startswith("none: the collection's human translations")
    cfg = load_config(choice.profile, overrides=list(choice.overrides))
    assert not bookprofile.translator_available(cfg.translate.model)
    assert bookprofile.translator_available(load_config("smoke").translate.model)  # built in code
    assert cfg.train.teacher_temperature == 0.05  # the bi-encoder's cosines get the cosine temperature


def test_no_real_student_means_smoke(have):
    have.add(bookprofile.STAND_IN_TEACHER)
    choice = bookprofile.choose()
    assert choice.profile == "smoke" and "multilingual-e5-small" in choice.reason


def test_the_shell_line_carries_the_stand_ins_to_every_chapter(have, monkeypatch, capsys):
    have.update({"intfloat/multilingual-e5-small", bookprofile.STAND_IN_TEACHER})
    bookprofile.main(["--shell"])
    line = capsys.readouterr().out
    assert line.startswith("export TDLIB_PROFILE=cpu TDLIB_SET=")
    # what the chapters then see: load_config applies TDLIB_SET to the profile TDLIB_PROFILE names
    monkeypatch.setenv("TDLIB_PROFILE", "cpu")
    monkeypatch.setenv("TDLIB_SET", "teacher.kind=bi-encoder teacher.model=m")
    assert load_config().teacher.kind == "bi-encoder"
    assert load_config("cpu").teacher.model == "m"
    assert load_config("smoke").teacher.kind == "cross-encoder"  # another profile: not applied
    assert "teacher: " not in bookprofile.banner()  # forced: the reason given is shown as is


def test_the_banner_is_a_note_in_a_notebook_and_text_elsewhere(monkeypatch, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from tdlib import notes

    monkeypatch.setenv("TDLIB_PROFILE_REASON", "student: a test model")
    bookprofile.show("cpu")
    assert capsys.readouterr().out.startswith("**Profile.** ")  # no IPython shell: plain text

    shown = []
    monkeypatch.setattr("IPython.get_ipython", lambda: InteractiveShell)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    notes.note("**Reference.** recorded")
    assert shown == ["> **Reference.** recorded"] and capsys.readouterr().out == ""
