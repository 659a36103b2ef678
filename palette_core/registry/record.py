"""Parse the ClinicalTrials.gov registry record (as saved in ``data/registry``) into structure.

The record is plain text with one field per line. The parser reads the two sections the
design is transcribed from, keeping line numbers so that every check can cite the registry:

* "Study Groups": blocks of ``label`` / ``Group Type X`` followed by one or more triples
  ``intervention name`` / ``Intervention Type X`` / ``text``;
* "Interventions": triples ``name`` / ``text`` / ``Intervention Type X``.

A record that does not have this shape raises :class:`~palette_core.errors.RegistryFormatError`
naming the line, rather than being half-parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from palette_core.errors import RegistryFormatError

_GROUP_TYPE = re.compile(r"^Group Type (\w+)$")
_INTERVENTION_TYPE = re.compile(r"^Intervention Type (\w+)$")
_LIST_MARKER = re.compile(r"^\s*(\*|\d+\.)\s+")


@dataclass(frozen=True)
class RegistryIntervention:
    name: str
    type: str
    text: str
    name_line: int
    text_line: int


@dataclass(frozen=True)
class RegistryGroup:
    label: str
    group_type: str
    label_line: int
    interventions: tuple[RegistryIntervention, ...]

    @property
    def trait_label(self) -> str:
        """The part of the label before the colon, e.g. ``'Hypofrinolysis'``."""
        return self.label.split(":", 1)[0].strip()


@dataclass(frozen=True)
class RegistryRecord:
    path: Path
    lines: tuple[str, ...]
    groups: tuple[RegistryGroup, ...]
    interventions: tuple[RegistryIntervention, ...]

    def line(self, number: int) -> str:
        """Text of a 1-based line number."""
        if not 1 <= number <= len(self.lines):
            raise IndexError(f"line {number} is outside the record (1..{len(self.lines)})")
        return self.lines[number - 1]

    def find(self, text: str) -> list[int]:
        """1-based numbers of lines containing ``text`` (whitespace-normalised)."""
        needle = normalise(text)
        return [i + 1 for i, line in enumerate(self.lines) if needle in normalise(line)]

    def contains(self, text: str) -> bool:
        """Is ``text`` in the record, allowing line breaks where the text has spaces?"""
        return normalise(text) in normalise(" ".join(self.lines))

    def has_line(self, text: str) -> bool:
        """Is ``text`` a whole line of the record (ignoring a leading bullet or number)?"""
        needle = normalise(text)
        return any(normalise(_LIST_MARKER.sub("", line)) == needle for line in self.lines)

    def group(self, label: str) -> RegistryGroup | None:
        return next((g for g in self.groups if normalise(g.label) == normalise(label)), None)


def normalise(text: str) -> str:
    """Collapse runs of whitespace, for comparing text wrapped differently."""
    return " ".join(text.split())


def _section(lines: list[str], start: str, end: str, path: Path) -> list[tuple[int, str]]:
    try:
        i = lines.index(start)
        j = lines.index(end, i + 1)
    except ValueError as exc:
        raise RegistryFormatError(str(path), 1, f"section {start!r} .. {end!r} not found") from exc
    # skip the heading and the one-sentence description that follows it
    body = [(n + 1, lines[n].strip()) for n in range(i + 1, j) if lines[n].strip()]
    return body[1:]


def parse_registry(path: str | Path) -> RegistryRecord:
    """Read and parse a registry record saved as text."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    return RegistryRecord(
        path=path,
        lines=tuple(lines),
        groups=tuple(_parse_groups(_section(lines, "Study Groups", "Interventions", path), path)),
        interventions=tuple(
            _parse_interventions(
                _section(lines, "Interventions", "Eligibility Criteria", path), path
            )
        ),
    )


def _parse_groups(body: list[tuple[int, str]], path: Path) -> list[RegistryGroup]:
    groups: list[RegistryGroup] = []
    k = 0
    while k < len(body):
        label_line, label = body[k]
        if k + 1 >= len(body) or not (m := _GROUP_TYPE.match(body[k + 1][1])):
            raise RegistryFormatError(
                str(path), label_line, f"expected 'Group Type' after group label {label!r}"
            )
        k += 2
        items: list[RegistryIntervention] = []
        # triples: name / Intervention Type / text, until the next label (a line followed by Group Type)
        while k + 2 < len(body) and (t := _INTERVENTION_TYPE.match(body[k + 1][1])):
            items.append(
                RegistryIntervention(
                    body[k][1], t.group(1), body[k + 2][1], body[k][0], body[k + 2][0]
                )
            )
            k += 3
        if not items:
            raise RegistryFormatError(
                str(path), label_line, f"group {label!r} lists no intervention"
            )
        groups.append(RegistryGroup(label, m.group(1), label_line, tuple(items)))
    return groups


def _parse_interventions(body: list[tuple[int, str]], path: Path) -> list[RegistryIntervention]:
    if len(body) % 3:
        raise RegistryFormatError(
            str(path),
            body[-1][0],
            "the Interventions section is not made of name/text/type triples",
        )
    items = []
    for k in range(0, len(body), 3):
        (name_line, name), (text_line, text), (type_line, typ) = body[k : k + 3]
        t = _INTERVENTION_TYPE.match(typ)
        if not t:
            raise RegistryFormatError(
                str(path), type_line, f"expected 'Intervention Type' after {name!r}"
            )
        items.append(RegistryIntervention(name, t.group(1), text, name_line, text_line))
    return items
