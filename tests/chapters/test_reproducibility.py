"""The reproducibility chapter: the error of a bad edit, the manifest and the versions."""

from __future__ import annotations

from palette_core.chapters import reproducibility as ch


def test_a_bad_edit_shows_the_typed_error_naming_entry_and_field(design):
    text = ch.demonstrate_design_error(design, "hinf_anakinra", "trait", "hyperinflamation").data
    assert text.startswith("Setting `trait: hyperinflamation` for arm `hinf_anakinra` gives:")
    assert "UnknownReferenceError" in text
    assert "'hinf_anakinra'" in text and "'trait'" in text


def test_a_valid_edit_is_said_to_be_valid(design):
    arm = design.arm("hinf_anakinra")
    text = ch.demonstrate_design_error(design, arm.id, "name", arm.name + " (renamed)").data
    assert text.endswith("is a valid design.")


def test_manifest_and_versions_tables():
    manifest = {"trial": "NCT0", "seed": 3, "other": "x"}
    t = ch.manifest_table(manifest, ("seed", "trial"))
    assert t.values.tolist() == [["seed", "3"], ["trial", "NCT0"]]
    v = ch.versions_table({"numpy": "2", "jax": "1"})
    assert list(v["Package"]) == ["jax", "numpy"]
