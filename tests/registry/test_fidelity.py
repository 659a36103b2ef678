"""Registry fidelity: the real design is faithful, and the checker catches every kind of drift."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from palette_core.design.loader import load_design
from palette_core.registry.fidelity import FidelityReport, check_fidelity

#: (arm, age group) pairs whose dose is blocked, read from registry_findings.yaml by hand:
#: RF-01 cort_hc_fc (adult, child); RF-02 hinf_tocilizumab (adult, child); RF-14
#: hinf_baricitinib, hinf_anakinra, mals_anakinra (child); RF-15 cort_hc_fc (child);
#: RF-18 mals_mtx100, hinf_mtx100 (child).
EXPECTED_BLOCKED = {
    ("cort_hc_fc", "adult"),
    ("cort_hc_fc", "child"),
    ("hinf_tocilizumab", "adult"),
    ("hinf_tocilizumab", "child"),
    ("hinf_baricitinib", "child"),
    ("hinf_anakinra", "child"),
    ("mals_anakinra", "child"),
    ("mals_mtx100", "child"),
    ("hinf_mtx100", "child"),
}

FINDINGS_COLUMNS = [
    "id",
    "severity",
    "category",
    "title",
    "registry lines",
    "adopted reading",
    "reading",
    "blocks dose of",
    "detected automatically",
]


@pytest.fixture(scope="module")
def report(design, record) -> FidelityReport:
    return check_fidelity(design, record)


def _check(design_dir: Path) -> FidelityReport:
    return check_fidelity(load_design(design_dir))


def _arm(data, ident):
    return next(a for a in data["arms"] if a["id"] == ident)


def _finding(data, ident):
    return next(f for f in data["findings"] if f["id"] == ident)


# ----------------------------------------------------------------------------- the real design
def test_real_design_is_faithful(report):
    assert report.ok, "\n".join(report.problems())
    assert report.problems() == []
    assert report.mismatches == report.uncovered == report.stale == ()


def test_check_parses_the_cited_record_when_none_is_given(design, report):
    assert check_fidelity(design) == report


def test_every_claimed_signal_is_detected(report):
    detected = {s.key for s in report.signals}
    for finding in report.findings:
        for key in finding.signals:
            assert key in detected, f"{finding.id} claims {key}"


def test_every_detected_signal_is_claimed_by_exactly_one_finding(report):
    owners: dict[str, list[str]] = {}
    for finding in report.findings:
        for key in finding.signals:
            owners.setdefault(key, []).append(finding.id)
    assert sorted(owners) == sorted(s.key for s in report.signals)
    assert all(len(ids) == 1 for ids in owners.values()), owners


def test_signal_keys_are_unique_and_sorted(report):
    keys = [s.key for s in report.signals]
    assert keys == sorted(set(keys))
    assert len(keys) == 34


def test_blocked_doses_are_exactly_the_expected_ones(design):
    blocked = {
        (arm.id, group)
        for arm in design.arms
        for group in design.age_group_ids
        if design.dose_blocks(arm.id, group)
    }
    assert blocked == EXPECTED_BLOCKED


def test_findings_table_has_one_row_per_finding(report):
    table = report.findings_table()
    assert list(table.columns) == FINDINGS_COLUMNS
    assert list(table["id"]) == [f"RF-{i:02d}" for i in range(1, 26)]
    rows = table.set_index("id")
    assert rows.loc["RF-01", "blocks dose of"] == "cort_hc_fc (adult, child)"
    assert rows.loc["RF-01", "registry lines"] == "120, 130, 358, 412"
    assert rows.loc["RF-05", "blocks dose of"] == "-"
    assert rows.loc["RF-05", "detected automatically"] == "no (reading)"
    assert rows.loc["RF-13", "detected automatically"] == "yes"
    assert rows.loc["RF-03", "reading"] == "proposed"
    assert rows.loc["RF-02", "reading"] == "as written"


def test_signals_table_explains_every_signal(report):
    table = report.signals_table()
    assert len(table) == len(report.signals)
    assert "UNEXPLAINED" not in set(table["finding"])
    owners = dict(zip(table["signal"], table["finding"], strict=True))
    assert owners["dose_conflict:fludrocortisone"] == "RF-01"
    assert owners["group_extra_intervention:hypo_gcsf"] == "RF-03"


# ----------------------------------------------------------------------------- mutations
def _mismatches(report: FidelityReport) -> set[tuple[str, str]]:
    return {(m.check, m.subject) for m in report.mismatches}


def test_unchanged_copy_is_faithful(design_copy, edit):
    for name in ("arms.yaml", "traits.yaml", "registry_findings.yaml", "eligibility.yaml"):
        edit(design_copy, name, lambda data: None)
    result = _check(design_copy)
    assert result.ok, result.problems()


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        pytest.param(
            "arms.yaml",
            lambda d: _arm(d, "cort_hydrocortisone")["registry"].update(
                text="50mg (in children: 1-2 mg/kg) IV Q6 for 5 days"
            ),
            {("arm-text", "cort_hydrocortisone")},
            id="arm registry text altered",
        ),
        pytest.param(
            "arms.yaml",
            lambda d: _arm(d, "cort_hydrocortisone")["registry"].update(
                label="Corticoids response : Hydrocortisone IV"
            ),
            {
                ("arm-label", "cort_hydrocortisone"),
                ("missing-arm", "Corticoids response : Hydrocortisone"),
            },
            id="arm label changed",
        ),
        pytest.param(
            "arms.yaml",
            lambda d: _arm(d, "hcoag_rhtm")["registry"].update(intervention="Thrombomodulin"),
            {("arm-intervention", "hcoag_rhtm")},
            id="arm intervention name changed",
        ),
        pytest.param(
            "arms.yaml",
            lambda d: d["arms"].remove(_arm(d, "hcoag_rhtm")),
            {("missing-arm", "Hypercoagulation : Thrombomodulin")},
            id="experimental arm removed",
        ),
        pytest.param(
            "arms.yaml",
            lambda d: d["arms"].append(dict(copy.deepcopy(_arm(d, "hypo_ifng")), id="hypo_ifng_2")),
            {("duplicate-arm", "hypo_ifng_2")},
            id="registry group transcribed twice",
        ),
        pytest.param(
            "registry_findings.yaml",
            lambda d: _finding(d, "RF-12")["evidence"][0].update(quote="0.06 mg/kg/d IV"),
            {("evidence", "RF-12")},
            id="finding quote altered",
        ),
        pytest.param(
            "registry_findings.yaml",
            lambda d: _finding(d, "RF-12")["evidence"][0].update(line=181),
            {("evidence", "RF-12")},
            id="finding cites the wrong line",
        ),
        pytest.param(
            "registry_findings.yaml",
            lambda d: _finding(d, "RF-12")["evidence"][0].update(line=9999),
            {("evidence", "RF-12")},
            id="finding cites a line beyond the record",
        ),
        pytest.param(
            "traits.yaml",
            lambda d: next(t for t in d["traits"] if t["id"] == "mals").update(
                registry_text="Macrophage Activation Like Syndrome : Ferritin \\>4,000 ng/mL"
            ),
            {("trait-text", "mals")},
            id="trait registry text altered",
        ),
        pytest.param(
            "traits.yaml",
            lambda d: next(t for t in d["traits"] if t["id"] == "hypofibrinolysis")[
                "registry_names"
            ].remove("Hypofrinolysis"),
            {("trait-name", "hypofibrinolysis")},
            id="trait alias removed",
        ),
        pytest.param(
            "traits.yaml",
            lambda d: next(t for t in d["traits"] if t["id"] == "mals")["registry_names"].remove(
                "Macrophage Activation Like Syndrome"
            ),
            {("trait-name", "mals"), ("trait-name", "Macrophage Activation Like Syndrome")},
            id="alias used in the intervention model removed",
        ),
        pytest.param(
            "eligibility.yaml",
            lambda d: d["exclusion"][2].update(registry_text="Breastfeeding"),
            {("criterion-text", "breastfeeding")},
            id="criterion text altered",
        ),
        pytest.param(
            "trial.yaml",
            lambda d: d.update(enrollment=2001),
            {("trial-text", "enrollment")},
            id="trial field altered",
        ),
    ],
)
def test_checker_reports_the_mismatch(design_copy, edit, file, change, expected, request):
    edit(design_copy, file, change)
    result = _check(design_copy)
    assert _mismatches(result) == expected, result.problems()
    assert result.ok is (not expected)
    assert result.uncovered == ()
    # thrombomodulin's only arm is gone, so its dose can no longer show RF-24's silence
    stale = {"experimental arm removed": {("RF-24", "dosing_weight_not_stated:rhtm")}}
    assert set(result.stale) == stale.get(request.node.callspec.id, set())


def test_arm_text_mismatch_cites_the_registry_line(design_copy, edit):
    edit(
        design_copy,
        "arms.yaml",
        lambda d: _arm(d, "cort_hc_fc")["registry"].update(text="Hydrocortisone 50mg IV Q6"),
    )
    (mismatch,) = _check(design_copy).mismatches
    assert mismatch.lines == (130,)


def test_removed_alias_names_the_registry_lines(design_copy, edit):
    def drop(d):
        next(t for t in d["traits"] if t["id"] == "hypofibrinolysis")["registry_names"].remove(
            "Hypofrinolysis"
        )

    edit(design_copy, "traits.yaml", drop)
    (mismatch,) = _check(design_copy).mismatches
    assert "'Hypofrinolysis'" in mismatch.message
    assert sorted(mismatch.lines) == [192, 202, 212, 222]


def test_signal_dropped_from_its_finding_becomes_uncovered(design_copy, edit):
    edit(
        design_copy,
        "registry_findings.yaml",
        lambda d: _finding(d, "RF-22")["signals"].remove("route_not_stated:hfib_octaplas"),
    )
    result = _check(design_copy)
    assert [s.key for s in result.uncovered] == ["route_not_stated:hfib_octaplas"]
    assert result.mismatches == result.stale == ()
    assert not result.ok
    assert any("unexplained signal route_not_stated:hfib_octaplas" in p for p in result.problems())
    table = result.signals_table().set_index("signal")
    assert table.loc["route_not_stated:hfib_octaplas", "finding"] == "UNEXPLAINED"


def test_finding_claiming_an_undetected_signal_is_stale(design_copy, edit):
    edit(
        design_copy,
        "registry_findings.yaml",
        lambda d: _finding(d, "RF-22")["signals"].append("route_not_stated:hinf_tocilizumab"),
    )
    result = _check(design_copy)
    assert result.stale == (("RF-22", "route_not_stated:hinf_tocilizumab"),)
    assert result.mismatches == result.uncovered == ()
    assert "RF-22 claims signal route_not_stated:hinf_tocilizumab" in " ".join(result.problems())


def test_unlicensed_route_is_a_new_uncovered_signal(design_copy, edit):
    edit(
        design_copy,
        "arms.yaml",
        lambda d: _arm(d, "hinf_baricitinib")["components"][0].update(route="intravenous"),
    )
    result = _check(design_copy)
    assert [s.key for s in result.uncovered] == ["route_not_licensed:hinf_baricitinib"]
    assert result.mismatches == result.stale == ()


def test_fludrocortisone_in_micrograms_removes_the_dose_conflict(design_copy, edit):
    def to_micrograms(d):
        (fludro,) = [
            c for c in _arm(d, "cort_hc_fc")["components"] if c["substance"] == "fludrocortisone"
        ]
        assert fludro["adult"]["unit"] == "mg"
        fludro["adult"]["unit"] = "ug"

    edit(design_copy, "arms.yaml", to_micrograms)
    result = _check(design_copy)
    assert "dose_conflict:fludrocortisone" not in {s.key for s in result.signals}
    assert result.stale == (("RF-01", "dose_conflict:fludrocortisone"),)
    assert result.mismatches == result.uncovered == ()


def test_dose_conflict_is_detected_when_units_differ_but_amounts_agree(design_copy, edit):
    """50 µg in one arm and 0.05 mg in another are the same dose: no conflict."""

    def rewrite(d):
        _arm(d, "cort_fludrocortisone")["components"][0]["adult"].update(amount=0.05, unit="mg")
        (fludro,) = [
            c for c in _arm(d, "cort_hc_fc")["components"] if c["substance"] == "fludrocortisone"
        ]
        fludro["adult"]["unit"] = "ug"

    edit(design_copy, "arms.yaml", rewrite)
    assert "dose_conflict:fludrocortisone" not in {s.key for s in _check(design_copy).signals}


def test_shortened_criterion_is_not_a_whole_registry_line(design_copy, edit):
    def shorten(data):
        next(c for c in data["exclusion"] if c["id"] == "pregnancy")["registry_text"] = "Pregnancy"

    edit(design_copy, "eligibility.yaml", shorten)
    assert ("criterion-text", "pregnancy") in _mismatches(_check(design_copy))


def test_modified_design_can_be_cross_checked_inside_its_block(design):
    from palette_core.design.loader import modified_design

    def drop_alias(data):
        trait = next(t for t in data["traits"] if t["id"] == "hypofibrinolysis")
        trait["registry_names"] = ["Hypofibrinolysis"]

    with modified_design(design.root, "traits.yaml", drop_alias) as changed:
        report = check_fidelity(changed)
    assert ("trait-name", "hypofibrinolysis") in _mismatches(report)
    assert check_fidelity(design).ok  # the real design is untouched
