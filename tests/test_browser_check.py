"""scripts/browser_check.py finds what a reader would stumble on, on a tiny site made here.

Needs Chromium and websocket-client (``.ci/run`` installs both); skipped without them. The check of
the real book runs in ``.ci/run`` after the build, since the tests do not build the book.
"""
import base64
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("browser_check", ROOT / "scripts" / "browser_check.py")
browser_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(browser_check)

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None or importlib.util.find_spec("websocket") is None,
                                reason="needs chromium and websocket-client")
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


def test_a_clean_page_passes_and_each_kind_of_problem_is_reported(tmp_path, capsys):
    site = tmp_path / "html"
    (site / "notebooks").mkdir(parents=True)
    (site / "fig.png").write_bytes(PNG)
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=good.html" />')
    (site / "good.html").write_text(_page(
        '<h1 id="top">Good</h1><img src="fig.png"><a href="bad.html#there">on</a> <a href="#top">up</a>'
        '<a href="https://example.org/">the web is not checked</a><pre>$$ in code is fine</pre>'))
    (site / "bad.html").write_text(_page(
        '<p id="there">x</p><img src="missing.png"><a href="nowhere.html">a</a> <a href="good.html#nope">b</a>'
        '<p>raw $$x^2$$ left</p><span class="math">\\(y\\)</span><script>console.error("boom")</script>'))
    (site / "notebooks" / "01_chapter.html").write_text(_page('<div class="cell_output"><p>no figure</p></div>'))

    assert browser_check.main([str(site), "--chromium", CHROMIUM, "--screenshots", str(tmp_path / "shots")]) == 1
    out = capsys.readouterr().out
    problems = {line.split(": ", 1)[0]: [] for line in out.splitlines()}
    for line in out.splitlines():
        page, problem = line.split(": ", 1)
        problems[page].append(problem)
    assert "good.html" not in problems and "index.html" not in problems, out
    bad = "\n".join(problems["bad.html"])
    for expected in ("broken image: missing.png", "nowhere.html (no such file)", "no id 'nope' on that page",
                     "raw TeX in the text: 'x a b raw $$x^2$$ left", "formula not typeset by MathJax: '\\\\(y\\\\)'",
                     "console error: boom"):
        assert expected in bad, (expected, bad)
    assert problems["notebooks/01_chapter.html"] == ["chapter shows no figure in its outputs"]
    assert (tmp_path / "shots" / "good.png").stat().st_size > 1000


def test_whole_page_screenshots_cover_a_tall_page(tmp_path):
    site = tmp_path / "html"
    site.mkdir()
    (site / "tall.html").write_text(_page("".join(f'<p style="height:300px">part {k}</p>' for k in range(10))))
    assert browser_check.main([str(site), "--chromium", CHROMIUM, "--screenshots", str(tmp_path / "shots"),
                               "--whole-pages"]) == 0
    shots = sorted(p.name for p in (tmp_path / "shots").iterdir())
    # 10 x 300 px (plus margins) in screens of 900 px: four screenfuls
    assert shots == [f"tall-{k:02d}.png" for k in range(1, 5)], shots
