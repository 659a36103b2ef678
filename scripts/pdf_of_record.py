"""Print the book's single-page HTML to the PDF of record (run by scripts/build-pdf).

The single page that Jupyter Book's ``singlehtml`` builder writes is given a title page (the
trial's title, registry id and sponsor from ``data/design/trial.yaml``; the SAP version and
date where the design states them, else the git revision and the build date) and a table of
contents built from its numbered chapter and section headings, then printed by Debian's
Chromium through Playwright with the book's print stylesheet: A4, numbered pages, a PDF outline
(bookmarks) and tagged PDF for screen readers. Nothing is fetched from the network.

Usage: ``python scripts/pdf_of_record.py SINGLEHTML_DIR OUTPUT_PDF`` (the builder's output
folder; its one page is the root document of ``_toc.yml``, written with paths relative to the
folder).
"""

from __future__ import annotations

import datetime as dt
import html
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from bs4 import BeautifulSoup
from playwright.sync_api import sync_playwright

from palette_core import load_design
from palette_core.design.loader import Design, data_file
from palette_core.design.protocol import PROTOCOL_DIR, load_protocol

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[1]


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
  .pdf-toc a { color: inherit; text-decoration: none; }
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


def table_of_contents(soup: BeautifulSoup) -> str:
    """Chapters (numbered ``<h2>``) and their sections (``<h3>``) as linked HTML.

    Parameters
    ----------
    soup
        The single page.

    Returns
    -------
    str
        A ``<nav class="pdf-toc">`` with one entry per heading, linked to its section.
    """
    items = []
    for heading in soup.select("section > h2, section > h3"):
        if heading.find("span", class_="section-number") is None:
            continue
        anchor = heading.parent.get("id")
        text = " ".join(heading.get_text(" ", strip=True).replace("#", "").split())
        kind = "chapter" if heading.name == "h2" else "section"
        items.append(f'<li class="pdf-toc-{kind}"><a href="#{anchor}">{html.escape(text)}</a></li>')
    return f'<nav class="pdf-toc"><h1>Contents</h1><ol>{"".join(items)}</ol></nav>'


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


def print_pdf(page: Path, out: Path, footer_left: str) -> None:
    """Print an HTML file to PDF with Debian's Chromium (A4, numbered pages, outline).

    Parameters
    ----------
    page
        The HTML file (its assets beside it, loaded from disk).
    out
        The PDF to write.
    footer_left
        Text at the left of every page's footer.
    """
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            failed: list[str] = []
            tab.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
            tab.route(
                "**/*",
                lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort(),
            )
            tab.goto(page.resolve().as_uri(), wait_until="load")
            tab.evaluate(
                "async () => { if (window.MathJax && MathJax.startup) "
                "await MathJax.startup.promise; }"
            )
            if failed:
                raise RuntimeError(f"{page}: resources not loaded: {failed}")
            tab.emulate_media(media="print")
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
        finally:
            browser.close()


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
    prepared.write_text(prepare(source.read_text(encoding="utf-8"), design, ed), encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    footer = f"{design.trial.acronym} protocol and SAP, {ed.version}, {ed.date}"
    print_pdf(prepared, out, footer)
    print(f"pdf_of_record: {out} ({out.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
