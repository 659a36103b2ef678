"""The randomisation chapter: its inputs, the lifecycle example and the concealment demonstration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.chapters import randomisation as ch
from palette_core.design.loader import load_design
from palette_core.errors import DesignSchemaError
from palette_core.randomisation.lifecycle import lifecycle_table, transition_table


@pytest.fixture(scope="module")
def examples(design):
    return ch.load_examples(design)


@pytest.fixture(scope="module")
def demo(design, examples):
    return ch.randomisation_demo(design, examples)


def _data_copy(tmp_path: Path, design, make_design_copy) -> Path:
    """A data folder with the design, the registry and the scenarios; returns the scenarios dir."""
    make_design_copy(tmp_path)
    shutil.copytree(design.data_root / "scenarios", tmp_path / "scenarios")
    return tmp_path / "scenarios"


def test_examples_are_read_and_checked_once(design, examples):
    assert examples.allocation["trait"] in {t.id for t in design.traits}
    assert [e.arm for e in examples.events] == [
        "hfib_octaplas",
        "hcoag_ufh_prophylactic",
        "hcoag_rhtm",
    ]
    assert all(hasattr(e.date, "isoformat") for e in examples.events)
    assert examples.patients.errors.empty and len(examples.patients.frame) > 0


@pytest.mark.parametrize(
    ("block", "field"),
    [("allocation_example", "seed"), ("concealment_example", "tamper")],
)
def test_a_missing_field_is_named_with_its_block(tmp_path, design, make_design_copy, block, field):
    scenarios = _data_copy(tmp_path, design, make_design_copy)
    path = scenarios / "randomisation_examples.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data[block][field]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(DesignSchemaError) as info:
        ch.load_examples(load_design(tmp_path / "design"))
    assert info.value.file == ch.EXAMPLES_LABEL
    assert (info.value.entry, info.value.field) == (block, field)


def test_an_event_with_a_bad_date_is_named(tmp_path, design, make_design_copy):
    scenarios = _data_copy(tmp_path, design, make_design_copy)
    path = scenarios / "randomisation_examples.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["lifecycle_example"]["events"][1]["date"] = "15 March 2027"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(DesignSchemaError) as info:
        ch.load_examples(load_design(tmp_path / "design"))
    assert (info.value.entry, info.value.field) == ("lifecycle_example.events[1]", "date")


def test_lifecycle_example_applies_every_event(design, examples):
    table = lifecycle_table(ch.lifecycle_example(design, examples)).set_index("arm")
    for event in examples.events:
        assert table.loc[event.arm, "state"] == event.to


def test_demonstration_log_verifies_replays_and_detects_tampering(demo, examples):
    assert demo["intact_ok"] and demo["replay_ok"]
    assert demo["entries"] == len(demo["site_view"]) == len(demo["open_log"]) > 0
    assert demo["replay_matches"] == demo["entries"]
    assert not demo["wrong_secret_ok"] and not demo["wrong_secret_matches"]
    line = examples.concealment["tamper"]["line"]
    assert demo["tampered_line"] == line
    assert line in set(demo["tamper_problems"]["line"])


def test_demonstration_refuses_the_patients_who_are_not_eligible(demo, examples):
    assert len(demo["site_view"]) + len(demo["refused"]) == len(examples.patients.frame)
    assert set(demo["site_view"]["patient"]).isdisjoint(demo["refused"]["patient"])


def test_allocation_parameters_table_is_built_from_the_design(design):
    table = ch.allocation_parameters_table(design).set_index("Parameter")
    al = design.allocation
    assert table.iloc[0, 0] == f"{al.burn_in_min_complete_per_arm} complete outcomes"
    assert table.loc["Floor for every open arm", "Value"] == f"{al.floor_per_open_arm:g}"


def test_lifecycle_chart_draws_every_requested_transition(design):
    requests = transition_table(design).query("by == 'request'")
    chart = ch.lifecycle_chart(requests)
    spec = assert_valid_inline_spec(chart)
    edges = next(rows for rows in spec["datasets"].values() if rows and "transition" in rows[0])
    assert len(edges) == len(requests)
    assert_renders_to_svg_offline(chart)


def test_allocation_chart_draws_a_line_per_arm():
    evolution = pd.DataFrame(
        {
            "look": [0, 0, 1, 1],
            "n_patients": [0, 0, 25, 25],
            "arm": ["usual care", "arm A", "usual care", "arm A"],
            "probability": [0.5, 0.5, 0.4, 0.6],
        }
    )
    chart = ch.allocation_chart(evolution)
    spec = assert_valid_inline_spec(chart)
    assert spec["encoding"]["color"]["field"] == "arm"
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert_renders_to_svg_offline(chart)
