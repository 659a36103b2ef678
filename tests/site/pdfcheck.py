"""Check the PDF of record against the built site: its pages rendered to images (pdftoppm) and
its text (pdftotext), both from poppler-utils.

`chapters_and_figures` reads what the site shows (each chapter's title, each figure's number
and caption); `check_pdf` returns the problems of the PDF: a chapter title or a figure caption
missing from its text, a page without a page number, a blank page, a figure's page with nothing
drawn on it, a title page without the version and date. `check_contents` returns the problems
of its table of contents: a chapter not listed, an entry without a page number, an entry whose
page number is not the first page (after the contents) on which its title is printed.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

#: Share of non-white pixels below which a rendered page counts as blank.
BLANK_PAGE = 0.002
#: Share of non-white pixels a page holding a figure has at least (a chart is mostly white).
FIGURE_PAGE = 0.03
#: Words of a caption compared with the PDF's text (a caption may run onto the next page).
CAPTION_WORDS = 8


@dataclass(frozen=True)
class Figure:
    """A figure of the site: its number (``Fig. 1.1``) and the start of its caption."""

    number: str
    caption: str


class _SiteText(HTMLParser):
    """The first ``<h1>`` of a page and its figures' captions."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.figures: list[Figure] = []
        self._in: str | None = None
        self._number = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "h1" and not self.title:
            self._in, self._text = "h1", []
        elif tag == "span" and "caption-number" in cls:
            self._in, self._text = "number", []
        elif tag == "span" and "caption-text" in cls and self._number:
            self._in, self._text = "caption", []
        elif tag == "a" and self._in == "h1":
            self._in = "h1-link"
        elif tag == "span" and "math" in cls.split() and self._in == "caption":
            # MathJax typesets the maths (``\(\delta\)`` prints as a Greek letter): the
            # caption is compared up to its first formula
            self._end_caption()

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text).split())
        if tag == "h1" and self._in in ("h1", "h1-link"):
            self.title, self._in = text, None
        elif tag == "a" and self._in == "h1-link":
            self._in = "h1"
        elif tag == "span" and self._in == "number":
            self._number, self._in = text, None
        elif tag == "span" and self._in == "caption":
            self._end_caption()

    def _end_caption(self) -> None:
        self.figures.append(Figure(self._number, " ".join("".join(self._text).split())))
        self._number, self._in = "", None

    def handle_data(self, data: str) -> None:
        if self._in in ("h1", "number", "caption"):
            self._text.append(data)


def chapters_and_figures(site: Path, pages: list[str]) -> tuple[list[str], list[Figure]]:
    """The titles of the site's chapter pages and every figure they show, in order.

    Parameters
    ----------
    site
        The built site.
    pages
        The chapter pages, relative to the site (``book/synopsis.html``...).

    Returns
    -------
    tuple
        The titles, and the figures.
    """
    titles, figures = [], []
    for page in pages:
        parser = _SiteText()
        parser.feed((site / page).read_text(encoding="utf-8"))
        titles.append(parser.title)
        figures += parser.figures
    return titles, figures


def _words(text: str) -> str:
    # pdftotext breaks lines and may hyphenate; compare on single-spaced words
    return " ".join(text.replace("-\n", "-").split())


def page_texts(pdf: Path) -> list[str]:
    """The text of each page (pdftotext, form feeds between pages)."""
    out = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return out.split("\f")[:-1] if out.endswith("\f") else out.split("\f")


def ink(pdf: Path, resolution: int = 30) -> list[float]:
    """The share of non-white pixels of each page, rendered in grey by pdftoppm."""
    shares = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["pdftoppm", "-gray", "-r", str(resolution), str(pdf), f"{tmp}/p"], check=True
        )
        for image in sorted(Path(tmp).glob("p-*.pgm"), key=lambda p: int(p.stem.split("-")[1])):
            data = image.read_bytes()
            # binary PGM: "P5\n<w> <h>\n<max>\n" then one byte per pixel
            header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
            assert header is not None, f"{image}: not a binary PGM"
            pixels = data[header.end() :]
            shares.append(sum(1 for b in pixels if b < 230) / max(len(pixels), 1))
    return shares


