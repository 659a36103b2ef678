"""Concealed randomisation (palette_core.randomisation.randomise) and `palette randomise` / `palette log`.

The distribution tests draw 20,000 arms with a fixed test secret and require every observed
count to lie within 4 binomial standard errors of its target, ``|n_k - N p_k| <= 4 sqrt(N p_k
(1 - p_k))`` (for one arm, a false alarm has probability about 6e-5 under a correct draw). The
secrets below are test values, never a trial's.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import DATA

from palette_core.cli import main
from palette_core.design.loader import modified_design
from palette_core.errors import (
    AllocationLogError,
    AllocationStateError,
    AlreadyRandomisedError,
    RandomisationRefusedError,
    TrialSecretError,
)
from palette_core.randomisation import allocation_log as alloclog
from palette_core.randomisation.randomise import (
    SECRET_ENV,
    SECRET_FILE_ENV,
    Allocation,
    allocation_state_from_dict,
    choose_arm,
    default_allocation_state,
    draw_uniform,
    load_allocation_state,
    load_secret,
    open_traits_now,
    parse_secret,
    randomise,
    randomise_patients,
    replay_log,
    secret_problem,
    trait_draw_seed,
)
from palette_core.screening.classify import classify_patients
from palette_core.screening.cohort import generate_cohort
from palette_core.screening.patients import read_patients, validate_patients

EXAMPLES = DATA / "examples" / "worked_examples.csv"
TEST_SECRET_HEX = "f4187609a5473f6f75a33e20fc53182ed187936767d621deabde13eab17ef0ce"
#: another test secret (a replay with it must fail)
OTHER_SECRET_HEX = "882ffe30aab3673483617ad0d51e6bf6e0db7b0ca2768c122b14bbffb0e3bba8"
#: a test log's instance value
INSTANCE = "d64c6d6408dc20da3915d16f4115b74a"
TRIAL = "NCT06381661"
NOW = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def secret():
    return parse_secret(TEST_SECRET_HEX)


@pytest.fixture(scope="module")
def examples(design):
    return read_patients(EXAMPLES, design)


@pytest.fixture(scope="module")
def raw_examples():
    return pd.read_csv(EXAMPLES, dtype=str, keep_default_na=False)


def _row(raw: pd.DataFrame, patient: str, **changes) -> dict:
    record = raw.set_index("patient_id").loc[patient].to_dict()
    record["patient_id"] = patient
    record.update(changes)
    return record


def _state(design, traits: dict, effective_from: str = "2026-05-01"):
    data = {"version": 1, "effective_from": effective_from, "source": "test", "traits": traits}
    return allocation_state_from_dict(data, design, "state.json")


def _within_4_se(counts: dict[str, int], probs: dict[str, float], n: int) -> None:
    for arm, p in probs.items():
        se = math.sqrt(n * p * (1 - p))
        assert abs(counts.get(arm, 0) - n * p) <= 4 * se, (arm, counts.get(arm, 0), n * p, se)


# ----------------------------------------------------------------------------- the secret
def test_a_secret_is_hex_or_raw_binary_bytes():
    key = bytes.fromhex(TEST_SECRET_HEX)
    ref = parse_secret(TEST_SECRET_HEX).mac("m")
    assert parse_secret(f"  {TEST_SECRET_HEX.upper()}\n").mac("m") == ref
    assert parse_secret(TEST_SECRET_HEX.encode()).mac("m") == ref
    raw = b"\xff" + key[1:]  # not UTF-8: a binary key file, taken as it is
    assert parse_secret(raw).mac("m") == parse_secret(raw.hex()).mac("m")


WEAK_SECRETS = [  # issue 13: weak secrets were accepted
    ("", "empty"),
    ("0" * 32, "repeats a pattern of 1 byte"),
    ("password12345678", "must be hex digits"),
    ("correct horse battery staple", "must be hex digits"),
    ("70617373776f72643132333435363738", "arithmetic progression"),  # "password12345678"
    ("00112233445566778899aabbccddeeff", "arithmetic progression"),
    ("deadbeef" * 4, "repeats a pattern of 4 byte"),
    ("deadbeefdeadbeefcafebabecafebabe", "distinct byte values"),
    ("636f727265637420686f7273652062617474657279", "printable text"),
    ("f785828ec583039506e3bb4c1407ed", "15 bytes; at least 16"),
]


@pytest.mark.parametrize(("value", "message"), WEAK_SECRETS)
def test_a_short_or_low_entropy_secret_is_refused(value, message):
    with pytest.raises(TrialSecretError, match=message):
        parse_secret(value, "test")


def test_the_secret_rule_accepts_keys_from_a_random_generator():
    rng = random.Random(20260501)  # fixed, so the test is reproducible
    for n in (16, 32, 64):
        assert all(secret_problem(rng.randbytes(n)) is None for _ in range(3000)), n


def test_secret_new_writes_256_bits_owner_only_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "trial.secret"
    assert main(["secret", "new", str(path)]) == 0
    text = path.read_text()
    out = capsys.readouterr().out
    assert text.strip() not in out and "256 random bits" in out
    assert len(text.strip()) == 64 and secret_problem(bytes.fromhex(text)) is None
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_secret(path, environ={}).mac("m") == parse_secret(text).mac("m")
    assert main(["secret", "new", str(path)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert path.read_text() == text
    assert main(["secret", "new", str(tmp_path / "other")]) == 0
    assert (tmp_path / "other").read_text() != text


def test_the_secret_never_prints(secret):
    assert repr(secret) == "TrialSecret(<hidden>)" and TEST_SECRET_HEX not in str(secret)


def test_the_secret_comes_from_a_file_or_the_environment(tmp_path):
    f = tmp_path / "secret"
    f.write_text(TEST_SECRET_HEX + "\n")
    ref = parse_secret(TEST_SECRET_HEX).mac("m")
    assert load_secret(f, environ={}).mac("m") == ref
    assert load_secret(environ={SECRET_FILE_ENV: str(f)}).mac("m") == ref
    assert load_secret(environ={SECRET_ENV: TEST_SECRET_HEX}).mac("m") == ref
    with pytest.raises(TrialSecretError, match="no trial secret"):
        load_secret(environ={})
    with pytest.raises(TrialSecretError, match="set only one"):
        load_secret(environ={SECRET_ENV: TEST_SECRET_HEX, SECRET_FILE_ENV: str(f)})
    with pytest.raises(TrialSecretError, match="cannot read"):
        load_secret(tmp_path / "absent")


# ----------------------------------------------------------------------------- the draw
def test_the_uniform_has_53_bits_and_depends_on_every_input(secret):
    u = draw_uniform(secret, TRIAL, INSTANCE, 7, "mals")
    assert 0 <= u < 1 and (u * 2**53).is_integer()
    assert draw_uniform(secret, TRIAL, INSTANCE, 7, "mals") == u
    others = {
        draw_uniform(secret, TRIAL, INSTANCE, 8, "mals"),
        draw_uniform(secret, TRIAL, INSTANCE, 7, "mals;age_group=adult"),
        draw_uniform(secret, "NCT00000000", INSTANCE, 7, "mals"),
        draw_uniform(secret, TRIAL, "0" * 32, 7, "mals"),
        draw_uniform(parse_secret(OTHER_SECRET_HEX), TRIAL, INSTANCE, 7, "mals"),
    }
    assert u not in others and len(others) == 5


@pytest.mark.parametrize(
    "probs",
    [
        {"uc": 0.35, "a": 0.25, "b": 0.2, "c": 0.1, "d": 0.1},
        {"uc": 1 / 3, "a": 1 / 3, "b": 1 / 3},
        {"uc": 0.5, "a": 0.0, "b": 0.5},
    ],
)
def test_observed_frequencies_match_the_target_within_4_standard_errors(secret, probs):
    n = 20_000
    arms, p = list(probs), list(probs.values())
    counts: dict[str, int] = {}
    for seq in range(1, n + 1):
        arm = choose_arm(draw_uniform(secret, TRIAL, INSTANCE, seq, "hyperinflammation"), arms, p)
        counts[arm] = counts.get(arm, 0) + 1
    _within_4_se(counts, probs, n)
    assert counts.get("a", 0) > 0 or probs["a"] == 0
    if probs.get("a") == 0:
        assert "a" not in counts


def test_a_wrong_secret_gives_an_unrelated_sequence(secret):
    other = parse_secret(OTHER_SECRET_HEX)
    arms, p = ["uc", "a"], [0.5, 0.5]

    def arm(key, s):
        return choose_arm(draw_uniform(key, TRIAL, INSTANCE, s, "mals"), arms, p)

    mine = [arm(secret, s) for s in range(1, 2001)]
    theirs = [arm(other, s) for s in range(1, 2001)]
    agree = sum(a == b for a, b in zip(mine, theirs, strict=True))
    assert abs(agree - 1000) <= 4 * math.sqrt(2000 * 0.25)  # chance agreement only


@given(
    probs=st.lists(st.integers(0, 20), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
    u=st.floats(0, 1, exclude_max=True),
)
def test_the_arm_drawn_is_the_first_whose_cumulative_probability_exceeds_u(probs, u):
    total = sum(probs)
    p = [w / total for w in probs]
    arms = [f"arm{i}" for i in range(len(p))]
    arm = choose_arm(u, arms, p)
    k = arms.index(arm)
    assert p[k] > 0
    assert math.fsum(p[:k]) <= u + 1e-12
    assert u < math.fsum(p[: k + 1]) or k == max(i for i, x in enumerate(p) if x > 0)


# ----------------------------------------------------------------------------- the state
def test_the_default_state_is_equal_among_usual_care_and_the_arms_open_at_the_start(design):
    state = default_allocation_state(design)
    assert set(state.traits) == set(design.trait_ids)
    hfib = dict(state.probabilities("hypofibrinolysis", design))
    assert hfib == {
        "hfib_usual_care": 1 / 3,
        "hfib_sivelestat": 1 / 3,
        "hfib_octaplas": 0.0,  # planned, not open
        "hfib_plasminogen": 1 / 3,
    }
    assert list(hfib)[0] == "hfib_usual_care"  # design order, usual care first
    assert state.effective_from == design.trial.study_start
    hinf = dict(state.probabilities("hyperinflammation", design))
    assert hinf["hinf_tocilizumab"] == 0.0  # suspended: RF-02 blocks its dose for every age
    assert set(hinf.values()) == {0.0, 1 / 4}
    assert dict(state.probabilities("corticosteroid_response", design))["cort_hc_fc"] == 0.0


def test_a_state_file_is_read_with_its_hash(design, tmp_path):
    path = tmp_path / "state.json"
    data = {
        "version": 1,
        "effective_from": "2026-09-01",
        "source": "look 3",
        "traits": {"mals": {"mals_usual_care": 0.5, "mals_mtx100": 0.3, "mals_anakinra": 0.2}},
    }
    path.write_text(json.dumps(data))
    state = load_allocation_state(path, design)
    assert state.traits["mals"]["mals_mtx100"] == 0.3 and state.file == str(path)
    import hashlib

    assert state.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


BAD_STATES = [
    (lambda d: d["traits"].update(sepsis={"x": 1.0}), "traits.sepsis", "unknown trait"),
    (
        lambda d: d["traits"]["mals"].update(mals_nothing=0.0),
        "traits.mals.mals_nothing",
        "unknown arm",
    ),
    (
        lambda d: d["traits"]["mals"].update(hinf_anakinra=0.0),
        "traits.mals.hinf_anakinra",
        "arm of trait 'hyperinflammation'",
    ),
    (
        lambda d: d["traits"]["mals"].update(mals_mtx100=-0.1, mals_anakinra=0.6),
        "traits.mals.mals_mtx100",
        "in [0, 1]",
    ),
    (lambda d: d["traits"]["mals"].update(mals_anakinra=0.3), "traits.mals", "sum to 1.1"),
    (
        lambda d: d["traits"]["mals"].update(mals_usual_care=0.0, mals_anakinra=0.6),
        "traits.mals.mals_usual_care",
        "usual care",
    ),
    (lambda d: d["traits"]["mals"].update(mals_mtx100=True), "traits.mals.mals_mtx100", "number"),
    (lambda d: d.update(version=2), "version", "expected 1, got 2"),
    (lambda d: d.update(effective_from="soon"), "effective_from", "ISO 8601 date"),
    (lambda d: d.update(extra=1), None, "unknown key"),
]


@pytest.mark.parametrize(("edit", "entry", "message"), BAD_STATES)
def test_an_invalid_state_file_is_a_typed_error_naming_file_and_entry(
    design, tmp_path, edit, entry, message
):
    data = {
        "version": 1,
        "effective_from": "2026-05-01",
        "source": "test",
        "traits": {"mals": {"mals_usual_care": 0.4, "mals_mtx100": 0.4, "mals_anakinra": 0.2}},
    }
    edit(data)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AllocationStateError, match="state.json") as err:
        load_allocation_state(path, design)
    assert err.value.entry == entry and message in str(err.value)


def test_a_state_file_that_is_not_json_is_a_typed_error(design, tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{version: 1")
    with pytest.raises(AllocationStateError, match="not valid JSON"):
        load_allocation_state(path, design)


# ----------------------------------------------------------------------------- randomise
def test_randomise_returns_only_what_the_site_may_see_and_logs_both_sides(
    design, examples, secret, tmp_path
):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    alloc = randomise(examples.frame.iloc[0], design, state, secret, log, now=NOW)
    assert set(Allocation.__dataclass_fields__) == {
        "sequence",
        "patient_id",
        "time",
        "trait",
        "arm",
    }
    assert (alloc.sequence, alloc.patient_id, alloc.trait) == (1, "EX-01", "hypercoagulation")
    assert alloc.arm in {a.id for a in design.arms_of("hypercoagulation")}
    assert alloc.time == "2026-06-01T09:30:00.000000Z"
    [opened] = alloclog.load_entries(log)
    assert opened["arm"] == alloc.arm and opened["stratum_sequence"] == 1
    open_text = log.read_text() + alloclog.head_path_for(log).read_text()
    assert "probabilit" not in open_text and state.sha256 not in open_text
    assert TEST_SECRET_HEX not in open_text
    [restricted] = alloclog.load_entries(alloclog.restricted_path_for(log))
    assert restricted["probabilities"]["hcoag_usual_care"] == 0.2
    assert restricted["state"]["sha256"] == state.sha256
    assert TEST_SECRET_HEX not in alloclog.restricted_path_for(log).read_text()
    assert alloclog.verify_log(log).ok


def test_a_raw_record_a_validated_row_and_a_one_row_table_randomise_alike(
    design, raw_examples, examples, secret, tmp_path
):
    state = default_allocation_state(design)
    arms = []
    for i, patient in enumerate(
        [
            _row(raw_examples, "EX-02"),
            examples.frame.iloc[1],
            validate_patients(raw_examples.iloc[[1]], design),
        ]
    ):
        log = tmp_path / f"{i}.jsonl"
        arms.append(randomise(patient, design, state, secret, log, now=NOW, instance=INSTANCE))
    assert len({(a.trait, a.arm) for a in arms}) == 1


def test_the_multi_trait_draw_is_seeded_from_the_secret(design, examples, secret, tmp_path):
    state = default_allocation_state(design)
    result = randomise_patients(examples, design, state, secret, tmp_path / "a.jsonl", now=NOW)
    instance = alloclog.load_entries(tmp_path / "a.jsonl")[0]["instance"]
    seed = trait_draw_seed(secret, TRIAL, instance)
    expected = classify_patients(
        examples, design, seed=seed, open_traits=open_traits_now(design, state, NOW.date())
    ).set_index("patient_id")
    for a in result.allocations:
        assert a.trait == expected.loc[a.patient_id, "assigned_trait"]
    assert trait_draw_seed(parse_secret(OTHER_SECRET_HEX), TRIAL, instance) != seed
    assert trait_draw_seed(secret, TRIAL, INSTANCE) != seed


def _eligible_without_trait(raw):
    return _row(raw, "EX-01", patient_id="NT", inr="1.0", platelets="250", platelet_fall_24h="0")


REFUSALS = [
    ("not_eligible", lambda raw: _row(raw, "EX-04"), None, "ineligible: "),
    ("no_trait", _eligible_without_trait, None, "no trait assigned: no positive trait"),
    ("invalid", lambda raw: _row(raw, "EX-01", inr="abc"), None, "invalid record: inr"),
    (
        "trait_not_randomising",
        lambda raw: _row(raw, "EX-01"),
        {"mals": {"mals_usual_care": 1.0}},
        "hypercoagulation is not randomising",
    ),
    (
        "no_open_arm",
        lambda raw: _row(raw, "EX-01"),
        {"hypercoagulation": {"hcoag_usual_care": 1.0}},
        "no open experimental arm",
    ),
]


@pytest.mark.parametrize(("name", "record", "traits", "message"), REFUSALS)
def test_a_patient_who_cannot_be_randomised_is_refused_and_nothing_is_logged(
    design, raw_examples, secret, tmp_path, name, record, traits, message
):
    state = default_allocation_state(design) if traits is None else _state(design, traits)
    log = tmp_path / "alloc.jsonl"
    with pytest.raises(RandomisationRefusedError, match="not randomised") as err:
        randomise(record(raw_examples), design, state, secret, log, now=NOW)
    assert message in err.value.reason
    assert not log.exists() and not alloclog.restricted_path_for(log).exists()


def test_an_allocation_state_not_yet_in_effect_is_refused(design, raw_examples, secret, tmp_path):
    state = default_allocation_state(design)
    before = dt.datetime(2026, 4, 30, 23, 0, tzinfo=dt.UTC)
    with pytest.raises(RandomisationRefusedError, match="takes effect on 2026-05-01"):
        randomise(
            _row(raw_examples, "EX-01"), design, state, secret, tmp_path / "a.jsonl", now=before
        )


def test_a_patient_is_randomised_once(design, examples, secret, tmp_path):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    randomise(examples.frame.iloc[0], design, state, secret, log, now=NOW)
    before = log.read_bytes()
    with pytest.raises(AlreadyRandomisedError, match="sequence 1"):
        randomise(examples.frame.iloc[0], design, state, secret, log, now=NOW)
    assert log.read_bytes() == before


def test_a_batch_randomises_eligible_rows_and_reports_the_others(
    design, examples, secret, tmp_path
):
    result = randomise_patients(
        examples, design, default_allocation_state(design), secret, tmp_path / "a.jsonl", now=NOW
    )
    assert [a.patient_id for a in result.allocations] == ["EX-01", "EX-02", "EX-03", "EX-05"]
    assert [(r.row, r.patient_id, r.code) for r in result.refused] == [
        (4, "EX-04", "not_eligible"),
        (6, "EX-06", "not_eligible"),
        (7, "EX-07", "not_eligible"),
    ]
    assert [a.sequence for a in result.allocations] == [1, 2, 3, 4]


def test_stratified_sequences_count_per_stratum_and_a_log_keeps_its_stratification(
    design, raw_examples, secret, tmp_path
):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    records = [  # EX-01: adult, hypercoagulation only; EX-05: child
        _row(raw_examples, "EX-01", patient_id="H1", site_id="S01"),
        _row(raw_examples, "EX-01", patient_id="H2", site_id="S01"),
        _row(raw_examples, "EX-01", patient_id="H3", site_id="S02"),
        _row(raw_examples, "EX-05", patient_id="C1", site_id="S01"),
    ]
    for record in records:
        randomise(record, design, state, secret, log, stratify=("age_group", "site"), now=NOW)
    strata = [(e["stratum"], e["stratum_sequence"]) for e in alloclog.load_entries(log)]
    assert strata[:3] == [
        ("hypercoagulation;age_group=adult;site=S01", 1),
        ("hypercoagulation;age_group=adult;site=S01", 2),
        ("hypercoagulation;age_group=adult;site=S02", 1),
    ]
    assert strata[3][0].endswith(";age_group=child;site=S01") and strata[3][1] == 1
    with pytest.raises(AllocationLogError, match="one stratification"):
        randomise(_row(raw_examples, "EX-01"), design, state, secret, log, now=NOW)
    with pytest.raises(RandomisationRefusedError, match="site_id"):
        randomise(
            _row(raw_examples, "EX-02", site_id=""), design, state, secret, log,
            stratify=("age_group", "site"), now=NOW,
        )  # fmt: skip


def test_the_stratum_sequence_drives_the_draw(design, raw_examples, secret, tmp_path):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    for i in range(4):
        randomise(
            _row(raw_examples, "EX-01", patient_id=f"H{i}"), design, state, secret, log, now=NOW
        )
    arms = [a.id for a in design.arms_of("hypercoagulation")]
    for e in alloclog.load_entries(log):
        u = draw_uniform(secret, TRIAL, e["instance"], e["stratum_sequence"], "hypercoagulation")
        assert e["arm"] == choose_arm(u, arms, [0.2] * 5)
    assert [e["stratum_sequence"] for e in alloclog.load_entries(log)] == [1, 2, 3, 4]


def test_an_arm_not_open_to_the_patients_age_group_is_never_drawn(secret, tmp_path):
    raw_examples = pd.read_csv(EXAMPLES, dtype=str, keep_default_na=False)  # MALS child

    def adults_only(data):
        next(a for a in data["arms"] if a["id"] == "mals_anakinra")["age_groups"] = ["adult"]

    def unblock_mtx100(data):  # MTx.100 for children is suspended (RF-18): not this test's point
        rf18 = next(f for f in data["findings"] if f["id"] == "RF-18")
        rf18["blocks_dose"] = [b for b in rf18["blocks_dose"] if b["arm"] != "mals_mtx100"]

    with (
        modified_design(None, "registry_findings.yaml", unblock_mtx100) as unblocked,
        modified_design(
            unblocked.root, "arms.yaml", adults_only, data_root=unblocked.data_root
        ) as design,
    ):
        state = default_allocation_state(design)
        log = tmp_path / "alloc.jsonl"
        child = _row(raw_examples, "EX-05")
        children = pd.DataFrame([{**child, "patient_id": f"C{i}"} for i in range(40)])
        result = randomise_patients(children, design, state, secret, log, now=NOW)
        seen = {a.arm for a in result.allocations if a.trait == "mals"}
        assert seen and "mals_anakinra" not in seen
        mals = [
            r
            for r in alloclog.load_entries(alloclog.restricted_path_for(log))
            if r["trait"] == "mals"
        ]
        assert mals[0]["probabilities"] == {
            "mals_usual_care": 0.5,
            "mals_mtx100": 0.5,
            "mals_anakinra": 0.0,
        }
        assert mals[0]["excluded_for_age_group"] == ["mals_anakinra"]


def test_the_multi_trait_draw_is_among_the_positive_traits_open_to_the_patient(
    design, raw_examples, secret, tmp_path
):
    """EX-05, a child, is positive for hyperinflammation, MALS and hypoinflammation; only
    hypoinflammation has an arm open to children (the others' doses are suspended for them,
    e.g. MTx.100 and anakinra in MALS), so every such child is
    randomised in hypoinflammation, never refused, and the log records what was drawn among."""
    state = default_allocation_state(design)
    open_now = open_traits_now(design, state, NOW.date())
    assert "mals" not in open_now["child"] and "hypoinflammation" in open_now["child"]
    assert "mals" in open_now["adult"]
    child = _row(raw_examples, "EX-05")
    children = pd.DataFrame([{**child, "patient_id": f"C{i}"} for i in range(30)])
    log = tmp_path / "alloc.jsonl"
    result = randomise_patients(children, design, state, secret, log, now=NOW)
    assert not result.refused and len(result.allocations) == 30
    assert {a.trait for a in result.allocations} == {"hypoinflammation"}
    entries = alloclog.load_entries(alloclog.restricted_path_for(log))
    assert {e["traits_drawn_among"] for e in entries} == {"hypoinflammation"}
    assert all("mals" in e["positive_traits"] for e in entries)
    assert all("mals" in e["assignment_rule"].split("closed to the patient: ")[1] for e in entries)
    replayed = replay_log(log, secret, design)
    assert replayed.ok and all(x.trait_ok for x in replayed.entries)
    # screening alone (no allocation state) still draws among every positive trait
    seed = trait_draw_seed(secret, TRIAL, alloclog.load_entries(log)[0]["instance"])
    plain = classify_patients(read_patients(EXAMPLES, design), design, seed=seed)
    row = plain.set_index("patient_id").loc["EX-05"]
    assert row["traits_drawn_among"] == row["positive_traits"]


# ----------------------------------------------------------------------------- replay
@pytest.fixture(scope="module")
def cohort_log(design, secret, tmp_path_factory):
    """A log of a synthetic cohort under an unequal allocation state."""
    log = tmp_path_factory.mktemp("replay") / "alloc.jsonl"
    cohort = validate_patients(generate_cohort(design, n=160, seed=5), design)
    traits = {
        t.id: {a.id: p for a, p in zip(design.arms_of(t.id), weights, strict=False)}
        for t, weights in zip(
            design.traits,
            [
                (0.3, 0.0, 0.3, 0.2, 0.2),  # tocilizumab suspended (RF-02)
                (0.5, 0.25, 0.25),
                (0.4, 0.4, 0.2),
                (0.25, 0.25, 0.5, 0.0),  # hydrocortisone + fludrocortisone suspended (RF-01)
                (0.2, 0.2, 0.2, 0.2, 0.2),
                (0.5, 0.3, 0.0, 0.2),
            ],
            strict=True,
        )
    }
    state = _state(design, traits)
    result = randomise_patients(cohort, design, state, secret, log, now=NOW)
    assert result.error is None and len(result.allocations) >= 30
    return log, result


def test_replay_with_the_secret_recomputes_every_draw(design, secret, cohort_log):
    log, result = cohort_log
    report = replay_log(log, secret, design)
    assert report.ok and report.secret_matches, report.lines()
    assert len(report.entries) == len(result.allocations)
    assert [e.replayed_arm for e in report.entries] == [a.arm for a in result.allocations]
    assert all(e.trait_ok for e in report.entries)


def test_replay_with_a_wrong_secret_fails_clearly(design, cohort_log):
    log, _ = cohort_log
    report = replay_log(log, parse_secret(OTHER_SECRET_HEX), design)
    assert not report.ok and not report.secret_matches
    assert report.problems[0].startswith("the secret does not match this log: 0 of")


def test_replay_without_a_secret_is_a_typed_error(design, cohort_log):
    log, _ = cohort_log
    with pytest.raises(TrialSecretError, match="replay needs the trial secret"):
        replay_log(log, None, design)


def _rewritten(src, dest, edit):
    """Copy the logs of ``src`` to ``dest`` with ``edit(opened, restricted)`` applied, rebuilt as
    someone with write access but without the secret could: renumbered, rechained, relinked and
    re-anchored, every file of mode 0600, so that the chain and the anchors are consistent."""
    opened = alloclog.load_entries(src)
    restricted = alloclog.load_entries(alloclog.restricted_path_for(src))
    edit(opened, restricted)
    for i, (o, r) in enumerate(zip(opened, restricted, strict=True), start=1):
        o["sequence"] = r["sequence"] = i
    prev = alloclog.GENESIS
    for e in opened:
        e["prev_hash"] = prev
        e["hash"] = prev = alloclog.entry_hash(e)
    prev = alloclog.GENESIS
    for r, e in zip(restricted, opened, strict=True):
        r["open_hash"], r["prev_hash"] = e["hash"], prev
        r["hash"] = prev = alloclog.entry_hash(r)
    for path, entries in ((dest, opened), (alloclog.restricted_path_for(dest), restricted)):
        path.write_bytes(b"".join(alloclog.canonical_json(e) + b"\n" for e in entries))
        head = {"sequence": len(entries), "hash": entries[-1]["hash"], "bytes": path.stat().st_size}
        alloclog.head_path_for(path).write_text(json.dumps(head))
        for f in (path, alloclog.head_path_for(path)):
            os.chmod(f, 0o600)
    return dest


def test_replay_catches_an_arm_changed_with_a_rebuilt_chain(design, secret, cohort_log, tmp_path):
    src, _ = cohort_log
    k = 3
    opened = alloclog.load_entries(src)
    restricted = alloclog.load_entries(alloclog.restricted_path_for(src))
    drawn = restricted[k]["arm"]
    other = next(a for a, p in restricted[k]["probabilities"].items() if p > 0 and a != drawn)

    def change_arm(opened, restricted):
        opened[k]["arm"] = restricted[k]["arm"] = other

    log = _rewritten(src, tmp_path / "alloc.jsonl", change_arm)
    assert alloclog.verify_log(log).ok
    report = replay_log(log, secret, design)
    assert not report.ok
    # the commitment covers the chain link, so every entry from the rewritten one on fails
    assert [e.commitment_ok for e in report.entries] == [i < k for i in range(len(opened))]
    assert report.problems[0] == (
        f"{log}, line {k + 1}: sequence {k + 1}: the commitment does not match the secret "
        "(entry altered, renumbered or moved, or written with another key)"
    )
    assert (
        f"{alloclog.restricted_path_for(log)}, sequence {k + 1}: the seal does not match the "
        "secret (restricted entry altered, or written with another key)"
    ) in report.problems
    assert report.problems[-1] == (
        f"{log}, line {k + 1}: sequence {k + 1}: logged arm {other}, the draw gives {drawn}"
    )


def _later_arm_changed(restricted: list[dict], k: int) -> None:
    """Rewrite entry k's probabilities consistently (state, age-group restriction, sum 1) so
    that the replayed arm does not change: mass moves between two arms after the drawn one."""
    r = restricted[k]
    order = r["arm_order"]
    after = [a for a in order[order.index(r["arm"]) + 1 :] if r["probabilities"][a] > 0]
    a, b = after[0], after[1]
    for key in ("probabilities", "state_probabilities"):
        p = r[key]
        p[a], p[b] = p[a] + p[b] - 0.01, 0.01


def _find(cond):
    def pick(opened: list[dict]) -> int:
        return next(i for i, e in enumerate(opened) if cond(opened, i))

    return pick


def _repeat_stratum_number(opened, restricted):
    i = _find(lambda o, i: o[i]["stratum_sequence"] > 1)(opened)
    opened[i]["stratum_sequence"] -= 1


def _swap_patients(opened, restricted):
    for d in (opened, restricted):
        d[2]["patient_id"], d[5]["patient_id"] = d[5]["patient_id"], d[2]["patient_id"]


def _duplicate_patient(opened, restricted):
    opened[6]["patient_id"] = restricted[6]["patient_id"] = opened[1]["patient_id"]


def _time_backwards(opened, restricted):
    opened[7]["time"] = "2026-05-31T09:30:00.000000Z"


def _delete_one(opened, restricted):
    del opened[4], restricted[4]


def _rewrite_probabilities(opened, restricted):
    k = _find(
        lambda o, i: (
            len([p for p in restricted[i]["probabilities"].values() if p > 0])
            - 1
            - restricted[i]["arm_order"].index(restricted[i]["arm"])
            >= 2
        )
    )(opened)
    _later_arm_changed(restricted, k)


# issue 13: each of these rewrites passed both verify and replay
REWRITES = [
    ("deleted_and_renumbered", _delete_one, False),
    ("patient_ids_swapped", _swap_patients, True),
    ("stratum_number_repeated", _repeat_stratum_number, False),
    ("patient_id_duplicated", _duplicate_patient, False),
    ("time_backwards", _time_backwards, False),
    ("restricted_probabilities_rewritten", _rewrite_probabilities, True),
]


@pytest.mark.parametrize(("name", "edit", "verify_ok"), REWRITES, ids=[r[0] for r in REWRITES])
def test_a_rewrite_without_the_secret_fails_verify_or_replay(
    design, secret, cohort_log, tmp_path, name, edit, verify_ok
):
    src, _ = cohort_log
    log = _rewritten(src, tmp_path / "alloc.jsonl", edit)
    verification = alloclog.verify_log(log)
    assert verification.ok is verify_ok, verification.lines()
    replayed = replay_log(log, secret, design)
    assert not replayed.ok
    if verify_ok:  # only the keyed digests show it
        assert any("does not match the secret" in p for p in replayed.problems), replayed.lines()


def test_probabilities_rewritten_consistently_differ_from_the_state_the_entry_names(
    design, examples, secret, tmp_path
):
    src = tmp_path / "src.jsonl"
    # a fixed log instance: its draws put an arm with two later open arms in the log (with a
    # random instance, some logs have none and there is nothing to rewrite)
    instance = "0f5c2a9e7b3d4186a2c9e05d7f1b3a68"
    state = default_allocation_state(design)
    randomise_patients(examples, design, state, secret, src, now=NOW, instance=instance)

    def edit(opened, restricted):
        k = next(
            i
            for i, r in enumerate(restricted)
            if len([p for p in r["probabilities"].values() if p > 0])
            - r["arm_order"].index(r["arm"])
            >= 3
        )
        _later_arm_changed(restricted, k)

    log = _rewritten(src, tmp_path / "alloc.jsonl", edit)
    report = replay_log(log, secret, design)
    assert any("differ from the allocation state <default allocation state>" in p
               for p in report.problems), report.lines()  # fmt: skip


def test_a_restricted_log_deleted_with_its_anchor_fails_verify_and_replay(
    design, secret, cohort_log, tmp_path
):
    src, _ = cohort_log
    log = _rewritten(src, tmp_path / "alloc.jsonl", lambda o, r: None)
    rpath = alloclog.restricted_path_for(log)
    rpath.unlink()
    alloclog.head_path_for(rpath).unlink()
    assert not alloclog.verify_log(log).ok
    with pytest.raises(AllocationLogError, match="restricted log not found"):
        replay_log(log, secret, design)


def test_replay_with_a_given_trait_seed_uses_the_logged_seed(design, examples, secret, tmp_path):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    randomise_patients(examples, design, state, secret, log, seed_for_trait_draw=11, now=NOW)
    assert {r["trait_seed"] for r in alloclog.load_entries(alloclog.restricted_path_for(log))} == {
        11
    }
    assert replay_log(log, secret, design).ok


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def env_secret(monkeypatch):
    monkeypatch.delenv(SECRET_FILE_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, TEST_SECRET_HEX)


def test_cli_randomise_shows_the_site_the_arm_only(env_secret, tmp_path, capsys):
    log = tmp_path / "alloc.jsonl"
    assert main(["randomise", str(EXAMPLES), "--log", str(log)]) == 1  # 3 rows ineligible
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "sequence\tpatient_id\ttrait\tarm\tstatus"
    assert [line.split("\t")[:2] for line in lines[1:]] == [
        ["1", "EX-01"],
        ["2", "EX-02"],
        ["3", "EX-03"],
        ["4", "EX-05"],
    ]
    assert all(len(line.split("\t")) == 5 for line in lines)
    assert {line.split("\t")[4] for line in lines[1:]} == {"randomised"}
    assert "probab" not in out and "0.2" not in out
    assert "row 4 (line 5) (patient EX-04): not randomised: ineligible" in err
    assert "randomised 4 of 7 rows" in err
    assert main(["log", "verify", str(log)]) == 0
    assert main(["log", "replay", str(log)]) == 0
    out, _ = capsys.readouterr()
    assert "4 of 4 draws replayed and match" in out


def test_cli_randomise_without_a_secret_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.delenv(SECRET_FILE_ENV, raising=False)
    log = tmp_path / "alloc.jsonl"
    assert main(["randomise", str(EXAMPLES), "--log", str(log)]) == 2
    assert "no trial secret" in capsys.readouterr().err
    assert not log.exists()


def test_cli_randomise_with_an_invalid_state_file_names_it(env_secret, tmp_path, capsys):
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "effective_from": "2026-05-01",
                "source": "x",
                "traits": {"mals": {"mals_usual_care": 0.5}},
            }
        )
    )
    args = [
        "randomise",
        str(EXAMPLES),
        "--log",
        str(tmp_path / "a.jsonl"),
        "--allocation",
        str(state),
    ]
    assert main(args) == 2
    assert "state.json, entry 'traits.mals': probabilities sum to 0.5" in capsys.readouterr().err


def test_cli_log_verify_lists_problems_with_line_numbers(env_secret, tmp_path, capsys):
    log = tmp_path / "alloc.jsonl"
    main(["randomise", str(EXAMPLES), "--log", str(log)])
    lines = log.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"EX-02"', '"EX-99"')
    log.write_text("".join(lines))
    capsys.readouterr()
    assert main(["log", "verify", str(log)]) == 1
    out = capsys.readouterr().out
    assert "[edited]" in out and "line 2" in out
    assert main(["log", "verify", str(log), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and {"kind": "edited", "line": 2} in [
        {"kind": p["kind"], "line": p["line"]} for p in report["problems"]
    ]


def test_cli_log_recover_head_and_replay_with_a_wrong_secret(
    env_secret, tmp_path, capsys, monkeypatch
):
    log = tmp_path / "alloc.jsonl"
    main(["randomise", str(EXAMPLES), "--log", str(log)])
    partial = '{"arm":"hcoag_heparin_therapeutic","patient_id":"EX-09'
    with log.open("a") as f:
        f.write(partial)
    capsys.readouterr()
    assert main(["log", "verify", str(log)]) == 1
    assert main(["log", "recover", str(log)]) == 0
    out = capsys.readouterr().out
    assert "removed the incomplete last line 5" in out and f"{len(partial)} bytes" in out
    # issue 13: recover printed the removed partial line, which shows the next patient's arm
    assert "hcoag" not in out and "EX-09" not in out
    assert main(["log", "head", str(log)]) == 0
    digest = capsys.readouterr().out
    anchor = digest.split(" anchor ")[1].split()[0]
    assert main(["log", "verify", str(log), "--anchor", anchor]) == 0
    secret_file = tmp_path / "wrong"
    secret_file.write_text(OTHER_SECRET_HEX)
    monkeypatch.delenv(SECRET_ENV)
    capsys.readouterr()
    assert main(["log", "replay", str(log), "--secret-file", str(secret_file)]) == 1
    assert "the secret does not match this log" in capsys.readouterr().out
    assert main(["log", "replay", str(log)]) == 2
    assert "no trial secret" in capsys.readouterr().err


# ----------------------------------------------------------------------------- issue 13
def _many(raw, n: int) -> pd.DataFrame:
    """``n`` adults positive for hypercoagulation only (EX-01 with other ids)."""
    return pd.DataFrame([_row(raw, "EX-01", patient_id=f"H{i:03d}") for i in range(n)])


def test_no_two_logs_share_a_sequence_of_draws(design, raw_examples, secret, tmp_path):
    """Issue 13: the draws depended only on (secret, trial, stratum, number), so a test log or a
    restarted log with the trial secret replayed the trial's sequence."""
    state = default_allocation_state(design)
    patients = _many(raw_examples, 60)
    runs = {}
    for name in ("trial", "test", "restarted"):
        log = tmp_path / f"{name}.jsonl"
        result = randomise_patients(patients, design, state, secret, log, now=NOW)
        runs[name] = [a.arm for a in result.allocations]
        assert len(runs[name]) == 60
    instances = {
        name: alloclog.load_entries(tmp_path / f"{name}.jsonl")[0]["instance"] for name in runs
    }
    assert len(set(instances.values())) == 3
    for other in ("test", "restarted"):
        agree = sum(a == b for a, b in zip(runs["trial"], runs[other], strict=True))
        assert agree <= 30, (other, agree)  # 5 arms: chance agreement is about 12 of 60
    # a log started with a given instance reproduces its draws (a demonstration)
    again = tmp_path / "again.jsonl"
    result = randomise_patients(
        patients, design, state, secret, again, now=NOW, instance=instances["trial"]
    )
    assert [a.arm for a in result.allocations] == runs["trial"]


