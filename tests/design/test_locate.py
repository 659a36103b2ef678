"""Where the design and the other data are found: explicit folder, $PALETTE_DESIGN, checkout."""

from __future__ import annotations

from pathlib import Path

import pytest
import support

from palette_core.design import DESIGN_ENV, data_file, load_design, locate, modified_design
from palette_core.errors import DesignNotFoundError, DesignSchemaError
from palette_core.screening.eligibility import load_sofa_reference

CHECKOUT_DESIGN = support.DATA / "design"


def test_from_the_checkout_the_default_is_its_data_design(monkeypatch):
    monkeypatch.delenv(DESIGN_ENV, raising=False)
    assert locate.checkout_design_dir() == CHECKOUT_DESIGN
    assert locate.default_design_dir() == CHECKOUT_DESIGN
    design = load_design()
    assert design.root == CHECKOUT_DESIGN
    assert design.data_root == support.DATA


def test_the_environment_variable_names_the_design(monkeypatch, design_copy, edit):
    edit(design_copy, "trial.yaml", lambda d: d.update(acronym="PALETTE-COPY"))
    monkeypatch.setenv(DESIGN_ENV, str(design_copy))
    design = load_design()
    assert design.root == design_copy
    assert design.trial.acronym == "PALETTE-COPY"
    assert design.data_root == design_copy.parent


def test_an_empty_environment_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv(DESIGN_ENV, "  ")
    assert locate.default_design_dir() == CHECKOUT_DESIGN


def test_an_environment_variable_naming_no_folder_is_a_typed_error(monkeypatch, tmp_path):
    monkeypatch.setenv(DESIGN_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DesignSchemaError, match="design directory not found"):
        load_design()


def test_outside_a_checkout_without_the_variable_nothing_is_guessed(monkeypatch):
    """What an installed package sees (tests/test_packaging.py runs the real thing)."""
    monkeypatch.delenv(DESIGN_ENV, raising=False)
    monkeypatch.setattr(locate, "checkout_design_dir", lambda: None)
    with pytest.raises(DesignNotFoundError, match="--design PATH") as info:
        load_design()
    assert DESIGN_ENV in str(info.value)
    assert "\n" not in str(info.value)


def test_an_explicit_folder_wins_over_the_variable(monkeypatch, design_copy, tmp_path):
    monkeypatch.setenv(DESIGN_ENV, str(tmp_path / "nowhere"))
    assert load_design(design_copy).root == design_copy


def test_data_outside_the_design_is_found_from_the_design(design_copy, tmp_path):
    """A design copy without reference files cannot read them; its data root can be given."""
    copy = load_design(design_copy)
    assert data_file(copy, "reference/sofa.yaml") == design_copy.parent / "reference/sofa.yaml"
    assert data_file(tmp_path / "x.yaml", "reference/sofa.yaml") == tmp_path / "x.yaml"
    with pytest.raises(DesignSchemaError, match="SOFA reference file not found"):
        load_sofa_reference(copy)
    with_data = load_design(design_copy, data_root=support.DATA)
    assert with_data.data_root == support.DATA
    assert load_sofa_reference(with_data).components


def test_a_modified_design_keeps_the_original_data_root(design):
    with modified_design(design.root, "trial.yaml", lambda d: d.update(acronym="X")) as changed:
        assert changed.root != design.root
        assert changed.data_root == design.data_root
        assert load_sofa_reference(changed) == load_sofa_reference(design)
    other = Path("/elsewhere")
    with modified_design(design.root, "trial.yaml", lambda d: None, data_root=other) as changed:
        assert changed.data_root == other


def test_no_module_of_the_package_finds_data_by_its_own_path():
    """Only locate.checkout_design_dir looks beside the package, and only for a checkout."""
    package = support.ROOT / "palette_core"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name == "locate.py" and path.parent.name == "design":
            continue
        if "__file__" in text or "REPO_ROOT" in text:
            offenders.append(path.relative_to(support.ROOT).as_posix())
    assert offenders == []
