"""Local Sphinx extension: fixes to the HTML that Jupyter Book 1.x produces.

Every chapter gets these without doing anything:

- **No duplicate scripts.** Sphinx 7.4 re-adds every script that an extension registered
  after the builder started (sphinx-thebe, sphinx-togglebutton do), so inline scripts appear
  twice in each page. The second copy of sphinx-thebe's ``const THEBE_JS_URL`` is a JavaScript
  SyntaxError on every page (tests/site reports it). The duplicates are dropped.
- **MathJax only on pages with maths.** Sphinx loads MathJax (1.1 MB) on a page when the page
  *or any page of its toctree* has an equation, so the index carried it. It is dropped from
  every page whose own document has no maths.
- **No Font Awesome JavaScript.** The theme loads ``fontawesome.js`` (1.45 MB, every icon
  as SVG) although its stylesheet already draws the same icons with the Font Awesome web
  font. The script tag is removed from every page once the build is done.
- **Alt text from captions.** An image without alt text (every chart a notebook outputs) gets
  the text of the caption of the figure it is in (``{glue:figure}`` or a cell's
  ``mystnb.figure.caption``), so that a screen reader reads the caption instead of a file
  path. An image outside a figure keeps what its cell gave (``mystnb.image.alt``); the site
  test fails on an image whose alt text is empty or a file path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes

#: The theme's script tag for the Font Awesome SVG bundle, in a written page.
_FONTAWESOME_TAG = re.compile(
    r'<script[^>]*src="[^"]*_static/scripts/fontawesome\.js[^"]*"[^>]*>\s*</script>\s*'
)


def _script_key(js: Any) -> tuple:
    return (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of every script that appears more than once in a page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def has_maths(doctree: nodes.Node | None) -> bool:
    """Whether a page's own document holds an inline or displayed equation.

    Parameters
    ----------
    doctree
        The resolved document of the page (None for pages Sphinx generates, e.g. search).

    Returns
    -------
    bool
        True when the document has a ``math`` or ``math_block`` node.
    """
    if doctree is None:
        return False
    return any(
        True for _ in doctree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block)))
    )


def drop_unused_mathjax(app, pagename, templatename, context, doctree) -> None:
    """Remove MathJax and its configuration from a page without maths of its own."""
    scripts = context.get("script_files")
    if not scripts or has_maths(doctree):
        return
    mathjax = app.config.mathjax_path
    scripts[:] = [
        js
        for js in scripts
        if not (js.filename or "").endswith(mathjax)
        and not (js.attributes.get("body") or "")
        .lstrip()
        .startswith(("window.MathJax", "MathJax."))
    ]


def alt_from_captions(app, doctree: nodes.document, docname: str) -> None:
    """Give every image of a captioned figure that has no alt text the caption's text."""
    for figure in doctree.findall(nodes.figure):
        caption = next(iter(figure.findall(nodes.caption)), None)
        if caption is None:
            continue
        text = " ".join(caption.astext().split())
        for image in figure.findall(nodes.image):
            alt = image.get("alt", "")
            if not alt or alt == image.get("uri"):
                image["alt"] = text


def strip_fontawesome_script(html: str) -> str:
    """A written page without the theme's Font Awesome script tag.

    Parameters
    ----------
    html
        The page as written by the theme.

    Returns
    -------
    str
        The page without the tag (the icons come from the web font of the stylesheet).
    """
    return _FONTAWESOME_TAG.sub("", html)


def strip_fontawesome_everywhere(app, exception) -> None:
    """After an HTML build, remove the Font Awesome script from every page written."""
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        stripped = strip_fontawesome_script(text)
        if stripped != text:
            page.write_text(stripped, encoding="utf-8")


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("html-page-context", drop_unused_mathjax, priority=910)
    app.connect("doctree-resolved", alt_from_captions)
    app.connect("build-finished", strip_fontawesome_everywhere)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
