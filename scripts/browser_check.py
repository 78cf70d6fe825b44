"""Open every page of the built book in headless Chromium and check what a reader would see.

    python3 scripts/browser_check.py [_build/html] [--screenshots DIR [--whole-pages]]

Chromium (Debian package ``chromium``) is driven over the Chrome DevTools protocol with the
``websocket-client`` package. For every HTML page of the build it checks that

- the page loads with no console error, no uncaught exception and no failed request;
- it fetches nothing from the internet (the book must read offline: MathJax and the badge are local);
- every image loads (``naturalWidth > 0``);
- every internal link points to a file of the build, and a ``#fragment`` to an id on that page;
- MathJax has typeset every formula: each ``.math`` element holds MathJax's output, no TeX error box,
  and no raw ``$$``, ``\\(`` or ``\\[`` is left in the visible text outside code;
- each chapter (``notebooks/NN_*.html``) shows at least one figure among its cell outputs, and
  chapters 3 to 6 show the reference results recorded with real models (a "Reference run with real
  models" note among their outputs).

It prints one line per problem and exits with status 1 if there is any. ``--screenshots DIR`` also
saves a 1280x900 screenshot of each page; with ``--whole-pages``, every page from top to bottom, one
screenshot per screenful (``NAME-01.png``, ``NAME-02.png``, ...). ``.ci/run`` runs it after building the book; it takes
well under a minute for the whole book.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# What the page reports once MathJax (if the page has it) has finished typesetting.
REPORT_JS = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = await Promise.all([...document.images].map(async (img) => {
    img.loading = "eager";  // a lazy image below the fold would otherwise never load
    try { await img.decode(); } catch (e) {}
    return {src: img.getAttribute("src") || "", url: img.currentSrc || img.src,
            ok: img.complete && img.naturalWidth > 0, figure: !!img.closest(".cell_output")};
  }));
  const links = [...document.querySelectorAll("a[href]")].map((a) => a.href);
  const maths = [...document.querySelectorAll(".math")];
  const untypeset = maths.filter((m) => !m.querySelector("mjx-container")).map((m) => m.textContent.trim());
  const texErrors = [...document.querySelectorAll("mjx-merror")].map((m) => m.textContent.trim());
  const code = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: (n) =>
    n.parentElement.closest(code) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const text = [];
  while (walker.nextNode()) text.push(walker.currentNode.nodeValue);
  return {title: document.title, images, links, maths: maths.length, untypeset, texErrors,
          text: text.join(" ")};
})()
"""
# Chapters that render the reference results (tdlib.reference), and the words their note starts with.
REFERENCE_CHAPTERS = ("03", "04", "05", "06")
REFERENCE_NOTE = "Reference run with real models"
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\begin\{")
REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.I)


