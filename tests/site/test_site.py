"""The built book, opened page by page in headless Chromium (see sitecheck.py).

The site is built once per test session from the current sources with scripts/build-book,
the command a reader runs, from the outputs stored in the chapters (``--stored-outputs``):
scripts/test runs nbval on every chapter in the same run, which re-executes each one and
compares it with those stored outputs, so the chapters execute once per test run. Run
``bash scripts/build-book`` to execute them while building. Set PALETTE_SITE_DIR to check an
existing build instead (for iterating on a chapter; scripts/test never does).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup
from pdfcheck import Figure, chapters_and_figures, check_contents, check_pdf
from playwright.sync_api import sync_playwright
from sitecheck import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE_WIDTH,
    check_dark_mode,
    check_narrow,
    check_page,
    page_weight,
    serve,
    site_pages,
)
from support import ROOT

from palette_core import load_design


def _toc_docnames(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node[k] for k in ("root", "file") if k in node]
        return own + [d for v in node.values() for d in _toc_docnames(v)]
    if isinstance(node, list):
        return [d for item in node for d in _toc_docnames(item)]
    return []


def expected_pages() -> list[str]:
    """Pages the site must have: every _toc.yml entry plus Sphinx's own pages."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    docs = [str(Path(d).with_suffix("")) for d in _toc_docnames(toc)]
    return ["index.html", "genindex.html", "search.html"] + [f"{d}.html" for d in docs]


PAGES = expected_pages()


@pytest.fixture(scope="session")
def site() -> Path:
    if prebuilt := os.environ.get("PALETTE_SITE_DIR"):
        return Path(prebuilt)
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-book"), "--stored-outputs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        output = (build.stdout + build.stderr)[-20_000:]
        pytest.fail(
            f"scripts/build-book --stored-outputs failed (exit {build.returncode}):\n{output}"
        )
    return ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run scripts/test, which installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def site_url(site: Path):
    with serve(site) as url:
        yield url


def _fail_on(page: str, problems: list[str]) -> None:
    if problems:
        listing = "\n  ".join(problems)
        pytest.fail(f"{page}: {len(problems)} problem(s):\n  {listing}", pytrace=False)


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_cleanly_offline(page: str, site: Path, site_url: str, browser) -> None:
    _fail_on(page, check_page(browser, site_url, site, page))


@pytest.mark.parametrize("page", PAGES)
def test_page_does_not_scroll_sideways_on_a_phone(page: str, site_url: str, browser) -> None:
    _fail_on(page, check_narrow(browser, site_url, page))


#: The PDF of record in the built site (scripts/build-pdf; the index links to it).
PDF = "PALETTE-protocol-SAP.pdf"


def test_pdf_of_record_has_title_page_page_numbers_every_chapter_and_figure(site: Path) -> None:
    pdf = site / PDF
    assert pdf.is_file(), f"{pdf} not built (scripts/build-book runs scripts/build-pdf)"
    chapters = [p for p in PAGES if p.startswith("book/") and p != "book/index.html"]
    titles, figures = chapters_and_figures(site, chapters)
    assert all(titles) and figures, (titles, figures)
    trial = load_design().trial
    front = [trial.registry_id, trial.acronym, "SAP version", "Date"]
    _fail_on(PDF, check_pdf(pdf, titles, figures, front))


def test_pdf_of_record_contents_give_the_page_each_chapter_and_section_starts_on(
    site: Path,
) -> None:
    pdf = site / PDF
    assert pdf.is_file(), f"{pdf} not built (scripts/build-book runs scripts/build-pdf)"
    chapters = [p for p in PAGES if p.startswith("book/") and p != "book/index.html"]
    titles, _ = chapters_and_figures(site, chapters)
    assert all(titles), titles
    _fail_on(PDF, check_contents(pdf, titles))


