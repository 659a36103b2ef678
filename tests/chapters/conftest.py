"""Fixtures of the protocol chapters' tests: the protocol files and the stored worked interim analysis."""

from __future__ import annotations

import pytest

from palette_core.design.loader import Design
from palette_core.design.protocol import load_protocol
from palette_core.results.store import load_result


@pytest.fixture(scope="module")
def protocol(design: Design):
    """The validated protocol files beside the real design."""
    return load_protocol(design)


@pytest.fixture(scope="module")
def worked_interim(design: Design):
    """The stored worked interim analysis."""
    return load_result("worked_interim", design=design)