def check_pdf(
    pdf: Path, titles: list[str], figures: list[Figure], front_matter: list[str]
) -> list[str]:
    """The problems of the PDF of record (an empty list: every check passed).

    Parameters
    ----------
    pdf
        The PDF.
    titles
        Chapter titles that must appear.
    figures
        Figures that must appear, each on a page with something drawn.
    front_matter
        Texts the first page must hold (registry id, version, date).

    Returns
    -------
    list of str
        One line per problem.
    """
    problems = []
    texts = page_texts(pdf)
    flat = [_words(t) for t in texts]
    whole = " ".join(flat)
    shares = ink(pdf)
    if len(shares) != len(texts):
        problems.append(f"{len(texts)} pages of text but {len(shares)} rendered pages")
    for i, text in enumerate(flat, start=1):
        if f"Page {i} of {len(flat)}" not in text:
            problems.append(f"page {i}: no page number 'Page {i} of {len(flat)}'")
    for i, share in enumerate(shares, start=1):
        if share < BLANK_PAGE:
            problems.append(f"page {i} is blank ({share:.4f} of its pixels drawn)")
    for item in front_matter:
        if item not in flat[0]:
            problems.append(f"title page: {item!r} missing")
    for title in titles:
        if title not in whole:
            problems.append(f"chapter title missing: {title!r}")
    for fig in figures:
        start = " ".join(fig.caption.split()[:CAPTION_WORDS])
        pages = [i for i, t in enumerate(flat) if f"{fig.number} {start}" in t]
        if not pages:
            problems.append(f"{fig.number} missing (caption {start!r}...)")
        elif shares and max(shares[i] for i in pages) < FIGURE_PAGE:
            problems.append(f"{fig.number}: nothing drawn on its page {pages[0] + 1}")
    return problems


#: A line of the contents: an entry's title (from its section number), then (after the
#: leader, drawn and not text) the page on which it starts.
_ENTRY = re.compile(r"^(?P<title>\S.*?)\s+(?P<page>\d+)$")
#: The start of an entry: its chapter (``3.``) or section (``3.2``) number.
_NUMBERED = re.compile(r"^\d+(\.\d+)*\.?\s")
#: The footer of every page, which the contents' lines are read without.
_PAGE_FOOTER = re.compile(r"Page \d+ of \d+\s*$")


@dataclass(frozen=True)
class ContentsEntry:
    """An entry of the PDF's contents: its title and the page number it gives."""

    title: str
    page: int


def contents(texts: list[str]) -> tuple[list[ContentsEntry], list[str]]:
    """The entries of the contents of the PDF, and the lines of the contents that are not one.

    The contents start on the page whose first line is ``Contents`` and run on over each next
    page that starts with an entry (the book's introduction follows them on a page of its
    own), at most to the page before the one the first entry gives. An entry starts with its
    chapter or section number; a title too long for one line continues on the next (which
    does not start with a number), and its last line ends with the page number.

    Parameters
    ----------
    texts
        The text of each page (`page_texts`).

    Returns
    -------
    tuple
        The entries in order, and the titles left without a page number.
    """
    start = next(
        (i for i, t in enumerate(texts) if t.strip().splitlines()[:1] == ["Contents"]), None
    )
    if start is None:
        return [], []
    entries: list[ContentsEntry] = []
    pending: list[str] = []  # the lines of an entry whose page number has not come yet
    leftover: list[str] = []
    i = start
    while i < len(texts) and (not entries or i < entries[0].page - 1):
        lines = texts[i].strip().splitlines()
        if i == start:
            lines = lines[1:]  # the heading
        elif not _NUMBERED.match(" ".join(lines[0].split()) if lines else ""):
            break  # the contents have ended
        for line in lines:
            line = " ".join(line.split())
            if not line or _PAGE_FOOTER.search(line):
                continue
            if _NUMBERED.match(line) and pending:  # a new entry: the one before has no page
                leftover.append(" ".join(pending))
                pending = []
            match = _ENTRY.match(line)
            if match is None:
                pending.append(line)
                continue
            title = " ".join([*pending, match["title"]])
            entries.append(ContentsEntry(_words(title), int(match["page"])))
            pending = []
        i += 1
    if pending:
        leftover.append(" ".join(pending))
    return entries, leftover


def check_contents(pdf: Path, titles: list[str]) -> list[str]:
    """The problems of the PDF's contents (an empty list: every check passed).

    Every chapter title must be an entry; every entry's page number must be the first page,
    after the contents, on which its title is printed.

    Parameters
    ----------
    pdf
        The PDF.
    titles
        Chapter titles the contents must list (each ends an entry: ``3. Objectives``).

    Returns
    -------
    list of str
        One line per problem.
    """
    texts = page_texts(pdf)
    flat = [_words(t) for t in texts]
    entries, leftover = contents(texts)
    if not entries:
        return ["no contents: no page headed 'Contents' listing entries with page numbers"]
    problems = [f"contents: line without a page number: {line!r}" for line in leftover]
    body = entries[0].page - 1  # index of the first page after the contents
    for title in titles:
        if not any(e.title == title or e.title.endswith(f" {title}") for e in entries):
            problems.append(f"contents: chapter {title!r} not listed")
    for entry in entries:
        if not 1 <= entry.page <= len(flat):
            problems.append(f"contents: {entry.title!r} on page {entry.page} of {len(flat)}")
            continue
        first = next((i + 1 for i in range(body, len(flat)) if entry.title in flat[i]), None)
        if first is None:
            problems.append(f"contents: {entry.title!r} (page {entry.page}) printed nowhere")
        elif first != entry.page:
            problems.append(
                f"contents: {entry.title!r} listed on page {entry.page}, printed first on "
                f"page {first}"
            )
    return problems
