"""Loading data/design: the real design, its invariants, and every typed rejection."""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palette_core.design.loader import DESIGN_FILES, load_design
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignError,
    DesignSchemaError,
    DuplicateIdError,
    MissingControlError,
    OutOfRangeError,
    PaletteError,
    UnknownReferenceError,
    UnknownUnitError,
)


def _entry(items: list[dict[str, Any]], ident: str) -> dict[str, Any]:
    return next(x for x in items if x.get("id") == ident)


def _arm(data: dict[str, Any], ident: str) -> dict[str, Any]:
    return _entry(data["arms"], ident)


def _trait(data: dict[str, Any], ident: str) -> dict[str, Any]:
    return _entry(data["traits"], ident)


# ----------------------------------------------------------------------------- the real design
def test_real_design_loads_with_the_registry_counts(design):
    assert design.summary() == {
        "traits": 6,
        "arms": 24,
        "control_arms": 6,
        "experimental_arms": 18,
        "shared_effect_groups": 2,
        "registry_findings": 25,
    }
    assert [f.id for f in design.findings] == [f"RF-{i:02d}" for i in range(1, 26)]


def test_every_trait_has_exactly_one_usual_care_control_listed_first(design):
    for trait in design.traits:
        arms = design.arms_of(trait.id)
        controls = [a for a in arms if a.role == "control"]
        assert len(controls) == 1, trait.id
        assert arms[0] is controls[0] is design.control_of(trait.id)
        assert controls[0].name == "Usual care"


def test_arm_age_groups_fall_back_to_the_trait(design):
    assert design.arm_age_groups(design.arm("hcoag_rhtm")) == ("adult",)
    assert design.arm_age_groups(design.arm("hinf_anakinra")) == ("adult", "child")


def test_design_itself_is_frozen(design):
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.traits = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.design_hash = "0" * 64  # type: ignore[misc]


@pytest.mark.parametrize(
    ("what", "get", "attribute", "value"),
    [
        ("trial", lambda d: d.trial, "enrollment", 1),
        ("trait", lambda d: d.trait("mals"), "name", "x"),
        ("arm", lambda d: d.arm("hinf_anakinra"), "trait", "mals"),
        ("dose", lambda d: d.arm("cort_hydrocortisone").components[0].adult[0], "amount", 500.0),
        ("finding", lambda d: d.finding("RF-01"), "blocks_dose", ()),
        ("decision rule", lambda d: d.decisions.graduation, "threshold", 0.5),
        ("prior", lambda d: d.priors.arm_log_or, "scale", 9.0),
        ("allocation", lambda d: d.allocation, "floor_per_open_arm", 0.0),
    ],
)
def test_design_models_are_frozen(design, what, get, attribute, value):
    model = get(design)
    before = getattr(model, attribute)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        setattr(model, attribute, value)
    assert getattr(model, attribute) == before, what


def test_design_hash_is_stable_across_loads_and_locations(design, design_copy):
    again = load_design()
    assert again.design_hash == design.design_hash
    assert len(design.design_hash) == 64
    # the hash is of content, not of where the design lives
    assert load_design(design_copy).design_hash == design.design_hash


@pytest.mark.parametrize("name", sorted(DESIGN_FILES))
def test_design_hash_changes_when_any_design_file_changes(design, design_copy, name):
    path = design_copy / name
    path.write_text(path.read_text(encoding="utf-8") + "\n# a comment only\n", encoding="utf-8")
    assert load_design(design_copy).design_hash != design.design_hash