def test_an_existing_log_keeps_its_instance(design, raw_examples, secret, tmp_path):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    randomise(_row(raw_examples, "EX-01"), design, state, secret, log, now=NOW, instance=INSTANCE)
    with pytest.raises(AllocationLogError, match="an instance is chosen once"):
        randomise(
            _row(raw_examples, "EX-02"), design, state, secret, log, now=NOW, instance="a" * 32
        )
    with pytest.raises(AllocationLogError, match="lowercase hex digits"):
        randomise(_row(raw_examples, "EX-02"), design, state, secret, tmp_path / "b", instance="x")
    second = randomise(_row(raw_examples, "EX-02"), design, state, secret, log, now=NOW)
    assert second.sequence == 2


def test_a_clock_behind_the_log_is_refused_and_nothing_is_logged(
    design, raw_examples, secret, tmp_path
):
    log = tmp_path / "alloc.jsonl"
    state = default_allocation_state(design)
    randomise(_row(raw_examples, "EX-01"), design, state, secret, log, now=NOW)
    before = log.read_bytes()
    earlier = NOW - dt.timedelta(seconds=1)
    with pytest.raises(AllocationLogError, match="correct the clock"):
        randomise(_row(raw_examples, "EX-02"), design, state, secret, log, now=earlier)
    assert log.read_bytes() == before


