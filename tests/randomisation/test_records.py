"""The JSON records of randomisation (palette_core.randomisation.records): one model each.

For every record: a round trip that gives the same JSON back, every field rejected with a
wrong type and named in the problem, every missing and every unknown key named, and the
strictness the readers had before (no bool for a number, no ``1.0`` for a version, no
``datetime`` for a date). The two readers of the allocation state report the same problem in
the same words, and the log's bytes never pass through a model.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from support import DATA

from palette_core.errors import AllocationError, AllocationStateError, RecordError
from palette_core.randomisation import allocation_log as alloclog
from palette_core.randomisation import lifecycle as lc
from palette_core.randomisation.allocation import allocation_state, validate_allocation_state
from palette_core.randomisation.randomise import (
    allocation_state_from_dict,
    default_allocation_state,
    parse_secret,
    randomise,
)
from palette_core.randomisation.records import (
    AllocationStateRecord,
    ChainFields,
    OpenLogEntry,
    PlatformStateRecord,
    Record,
    RestrictedLogEntry,
    describe,
    dotted,
    indexed,
)
from palette_core.screening.patients import read_patients

ALLOCATION = {
    "version": 1,
    "effective_from": "2026-06-01",
    "source": "interim look 1",
    "traits": {"mals": {"mals_usual_care": 0.4, "mals_mtx100": 0.4, "mals_anakinra": 0.2}},
}
OPEN = {
    "v": 2,
    "sequence": 1,
    "trial": "NCT06381661",
    "instance": "d64c6d6408dc20da3915d16f4115b74a",
    "patient_id": "EX-01",
    "time": "2026-06-01T09:30:00.000000Z",
    "trait": "mals",
    "stratum": "mals",
    "stratum_sequence": 1,
    "arm": "mals_anakinra",
    "commitment": "c" * 64,
    "prev_hash": "0" * 64,
    "hash": "a" * 64,
}


@pytest.fixture(scope="module")
def restricted_entry(design, tmp_path_factory) -> dict[str, Any]:
    """A restricted entry as the randomiser writes it (every optional field present)."""
    log = tmp_path_factory.mktemp("records") / "alloc.jsonl"
    patients = read_patients(DATA / "examples" / "worked_examples.csv", design)
    secret = parse_secret("f785828ec583039506e3bb4c1407ed821a16f2c7f3c1bfd04df594d5928fd9c8")
    now = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
    randomise(
        patients.frame.iloc[0], design, default_allocation_state(design), secret, log, now=now
    )
    [entry] = alloclog.load_entries(alloclog.restricted_path_for(log))
    return entry


@pytest.fixture(scope="module")
def platform_doc(design) -> dict[str, Any]:
    """A stored platform state with a move, a closed trait's trait-rule entry and an added arm."""
    start = design.trial.study_start
    state = lc.initial_state(design)
    state = lc.open_arm(state, "hfib_octaplas", start + dt.timedelta(days=30), "supply")
    state = lc.close_arm(state, "mals_anakinra", "graduated", start + dt.timedelta(days=40), "DMC")
    new = design.arm("hfib_plasminogen").model_dump(mode="json")
    new.update(id="hfib_pandemic", name="Pandemic treatment")
    new["availability"] = {"initial_state": "planned", "opens_when": "supply"}
    on = start + dt.timedelta(days=50)
    state = lc.add_arm(state, new, on, "amendment 4", opens_on=on + dt.timedelta(days=7))
    return json.loads(lc.to_json(state))


def _problems(model: type[Record], data: Any) -> tuple:
    with pytest.raises(RecordError) as info:
        model.parse(data)
    return info.value.problems


def _wrong(value: Any) -> Any:
    """A JSON value of another type than ``value`` (and than any type its field accepts)."""
    return {"not": "a list"} if isinstance(value, list) else ["not", "a", "scalar or object"]


