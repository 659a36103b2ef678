"""The chapter "Data monitoring committee charter": access and the leakage of allocation ratios."""

from __future__ import annotations

import support

from palette_core.chapters import dmc

BOOK = support.ROOT / "book"


def test_the_inversion_is_exact_where_no_arm_is_at_the_floor(design):
    assert dmc.max_inversion_error(dmc.inversion_table(design)) < 1e-3


def test_the_access_table_keeps_the_sponsor_blind(protocol):
    table = dmc.access_table(protocol).set_index("Who")
    sponsor = [w for w in table.index if w.startswith("Sponsor")]
    assert sponsor and (table.loc[sponsor, "Comparative results"] == "no").all()
