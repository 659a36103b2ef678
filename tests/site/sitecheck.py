"""Check a built static site in headless Chromium, as a reader's browser would load it.

`check_page` opens one page and returns a list of human-readable problems: console errors,
uncaught page errors, requests to any host other than the local server (they are blocked,
never sent), failed or 4xx/5xx local requests, images that did not load, chart outputs with
nothing drawn, maths that MathJax did not typeset, images whose alt text is missing or a file path, internal
links whose target page or fragment does not exist, and the serious or critical accessibility
violations that axe-core (bundled by ``axe-playwright-python``) finds. An empty list means the
page is clean. `check_narrow` opens a page at a phone's width and reports whether it scrolls
sideways.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from axe_playwright_python.sync_playwright import Axe

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--dns-prefetch-disable",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TIMEOUT_MS = 30_000

#: axe-core impacts that fail a page, and rules that fail it whatever their impact (a table
#: header without text is what a pandas index without a name becomes: the book labels it).
AXE_FAILING_IMPACTS = ("serious", "critical")
AXE_FAILING_RULES = ("empty-table-header",)

#: A phone's width in CSS pixels (the narrowest the book is checked at).
PHONE_WIDTH = 390

# Files that Sphinx copies into the output but that are not pages a reader opens.
NOT_PAGES = ("_static/", "_sources/", "_images/", "_downloads/", "reports/")


def site_pages(site_dir: Path) -> list[str]:
    """Every HTML page of a built site, as paths relative to its root."""
    return sorted(
        p.relative_to(site_dir).as_posix()
        for p in site_dir.rglob("*.html")
        if not p.relative_to(site_dir).as_posix().startswith(NOT_PAGES)
    )


@contextlib.contextmanager
def serve(site_dir: Path) -> Iterator[str]:
    """Serve `site_dir` on 127.0.0.1 with an ephemeral port; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    handler = functools.partial(QuietHandler, directory=str(site_dir))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join()