class _Killed(BaseException):
    """Stands for SIGKILL after the commit point (nothing after it runs)."""


def test_after_a_crash_randomise_shows_the_committed_arms(
    env_secret, design, tmp_path, capsys, monkeypatch
):
    """Issue 13: after a killed run the site could not see the arms that were committed."""
    log = tmp_path / "alloc.jsonl"
    real = alloclog._write_head
    calls = {"n": 0}

    def die_after_the_second_commit(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # restricted anchor of the second patient: its open line is written
            raise _Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(alloclog, "_write_head", die_after_the_second_commit)
    with pytest.raises(_Killed):
        main(["randomise", str(EXAMPLES), "--log", str(log)])
    monkeypatch.setattr(alloclog, "_write_head", real)
    committed = alloclog.load_entries(log)
    assert [e["patient_id"] for e in committed] == ["EX-01", "EX-02"]
    capsys.readouterr()  # the site saw nothing: the run was killed before printing
    assert main(["log", "recover", str(log)]) == 0
    capsys.readouterr()
    assert main(["randomise", str(EXAMPLES), "--log", str(log)]) == 1
    out, err = capsys.readouterr()
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    assert rows[:2] == [
        ["1", "EX-01", committed[0]["trait"], committed[0]["arm"], "randomised earlier"],
        ["2", "EX-02", committed[1]["trait"], committed[1]["arm"], "randomised earlier"],
    ]
    assert [r[1] for r in rows[2:]] == ["EX-03", "EX-05"] and rows[2][4] == "randomised"
    assert "EX-01): not randomised: already randomised (sequence 1" in err


def test_cli_refuses_a_restricted_log_that_is_the_open_log(env_secret, tmp_path, capsys):
    """Issue 13: --restricted-log naming the open log put the probabilities in the open log
    and randomised a patient first."""
    log = tmp_path / "alloc.jsonl"
    args = ["randomise", str(EXAMPLES), "--log", str(log), "--restricted-log", str(log)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot be the open log" in err and len(err.strip().splitlines()) == 1
    assert not log.exists()
    main(["randomise", str(EXAMPLES), "--log", str(log)])
    before = log.read_bytes()
    capsys.readouterr()
    for cmd in (["log", "verify"], ["log", "recover"], ["log", "head"]):
        assert main([*cmd, str(log), "--restricted-log", str(log)]) == 2, cmd
        assert "cannot be the open log" in capsys.readouterr().err
    assert log.read_bytes() == before


def test_cli_randomise_into_a_missing_folder_is_one_typed_line(env_secret, tmp_path, capsys):
    """Issue 13: a missing folder ended in a FileNotFoundError traceback."""
    log = tmp_path / "absent" / "open.jsonl"
    assert main(["randomise", str(EXAMPLES), "--log", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("palette: ") and "does not exist" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_a_line_nested_100000_deep_is_a_typed_error(env_secret, tmp_path, capsys):
    """Issue 13: a JSON line nested 100,000 deep gave RecursionError in `log verify`,
    `recover`, `head` and in `randomise`."""
    log = tmp_path / "alloc.jsonl"
    main(["randomise", str(EXAMPLES), "--log", str(log)])
    with log.open("ab") as f:
        f.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    capsys.readouterr()
    assert main(["log", "verify", str(log)]) == 1
    assert "nested more than" in capsys.readouterr().out
    assert main(["log", "recover", str(log)]) == 1
    assert main(["log", "head", str(log)]) == 2
    assert main(["randomise", str(EXAMPLES), "--log", str(log)]) == 2
    err = capsys.readouterr().err
    assert "does not verify" in err and "Traceback" not in err
    state = tmp_path / "state.json"
    state.write_text("[" * 100_000 + "]" * 100_000)
    args = ["randomise", str(EXAMPLES), "--log", str(tmp_path / "b.jsonl")]
    assert main([*args, "--allocation", str(state)]) == 2
    assert "nested too deep" in capsys.readouterr().err


def test_cli_replay_checks_probabilities_against_a_given_state_file(
    env_secret, design, tmp_path, capsys
):
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "effective_from": "2026-05-01",
                "source": "look 1",
                "traits": {
                    t.id: {a.id: 1 / len(arms) for a in arms}
                    for t in design.traits
                    if (arms := [a for a in design.arms_of(t.id) if not design.is_suspended(a.id)])
                },
            }
        )
    )
    log = tmp_path / "alloc.jsonl"
    main(["randomise", str(EXAMPLES), "--log", str(log), "--allocation", str(state)])
    capsys.readouterr()
    assert main(["log", "replay", str(log)]) == 0
    assert "not compared with their allocation state" in capsys.readouterr().out
    assert main(["log", "replay", str(log), "--allocation", str(state)]) == 0
    assert "not compared" not in capsys.readouterr().out
