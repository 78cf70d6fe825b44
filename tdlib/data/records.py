"""The records of IR data: documents, queries, judgments, runs, and the one rule for a document's text.

A document record of a JSONL file (``id``, ``text``, optional ``title``) becomes a :class:`TitledDoc`
through :func:`document` whichever way the file is read (whole, by id, or through ir_datasets), and
its text is :func:`join_title` of the two.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from tdlib.errors import DataError


class Doc(NamedTuple):
    doc_id: str
    text: str


class Query(NamedTuple):
    query_id: str
    text: str


class Qrel(NamedTuple):
    query_id: str
    doc_id: str
    relevance: int


class Topic(NamedTuple):
    """A NeuCLIR-style topic as stored by the mini collection."""

    query_id: str
    title: str
    description: str


class TitledDoc(NamedTuple):
    """A document of a registered JSONL collection: ``title`` is "" when the record has none."""

    doc_id: str
    title: str
    text: str


Run = dict[str, list[tuple[str, float]]]


def check_text(text: Any, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: the text is empty; remove the record or give it text.")
    return text


def join_title(title: str | None, text: str) -> str:
    """The one rule for a document with a title, whichever way it is read: the title, a space, the text.

    PLAID-X's passage script joins them the same way (``title + " " + text``).

    >>> join_title("Rain returns", "After two dry summers ...")
    'Rain returns After two dry summers ...'
    >>> join_title("", "No title.")
    'No title.'
    """
    return f"{title} {text}" if title else text


def document(obj: Mapping[str, Any], where: str) -> TitledDoc:
    """A JSONL document record as a :class:`TitledDoc`: its id, its title ("" if none) and its text, checked."""
    missing = [k for k in ("id", "text") if k not in obj]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}.")
    title = obj.get("title") or ""
    return TitledDoc(str(obj["id"]), str(title), check_text(obj["text"], where))


def document_text(obj: Mapping[str, Any], where: str) -> str:
    """The text of a JSONL document record, its title (if any) first."""
    d = document(obj, where)
    return join_title(d.title, d.text)
