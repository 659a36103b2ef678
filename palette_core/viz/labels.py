"""Words shown for columns, traits, arms, outcomes and every other id, defined once for every
table, legend and report.

Column labels are :data:`LABELS`; arms, traits, outcomes and age groups are named by the
design; every other id a page may show (arm states, decisions, allocation phases, analyses,
model parameters, registry signals, manifest fields) is named in ``data/labels.yaml``, read
through the loaded design by :func:`load_labels`. The :class:`Labeller` it returns turns an id,
a column of ids or a whole table into words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from palette_core.design.loader import Design, data_file
from palette_core.errors import DesignSchemaError
from palette_core.yamlio import read_yaml

#: An id with a numeric value appended ("prior_between_trait_sd_0.5": the id, the value).
_NUMBERED = re.compile(r"^([a-z][a-z0-9_]*?)_(\d+(?:\.\d+)?)$")

#: Where the label table is, under the design's data root.
LABELS_FILE = "labels.yaml"

#: Column labels of the book's tables, so every table uses the same words.
LABELS = {
    "trait": "Trait",
    "age_groups": "Age groups",
    "control": "Control",
    "experimental": "Experimental arms",
    "n_experimental": "No. experimental arms",
    "arm": "Arm",
    "role": "Role",
    "route": "Route",
    "dose_adult": "Adults",
    "dose_child": "Children",
    "availability": "Availability",
    "shared": "Shared effect with",
    "rule": "Rule",
    "parameter": "Parameter",
    "value": "Value",
    "rationale": "Rationale",
    "source": "Source",
}


def trait_label(design: Design, trait_id: str) -> str:
    """The short name of a trait where it has one (e.g. "MALS"), else its name.

    Parameters
    ----------
    design
        The loaded design.
    trait_id
        A trait id of ``traits.yaml``.

    Returns
    -------
    str
        The label shown in charts and compact tables.
    """
    t = design.trait(trait_id)
    return t.short_name or t.name


def age_label(design: Design, ids: tuple[str, ...]) -> str:
    """The labels of age groups, in the order given, joined by commas.

    Parameters
    ----------
    design
        The loaded design.
    ids
        Age-group ids of ``strata`` (e.g. ``("adult", "child")``).

    Returns
    -------
    str
        For example ``"Adults, Children"``.
    """
    labels = {g.id: g.label for g in design.strata.age_groups}
    return ", ".join(labels[i] for i in ids)


@dataclass(frozen=True)
class Labeller:
    """Turns ids into the words a reader sees.

    Attributes
    ----------
    names
        Id -> label: the design's arms, traits, outcomes and age groups, and the terms of
        ``data/labels.yaml``.
    """

    names: Mapping[str, str]

    def __post_init__(self) -> None:
        # Ids with an underscore or a digit are also replaced inside a longer text
        # ("hinf_anakinra: ...", "... on osfd28"); plain words ("open", "harm") only when they
        # are the whole cell.
        long_ids = sorted(
            (k for k in self.names if "_" in k or any(ch.isdigit() for ch in k)),
            key=len,
            reverse=True,
        )
        pattern = (
            re.compile(r"\b(" + "|".join(map(re.escape, long_ids)) + r")\b") if long_ids else None
        )
        object.__setattr__(self, "_pattern", pattern)

    def __call__(self, value: object) -> object:
        """The label of ``value``; ``value`` itself when it is not an id this labeller knows.

        Parameters
        ----------
        value
            Any cell of a table: a text is labelled, anything else is returned as it is.

        Returns
        -------
        object
            The label, or the text with every known id inside it replaced by its label.
        """
        if not isinstance(value, str):
            return value
        if value in self.names:
            return self.names[value]
        numbered = _NUMBERED.match(value)
        if numbered and numbered.group(1) in self.names:  # e.g. "prior_arm_log_or_1"
            return f"{self.names[numbered.group(1)]} {numbered.group(2)}"
        pattern = self._pattern  # type: ignore[attr-defined]
        if pattern is None:
            return value
        return pattern.sub(lambda m: self.names[m.group(1)], value)

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with its column names and every text cell labelled.

        Parameters
        ----------
        df
            A table about to be shown.

        Returns
        -------
        pandas.DataFrame
            The same shape; the index is dropped of its name (a blank header says nothing).
        """
        out = df.copy()
        out.columns = [self(c) if isinstance(c, str) else c for c in out.columns]
        out.columns.name = None
        out.index.name = None
        for col in out.columns:
            if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
                out[col] = [self(v) for v in out[col]]
        return out


def _read_terms(design: Design) -> dict[str, str]:
    path = data_file(design, LABELS_FILE)
    if not path.is_file():
        raise DesignSchemaError(LABELS_FILE, None, None, f"label table not found: {path}")
    raw = read_yaml(path, LABELS_FILE)
    if not isinstance(raw, dict) or set(raw) != {"terms"} or not isinstance(raw["terms"], dict):
        raise DesignSchemaError(
            LABELS_FILE, None, None, "expected one mapping `terms: {id: label}`"
        )
    terms = {}
    for key, value in raw["terms"].items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            raise DesignSchemaError(LABELS_FILE, str(key), "label", "a label is non-empty text")
        terms[key] = value
    return terms


def load_labels(design: Design) -> Labeller:
    """The labeller of a design: its own names plus the terms of ``data/labels.yaml``.

    Parameters
    ----------
    design
        The loaded design (the label table is found beside it, under ``design.data_root``).

    Returns
    -------
    Labeller
        Arms by name ("Anakinra"), traits by name, outcomes by label, age groups by label, then
        the terms of the label table.

    Raises
    ------
    DesignSchemaError
        When the label table is missing, is not a mapping of ids to text, or gives an empty
        label (the message names the file and the entry).
    """
    names: dict[str, str] = dict(_read_terms(design))
    names.update({g.id: g.label for g in design.strata.age_groups})
    names.update({o.id: o.label for o in design.outcomes.outcomes})
    names.update({t.id: t.name for t in design.traits})
    names.update({a.id: a.name for a in design.arms})
    return Labeller(names)
