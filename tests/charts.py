"""Checks shared by the tests of charts (imported as ``charts``; tests/ is on the path)."""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import vl_convert


def urls(node: Any) -> list[str]:
    """Every ``url`` in a Vega-Lite spec (data must be inline: the book renders offline)."""
    if isinstance(node, dict):
        own = [node["url"]] if isinstance(node.get("url"), str) else []
        return own + [u for v in node.values() for u in urls(v)]
    if isinstance(node, list):
        return [u for v in node for u in urls(v)]
    return []


def assert_valid_inline_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart validates against the Vega-Lite schema, embeds its data and names no URL;
    returns its spec."""
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert spec.get("datasets"), "data must be embedded in the spec"
    assert urls(spec) == []
    assert json.loads(chart.to_json()) == spec
    return spec


def assert_renders_to_svg_offline(chart: alt.TopLevelMixin) -> str:
    """The chart renders to SVG with vl-convert and no network access; returns the SVG."""
    svg = vl_convert.vegalite_to_svg(chart.to_json(), allowed_base_urls=[])
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    return svg