class _Anchors(HTMLParser):
    """Collects the `id` and `name` attributes of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.anchors.add(value)


@functools.cache
def _anchors_of(path: Path) -> frozenset[str]:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.anchors)


def _local_file(site_dir: Path, url_path: str) -> Path:
    path = site_dir / unquote(url_path).lstrip("/")
    return path / "index.html" if url_path.endswith("/") or path.is_dir() else path


def check_links(site_dir: Path, page_url: str, hrefs: list[str]) -> list[str]:
    """Problems with the internal links `hrefs` (absolute URLs) found on `page_url`."""
    origin = urlsplit(page_url).netloc
    problems = []
    for href in sorted(set(hrefs)):
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or parts.netloc != origin:
            continue  # mailto:, javascript:, or a link to another site (never fetched)
        target = _local_file(site_dir, parts.path)
        if not target.is_file():
            problems.append(f"broken link: {href} (no file {target.relative_to(site_dir)})")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in _anchors_of(target):
                problems.append(f"broken link: {href} (no id '{unquote(parts.fragment)}')")
    return problems


_REFRESH = re.compile(
    r"""<meta\s+http-equiv=["']refresh["']\s+content=["']\d+;\s*url=([^"']+)""", re.I
)

# Runs in the page once it has loaded: finishes pending images and MathJax, then reports
# what did not render.
_INSPECT_JS = r"""
async () => {
  const problems = [];
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.loading = "eager";
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
    setTimeout(done, 10000);
  })));
  for (const img of imgs) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(`image not loaded: ${img.getAttribute("src")}`);
    }
    const alt = (img.getAttribute("alt") || "").trim();
    const src = img.getAttribute("src") || "";
    const fileName = src.split("/").pop();
    if (!img.closest("[aria-hidden=true]") && img.getAttribute("role") !== "presentation" &&
        (!alt || alt === src || alt.endsWith(fileName) || /^[.\/\w-]+\.(svg|png|jpe?g|gif)$/i.test(alt))) {
      problems.push(`image without alt text (give its figure a caption): ${src}`);
    }
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const maths = document.querySelectorAll(".math");
  if (maths.length) {
    if (!window.MathJax) {
      problems.push(`${maths.length} maths elements but MathJax is not loaded`);
    } else {
      for (const m of maths) {
        if (!m.querySelector("mjx-container")) {
          problems.push(`maths not typeset: ${m.textContent.trim().slice(0, 80)}`);
        } else if (m.querySelector("mjx-merror")) {
          problems.push(`MathJax error in: ${m.textContent.trim().slice(0, 80)}`);
        }
      }
    }
  }
  // A figure inside a collapsed toggle has no box: then only require that it has content.
  const visible = el => el.getClientRects().length > 0;
  const drawn = el => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  // Charts: vega-embed containers must contain a drawing; static SVG output (inline or
  // as an <img>) must have a size.
  for (const el of document.querySelectorAll('[id^="altair-viz"], .vega-embed')) {
    const canvas = el.querySelector("svg, canvas");
    if (!canvas || (visible(el) && !drawn(canvas))) {
      problems.push(`chart not rendered: #${el.id || el.className}`);
    }
  }
  for (const img of document.querySelectorAll(".cell_output img")) {
    if (img.naturalWidth === 0 || img.naturalHeight === 0 || (visible(img) && !drawn(img))) {
      problems.push(`output figure has zero size: ${img.getAttribute("src")}`);
    }
  }
  for (const svg of document.querySelectorAll(".cell_output svg:not(svg svg)")) {
    if (svg.childElementCount === 0 || (visible(svg) && !drawn(svg))) {
      problems.push("output <svg> is empty or has zero size");
    }
  }
  const hrefs = Array.from(document.querySelectorAll("a[href]"), a => a.href);
  return {problems, hrefs};
}
"""


def axe_problems(page) -> list[str]:
    """The accessibility violations of an open page that fail it (see AXE_FAILING_*).

    Parameters
    ----------
    page
        A Playwright page, loaded.

    Returns
    -------
    list of str
        One line per failing rule: impact, rule id, help text and the first elements concerned.
    """
    # No CSSOM preload: axe would fetch each stylesheet's @import relative to the page instead
    # of the stylesheet (a 404 for the theme's "../basic.css"); only css-orientation-lock needs it.
    results = Axe().run(page, options={"resultTypes": ["violations"], "preload": False})
    problems = []
    for v in results.response["violations"]:
        if v.get("impact") in AXE_FAILING_IMPACTS or v["id"] in AXE_FAILING_RULES:
            targets = ", ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:3])
            problems.append(
                f"accessibility ({v.get('impact')}) {v['id']}: {v['help']} "
                f"[{len(v['nodes'])} element(s): {targets}]"
            )
    return problems


def check_dark_mode(browser, base_url: str, rel_path: str) -> list[str]:
    """The accessibility problems of a page read in the dark colour mode (the book follows the
    reader's system setting), as :func:`axe_problems` reports them.

    Parameters
    ----------
    browser
        A Playwright browser.
    base_url
        Where the site is served.
    rel_path
        The page, relative to the site's root.

    Returns
    -------
    list of str
        One line per failing rule.
    """
    context = browser.new_context(color_scheme="dark", service_workers="block")
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if urlsplit(r.request.url).hostname in LOCAL_HOSTS
                else r.abort("blockedbyclient")
            ),
        )
        page.goto(urljoin(base_url, rel_path), wait_until="load")
        page.wait_for_load_state("networkidle")
        return [f"dark mode: {p}" for p in axe_problems(page)]
    finally:
        context.close()


def check_narrow(browser, base_url: str, rel_path: str, width: int = PHONE_WIDTH) -> list[str]:
    """Open a page `width` CSS pixels wide and report whether the page scrolls sideways.

    Parameters
    ----------
    browser
        A Playwright browser.
    base_url
        Where the site is served.
    rel_path
        The page, relative to the site's root.
    width
        The viewport's width (a phone by default).

    Returns
    -------
    list of str
        Empty, or one problem naming the page's width and the widest elements that cause it.
    """
    context = browser.new_context(viewport={"width": width, "height": 800}, service_workers="block")
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if urlsplit(r.request.url).hostname in LOCAL_HOSTS
                else r.abort("blockedbyclient")
            ),
        )
        page.goto(urljoin(base_url, rel_path), wait_until="load")
        page.wait_for_load_state("networkidle")
        found = page.evaluate(_NARROW_JS)
    finally:
        context.close()
    if found["scrollWidth"] <= found["clientWidth"]:
        return []
    return [
        f"scrolls sideways at {width} px: content {found['scrollWidth']} px wide "
        f"(widest: {', '.join(found['culprits']) or 'unknown'})"
    ]