#: Most bytes a page may load, MathJax apart (issue 15 measured 2.4 to 3.7 MB per page and
#: aimed at 1.5 MB without maths). MathJax (about 1.2 MB) comes on top only on the pages with
#: maths of their own (test_pages_load_mathjax_only_with_maths_and_never_the_font_awesome_script).
MAX_PAGE_BYTES = 1_500_000
#: What the URL of every MathJax asset contains (the vendored copy of the build).
MATHJAX_URL = "/_static/mathjax/"


@pytest.mark.parametrize("page", PAGES)
def test_page_weight(page: str, site_url: str, browser) -> None:
    weight = page_weight(browser, site_url, page, exclude=MATHJAX_URL)
    assert 0 < weight <= MAX_PAGE_BYTES, (
        f"{page} loads {weight:,} bytes besides MathJax (limit {MAX_PAGE_BYTES:,})"
    )


#: Pages checked in the dark colour mode as well (axe checks every page in the light mode).
#: The dark mode is one stylesheet of the theme over the same components, so a sample that
#: holds every kind of component the chapters use (Sphinx's own pages, an Altair figure, a
#: wide table, admonitions, glued numbers, hidden and shown code, the long checklist tables)
#: finds its contrast problems at a third of the cost of every page.
DARK_MODE_PAGES = [
    "index.html",
    "search.html",
    "book/synopsis.html",
    "book/decisions.html",
    "book/interim.html",
    "book/checklist.html",
]


def test_the_dark_mode_sample_is_part_of_the_site() -> None:
    assert set(DARK_MODE_PAGES) <= set(PAGES), sorted(set(DARK_MODE_PAGES) - set(PAGES))


@pytest.mark.parametrize("page", DARK_MODE_PAGES)
def test_page_is_accessible_in_the_dark_colour_mode(page: str, site_url: str, browser) -> None:
    _fail_on(page, check_dark_mode(browser, site_url, page))


def test_every_built_page_is_checked(site: Path) -> None:
    unchecked = sorted(set(site_pages(site)) - set(PAGES))
    assert not unchecked, f"built pages not in the browser check (add them to PAGES): {unchecked}"


def test_every_chapter_cell_has_outputs_that_nbval_compares() -> None:
    """The site shows the stored outputs; nbval checks them only if each cell was executed
    (a cell stored without ``execution_count`` is not compared) and not skipped."""
    unchecked = []
    for doc in _toc_docnames(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))):
        path = (ROOT / doc).with_suffix(".ipynb")
        if not path.exists():
            continue  # a Markdown page: no outputs
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            tags = cell.get("metadata", {}).get("tags", [])
            if cell["cell_type"] == "code" and (
                cell.get("execution_count") is None or "nbval-skip" in tags
            ):
                unchecked.append(f"{path.name} cell {i}")
    assert not unchecked, (
        f"cells nbval does not compare (run scripts/execute-chapters): {unchecked}"
    )


# --- The checker itself: each kind of fault in a synthetic site must be reported. ---

_CLEAN_BODY = """
<h1 id="top">Clean</h1>
<p><a href="other.html">other</a> <a href="other.html#sec">section</a> <a href="#top">top</a>
<a href="sub/">folder index</a> <a href="https://example.com/">an external link</a>
<a href="mailto:someone@example.com">mail</a></p>
<main>
<img src="dot.svg" alt="dot">
<div class="cell_output"><img src="dot.svg" alt="chart"></div>
<div class="cell_output"><svg width="10" height="10"><rect width="10" height="10"/></svg></div>
<table><thead><tr><th>Arm</th><th>Trait</th></tr></thead><tbody><tr><td>a</td><td>b</td></tr>
</tbody></table>
</main>
"""

