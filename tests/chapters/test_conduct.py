"""The chapter "Trial conduct (SPIRIT)": registry quotes traced to their lines."""

from __future__ import annotations

import support

from palette_core.chapters import conduct

BOOK = support.ROOT / "book"


def test_every_conduct_topic_quotes_real_registry_lines(design, protocol, record):
    for t in protocol.conduct.topics:
        table = conduct.topic_table(design, protocol, t.id)
        for r in table[table["Source"].str.startswith("Registry, line")].itertuples():
            line = int(r.Source.rsplit(" ", 1)[1])
            assert r.Text.strip("“”")[:20] in record.line(line)
