"""Local Sphinx extension: fixes to the HTML that Jupyter Book 1.x produces.

Sphinx 7.4 re-adds every script that an extension registered after the builder started
(sphinx-thebe, sphinx-togglebutton do), so inline scripts appear twice in each page. The
second copy of sphinx-thebe's ``const THEBE_JS_URL`` is a JavaScript SyntaxError on every
page (tests/test_site.py reports it). Drop the duplicates before the page is rendered.
"""

from __future__ import annotations

from typing import Any


def _script_key(js: Any) -> tuple:
    return (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
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


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