FAULTS = {
    "broken_page_link": ('<a href="missing.html">x</a>', "broken link: "),
    "broken_fragment": ('<a href="other.html#nowhere">x</a>', "no id 'nowhere'"),
    "external_script": (
        '<script src="https://cdn.example.com/vega.js"></script>',
        "non-local address (blocked): https://cdn.example.com/vega.js",
    ),
    "external_stylesheet": (
        '<link rel="stylesheet" href="http://fonts.example.com/f.css">',
        "non-local address (blocked): http://fonts.example.com/f.css",
    ),
    "missing_image": ('<img src="nothere.png" alt="x">', "image not loaded: nothere.png"),
    "missing_local_script": ('<script src="nothere.js"></script>', "HTTP 404"),
    "console_error": ("<script>console.error('boom')</script>", "console error: boom"),
    "page_error": ("<script>throw new Error('kaput')</script>", "page error: kaput"),
    "empty_chart": ('<div id="altair-viz-1"></div>', "chart not rendered: #altair-viz-1"),
    "empty_svg_output": ('<div class="cell_output"><svg></svg></div>', "output <svg> is empty"),
    "maths_without_mathjax": (
        '<span class="math">\\(x^2\\)</span>',
        "maths elements but MathJax is not loaded",
    ),
    "image_alt_is_its_path": (
        '<img src="dot.svg" alt="dot.svg">',
        "image without alt text (give its figure a caption): dot.svg",
    ),
    "image_without_alt": ('<img src="dot.svg">', "image without alt text"),
    "unnamed_table_header": (
        "<table><thead><tr><th></th><th>Trait</th></tr></thead>"
        "<tbody><tr><td>a</td><td>b</td></tr></tbody></table>",
        "empty-table-header",
    ),
    "link_without_text": ('<a href="other.html"></a>', "accessibility (serious) link-name"),
    "redirect_to_missing_page": (
        '<meta http-equiv="Refresh" content="0; url=gone.html" />',
        "HTTP 404",
    ),
}


def _html(body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><title>t</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f"<body>{body}</body></html>"
    )


@pytest.fixture(scope="module")
def synthetic_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text(_html("<p>folder</p>"))
    (root / "other.html").write_text(_html('<h2 id="sec">Section</h2>'))
    (root / "dot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/>'
        "</svg>"
    )
    (root / "clean.html").write_text(_html(_CLEAN_BODY))
    (root / "redirect.html").write_text(
        _html('<meta http-equiv="Refresh" content="0; url=other.html" />')
    )
    for name, (body, _) in FAULTS.items():
        (root / f"{name}.html").write_text(_html(body))
    with serve(root) as url:
        yield root, url


@pytest.mark.parametrize("page", ["clean.html", "redirect.html", "other.html"])
def test_checker_passes_a_clean_page(page: str, synthetic_site, browser) -> None:
    root, url = synthetic_site
    assert check_page(browser, url, root, page) == []


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_checker_reports_each_fault(fault: str, synthetic_site, browser) -> None:
    root, url = synthetic_site
    problems = check_page(browser, url, root, f"{fault}.html")
    expected = FAULTS[fault][1]
    assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"


def test_narrow_check_reports_a_page_wider_than_a_phone(synthetic_site, browser) -> None:
    root, url = synthetic_site
    (root / "wide.html").write_text(_html('<p style="width: 600px">wide</p>'))
    (root / "wide_in_box.html").write_text(
        _html('<div style="overflow-x: auto"><p style="width: 600px">wide</p></div>')
    )
    assert check_narrow(browser, url, "clean.html") == []
    assert check_narrow(browser, url, "wide_in_box.html") == []
    problems = check_narrow(browser, url, "wide.html")
    assert len(problems) == 1 and f"scrolls sideways at {PHONE_WIDTH} px" in problems[0]
    assert "p." in problems[0]


def test_site_pages_lists_pages_not_assets(synthetic_site) -> None:
    root, _ = synthetic_site
    (root / "_static").mkdir(exist_ok=True)
    (root / "_static" / "macros.html").write_text("<p>template</p>")
    pages = site_pages(root)
    assert "sub/index.html" in pages and "clean.html" in pages
    assert not any(p.startswith("_static/") for p in pages)


