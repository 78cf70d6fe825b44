"""A Sphinx extension of the book: each page loads each script once.

sphinx-thebe and sphinx-togglebutton add inline scripts when the build starts, and with Sphinx 7.4
each such script ends up twice in every page. A repeated ``var`` is harmless, but sphinx-thebe's
``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been declared" in
the reader's console on every page (``scripts/browser_check.py`` finds it). This drops the repeats
from the page's script list, keeping the first of each and the order.
"""
from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = list(dict.fromkeys(context["script_files"]))


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
