"""Every chapter runs in the smoke profile, alone, and is committed clean."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_chapters_and_all_are_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapters_use_only_the_public_names_of_tdlib(nb):
    """A chapter imports from ``tdlib`` itself, and only names of ``tdlib.__all__``: internals can move."""
    import ast

    import tdlib

    public = set(tdlib.__all__)
    for cell in _cells(nb):
        if cell["cell_type"] != "code":
            continue
        source = "\n".join(line for line in _text(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.startswith("tdlib.")], ast.unparse(node)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tdlib"):
                assert node.module == "tdlib", f"{nb.name}: {ast.unparse(node)} (import from tdlib itself)"
                assert {a.name for a in node.names} <= public, f"{nb.name}: {ast.unparse(node)} names an internal"
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "tdlib":
                assert node.attr in public, f"{nb.name}: tdlib.{node.attr} is not public"


def test_every_public_name_of_tdlib_resolves():
    import tdlib

    for name in tdlib.__all__:
        assert getattr(tdlib, name) is not None, name


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_clean_and_following_the_template(nb):
    data = json.loads(nb.read_text(encoding="utf-8"))
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    # nbformat 4.5: every cell has a unique id (the build warns on a missing one)
    ids = [c.get("id") for c in data["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), "a cell has no id or a repeated one"
    code = [c for c in data["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code), "notebook carries outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    for line in _text(params[0]).splitlines():
        assert not line.strip() or line.lstrip().startswith("#") or re.fullmatch(
            r"\w+ = (\"[^\"]*\"|-?[\d.e-]+|True|False|None|\[[^\]]*\])", line.strip()), line
    assert {"profile", "seed", "output_dir"} <= {l.split("=")[0].strip() for l in _text(params[0]).splitlines() if "=" in l}
    md = "\n".join(_text(c) for c in data["cells"] if c["cell_type"] == "markdown")
    for heading in ("## Overview", "## Prerequisites", "## Summary", "## Exercises", "## References"):
        assert heading in md, heading
    exercises = md.split("## Exercises", 1)[1].split("## References", 1)[0]
    n_exercises = len(re.findall(r"^\d+\. ", exercises.split("### Solutions", 1)[0], flags=re.M))
    assert n_exercises >= 3
    # a worked solution for every exercise, collapsed, in order; solution code cells are collapsed too
    solutions = [int(k) for k in re.findall(r"^:::\{dropdown\} Solution (\d+):", md, flags=re.M)]
    assert solutions == list(range(1, n_exercises + 1)), (solutions, n_exercises)
    for c in code:
        prompt = c.get("metadata", {}).get("mystnb", {}).get("code_prompt_show", "")
        if prompt.startswith("Solution"):
            assert "hide-cell" in c["metadata"].get("tags", []), prompt
    assert re.search(r"^\(ch-[\w-]+\)=", md, flags=re.M)
    assert f"colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/notebooks/{nb.name}" in md
    # the badge is the book's own image, so the page renders offline
    assert "[![Open in Colab](../book/images/colab-badge.svg)](https://colab.research.google.com/github/" in md
    assert (ROOT / "book" / "images" / "colab-badge.svg").is_file()
    install = [c for c in code if re.search(r"\bpip\b", _text(c))]
    assert install and all(f"git+{REPO_URL}" in _text(c) for c in install)
    assert not any(re.search(r"pip install[^\n]*\btdlib\b", _text(c)) for c in code)
    assert not any("torch" in _text(c) and re.search(r"\bpip\b", _text(c)) for c in code), \
        "the install cell must keep Colab's torch"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_runs_alone_in_smoke(nb, tmp_path):
    import papermill

    out = tmp_path / "runs"
    papermill.execute_notebook(
        str(nb), str(tmp_path / nb.name), parameters={"profile": "smoke", "output_dir": str(out)},
        kernel_name="python3", cwd=str(nb.parent), progress_bar=False,
    )
    chapter = nb.name[:2].lstrip("0")
    assert list((out / "smoke" / "figures").glob(f"ch{chapter}-*.png")), "no figure saved"
    assert list((out / "smoke" / "tables").glob(f"ch{chapter}-*.csv")), "no table saved"