def test_pdf_check_reports_a_missing_chapter_figure_and_blank_page(tmp_path, browser) -> None:
    page = browser.new_page()
    try:
        page.set_content(
            '<html><body><p style="font-size:40px">Front ABC</p>'
            '<div style="break-before: page"></div><p>Fig. 1.1 A chart of something</p>'
            '<div style="break-before: page"></div></body></html>'
        )
        pdf = tmp_path / "t.pdf"
        page.pdf(
            path=str(pdf),
            format="A4",
            display_header_footer=True,
            header_template="<span></span>",
            footer_template='<div style="font-size:8px">Page <span class="pageNumber"></span> '
            'of <span class="totalPages"></span></div>',
        )
    finally:
        page.close()
    problems = check_pdf(
        pdf,
        ["Front ABC", "Missing chapter"],
        [Figure("Fig. 1.1", "A chart of something"), Figure("Fig. 2.1", "Gone")],
        ["ABC", "SAP version"],
    )
    joined = "\n".join(problems)
    assert "chapter title missing: 'Missing chapter'" in joined
    assert "Fig. 2.1 missing" in joined
    assert "Fig. 1.1: nothing drawn" in joined  # a caption alone is not a figure
    assert "title page: 'SAP version' missing" in joined
    assert "is blank" in joined  # the third page holds nothing but its footer
    assert "Front ABC" not in joined and "'ABC'" not in joined


def _contents_pdf(browser, path: Path, contents: list[tuple[str, int]], pages: list[str]) -> None:
    """A PDF whose first page lists ``contents`` (title, page) and whose next pages hold
    ``pages`` (one HTML fragment each), with the footer of the PDF of record."""
    entries = "".join(f"<p>{title} <span>{page}</span></p>" for title, page in contents)
    body = f"<h1>Contents</h1>{entries}" + "".join(
        f'<div style="break-before: page">{html}</div>' for html in pages
    )
    page = browser.new_page()
    try:
        page.set_content(f"<html><body>{body}</body></html>")
        page.pdf(
            path=str(path),
            format="A4",
            display_header_footer=True,
            header_template="<span></span>",
            footer_template='<div style="font-size:8px">Page <span class="pageNumber"></span> '
            'of <span class="totalPages"></span></div>',
        )
    finally:
        page.close()


def test_pdf_contents_check_reports_a_wrong_page_an_unlisted_chapter_and_a_missing_number(
    tmp_path, browser
) -> None:
    pages = ["<h2>1. Alpha</h2>", "<p>text</p><h3>1.1 Beta</h3>", "<h2>2. Gamma</h2>"]
    good = tmp_path / "good.pdf"
    _contents_pdf(browser, good, [("1. Alpha", 2), ("1.1 Beta", 3), ("2. Gamma", 4)], pages)
    assert check_contents(good, ["Alpha", "Gamma"]) == []
    bad = tmp_path / "bad.pdf"
    _contents_pdf(browser, bad, [("1. Alpha", 2), ("1.1 Beta", 4), ("2. Gamma", 4)], pages)
    problems = check_contents(bad, ["Alpha", "Gamma", "Delta"])
    joined = "\n".join(problems)
    assert "'1.1 Beta' listed on page 4, printed first on page 3" in joined
    assert "chapter 'Delta' not listed" in joined
    assert len(problems) == 2, problems
    unnumbered = tmp_path / "unnumbered.pdf"
    _contents_pdf(browser, unnumbered, [("1. Alpha", 2), ("1.1 Beta", ""), ("2. Gamma", 4)], pages)
    assert "line without a page number: '1.1 Beta'" in "\n".join(check_contents(unnumbered, []))
    assert check_contents(unnumbered, [])  # and never passes
    no_contents = tmp_path / "none.pdf"
    _contents_pdf(browser, no_contents, [], pages)
    assert check_contents(no_contents, [])[0].startswith("no contents")