def test_design_hash_changes_when_the_cited_registry_record_changes(design, design_copy):
    registry = design_copy.parent / "registry" / "NCT06381661-registry-record.txt"
    registry.write_text(registry.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_design(design_copy).design_hash != design.design_hash


def test_to_unit_converts_within_a_dimension(design):
    assert design.to_unit(150000, "/mm3", "10^9/L") == 150
    assert design.to_unit(50, "mg", "µg") == pytest.approx(50000)
    assert design.to_unit(1, "MIU", "IU") == 1e6


def test_to_unit_refuses_to_convert_across_dimensions(design):
    with pytest.raises(ValueError, match="cannot convert"):
        design.to_unit(1, "mg", "IU")
    with pytest.raises(KeyError):
        design.to_unit(1, "mgg", "mg")


def test_dose_blocks_names_the_findings(design):
    assert [f.id for f in design.dose_blocks("cort_hc_fc", "adult")] == ["RF-01"]
    assert [f.id for f in design.dose_blocks("cort_hc_fc", "child")] == ["RF-01", "RF-15"]
    assert design.dose_blocks("cort_hydrocortisone", "adult") == ()


def test_lookups_of_unknown_ids_raise_key_error(design):
    for lookup in (design.trait, design.arm, design.finding, design.outcome):
        with pytest.raises(KeyError):
            lookup("no_such_id")


def test_an_unchanged_round_trip_through_the_edit_helper_still_loads(design_copy, edit):
    """Guards the mutation tests: rewriting a file with safe_dump alone changes nothing."""
    for name in DESIGN_FILES:
        edit(design_copy, name, lambda data: None)
    loaded = load_design(design_copy)
    assert loaded.summary()["arms"] == 24


# ----------------------------------------------------------------------------- rejections
@dataclass(frozen=True)
class Case:
    """One invalid design: how to make it and where the error must point."""

    id: str
    file: str  # the design file to change (relative to the design dir)
    error: type[DesignError]
    entry: str | None
    field: str | None  # must be contained in error.field
    edit: Callable[[Any], Any] | None = None  # change through the parsed YAML
    text: tuple[str, str] | None = None  # or: replace raw text (old, new)
    delete: bool = False  # or: remove the file
    message: str = ""  # must be in str(error)


def _parent(data: Any, path: list[Any]) -> Any:
    """The node holding ``path[-1]``; a string step into a list selects the entry by id."""
    node = data
    for key in path[:-1]:
        node = _entry(node, key) if isinstance(node, list) and isinstance(key, str) else node[key]
    return node


def _set(path: list[Any], value: Any) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        _parent(data, path)[path[-1]] = value

    return edit


def _pop(path: list[Any]) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        del _parent(data, path)[path[-1]]

    return edit


def _add_fifth_hyperinflammation_arm(data: dict[str, Any]) -> None:
    extra = copy.deepcopy(_arm(data, "hinf_baricitinib"))
    extra["id"] = "hinf_baricitinib_bis"
    data["arms"].append(extra)


def _remove_arm(ident: str) -> Callable[[Any], None]:
    def edit(data: dict[str, Any]) -> None:
        data["arms"].remove(_arm(data, ident))

    return edit


CASES = [
    Case(
        "unknown trait in an arm",
        "arms.yaml",
        UnknownReferenceError,
        "hinf_baricitinib",
        "trait",
        edit=_set(["arms", "hinf_baricitinib", "trait"], "hyperinflamation"),
        message="hyperinflamation",
    ),
    Case(
        "duplicate arm id",
        "arms.yaml",
        DuplicateIdError,
        "hinf_baricitinib",
        "id",
        edit=_set(["arms", "hinf_anakinra", "id"], "hinf_baricitinib"),
        message="2 times",
    ),
    Case(
        "trait without its control arm",
        "arms.yaml",
        MissingControlError,
        "mals",
        "role",
        edit=_remove_arm("mals_usual_care"),
    ),
    Case(
        "dose unit not recognised",
        "arms.yaml",
        UnknownUnitError,
        "hinf_baricitinib",
        "components[0].adult[0].unit",
        edit=_set(["arms", "hinf_baricitinib", "components", 0, "adult", "unit"], "mgg"),
        message="'mgg'",
    ),
    Case(
        "dose cap unit of another dimension",
        "arms.yaml",
        UnknownUnitError,
        "cort_hydrocortisone",
        "components[0].child[0].max_amount.unit",
        edit=_set(
            ["arms", "cort_hydrocortisone", "components", 0, "child", "max_amount", "unit"], "IU"
        ),
    ),
    Case(
        "dose in a laboratory unit",
        "arms.yaml",
        UnknownUnitError,
        "hfib_sivelestat",
        "components[0].adult[0].unit",
        edit=_set(["arms", "hfib_sivelestat", "components", 0, "adult", "unit"], "ng/mL"),
    ),
    Case(
        "ferritin threshold in percent",
        "traits.yaml",
        UnknownUnitError,
        "mals",
        "rules.adult.unit",
        edit=_set(["traits", "mals", "rules", "adult", "unit"], "%"),
        message="ferritin",
    ),
    Case(
        "INR threshold implausible",
        "traits.yaml",
        OutOfRangeError,
        "hypercoagulation",
        "rules.adult.all[0].threshold",
        edit=lambda d: _trait(d, "hypercoagulation")["rules"]["adult"]["all"][0].update(
            threshold=50.0
        ),
        message="plausible range",
    ),
    Case(
        "platelet threshold implausible after unit conversion",
        "traits.yaml",
        OutOfRangeError,
        "hypercoagulation",
        "rules.adult.all[1].any[0].threshold",
        edit=lambda d: _trait(d, "hypercoagulation")["rules"]["adult"]["all"][1]["any"][0].update(
            threshold=150e6
        ),
    ),
    Case(
        "graduation threshold above 1",
        "proposed/decisions.yaml",
        OutOfRangeError,
        "graduation",
        "threshold",
        edit=_set(["graduation", "threshold"], 1.2),
        message="(0, 1)",
    ),
    Case(
        "graduation threshold of 0",
        "proposed/decisions.yaml",
        OutOfRangeError,
        "graduation",
        "threshold",
        edit=_set(["graduation", "threshold"], 0.0),
    ),
    Case(
        "calibration result outside the data root",
        "proposed/decisions.yaml",
        OutOfRangeError,
        "calibration",
        "result",
        edit=_set(["calibration", "result"], "../elsewhere/calibration"),
        message="under the data root",
    ),
    Case(
        "futility threshold not below graduation",
        "proposed/decisions.yaml",
        ConflictingArgumentsError,
        "futility",
        "threshold",
        edit=_set(["futility", "threshold"], 0.96),
    ),
    Case(
        "negative prior scale",
        "proposed/priors.yaml",
        OutOfRangeError,
        "arm_log_or",
        "scale",
        edit=_set(["arm_log_or", "scale"], -0.5),
        message="must be > 0",
    ),
    Case(
        "zero half-normal prior scale",
        "proposed/priors.yaml",
        OutOfRangeError,
        "between_trait_sd",
        "scale",
        edit=_set(["between_trait_sd", "scale"], 0.0),
    ),
    Case(
        "child arm in an adult-only trait",
        "arms.yaml",
        ConflictingArgumentsError,
        "hcoag_rhtm",
        "age_groups",
        edit=_set(["arms", "hcoag_rhtm", "age_groups"], ["child"]),
        message="admits only",
    ),
    Case(
        "unknown age group in an arm",
        "arms.yaml",
        UnknownReferenceError,
        "hcoag_rhtm",
        "age_groups",
        edit=_set(["arms", "hcoag_rhtm", "age_groups"], ["elderly"]),
    ),
    Case(
        "rule for an age group the trait excludes",
        "traits.yaml",
        ConflictingArgumentsError,
        "hypofibrinolysis",
        "rules.child",
        edit=lambda d: _trait(d, "hypofibrinolysis")["rules"].update(
            child=_trait(d, "hypofibrinolysis")["rules"]["adult"]
        ),
    ),
    Case(
        "unknown hook",
        "traits.yaml",
        UnknownReferenceError,
        "hyperinflammation",
        "rules.adult.hook",
        edit=_set(["traits", "hyperinflammation", "rules", "adult", "hook"], "seymour"),
        message="'seymour'",
    ),
    Case(
        "hook class that the hook does not have",
        "traits.yaml",
        UnknownReferenceError,
        "hyperinflammation",
        "rules.child.positive",
        edit=_set(["traits", "hyperinflammation", "rules", "child", "positive"], ["B", "E"]),
        message="'E'",
    ),
    Case(
        "unknown biomarker",
        "traits.yaml",
        UnknownReferenceError,
        "hypofibrinolysis",
        "rules.adult.biomarker",
        edit=_set(
            ["traits", "hypofibrinolysis", "rules", "adult", "biomarker"], "plasminogen_activity"
        ),
    ),
    Case(
        "misspelt dose field",
        "arms.yaml",
        DesignSchemaError,
        "hinf_anakinra",
        "components[0].adult[0].duration_day",
        edit=lambda d: _arm(d, "hinf_anakinra")["components"][0]["adult"].update(
            duration_day=_arm(d, "hinf_anakinra")["components"][0]["adult"].pop("duration_days")
        ),
        message="Extra inputs",
    ),
    Case(
        "misspelt field in a trait rule",
        "traits.yaml",
        DesignSchemaError,
        "hypercoagulation",
        "rules.adult.all[0].thresold",
        edit=lambda d: _trait(d, "hypercoagulation")["rules"]["adult"]["all"][0].update(
            thresold=1.4
        ),
    ),
    Case(
        "missing required field",
        "arms.yaml",
        DesignSchemaError,
        "cort_fludrocortisone",
        "role",
        edit=_pop(["arms", "cort_fludrocortisone", "role"]),
        message="Field required",
    ),
    Case(
        "missing required field of a nested section",
        "proposed/decisions.yaml",
        DesignSchemaError,
        "graduation",
        "min_complete",
        edit=_pop(["graduation", "min_complete"]),
        message="Field required",
    ),
    Case(
        "wrong type in a nested section",
        "trial.yaml",
        DesignSchemaError,
        "arms_per_trait",
        "experimental_max",
        edit=_set(["arms_per_trait", "experimental_max"], "four"),
    ),
    Case(
        "wrong type in a keyed mapping",
        "substances.yaml",
        DesignSchemaError,
        "tocilizumab",
        "licensed_routes[0]",
        edit=_set(["substances", "tocilizumab", "licensed_routes"], ["oral"]),
    ),
    Case(
        "duplicate YAML key",
        "arms.yaml",
        DuplicateIdError,
        "hinf_anakinra",
        "trait",
        text=(
            "  - id: hinf_anakinra\n    trait: hyperinflammation\n",
            "  - id: hinf_anakinra\n    trait: hyperinflammation\n    trait: mals\n",
        ),
        message="repeated on line",
    ),
    Case(
        "invalid YAML",
        "arms.yaml",
        DesignSchemaError,
        None,
        None,
        text=("text: Usual care}\n", "text: Usual care\n"),
        message="not valid YAML (line",
    ),
    Case(
        "impossible date (issue 13: a ValueError traceback)",
        "trial.yaml",
        DesignSchemaError,
        None,
        None,
        text=("study_start: 2026-05-01", "study_start: 2026-02-30"),
        message="'2026-02-30' is not a calendar date",
    ),
    Case(
        "NaN dose (issue 13: accepted as faithful, '? mg per day')",
        "arms.yaml",
        DesignSchemaError,
        "hcoag_rhtm",
        "components[0].adult[0].amount",
        edit=_set(["arms", "hcoag_rhtm", "components", 0, "adult", "amount"], float("nan")),
        message="finite number",
    ),
    Case(
        "infinite dose amount",
        "arms.yaml",
        DesignSchemaError,
        "hfib_plasminogen",
        "components[0].adult[0].amount",
        edit=_set(["arms", "hfib_plasminogen", "components", 0, "adult", "amount"], float("inf")),
        message="finite number",
    ),
    Case(
        "control character in a file",
        "units.yaml",
        DesignSchemaError,
        None,
        None,
        text=("units:\n", "units:\n  # \x01\n"),
        message="not valid YAML (line",
    ),
    Case(
        "missing design file",
        "proposed/interims.yaml",
        DesignSchemaError,
        None,
        None,
        delete=True,
        message="required design file missing",
    ),
    Case(
        "unknown finding referenced by a trait",
        "traits.yaml",
        UnknownReferenceError,
        "mals",
        "finding",
        edit=_set(["traits", "mals", "finding"], "RF-99"),
        message="'RF-99'",
    ),
    Case(
        "unknown finding referenced by a dose cap",
        "arms.yaml",
        UnknownReferenceError,
        "cort_hydrocortisone",
        "components[0].child[0].max_amount.finding",
        edit=_set(
            ["arms", "cort_hydrocortisone", "components", 0, "child", "max_amount", "finding"],
            "RF-98",
        ),
    ),
    Case(
        "finding id not of the form RF-nn",
        "registry_findings.yaml",
        DesignSchemaError,
        "RF-1",
        "id",
        edit=_set(["findings", "RF-01", "id"], "RF-1"),
    ),
    Case(
        "blocks_dose naming an unknown arm",
        "registry_findings.yaml",
        UnknownReferenceError,
        "RF-02",
        "blocks_dose[0].arm",
        edit=lambda d: _entry(d["findings"], "RF-02")["blocks_dose"][0].update(
            arm="hinf_tocilizumabb"
        ),
        message="'hinf_tocilizumabb'",
    ),
    Case(
        "shared-effect group within one trait",
        "shared_effect_groups.yaml",
        ConflictingArgumentsError,
        "anakinra",
        "arms",
        edit=_set(
            ["shared_effect_groups", "anakinra", "arms"], ["hinf_anakinra", "hinf_baricitinib"]
        ),
        message="different traits",
    ),
    Case(
        "shared-effect group of control arms",
        "shared_effect_groups.yaml",
        ConflictingArgumentsError,
        "mtx100",
        "arms",
        edit=_set(
            ["shared_effect_groups", "mtx100", "arms"], ["mals_usual_care", "hinf_usual_care"]
        ),
        message="is a control",
    ),
    Case(
        "shared-effect group of different substances",
        "shared_effect_groups.yaml",
        ConflictingArgumentsError,
        "anakinra",
        "arms",
        edit=_set(
            ["shared_effect_groups", "anakinra", "arms"], ["mals_anakinra", "hinf_baricitinib"]
        ),
        message="same substances",
    ),
    Case(
        "too many experimental arms in one trait",
        "arms.yaml",
        OutOfRangeError,
        "hyperinflammation",
        "role",
        edit=_add_fifth_hyperinflammation_arm,
        message="5 experimental arms",
    ),
    Case(
        "every_n_hours without every_hours",
        "arms.yaml",
        ConflictingArgumentsError,
        "cort_hydrocortisone",
        "components[0].adult[0].every_hours",
        edit=_pop(["arms", "cort_hydrocortisone", "components", 0, "adult", "every_hours"]),
    ),
    Case(
        "every_hours without every_n_hours",
        "arms.yaml",
        ConflictingArgumentsError,
        "hinf_anakinra",
        "components[0].adult[0].every_hours",
        edit=_set(["arms", "hinf_anakinra", "components", 0, "adult", "every_hours"], 24),
    ),
    Case(
        "dose range upside down",
        "arms.yaml",
        OutOfRangeError,
        "cort_hydrocortisone",
        "components[0].child[0].amount_max",
        edit=_set(["arms", "cort_hydrocortisone", "components", 0, "child", "amount_max"], 0.5),
    ),
    Case(
        "multi-trait weights missing a trait",
        "proposed/multi_trait_policy.yaml",
        ConflictingArgumentsError,
        "default",
        "weights",
        edit=_pop(["default", "weights", "mals"]),
        message="'mals'",
    ),
    Case(
        "multi-trait weight not a number",
        "proposed/multi_trait_policy.yaml",
        DesignSchemaError,
        "default",
        "weights.mals",
        edit=_set(["default", "weights", "mals"], "high"),
    ),
    Case(
        "allocation floor too large for five arms",
        "proposed/allocation.yaml",
        OutOfRangeError,
        None,
        "floor_per_open_arm",
        edit=_set(["floor_per_open_arm"], 0.3),
        message="x 5 arms",
    ),
    Case(
        "patient field unit not recognised",
        "patient_record.yaml",
        UnknownUnitError,
        "weight_kg",
        "unit",
        edit=_set(["fields", "weight_kg", "unit"], "stone"),
    ),
    Case(
        "numeric patient field without a range",
        "patient_record.yaml",
        DesignSchemaError,
        "weight_kg",
        "range",
        edit=_pop(["fields", "weight_kg", "range"]),
    ),
    Case(
        "patient field range reversed",
        "patient_record.yaml",
        OutOfRangeError,
        "weight_kg",
        "range",
        edit=_set(["fields", "weight_kg", "range"], [350, 0.4]),
    ),
    Case(
        "trait biomarker missing from the patient record",
        "patient_record.yaml",
        UnknownReferenceError,
        "ferritin",
        None,
        edit=_pop(["fields", "ferritin"]),
    ),
    Case(
        "biomarker field in a unit other than the trait rule's",
        "patient_record.yaml",
        UnknownUnitError,
        "plasminogen",
        "unit",
        edit=_set(["fields", "plasminogen", "unit"], "%"),
    ),
    Case(
        "hook input field categories differ from the hook classes",
        "patient_record.yaml",
        ConflictingArgumentsError,
        "seymour_class",
        "categories",
        edit=_set(["fields", "seymour_class", "categories"], ["alpha", "beta", "gamma"]),
        message="seymour_subphenotype",
    ),
    Case(
        "planned arm without opens_when",
        "arms.yaml",
        DesignSchemaError,
        "hfib_octaplas",
        "availability.opens_when",
        edit=_pop(["arms", "hfib_octaplas", "availability", "opens_when"]),
    ),
    # ------------------------------------------------------------------ export contract
    Case(
        "export field of an unknown kind",
        "export_contract.yaml",
        DesignSchemaError,
        "weight_kg",
        "kind",
        edit=_set(["fields", "weight_kg", "kind"], "decimal"),
    ),
    Case(
        "export categories from an unknown source",
        "export_contract.yaml",
        DesignSchemaError,
        "arm",
        "categories_from",
        edit=_set(["fields", "arm", "categories_from"], "drugs"),
    ),
    Case(
        "export category field without categories",
        "export_contract.yaml",
        ConflictingArgumentsError,
        "withdrawal_scope",
        "categories",
        edit=_pop(["fields", "withdrawal_scope", "categories"]),
    ),
    Case(
        "export weight range reversed",
        "export_contract.yaml",
        OutOfRangeError,
        "weight_kg",
        "range",
        edit=_set(["fields", "weight_kg", "range"], [350, 0.4]),
    ),
    Case(
        "export weight in an unknown unit",
        "export_contract.yaml",
        UnknownUnitError,
        "weight_kg",
        "unit",
        edit=_set(["fields", "weight_kg", "unit"], "stone"),
    ),
    Case(
        "export pattern not a regular expression",
        "export_contract.yaml",
        DesignSchemaError,
        "country",
        "pattern",
        edit=_set(["fields", "country", "pattern"], "^[A-Z{2}$"),
    ),
    Case(
        "export field the code reads is missing",
        "export_contract.yaml",
        DesignSchemaError,
        "death_date",
        None,
        edit=_pop(["fields", "death_date"]),
    ),
    Case(
        "export field the code reads has the wrong kind",
        "export_contract.yaml",
        ConflictingArgumentsError,
        "randomisation_date",
        "kind",
        edit=_set(["fields", "randomisation_date", "kind"], "str"),
    ),
    Case(
        "export patient id not unique",
        "export_contract.yaml",
        ConflictingArgumentsError,
        "patient_id",
        "unique",
        edit=_set(["fields", "patient_id", "unique"], False),
    ),
    Case(
        "export date dating an unknown outcome",
        "export_contract.yaml",
        UnknownReferenceError,
        "secondary_infection_date",
        "outcome",
        edit=_set(["fields", "secondary_infection_date", "outcome"], "infection"),
    ),
    Case(
        "binary outcome without an export date",
        "export_contract.yaml",
        ConflictingArgumentsError,
        None,
        "fields",
        edit=_pop(["fields", "isth_major_bleeding_date", "outcome"]),
        message="isth_major_bleeding",
    ),
    Case(
        "organ support recorded twice",
        "export_contract.yaml",
        DuplicateIdError,
        "support_ecmo",
        "organ_support",
        edit=_set(["fields", "support_ecmo", "organ_support"], "vasopressors"),
    ),
    Case(
        "organ support of outcomes.yaml without an export field",
        "export_contract.yaml",
        ConflictingArgumentsError,
        None,
        "fields",
        edit=_pop(["fields", "support_ecmo"]),
        message="ecmo",
    ),
    Case(
        "export interval field of an unknown organ support",
        "export_contract.yaml",
        UnknownReferenceError,
        "support_ecmo",
        "organ_support",
        edit=_set(["fields", "support_ecmo", "organ_support"], "oxygen_mask"),
    ),
    Case(
        "export metadata without data cut",
        "export_contract.yaml",
        DesignSchemaError,
        "data_cut",
        None,
        edit=_pop(["metadata", "data_cut"]),
    ),
    Case(
        "export metadata the code does not read",
        "export_contract.yaml",
        UnknownReferenceError,
        "database",
        None,
        edit=_set(["metadata", "database"], {"kind": "str", "description": "x"}),
    ),
    # ------------------------------------------------------------------ interim analysis
    Case(
        "follow-up window other than the OSFD range",
        "proposed/interim_analysis.yaml",
        ConflictingArgumentsError,
        "follow_up",
        "window_days",
        edit=_set(["follow_up", "window_days"], 21),
        message="osfd28",
    ),
    Case(
        "era length zero",
        "proposed/interim_analysis.yaml",
        OutOfRangeError,
        "eras",
        "length_days",
        edit=_set(["eras", "length_days"], 0),
    ),
    Case(
        "unknown sensitivity analysis",
        "proposed/interim_analysis.yaml",
        DesignSchemaError,
        "sensitivity",
        "analyses",
        edit=_set(["sensitivity", "analyses"], ["no_borrowing", "tipping"]),
    ),
    Case(
        "sensitivity analysis listed twice",
        "proposed/interim_analysis.yaml",
        DuplicateIdError,
        "sensitivity",
        "analyses",
        edit=_set(["sensitivity", "analyses"], ["no_borrowing", "no_borrowing"]),
    ),
    Case(
        "withdrawal scope without a handling rule",
        "export_contract.yaml",
        ConflictingArgumentsError,
        "withdrawal_scope",
        "categories",
        edit=_set(["fields", "withdrawal_scope", "categories"], ["treatment", "all_data"]),
        message="interim_analysis.yaml",
    ),
    Case(
        "unknown withdrawal handling",
        "proposed/interim_analysis.yaml",
        DesignSchemaError,
        "withdrawal",
        "all_data",
        edit=_set(["withdrawal", "all_data"], "impute"),
    ),
    Case(
        "escalation step that changes nothing",
        "proposed/interim_analysis.yaml",
        ConflictingArgumentsError,
        "convergence.escalation[0]",
        None,
        edit=_set(["convergence", "escalation", 0], {"rationale": "x"}),
    ),
    Case(
        "escalation target acceptance of 1",
        "proposed/interim_analysis.yaml",
        OutOfRangeError,
        "convergence.escalation[1]",
        "target_accept_prob",
        edit=_set(["convergence", "escalation", 1, "target_accept_prob"], 1.0),
    ),
    Case(
        "Monte Carlo margin of zero",
        "proposed/interim_analysis.yaml",
        OutOfRangeError,
        "monte_carlo",
        "mcse_margin",
        edit=_set(["monte_carlo", "mcse_margin"], 0.0),
    ),
    Case(
        "negative number of extra runs",
        "proposed/interim_analysis.yaml",
        OutOfRangeError,
        "monte_carlo",
        "max_extra_runs",
        edit=_set(["monte_carlo", "max_extra_runs"], -1),
    ),
]


def _make_invalid(case: Case, design_dir: Path, edit, replace) -> None:
    path = design_dir / case.file
    if case.delete:
        path.unlink()
    elif case.text is not None:
        replace(path, *case.text)
    else:
        edit(design_dir, case.file, case.edit)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rejects_invalid_design_naming_file_entry_field(case, design_copy, edit, replace):
    _make_invalid(case, design_copy, edit, replace)
    with pytest.raises(DesignError) as info:
        load_design(design_copy)
    err = info.value
    assert type(err) is case.error, f"{type(err).__name__}: {err}"
    assert isinstance(err, PaletteError) and isinstance(err, ValueError)
    assert err.file == case.file
    assert err.entry == case.entry
    if case.field is None:
        assert err.field is None
    else:
        assert err.field is not None and case.field in err.field, err.field
    text = str(err)
    assert text.startswith(case.file), text
    if case.entry is not None:
        assert repr(case.entry) in text
    if case.field is not None:
        assert case.field in text
    assert case.error.kind in text
    assert case.message in text


def test_rejects_a_design_file_that_is_not_utf8(design_copy):
    path = design_copy / "units.yaml"
    path.write_bytes(path.read_bytes() + b"\n# caf\xe9\n")
    with pytest.raises(DesignSchemaError, match="not UTF-8") as info:
        load_design(design_copy)
    assert info.value.file == "units.yaml"


def test_rejects_a_design_file_that_is_not_a_mapping(design_copy):
    (design_copy / "proposed" / "interims.yaml").write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(DesignSchemaError, match="expected a mapping") as info:
        load_design(design_copy)
    assert info.value.file == "proposed/interims.yaml"


def test_rejects_a_missing_registry_record(design_copy):
    (design_copy.parent / "registry" / "NCT06381661-registry-record.txt").unlink()
    with pytest.raises(DesignSchemaError) as info:
        load_design(design_copy)
    assert (info.value.file, info.value.field) == ("trial.yaml", "registry_file")


def test_rejects_a_missing_design_directory(tmp_path):
    with pytest.raises(DesignSchemaError, match="design directory not found"):
        load_design(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- a property
def _set_inr_threshold(value: float) -> Callable[[Any], None]:
    def edit(data: dict[str, Any]) -> None:
        _trait(data, "hypercoagulation")["rules"]["adult"]["all"][0]["threshold"] = value

    return edit


@settings(max_examples=20, deadline=None)
@given(
    threshold=st.one_of(
        st.floats(min_value=0.5, max_value=20.0),
        st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_inr_threshold_loads_exactly_when_plausible(make_design_copy, edit, threshold):
    with tempfile.TemporaryDirectory() as tmp:
        design_dir = make_design_copy(Path(tmp))
        edit(design_dir, "traits.yaml", _set_inr_threshold(threshold))
        if 0.5 <= threshold <= 20.0:
            loaded = load_design(design_dir)
            rule = loaded.trait("hypercoagulation").rules["adult"]
            assert rule.all_of[0].threshold == threshold
        else:  # NaN and infinities are refused by the schema, finite values by the range
            error = OutOfRangeError if math.isfinite(threshold) else DesignSchemaError
            with pytest.raises(error) as info:
                load_design(design_dir)
            assert info.value.entry == "hypercoagulation"
            assert info.value.field == "rules.adult.all[0].threshold"


def test_design_mappings_cannot_be_changed_in_place(design):
    with pytest.raises(TypeError):
        design.units["mg"] = design.units["g"]
    with pytest.raises(TypeError):
        design.substances["new"] = design.substances["anakinra"]