class Browser:
    """A headless Chromium and one page of it, spoken to over the DevTools protocol."""

    def __init__(self, chromium: str, window: tuple[int, int] = (1280, 900)):
        import websocket  # the websocket-client package

        self.profile = tempfile.mkdtemp(prefix="browser-check-")
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-extensions", "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", f"--window-size={window[0]},{window[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._port()
        page = next(t for t in self._json(port, "list") if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=window[0], height=window[1],
                  deviceScaleFactor=1, mobile=False)

    def _port(self) -> int:
        deadline = time.monotonic() + 30
        port_file = Path(self.profile) / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if port_file.is_file() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    @staticmethod
    def _json(port: int, what: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/{what}", timeout=10) as r:
            return json.load(r)

    def call(self, method: str, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))
        self.ws.settimeout(60)

    def open(self, url: str) -> dict:
        """Load ``url``, wait for it and for MathJax; the page's report plus what went wrong meanwhile."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        result = self.call("Runtime.evaluate", expression=REPORT_JS, awaitPromise=True, returnByValue=True,
                           timeout=30000)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the report script failed on {url}: {result['exceptionDetails']}")
        report = result["result"]["value"]
        report["problems"] = self._problems()
        report["requests"] = [e["params"]["request"]["url"] for e in self.events
                              if e["method"] == "Network.requestWillBeSent"]
        return report

    def _problems(self) -> list[str]:
        out = []
        urls = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"}
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"uncaught exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append("console error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                        for a in p["args"]))
            elif (m == "Log.entryAdded" and p["entry"]["level"] == "error"
                  and not p["entry"]["text"].startswith("Failed to load resource")):  # a failed request, below
                out.append(f"console error: {p['entry']['text']} {p['entry'].get('url', '')}".strip())
            elif m == "Network.loadingFailed" and not p.get("canceled") and p["requestId"] in urls:
                # (a request of the previous page that fails after it was left is not this page's)
                out.append(f"failed request: {urls[p['requestId']]} ({p.get('errorText')})")
        return list(dict.fromkeys(out))

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def screenshots_of_whole_page(self, stem: Path) -> int:
        """One screenshot per screenful, top to bottom: ``stem-01.png``, ...; returns how many."""
        def js(expression: str):
            return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]

        height, screen = js("document.documentElement.scrollHeight"), js("window.innerHeight")
        count = max(1, -(-height // screen))
        for k in range(count):
            js(f"window.scrollTo(0, {k * screen}); 0")
            time.sleep(0.2)  # let the page paint after the scroll
            self.screenshot(stem.with_name(f"{stem.name}-{k + 1:02d}.png"))
        js("window.scrollTo(0, 0); 0")
        return count

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 (it is going away either way)
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


_ID_CACHE: dict[Path, set[str]] = {}


def ids_of(path: Path) -> set[str]:
    """The ids (and ``name`` anchors) of an HTML file, which a ``#fragment`` may point to."""
    if path not in _ID_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


def link_problem(url: str, root: Path) -> str | None:
    """Why an internal link is broken (a missing file or fragment), or None; web links are not checked."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    target = Path(unquote(parts.path))
    if not target.resolve().is_relative_to(root.resolve()):
        return f"link leaves the book: {url}"
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"broken link: {url} (no such file)"
    if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_of(target):
        return f"broken link: {url} (no id {parts.fragment!r} on that page)"
    return None


def check_page(report: dict, page: Path, root: Path) -> list[str]:
    """Every problem a reader would meet on one page, from the browser's report."""
    problems = list(report["problems"])
    problems += [f"fetches from the internet: {u}" for u in dict.fromkeys(report["requests"])
                 if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    problems += [f"broken image: {i['src']}" for i in report["images"] if not i["ok"]]
    problems += sorted({p for p in (link_problem(u, root) for u in report["links"]) if p})
    problems += [f"formula not typeset by MathJax: {t[:60]!r}" for t in report["untypeset"]]
    problems += [f"TeX error in a formula: {t[:60]!r}" for t in report["texErrors"]]
    for m in RAW_TEX.finditer(report["text"]):
        start = max(0, m.start() - 30)
        context = " ".join(report["text"][start:m.end() + 30].split())
        problems.append(f"raw TeX in the text: {context!r}")
    problems = list(dict.fromkeys(problems))
    if re.fullmatch(r"\d\d_.*\.html", page.name) and page.parent.name == "notebooks":
        if not any(i["figure"] and i["ok"] for i in report["images"]):
            problems.append("chapter shows no figure in its outputs")
        if page.name[:2] in REFERENCE_CHAPTERS and REFERENCE_NOTE not in report["text"]:
            problems.append("chapter shows no reference results (the 'Reference run with real models' note)")
    return problems


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no chromium on PATH: apt-get install -y chromium")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", default="_build/html", help="the built book (default: _build/html)")
    parser.add_argument("--screenshots", metavar="DIR", help="save a screenshot of every page here")
    parser.add_argument("--whole-pages", action="store_true",
                        help="with --screenshots: every screenful of each page, not only the first")
    parser.add_argument("--chromium", help="the browser to run (default: chromium on PATH)")
    args = parser.parse_args(argv)
    root = Path(args.html).resolve()
    pages = sorted(p for p in root.rglob("*.html") if not p.relative_to(root).parts[0].startswith("_"))
    if not pages:
        print(f"no HTML pages under {root}: build the book first", file=sys.stderr)
        return 1
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    browser = Browser(args.chromium or find_chromium())
    failures = 0
    try:
        for page in pages:
            name = page.relative_to(root).as_posix()
            redirect = REDIRECT.search(page.read_text(encoding="utf-8", errors="replace")[:2000])
            if redirect:  # index.html, which only sends the reader to the first page
                problem = link_problem((page.parent / redirect.group(1)).resolve().as_uri(), root)
                failures += bool(problem)
                print(f"{name}: {problem}" if problem else f"{name}: ok (redirects to {redirect.group(1)})",
                      file=sys.stderr if not problem else sys.stdout)
                continue
            report = browser.open(page.as_uri())
            problems = check_page(report, page, root)
            if shots:
                stem = shots / name.replace("/", "__").removesuffix(".html")
                if args.whole_pages:
                    browser.screenshots_of_whole_page(stem)
                else:
                    browser.screenshot(stem.with_suffix(".png"))
            failures += len(problems)
            for p in problems:
                print(f"{name}: {p}")
            figures = sum(1 for i in report["images"] if i["figure"])
            print(f"{name}: {'ok' if not problems else f'{len(problems)} problem(s)'} "
                  f"({report['maths']} formulas, {figures} figures, {len(report['links'])} links)",
                  file=sys.stderr)
    finally:
        browser.close()
    seconds = time.perf_counter() - t0
    print(f"{len(pages)} pages checked in {seconds:.0f} s: "
          + (f"{failures} problem(s)" if failures else "no problems"), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
