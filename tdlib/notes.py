"""Notes the chapters show above their outputs: a Markdown block quote in a notebook, text elsewhere."""

from __future__ import annotations


def note(markdown: str) -> None:
    """Display ``markdown`` as a highlighted block quote in a notebook; print it anywhere else."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(markdown)
        return
    display(Markdown(f"> {markdown}"))