def _at(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _check_every_field(model: type[Record], sample: dict, objects: list[tuple]) -> None:
    """Each key of each object of ``sample``: a wrong type, a missing key, one key too many."""
    assert model.parse(sample)  # the sample itself is valid
    for path in objects:
        keys = list(_at(sample, path))
        assert keys, path
        for key in keys:
            bad = copy.deepcopy(sample)
            _at(bad, path)[key] = _wrong(_at(sample, path)[key])
            first = _problems(model, bad)[0]
            assert first.loc == (*path, key), (path, key, first)
            assert "got" in first.message, first
            bad = copy.deepcopy(sample)
            del _at(bad, path)[key]
            field = model.model_fields.get(key) if path == () else None
            if field is not None and not field.is_required():  # the randomiser's own fields
                assert model.parse(bad)
            else:
                [problem] = _problems(model, bad)
                assert problem.loc == path and f"missing key(s) [{key!r}]" in problem.message
        bad = copy.deepcopy(sample)
        _at(bad, path)["surplus"] = 1
        [problem] = _problems(model, bad)
        assert problem.loc == path
        assert "unknown key(s) ['surplus'], which do not belong" in problem.message


# ----------------------------------------------------------------------------- every field
def test_every_field_of_the_allocation_state_is_checked_and_named():
    _check_every_field(AllocationStateRecord, ALLOCATION, [()])


def test_every_field_of_an_open_log_entry_is_checked_and_named():
    _check_every_field(OpenLogEntry, OPEN, [()])


def test_every_field_of_a_restricted_log_entry_is_checked_and_named(restricted_entry):
    # the model declares exactly what the randomiser writes
    assert set(restricted_entry) == set(RestrictedLogEntry.model_fields)
    _check_every_field(RestrictedLogEntry, restricted_entry, [(), ("state",)])


def test_every_field_of_the_platform_state_is_checked_and_named(platform_doc):
    last = len(platform_doc["log"]) - 1
    _check_every_field(
        PlatformStateRecord, platform_doc, [(), ("log", last), ("arms", 0), ("added_arms", 0)]
    )


# ----------------------------------------------------------------------------- strictness
@pytest.mark.parametrize(
    ("model", "sample", "key", "value", "message"),
    [
        (AllocationStateRecord, ALLOCATION, "version", True, "expected 1, got True"),
        (AllocationStateRecord, ALLOCATION, "version", 1.0, "expected 1, got 1.0"),
        (AllocationStateRecord, ALLOCATION, "effective_from", "20260601", "ISO 8601 date"),
        (AllocationStateRecord, ALLOCATION, "effective_from", "2026-02-30", "calendar date"),
        (
            AllocationStateRecord,
            ALLOCATION,
            "effective_from",
            dt.datetime(2026, 6, 1, 12),
            "expected an ISO 8601 date (YYYY-MM-DD)",
        ),
        (AllocationStateRecord, ALLOCATION, "source", "  ", "non-empty text"),
        (AllocationStateRecord, ALLOCATION, "traits", {}, "non-empty mapping"),
        (OpenLogEntry, OPEN, "sequence", True, "positive integer"),
        (OpenLogEntry, OPEN, "sequence", 0, "positive integer, got 0"),
        (OpenLogEntry, OPEN, "stratum_sequence", 1.0, "positive integer, got 1.0"),
        (OpenLogEntry, OPEN, "v", 1, "expected log version 2, got 1"),
        (OpenLogEntry, OPEN, "instance", "A" * 32, "32 lowercase hex digits"),
        (OpenLogEntry, OPEN, "commitment", "c" * 63, "64 lowercase hex digits"),
        (OpenLogEntry, OPEN, "time", "2026-06-01T09:30:00Z", "UTC time stamp"),
        (OpenLogEntry, OPEN, "time", "2026-06-01T25:30:00.000000Z", "calendar time"),
    ],
)
def test_records_are_strict(model, sample, key, value, message):
    [problem] = _problems(model, {**sample, key: value})
    assert problem.loc == (key,) and message in problem.message, problem


@pytest.mark.parametrize("value", [True, "0.4", float("nan"), -0.1, 1.5])
def test_a_probability_is_a_finite_number_in_0_1(value):
    data = copy.deepcopy(ALLOCATION)
    data["traits"]["mals"]["mals_mtx100"] = value
    [problem] = _problems(AllocationStateRecord, data)
    assert problem.loc == ("traits", "mals", "mals_mtx100")
    assert problem.message == f"probability must be a number in [0, 1], got {value!r}"


def test_a_record_that_is_not_an_object_is_named_at_the_top_level():
    [problem] = _problems(PlatformStateRecord, [])
    assert problem == ((), "expected an object, got list")
    assert "top level" in str(RecordError("platform state", (problem,)))


def test_problems_read_as_one_line_with_their_fields():
    bad = {**OPEN, "sequence": 0, "probabilities": {"a": 1.0}}
    del bad["arm"]
    text = OpenLogEntry.problem(bad)
    assert text == (
        "field 'sequence': expected a positive integer, got 0; missing key(s) ['arm']; "
        "unknown key(s) ['probabilities'], which do not belong in this record"
    )
    assert describe(_problems(OpenLogEntry, bad)) == text
    assert OpenLogEntry.problem(OPEN) is None


def test_locations_are_written_dotted_or_indexed():
    assert dotted(("traits", "mals", "mals_anakinra")) == "traits.mals.mals_anakinra"
    assert dotted(()) is None
    assert indexed(("log", 12, "on")) == "log[12].on"
    assert indexed(("added_arms", 0)) == "added_arms[0]"
    assert indexed(()) == "top level"


# ----------------------------------------------------------------------------- allocation state
def test_the_allocation_state_round_trips_and_comes_back_in_design_order(design):
    reordered = {
        **ALLOCATION,
        "traits": {"mals": dict(reversed(ALLOCATION["traits"]["mals"].items()))},
    }
    record = AllocationStateRecord.parse(reordered).for_design(design)
    assert list(record.traits["mals"]) == ["mals_usual_care", "mals_mtx100", "mals_anakinra"]
    assert record.to_json_dict() == ALLOCATION
    assert AllocationStateRecord.parse(json.loads(json.dumps(record.to_json_dict()))) == record


def test_design_checks_name_every_problem(design):
    data = copy.deepcopy(ALLOCATION)
    data["traits"]["sepsis"] = {"x": 1.0}
    data["traits"]["mals"] = {"mals_anakinra": 0.5, "hinf_anakinra": 0.2}
    with pytest.raises(RecordError) as info:
        AllocationStateRecord.parse(data).for_design(design)
    assert [p.loc for p in info.value.problems] == [
        ("traits", "sepsis"),
        ("traits", "mals", "hinf_anakinra"),
        ("traits", "mals", "mals_usual_care"),
        ("traits", "mals"),
    ]
    messages = [p.message for p in info.value.problems]
    assert messages[0].startswith("not in traits.yaml (unknown trait)")
    assert "an arm of trait 'hyperinflammation'" in messages[1]
    assert messages[3] == "probabilities sum to 0.7, not 1 (tolerance 1e-09)"


BAD = [
    (lambda d: d.update(version=2), ("version",)),
    (lambda d: d.update(effective_from="soon"), ("effective_from",)),
    (lambda d: d.update(seed=1), ()),
    (lambda d: d["traits"].update(sepsis={"x": 1.0}), ("traits", "sepsis")),
    (lambda d: d["traits"]["mals"].update(hinf_anakinra=0.0), ("traits", "mals", "hinf_anakinra")),
    (lambda d: d["traits"]["mals"].update(mals_mtx100=True), ("traits", "mals", "mals_mtx100")),
    (lambda d: d["traits"]["mals"].update(mals_anakinra=0.3), ("traits", "mals")),
    (
        lambda d: d["traits"]["mals"].update(mals_usual_care=0.0, mals_anakinra=0.6),
        ("traits", "mals", "mals_usual_care"),
    ),
]


@pytest.mark.parametrize(("edit", "loc"), BAD)
def test_both_readers_of_the_allocation_state_give_the_same_problem(design, edit, loc):
    """The writer's check and the randomiser's reader call the one model: same words."""
    data = copy.deepcopy(ALLOCATION)
    edit(data)
    with pytest.raises(AllocationError) as written:
        validate_allocation_state(design, data)
    with pytest.raises(AllocationStateError) as read:
        allocation_state_from_dict(data, design, "state.json")
    assert written.value.message == read.value.message
    assert read.value.entry == dotted(loc)
    where = written.value.where
    if loc[:1] == ("traits",):
        assert where == "allocation state" + "".join(
            f", {kind} {name!r}" for kind, name in zip(("trait", "arm"), loc[1:], strict=False)
        )
    else:
        assert where == "allocation state" + (f", field {loc[0]!r}" if loc else "")


def test_the_writer_and_the_reader_agree_on_a_valid_state(design):
    written = allocation_state(design, ALLOCATION["traits"], dt.date(2026, 6, 1), "look 1")
    read = allocation_state_from_dict(json.loads(json.dumps(written)), design)
    assert {t: dict(p) for t, p in read.traits.items()} == written["traits"]
    assert read.effective_from == dt.date(2026, 6, 1)


# ----------------------------------------------------------------------------- platform state
def test_the_platform_state_round_trips_through_its_record(design, platform_doc):
    record = PlatformStateRecord.parse(platform_doc)
    assert record.to_json_dict() == platform_doc
    state = lc.from_json(json.dumps(platform_doc), design)
    assert json.loads(lc.to_json(state)) == platform_doc
    assert record.log[0].from_ is None and record.added_arms[0].opens_on is not None


def test_a_bad_platform_state_names_the_part_at_fault(design, platform_doc):
    bad = copy.deepcopy(platform_doc)
    bad["log"][3]["on"] = "1st May"
    with pytest.raises(lc.LifecycleStateError) as info:
        lc.from_json(json.dumps(bad), design)
    assert info.value.where == "log[3].on"
    assert info.value.message == "not an ISO 8601 date (YYYY-MM-DD): '1st May'"


# ----------------------------------------------------------------------------- log entries
def test_log_lines_are_written_as_built_not_as_the_model_would_write_them(tmp_path):
    """An integer probability stays an integer: the hashed bytes are the writer's own."""
    log = tmp_path / "alloc.jsonl"
    opened = {k: v for k, v in OPEN.items() if k not in alloclog.CHAIN_FIELDS}
    restricted = {
        "patient_id": "EX-01",
        "trait": "mals",
        "stratum": "mals",
        "arm": "mals_anakinra",
        "probabilities": {"mals_usual_care": 0, "mals_anakinra": 1},
        "seal": "5" * 64,
    }
    alloclog.append_entry(log, lambda snap: (opened, restricted))
    line = alloclog.restricted_path_for(log).read_text()
    assert '"probabilities":{"mals_anakinra":1,"mals_usual_care":0}' in line
    assert alloclog.verify_log(log).ok


def test_a_malformed_log_line_names_its_fields(tmp_path):
    log = tmp_path / "alloc.jsonl"
    opened = {k: v for k, v in OPEN.items() if k not in alloclog.CHAIN_FIELDS}
    restricted = {"patient_id": "EX-01", "trait": "mals", "stratum": "mals"}
    restricted |= {"arm": "mals_anakinra", "probabilities": {"mals_anakinra": 1.0}}
    restricted |= {"seal": "5" * 64}
    alloclog.append_entry(log, lambda snap: (opened, restricted))
    entry = json.loads(log.read_text())
    entry["stratum_sequence"] = "1"
    log.write_text(alloclog.canonical_json(entry).decode() + "\n")
    [problem] = [p for p in alloclog.verify_log(log).problems if p.kind == "malformed"]
    assert problem.line == 1
    assert problem.message == (
        "malformed entry: field 'stratum_sequence': expected a positive integer, got '1'"
    )


def test_the_chain_fields_read_either_log(restricted_entry):
    assert ChainFields.parse(restricted_entry).sequence == 1
    assert ChainFields.parse(OPEN).hash == "a" * 64
    [problem] = _problems(ChainFields, {**OPEN, "prev_hash": None})
    assert problem.loc == ("prev_hash",)
