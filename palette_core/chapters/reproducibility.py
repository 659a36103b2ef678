"""Chapter "Reproducibility": the error a bad design edit raises, the manifest and the versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from IPython.display import Markdown

from palette_core.design.loader import Design, modified_design
from palette_core.errors import DesignError


def demonstrate_design_error(design: Design, arm: str, field: str, value: object) -> Markdown:
    """Show the error a bad edit of one arm in ``arms.yaml`` would raise.

    The edit is made in a temporary copy of the design folder
    (:func:`palette_core.design.loader.modified_design`); the design itself is not touched.

    Parameters
    ----------
    design
        The loaded design.
    arm
        The id of the arm to edit.
    field
        The field of the arm to set.
    value
        The value to set it to.

    Returns
    -------
    IPython.display.Markdown
        The typed error and its message, or a sentence saying the edit is valid.
    """

    def edit(data: dict) -> None:
        entry = next(a for a in data["arms"] if a["id"] == arm)
        entry[field] = value

    try:
        with modified_design(design.root, "arms.yaml", edit, data_root=design.data_root):
            pass
    except DesignError as exc:
        return Markdown(
            f"Setting `{field}: {value}` for arm `{arm}` gives:\n\n```text\n{type(exc).__name__}: {exc}\n```"
        )
    return Markdown(f"Setting `{field}: {value}` for arm `{arm}` is a valid design.")


def manifest_table(manifest: Mapping[str, Any], keys: tuple[str, ...]) -> pd.DataFrame:
    """Some items of a manifest (:func:`palette_core.provenance.build_manifest`) as a table.

    Parameters
    ----------
    manifest
        The manifest.
    keys
        The items to show, in order.

    Returns
    -------
    pandas.DataFrame
        Columns Item and Value.
    """
    return pd.DataFrame([(k, str(manifest[k])) for k in keys], columns=["Item", "Value"])


def versions_table(versions: Mapping[str, str]) -> pd.DataFrame:
    """Package versions sorted by name.

    Parameters
    ----------
    versions
        Package -> version (:func:`palette_core.provenance.package_versions`).

    Returns
    -------
    pandas.DataFrame
        Columns Package and Version.
    """
    return pd.DataFrame(sorted(versions.items()), columns=["Package", "Version"])