def _pdf_of_record_script():
    """scripts/pdf_of_record.py as a module (a script, not part of the package)."""
    if "pdf_of_record" in sys.modules:
        return sys.modules["pdf_of_record"]
    spec = importlib.util.spec_from_file_location(
        "pdf_of_record", ROOT / "scripts" / "pdf_of_record.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pdf_of_record"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_pdf_of_record_prints_until_the_contents_page_numbers_match_the_print(
    tmp_path, browser
) -> None:
    """scripts/pdf_of_record.py on a small book: chapters of several pages, so the page numbers
    are not 1, 2, 3, and sections with the same id in every chapter (as in Jupyter Book's
    single page); the contents list the page of each heading (checked on the PDF's text)."""
    script = _pdf_of_record_script()
    filler = "<p>" + "words " * 400 + "</p>"
    chapters = "".join(
        f'<section id="ch{c}"><h2><span class="section-number">{c}. </span>Chapter {c}</h2>'
        + filler * c
        + "".join(
            f'<section id="id{s}"><h3><span class="section-number">{c}.{s} </span>'
            f"Part {c} {s}</h3>{filler * s}</section>"
            for s in (1, 2)
        )
        + "</section>"
        for c in (1, 2, 3)
    )
    soup = BeautifulSoup(
        f'<html><head></head><body><div class="toctree-wrapper">{chapters}</div></body></html>',
        "html.parser",
    )
    page = tmp_path / "book.html"
    page.write_text(
        f"<html><head><style>{script._PDF_CSS}</style></head><body>"
        f"{script.table_of_contents(soup)}{soup.body.decode_contents()}</body></html>",
        encoding="utf-8",
    )
    out = tmp_path / "book.pdf"
    # blank page numbers, then the pages of that print written in
    assert script.print_with_page_numbers(browser, page, out, "footer") == 2
    titles = [f"Chapter {c}" for c in (1, 2, 3)]
    assert check_contents(out, titles) == []
    dests = script.destination_pages(out)
    # the headings in order: chapter 1, its sections 1.1 and 1.2, chapter 2...
    ch1, _, s12, ch2, _, s22, ch3, _, s32 = (dests[f"pdf-heading-{i}"] for i in range(1, 10))
    assert ch1 == 2 and s12 < ch2 and s22 < ch3 < s32
    with pytest.raises(script.PaginationError, match="had not settled after 1 prints"):
        script.print_with_page_numbers(browser, page, tmp_path / "once.pdf", "f", max_passes=1)


def test_pdf_of_record_reads_destination_pages_and_refuses_a_listing_it_cannot_read() -> None:
    script = _pdf_of_record_script()
    listing = (
        "Page  Destination                 Name\n"
        '   3 [ XYZ    6  829 null      ] "objectives"\n'
        '  12 [ XYZ    6   97 null      ] "estimands-1"\n'
    )
    assert script.parse_destinations(listing) == {"objectives": 3, "estimands-1": 12}
    with pytest.raises(script.PaginationError, match="line 2: not a destination"):
        script.parse_destinations("Page  Destination                 Name\nnonsense\n")
    with pytest.raises(script.PaginationError, match="no page in the PDF .*'gone'"):
        script.contents_pages(["objectives", "gone"], {"objectives": 3})
    with pytest.raises(script.PaginationError, match="'b' on page 2, before"):
        script.contents_pages(["a", "b"], {"a": 5, "b": 2})


def test_pages_load_mathjax_only_with_maths_and_never_the_font_awesome_script(site: Path) -> None:
    """Page weight: MathJax (about 1.1 MB) only where a page has maths of its own, and not the
    theme's Font Awesome script (1.45 MB; its web font draws the icons)."""
    problems = []
    for page in PAGES:
        text = (site / page).read_text(encoding="utf-8")
        if "fontawesome.js" in text:
            problems.append(f"{page}: loads fontawesome.js")
        if "mathjax/tex-chtml.js" in text and 'class="math' not in text:
            problems.append(f"{page}: loads MathJax without maths")
    assert not problems, problems
    maths_pages = [p for p in PAGES if 'class="math' in (site / p).read_text(encoding="utf-8")]
    assert maths_pages, "no page with maths: the check above tests nothing"
    assert all(
        "mathjax/tex-chtml.js" in (site / p).read_text(encoding="utf-8") for p in maths_pages
    )