# The page's width against the viewport, and the elements that stick out of it without a
# scrolling box of their own (fixed, off-canvas drawers excepted).
_NARROW_JS = """
() => {
  const cw = document.documentElement.clientWidth;
  const culprits = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.right <= cw + 1 || !el.getClientRects().length) continue;
    let clipped = false;
    for (let a = el.parentElement; a; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (["auto", "scroll", "hidden"].includes(style.overflowX) || style.position === "fixed") {
        clipped = true;
        break;
      }
    }
    if (!clipped && getComputedStyle(el).position !== "fixed") {
      culprits.push(`${el.tagName.toLowerCase()}.${String(el.className).split(" ")[0]}`);
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: cw,
    culprits: [...new Set(culprits)].slice(0, 5),
  };
}
"""


def page_weight(browser, base_url: str, rel_path: str, exclude: str | None = None) -> int:
    """Bytes a first visit to a page loads (the page and every asset it requests, cache off).

    Parameters
    ----------
    browser
        A Playwright browser.
    base_url
        Where the site is served.
    rel_path
        The page, relative to the site's root.
    exclude
        Responses whose URL contains this text are not counted (``None``: all are).

    Returns
    -------
    int
        The sum of the bodies of every response counted.
    """
    context = browser.new_context(service_workers="block")
    total = 0
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        bodies: list[int] = []

        def count(response) -> None:
            if exclude is not None and exclude in response.url:
                return
            try:
                bodies.append(len(response.body()))
            except Exception:  # noqa: BLE001 - a redirect or aborted request has no body
                bodies.append(0)

        page.on("response", count)
        page.goto(urljoin(base_url, rel_path), wait_until="load")
        page.wait_for_load_state("networkidle")
        total = sum(bodies)
    finally:
        context.close()
    return total


def check_page(
    browser, base_url: str, site_dir: Path, rel_path: str, accessibility: bool = True
) -> list[str]:
    """Open `rel_path` of the site served at `base_url` and return its problems
    (with axe-core's accessibility check unless `accessibility` is False)."""
    problems: list[str] = []
    blocked: set[str] = set()
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)

        def route(route) -> None:
            url = route.request.url
            if urlsplit(url).hostname in LOCAL_HOSTS:
                route.continue_()
            else:
                blocked.add(url)
                route.abort("blockedbyclient")

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and problems.append(_console(m)))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: (
                r.url not in blocked and problems.append(f"request failed: {r.url} ({r.failure})")
            ),
        )
        page.on(
            "response",
            lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"),
        )

        url = urljoin(base_url, rel_path)
        page.goto(url, wait_until="load")
        refresh = _REFRESH.search((site_dir / rel_path).read_text(encoding="utf-8"))
        if refresh:  # a redirect page: follow it and check where it lands
            page.wait_for_url(urljoin(url, refresh.group(1)), wait_until="load")
        page.wait_for_load_state("networkidle")
        result = page.evaluate(_INSPECT_JS)
        page.wait_for_load_state("networkidle")  # fonts etc. requested by MathJax
        problems += result["problems"]
        problems += check_links(site_dir, page.url, result["hrefs"])
        if accessibility:
            problems += axe_problems(page)
    finally:
        context.close()
    problems += [f"request to a non-local address (blocked): {u}" for u in sorted(blocked)]
    return problems


def _console(message) -> str:
    location = message.location or {}
    where = f" at {location.get('url')}:{location.get('lineNumber')}" if location else ""
    return f"console error: {message.text}{where}"
