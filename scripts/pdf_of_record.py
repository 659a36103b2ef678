"""Print the book's single-page HTML to the PDF of record (run by scripts/build-pdf).

The single page that Jupyter Book's ``singlehtml`` builder writes is given a title page (the
trial's title, registry id and sponsor from ``data/design/trial.yaml``; the SAP version and
date where the design states them, else the git revision and the build date) and a table of
contents built from its numbered chapter and section headings, then printed by Debian's
Chromium through Playwright with the book's print stylesheet: A4, numbered pages, a PDF outline
(bookmarks) and tagged PDF for screen readers. Nothing is fetched from the network.

The contents give the page on which each chapter and section starts, read from the printed PDF,
not estimated: every entry links to its heading, and Chromium writes a named destination (page
and position) for every link target, which ``pdfinfo -dests`` (poppler-utils) lists. The book
is printed with the page numbers left blank (their width kept), the pages of the destinations
are written into the contents, and the book is printed again, until the pages the contents give
are those the print puts the headings on (at most ``MAX_PASSES`` prints; else it fails). Each
print loads the page afresh (`_print_once` says why).

Usage: ``python scripts/pdf_of_record.py SINGLEHTML_DIR OUTPUT_PDF`` (the builder's output
folder; its one page is the root document of ``_toc.yml``, written with paths relative to the
folder).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from bs4 import BeautifulSoup
from playwright.sync_api import Browser, sync_playwright

from palette_core import load_design
from palette_core.design.loader import Design, data_file
from palette_core.design.protocol import PROTOCOL_DIR, load_protocol

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[1]
#: Most prints of the book: the first leaves the contents' page numbers blank, each next one
#: writes in the pages the previous one put the headings on (two suffice unless writing the
#: numbers in moves a heading to another page).
MAX_PASSES = 3


#: Styles of the pages this script adds (the book's print stylesheet does the rest).
_PDF_CSS = """
@media print {
  .pdf-title-page { break-after: page; padding-top: 30mm; text-align: left; }
  .pdf-title-page .pdf-acronym { font-size: 30pt; font-weight: 700; margin: 0; }
  .pdf-title-page .pdf-title { font-size: 15pt; margin: 6mm 0 12mm 0; line-height: 1.3; }
  .pdf-title-page .pdf-kind { font-size: 13pt; margin-bottom: 14mm; }
  .pdf-title-page dl { display: grid; grid-template-columns: 45mm 1fr; row-gap: 2mm; }
  .pdf-title-page dt { font-weight: 600; }
  .pdf-title-page dd { margin: 0; }
  .pdf-toc { break-after: page; }
  .pdf-toc ol { list-style: none; padding-left: 0; }
  .pdf-toc li.pdf-toc-chapter { font-weight: 600; margin-top: 3mm; }
  .pdf-toc li.pdf-toc-section { padding-left: 8mm; font-weight: 400; }
  .pdf-toc a { color: inherit; text-decoration: none; display: flex; align-items: baseline; }
  .pdf-toc .pdf-toc-leader { flex: 1 1 auto; min-width: 6mm; margin: 0 2mm;
    border-bottom: 0.6pt dotted #888; }
  .pdf-toc .pdf-toc-page { flex: 0 0 12mm; text-align: right; font-variant-numeric: tabular-nums; }
  .pdf-omit { display: none !important; }
  div.toctree-wrapper > section { break-before: page; }
  div.toctree-wrapper > span:empty { display: none; }
}
"""

_FOOTER = (
    '<div style="font-size:8px;width:100%;padding:0 12mm;display:flex;'
    'justify-content:space-between;color:#555">'
    "<span>{left}</span>"
    '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span>'
    "</div>"
)


@dataclass(frozen=True)
class Edition:
    """What the title page says about this edition of the document."""

    version: str
    date: str
    revision: str
    design_hash: str


def git_revision(root: Path = ROOT) -> str:
    """The checkout's short git revision, ``+changes`` when it has uncommitted changes.

    Returns
    -------
    str
        For example ``"b34b653"``; ``"unknown"`` outside a git checkout.
    """
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def edition(design: Design, revision: str, today: dt.date) -> Edition:
    """The version and date the title page shows.

    The SAP version and date are those of ``data/protocol/sap.yaml`` (``version``, ``date``,
    validated with the protocol's other files) where it exists; otherwise the version is the
    git revision and the date the build date.

    Parameters
    ----------
    design
        The loaded design.
    revision
        The git revision of the checkout.
    today
        The build date.

    Returns
    -------
    Edition
        Version, date, revision and the design's hash (first 12 characters).
    """
    version = date = None
    if data_file(design, f"{PROTOCOL_DIR}/sap.yaml").is_file():
        sap = load_protocol(design).sap
        version, date = sap.version, sap.date
    return Edition(
        version=f"{version} (git revision {revision})"
        if version
        else f"draft at git revision {revision}",
        date=str(date) if date else today.isoformat(),
        revision=revision,
        design_hash=design.design_hash[:12],
    )


def title_page(design: Design, ed: Edition) -> str:
    """The title page as HTML.

    Parameters
    ----------
    design
        The loaded design (title, acronym, registry id, sponsor).
    ed
        The edition.

    Returns
    -------
    str
        A ``<section class="pdf-title-page">``.
    """
    t = design.trial
    rows = [
        ("Registry", t.registry_id),
        ("Sponsor", t.sponsor),
        ("SAP version", ed.version),
        ("Date", ed.date),
        ("Design", f"data/design, hash {ed.design_hash}"),
        ("Source", f"git revision {ed.revision}"),
    ]
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return (
        '<section class="pdf-title-page">'
        f'<p class="pdf-acronym">{html.escape(t.acronym)}</p>'
        f'<p class="pdf-title">{html.escape(" ".join(t.title.split()))}</p>'
        '<p class="pdf-kind">Protocol and statistical analysis plan</p>'
        f"<dl>{dl}</dl></section>"
    )


class PaginationError(RuntimeError):
    """The contents' page numbers cannot be made to agree with the printed pages."""


def table_of_contents(soup: BeautifulSoup) -> str:
    """Chapters (numbered ``<h2>``) and their sections (``<h3>``) as linked HTML.

    Each entry links to its heading, which is given the id ``pdf-heading-<n>`` in ``soup``
    (``n`` counts the entries from 1): the section ids of the single page are not unique
    (sections 6.1 and 13.3 are both ``id1``), and the printed PDF's destination for the entry
    is then where the heading is printed, not where its section's box starts. Each entry ends
    with an empty ``<span class="pdf-toc-page" data-anchor="...">`` (its width kept by the
    stylesheet) for the page on which the heading is printed, written in once the book has
    been printed (`print_with_page_numbers`).

    Parameters
    ----------
    soup
        The single page (its numbered headings are given ids).

    Returns
    -------
    str
        A ``<nav class="pdf-toc">`` with one entry per heading, linked to it.

    Raises
    ------
    PaginationError
        A numbered heading that already has an id, or whose new id is taken by another
        element (the contents could not link to it alone, nor find its page).
    """
    items = []
    for heading in soup.select("section > h2, section > h3"):
        if heading.find("span", class_="section-number") is None:
            continue
        text = " ".join(heading.get_text(" ", strip=True).replace("#", "").split())
        anchor = f"pdf-heading-{len(items) + 1}"
        if heading.get("id") is not None or soup.find(id=anchor) is not None:
            raise PaginationError(
                f"heading {text!r}: has an id ({heading.get('id')!r}) or {anchor!r} is taken"
            )
        heading["id"] = anchor
        kind = "chapter" if heading.name == "h2" else "section"
        items.append(
            f'<li class="pdf-toc-{kind}"><a href="#{anchor}">'
            f'<span class="pdf-toc-title">{html.escape(text)}</span>'
            '<span class="pdf-toc-leader" aria-hidden="true"></span>'
            f'<span class="pdf-toc-page" data-anchor="{anchor}"></span></a></li>'
        )
    return f'<nav class="pdf-toc"><h1>Contents</h1><ol>{"".join(items)}</ol></nav>'


_DEST = re.compile(r'^\s*(\d+)\s+\[[^\]]*\]\s+"(.*)"\s*$')


def parse_destinations(listing: str) -> dict[str, int]:
    """The page of each named destination in the listing of ``pdfinfo -dests``.

    Parameters
    ----------
    listing
        The output of ``pdfinfo -dests``: a header line, then one line per destination,
        ``<page> [ <kind> <left> <top> <zoom> ] "<name>"``.

    Returns
    -------
    dict
        Page (from 1) by destination name.

    Raises
    ------
    PaginationError
        A line that is not a destination, or a name listed twice on different pages.
    """
    pages: dict[str, int] = {}
    for number, line in enumerate(listing.splitlines(), start=1):
        if not line.strip() or line.split() == ["Page", "Destination", "Name"]:
            continue
        match = _DEST.match(line)
        if match is None:
            raise PaginationError(f"pdfinfo -dests, line {number}: not a destination: {line!r}")
        page, name = int(match.group(1)), match.group(2)
        if pages.setdefault(name, page) != page:
            raise PaginationError(
                f"pdfinfo -dests, line {number}: destination {name!r} on pages "
                f"{pages[name]} and {page}"
            )
    return pages


def destination_pages(pdf: Path) -> dict[str, int]:
    """The page of each named destination of a PDF (``pdfinfo -dests``, poppler-utils).

    Chromium writes one for every element of the page that a link points to: here, the
    section of each entry of the contents.
    """
    try:
        done = subprocess.run(
            ["pdfinfo", "-dests", str(pdf)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise PaginationError("pdfinfo not found (apt-get install poppler-utils)") from None
    if done.returncode != 0:
        raise PaginationError(f"pdfinfo -dests {pdf} failed: {done.stderr.strip()}")
    return parse_destinations(done.stdout)


def contents_pages(anchors: list[str], destinations: Mapping[str, int]) -> dict[str, int]:
    """The page of each entry of the contents, in the contents' order.

    Parameters
    ----------
    anchors
        The ids the entries link to, in the order of the contents.
    destinations
        The page of each named destination of the printed PDF.

    Returns
    -------
    dict
        Page by anchor.

    Raises
    ------
    PaginationError
        An entry without a destination in the PDF (its page is not known, and is not
        guessed), or an entry on an earlier page than the entry before it.
    """
    missing = [a for a in anchors if a not in destinations]
    if missing:
        raise PaginationError(f"no page in the PDF for the contents' entries {missing}")
    pages = {a: destinations[a] for a in anchors}
    for before, after in zip(anchors, anchors[1:], strict=False):
        if pages[after] < pages[before]:
            raise PaginationError(
                f"contents entry {after!r} on page {pages[after]}, before the entry above it "
                f"({before!r}, page {pages[before]})"
            )
    return pages


def prepare(page_html: str, design: Design, ed: Edition) -> str:
    """The single page with the title page and contents first and the site-only parts hidden.

    Parameters
    ----------
    page_html
        The ``singlehtml`` builder's page.
    design
        The loaded design.
    ed
        The edition.

    Returns
    -------
    str
        The page to print.
    """
    soup = BeautifulSoup(page_html, "html.parser")
    for script in soup.find_all("script", src=True):
        if "searchindex" in script["src"]:  # the single page has no search index
            script.decompose()
    # The body keeps the article only (no header, sidebars or navigation), after the title
    # page and the contents, and the page's scripts (MathJax typesets the maths).
    article = soup.find("article")
    scripts = soup.body.find_all("script")
    front = BeautifulSoup(title_page(design, ed) + table_of_contents(soup), "html.parser")
    soup.body.clear()
    soup.body.append(front)
    if article is not None:
        soup.body.append(article)
    for script in scripts:
        soup.body.append(script)
    style = soup.new_tag("style")
    style.string = _PDF_CSS
    soup.head.append(style)
    return str(soup)


#: Writes the pages (by anchor) into the contents' page-number spans of the loaded page.
_WRITE_PAGES = """pages => {
  for (const span of document.querySelectorAll(".pdf-toc-page")) {
    span.textContent = span.dataset.anchor in pages ? String(pages[span.dataset.anchor]) : "";
  }
  return document.querySelectorAll(".pdf-toc-page").length;
}"""
#: The anchors of the contents' entries, in order.
_ANCHORS = """() => Array.from(document.querySelectorAll(".pdf-toc-page"), s => s.dataset.anchor)"""


def print_pdf(page: Path, out: Path, footer_left: str, max_passes: int = MAX_PASSES) -> int:
    """Print an HTML file to PDF with Debian's Chromium (A4, numbered pages, outline), the
    contents' page numbers written in from the print itself (`print_with_page_numbers`).

    Parameters
    ----------
    page
        The HTML file (its assets beside it, loaded from disk).
    out
        The PDF to write.
    footer_left
        Text at the left of every page's footer.
    max_passes
        Most prints.

    Returns
    -------
    int
        The number of prints it took.
    """
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return print_with_page_numbers(browser, page, out, footer_left, max_passes)
        finally:
            browser.close()


def _print_once(
    browser: Browser, page: Path, out: Path, footer_left: str, pages: Mapping[str, int]
) -> list[str]:
    """Load the page in a new tab, write ``pages`` into its contents and print it to ``out``.

    A new tab each time: Chromium lays a tab out differently on every second print of it
    (measured on the book: the same print, twice in one tab, moved three blocks by about 20 pt
    and heading 16.2 from page 129 to 128 and back), while a freshly loaded tab prints the same
    every time.

    Returns
    -------
    list of str
        The ids the contents' entries link to, in order.
    """
    tab = browser.new_page()
    try:
        failed: list[str] = []
        tab.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
        tab.route(
            "**/*",
            lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort(),
        )
        tab.goto(page.resolve().as_uri(), wait_until="load")
        tab.evaluate(
            "async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }"
        )
        if failed:
            raise RuntimeError(f"{page}: resources not loaded: {failed}")
        tab.emulate_media(media="print")
        anchors: list[str] = tab.evaluate(_ANCHORS)
        tab.evaluate(_WRITE_PAGES, dict(pages))
        tab.pdf(
            path=str(out),
            format="A4",
            print_background=True,
            display_header_footer=True,
            header_template="<span></span>",
            footer_template=_FOOTER.format(left=html.escape(footer_left)),
            margin={"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"},
            outline=True,
            tagged=True,
        )
        return anchors
    finally:
        tab.close()


def print_with_page_numbers(
    browser: Browser, page: Path, out: Path, footer_left: str, max_passes: int = MAX_PASSES
) -> int:
    """Print an HTML file to PDF in a running browser, the contents' page numbers written in
    from the print itself.

    The page is printed with the page numbers blank, then again with the pages of the previous
    print written in, until a print puts every heading on the page the contents give for it.
    Only that print is written to ``out``.

    Parameters
    ----------
    browser
        Chromium, launched by Playwright.
    page
        The HTML file (its assets beside it, loaded from disk).
    out
        The PDF to write.
    footer_left
        Text at the left of every page's footer.
    max_passes
        Most prints.

    Returns
    -------
    int
        The number of prints it took.

    Raises
    ------
    PaginationError
        The pages had not settled after ``max_passes`` prints, or an entry of the contents
        has no page in the PDF.
    """
    written: dict[str, int] = {}  # the pages the contents show (none at first)
    moved: dict[str, tuple[int | None, int]] = {}
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        for passes in range(1, max_passes + 1):
            printed = Path(tmp) / f"pass{passes}.pdf"
            anchors = _print_once(browser, page, printed, footer_left, written)
            pages = contents_pages(anchors, destination_pages(printed))
            if pages == written:
                printed.replace(out)
                return passes
            moved = {a: (written.get(a), p) for a, p in pages.items() if p != written.get(a)}
            written = pages
    raise PaginationError(
        f"the contents' page numbers had not settled after {max_passes} prints "
        f"(entries whose page the last print changed, (shown, printed): {moved})"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    folder, out = Path(argv[0]), Path(argv[1])
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    source = folder / f"{toc['root']}.html"
    design = load_design()
    ed = edition(design, git_revision(), dt.datetime.now(dt.UTC).date())
    prepared = folder / "_pdf_of_record.html"  # the page's links are relative to the folder
    out.parent.mkdir(parents=True, exist_ok=True)
    footer = f"{design.trial.acronym} protocol and SAP, {ed.version}, {ed.date}"
    try:
        page = prepare(source.read_text(encoding="utf-8"), design, ed)
        prepared.write_text(page, encoding="utf-8")
        passes = print_pdf(prepared, out, footer)
    except PaginationError as err:
        print(f"pdf_of_record: {err}", file=sys.stderr)
        return 1
    print(f"pdf_of_record: {out} ({out.stat().st_size // 1024} kB, {passes} prints)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
