"""The local Sphinx extension book/_ext/palette_html.py: alt text, MathJax, Font Awesome."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

from docutils import nodes
from docutils.utils import new_document
from support import ROOT

_spec = importlib.util.spec_from_file_location(
    "palette_html", ROOT / "book" / "_ext" / "palette_html.py"
)
palette_html = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(palette_html)


def _figure(caption: str | None, alt: str | None = None) -> tuple[nodes.document, nodes.image]:
    doc = new_document("test")
    image = nodes.image(uri="../_images/abc.svg")
    if alt is not None:
        image["alt"] = alt
    figure = nodes.figure("", image)
    if caption is not None:
        figure += nodes.caption("", "", nodes.Text(caption))
    doc += figure
    return doc, image


def test_an_image_in_a_captioned_figure_gets_the_caption_as_alt_text():
    doc, image = _figure("Odds ratios\n  by arm.")
    palette_html.alt_from_captions(None, doc, "x")
    assert image["alt"] == "Odds ratios by arm."  # whitespace collapsed


def test_an_alt_text_already_given_is_kept_and_a_figure_without_caption_is_left_alone():
    doc, image = _figure("Caption", alt="Given")
    palette_html.alt_from_captions(None, doc, "x")
    assert image["alt"] == "Given"
    doc, image = _figure(None)
    palette_html.alt_from_captions(None, doc, "x")
    assert "alt" not in image


def test_has_maths_finds_inline_and_displayed_equations():
    doc = new_document("test")
    assert not palette_html.has_maths(doc) and not palette_html.has_maths(None)
    doc += nodes.paragraph("", "", nodes.math("", "x^2"))
    assert palette_html.has_maths(doc)


def _js(filename: str, **attributes: str) -> SimpleNamespace:
    return SimpleNamespace(filename=filename, priority=500, attributes=attributes)


def test_mathjax_and_its_configuration_are_dropped_from_a_page_without_maths():
    app = SimpleNamespace(config=SimpleNamespace(mathjax_path="mathjax/tex-chtml.js"))
    scripts = [
        _js("_static/doctools.js"),
        _js("", body='window.MathJax = {"options": {}}'),
        _js("_static/mathjax/tex-chtml.js", defer="defer"),
    ]
    context = {"script_files": list(scripts)}
    palette_html.drop_unused_mathjax(app, "p", "page.html", context, new_document("t"))
    assert [js.filename for js in context["script_files"]] == ["_static/doctools.js"]
    with_maths = new_document("t")
    with_maths += nodes.math_block("", "x")
    context = {"script_files": list(scripts)}
    palette_html.drop_unused_mathjax(app, "p", "page.html", context, with_maths)
    assert len(context["script_files"]) == 3


def test_the_font_awesome_script_tag_is_removed_and_nothing_else():
    page = (
        '<head><script defer src="../_static/scripts/fontawesome.js?digest=1"></script>\n'
        '<script src="../_static/doctools.js"></script></head>'
    )
    stripped = palette_html.strip_fontawesome_script(page)
    assert "fontawesome" not in stripped
    assert '<script src="../_static/doctools.js"></script>' in stripped
