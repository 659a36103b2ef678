"""The protocol chapters: objectives and estimands, analysis populations and safety, DMC charter,
trial conduct, SAP versions and the checklist (tables generated from data, numbers computed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import support
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.chapters import checklist, conduct, dmc, objectives, populations, sap
from palette_core.design.loader import Design
from palette_core.design.protocol import load_protocol
from palette_core.errors import RegistryFormatError
from palette_core.results.store import load_result

BOOK = support.ROOT / "book"


@pytest.fixture(scope="module")
def protocol(design: Design):
    return load_protocol(design)


@pytest.fixture(scope="module")
def worked(design: Design):
    return load_result("worked_interim", design=design)


# ----------------------------------------------------------------------------- objectives
def test_one_hypothesis_per_experimental_arm_naming_arm_and_control(design, protocol):
    table = objectives.hypotheses_table(design, protocol)
    assert len(table) == len(design.experimental_arms())
    first = design.experimental_arms()[0]
    control = next(a for a in design.arms if a.trait == first.trait and a.role == "control")
    assert first.name in table["Hypothesis"].iloc[0] and control.name in table["Hypothesis"].iloc[0]


def test_rule_texts_follow_the_decisions_file(design):
    texts = objectives.rule_texts(design)
    d = design.decisions
    assert f"> {d.graduation.threshold:g}" in texts["graduation"]
    assert f"< {d.futility.threshold:g}" in texts["futility"]
    assert str(d.cap_per_experimental_arm.value) in texts["cap_reached"]


def test_registry_quotes_carry_their_line_and_a_wrong_quote_is_refused(design, record):
    table = objectives.registry_quotes(design, ["2000 participants"])
    assert "2000" in record.line(int(table["Line"].iloc[0]))
    with pytest.raises(RegistryFormatError, match="quote not found"):
        objectives.registry_quotes(design, ["a sentence the registry never wrote"])


def test_age_mix_counts_every_cell(design, worked):
    cells = worked.tables["cells_osfd28"]
    mix = objectives.age_mix_table(design, cells)
    labels = [g.label for g in design.strata.age_groups]
    assert int(mix[labels].to_numpy().sum()) == int(cells["count"].sum())


# ----------------------------------------------------------------------------- populations
def test_prior_conflict_weights_are_beta_moment_matches(design):
    pp = pd.DataFrame(
        [{"outcome": "mortality28", "age_group": "adult", "trait": "all", "quantity": "pr_event",
          "mean": 0.5, "sd": 0.5 / 3 ** 0.5, "q025": 0.025, "q975": 0.975}]
    )  # fmt: skip
    table = populations.prior_conflict_table(design, pp)
    # a uniform prior, Beta(1, 1) (mean 1/2, variance 1/12), weighs as a + b = 2 patients
    assert table["Prior weight (patients)"].iloc[0] == pytest.approx(2.0)


def test_safety_counts_pair_each_monitored_arm_with_its_usual_care(design, worked):
    counts = populations.safety_counts(design, worked.tables["safety"])
    monitored = populations.monitored_arms_table(design)
    assert len(counts) == len(monitored)
    safety = worked.tables["safety"].set_index("arm")
    for r in counts.itertuples():
        control = next(a.id for a in design.arms if a.trait == design.arm(r.arm).trait
                       and a.role == "control")  # fmt: skip
        assert r.n_control == safety.loc[control, "n_complete"]


def test_cumulative_odds_ratios_equal_one_when_arm_and_control_match(design):
    arms = design.experimental_arms()
    a = arms[0]
    control = next(x.id for x in design.arms if x.trait == a.trait and x.role == "control")
    counts = [(c, 5) for c in range(-1, 29, 3)]
    cells = pd.DataFrame(
        [{"trait": a.trait, "arm": arm, "category": c, "count": n}
         for arm in (a.id, control) for c, n in counts]
    )  # fmt: skip
    q = pd.DataFrame([{"analysis": "primary", "population": "all",
                       "outcome": design.outcomes.outcomes[0].id, "arm": a.id, "or_median": 1.0}])  # fmt: skip
    table = populations.cumulative_odds_ratios(design, cells, q)
    assert len(table) == len(populations.PO_CUTPOINTS)
    assert table["odds_ratio"].to_numpy() == pytest.approx(1.0)


def test_po_chart_is_valid_and_renders_offline(design, worked):
    table = populations.cumulative_odds_ratios(
        design, worked.tables["cells_osfd28"], worked.tables["quantities"]
    )
    chart = populations.po_chart(design, table)
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)


# ----------------------------------------------------------------------------- DMC
def test_the_inversion_is_exact_where_no_arm_is_at_the_floor(design):
    assert dmc.max_inversion_error(dmc.inversion_table(design)) < 1e-3


def test_the_access_table_keeps_the_sponsor_blind(protocol):
    table = dmc.access_table(protocol).set_index("Who")
    sponsor = [w for w in table.index if w.startswith("Sponsor")]
    assert sponsor and (table.loc[sponsor, "Comparative results"] == "no").all()


# ----------------------------------------------------------------------------- conduct, SAP
def test_every_conduct_topic_quotes_real_registry_lines(design, protocol, record):
    for t in protocol.conduct.topics:
        table = conduct.topic_table(design, protocol, t.id)
        for r in table[table["Source"].str.startswith("Registry, line")].itertuples():
            line = int(r.Source.rsplit(" ", 1)[1])
            assert r.Text.strip("“”")[:20] in record.line(line)


def test_revision_history_lists_design_commits_and_falls_back_outside_git(design, tmp_path):
    history = sap.revision_history(design.data_root)
    assert list(history.columns) == list(sap.HISTORY_COLUMNS)
    try:
        subprocess.run(["git", "-C", str(design.data_root), "rev-parse"], check=True,
                       capture_output=True)  # fmt: skip
        assert len(history) > 0
    except (OSError, subprocess.CalledProcessError):
        assert history.empty
    assert sap.revision_history(tmp_path).empty


def test_sign_off_names_roles_and_no_people(design, protocol):
    table = sap.sign_off_table(protocol, design.trial.sponsor)
    assert (table["Name"] == "").all() and len(table) == len(protocol.sap.sign_off)


# ----------------------------------------------------------------------------- checklist
def test_every_checklist_label_exists_in_the_book(protocol):
    labels = checklist.book_labels(BOOK)
    assert checklist.missing_labels(protocol, labels) == []


def test_a_label_missing_from_the_book_is_reported(protocol, tmp_path: Path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["(dmc)=\n", "# DMC\n"]}]}
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    missing = checklist.missing_labels(protocol, checklist.book_labels(tmp_path))
    assert "dmc" not in missing
    assert "safety-monitoring" in missing


def test_checklist_links_point_to_the_page_holding_the_label(protocol):
    labels = checklist.book_labels(BOOK)
    table = checklist.checklist_table(protocol, "spirit2013", labels)
    row = table[table["Item"] == "21a"].iloc[0]
    assert f'href="{labels["dmc"]}.html#dmc"' in row["Where"]


def test_checklist_counts_add_up(protocol):
    counts = checklist.checklist_counts(protocol).set_index("Guideline")
    total = counts.loc["Total"]
    n = sum(len(g.items) for g in protocol.guidelines.values())
    assert total["items"] == n
    assert total[list(checklist.STATUS_LABELS.values())].sum() == n
