"""Shared fixtures: the real design and registry record, and editable copies of the design.

A copy keeps the layout of ``data/``: ``<tmp>/design`` and ``<tmp>/registry``, because
``trial.yaml`` cites the registry as ``../registry/...``. Edits go through the YAML parser
(``edit_yaml``) for changes of value, or through raw text (``replace_text``) for errors that only
exist at the YAML level (a repeated key, a syntax error).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import support
import yaml

from palette_core.design.loader import Design, load_design
from palette_core.registry.record import RegistryRecord, parse_registry

DESIGN_DIR = support.DATA / "design"
REGISTRY_DIR = support.DATA / "registry"


def copy_design(dest: Path) -> Path:
    """Copy ``data/design`` and ``data/registry`` under ``dest``; return the copied design dir."""
    shutil.copytree(DESIGN_DIR, dest / "design", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REGISTRY_DIR, dest / "registry")
    return dest / "design"


def edit_yaml(design_dir: Path, name: str, edit: Callable[[Any], Any]) -> None:
    """Change one YAML file of a design copy through ``edit`` on its parsed content.

    ``edit`` changes the parsed data in place, or returns a replacement for it.
    """
    path = design_dir / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    replaced = edit(data)
    if replaced is not None:
        data = replaced
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")


def replace_text(path: Path, old: str, new: str) -> None:
    """Replace the first occurrence of ``old`` in a file; fail if it is not there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def by_id(items: list[dict[str, Any]], ident: str) -> dict[str, Any]:
    """The entry of a parsed YAML list with this ``id``."""
    matches = [x for x in items if x.get("id") == ident]
    assert len(matches) == 1, f"{len(matches)} entries with id {ident!r}"
    return matches[0]


@pytest.fixture(scope="session")
def design() -> Design:
    return load_design()


@pytest.fixture(scope="session")
def record(design: Design) -> RegistryRecord:
    return parse_registry(design.registry_path)


@pytest.fixture
def design_copy(tmp_path: Path) -> Path:
    """A fresh copy of the design (and its registry record); returns the copied design dir."""
    return copy_design(tmp_path)


@pytest.fixture(scope="session")
def make_design_copy() -> Callable[[Path], Path]:
    """``copy_design`` as a fixture, for tests (hypothesis) that manage their own temp dirs."""
    return copy_design


@pytest.fixture(scope="session")
def edit() -> Callable[[Path, str, Callable[[Any], Any]], None]:
    """``edit_yaml(design_dir, "arms.yaml", fn)``: change one YAML file through its parsed data."""
    return edit_yaml


@pytest.fixture(scope="session")
def replace() -> Callable[[Path, str, str], None]:
    """``replace_text(path, old, new)``: change a file's raw text."""
    return replace_text


@pytest.fixture(scope="session")
def find() -> Callable[[list[dict[str, Any]], str], dict[str, Any]]:
    """``by_id(items, id)``: the entry of a parsed YAML list with this id."""
    return by_id
