"""A Sphinx extension of the book: each page loads each script once.

sphinx-thebe and sphinx-togglebutton add inline scripts when the build starts, and with Sphinx 7.4
each such script ends up twice in every page. A repeated ``var`` is harmless, but sphinx-thebe's
``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been declared" in
the reader's console on every page (``scripts/browser_check.py`` finds it). This drops the repeats
from the page's script list, keeping the first of each and the order.
"""
from __future__ import annotations


def _key(js) -> tuple:
    # An inline script is registered once with filename None and once with "", so compare the text.
    attributes = getattr(js, "attributes", {})
    return (getattr(js, "filename", js) or "", getattr(js, "priority", 0), tuple(sorted(attributes.items())))


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        unique = {}
        for js in context["script_files"]:
            unique.setdefault(_key(js), js)
        context["script_files"] = list(unique.values())


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
