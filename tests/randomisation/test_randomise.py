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
    parse_secret,
    randomise,
    randomise_patients,
    replay_log,
    trait_draw_seed,
)
from palette_core.screening.classify import classify_patients
from palette_core.screening.cohort import generate_cohort
from palette_core.screening.patients import read_patients, validate_patients

EXAMPLES = DATA / "examples" / "worked_examples.csv"
TEST_SECRET_HEX = "00112233445566778899aabbccddeeff0123456789abcdef"
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
def test_a_secret_of_hex_digits_is_hex_and_other_text_is_utf8():
    assert parse_secret(TEST_SECRET_HEX).mac("m") == parse_secret(
        bytes.fromhex(TEST_SECRET_HEX)
    ).mac("m")
    text = parse_secret("correct horse battery staple")
    assert text.mac("m") == parse_secret(b"correct horse battery staple").mac("m")
    assert parse_secret("  correct horse battery staple\n").mac("m") == text.mac("m")


@pytest.mark.parametrize("value", ["", "short", "00112233445566778899aabbccddee"])
def test_a_missing_or_short_secret_is_a_typed_error(value):
    with pytest.raises(TrialSecretError, match="empty|at least 16"):
        parse_secret(value)


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
    u = draw_uniform(secret, TRIAL, 7, "mals")
    assert 0 <= u < 1 and (u * 2**53).is_integer()
    assert draw_uniform(secret, TRIAL, 7, "mals") == u
    others = {
        draw_uniform(secret, TRIAL, 8, "mals"),
        draw_uniform(secret, TRIAL, 7, "mals;age_group=adult"),
        draw_uniform(secret, "NCT00000000", 7, "mals"),
        draw_uniform(parse_secret("another test secret, 32 bytes ..."), TRIAL, 7, "mals"),
    }
    assert u not in others and len(others) == 4


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
        arm = choose_arm(draw_uniform(secret, TRIAL, seq, "hyperinflammation"), arms, p)
        counts[arm] = counts.get(arm, 0) + 1
    _within_4_se(counts, probs, n)
    assert counts.get("a", 0) > 0 or probs["a"] == 0
    if probs.get("a") == 0:
        assert "a" not in counts


def test_a_wrong_secret_gives_an_unrelated_sequence(secret):
    other = parse_secret("a different secret of enough length")
    arms, p = ["uc", "a"], [0.5, 0.5]
    mine = [choose_arm(draw_uniform(secret, TRIAL, s, "mals"), arms, p) for s in range(1, 2001)]
    theirs = [choose_arm(draw_uniform(other, TRIAL, s, "mals"), arms, p) for s in range(1, 2001)]
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
        arms.append(randomise(patient, design, state, secret, tmp_path / f"{i}.jsonl", now=NOW))
    assert len({(a.trait, a.arm) for a in arms}) == 1


def test_the_multi_trait_draw_is_seeded_from_the_secret(design, examples, secret, tmp_path):
    state = default_allocation_state(design)
    result = randomise_patients(examples, design, state, secret, tmp_path / "a.jsonl", now=NOW)
    seed = trait_draw_seed(secret, TRIAL)
    expected = classify_patients(examples, design, seed=seed).set_index("patient_id")
    for a in result.allocations:
        assert a.trait == expected.loc[a.patient_id, "assigned_trait"]
    assert trait_draw_seed(parse_secret("another secret of enough length"), TRIAL) != seed


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
        u = draw_uniform(secret, TRIAL, e["stratum_sequence"], "hypercoagulation")
        assert e["arm"] == choose_arm(u, arms, [0.2] * 5)
    assert [e["stratum_sequence"] for e in alloclog.load_entries(log)] == [1, 2, 3, 4]


def test_an_arm_not_open_to_the_patients_age_group_is_never_drawn(raw_examples, secret, tmp_path):
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
    report = replay_log(log, parse_secret("not the trial secret, but long"), design)
    assert not report.ok and not report.secret_matches
    assert report.problems[0].startswith("the secret does not match this log: 0 of")


def test_replay_without_a_secret_is_a_typed_error(design, cohort_log):
    log, _ = cohort_log
    with pytest.raises(TrialSecretError, match="replay needs the trial secret"):
        replay_log(log, None, design)


def test_replay_catches_an_arm_changed_with_a_rebuilt_chain(design, secret, cohort_log, tmp_path):
    src, _ = cohort_log
    log = tmp_path / "alloc.jsonl"
    rpath = alloclog.restricted_path_for(log)
    opened = alloclog.load_entries(src)
    restricted = alloclog.load_entries(alloclog.restricted_path_for(src))
    k = 3
    others = [
        a for a, p in restricted[k]["probabilities"].items() if p > 0 and a != opened[k]["arm"]
    ]
    opened[k]["arm"] = restricted[k]["arm"] = others[0]
    prev = alloclog.GENESIS
    for e in opened:  # someone with write access rebuilds a consistent chain
        e["prev_hash"] = prev
        e["hash"] = prev = alloclog.entry_hash(e)
    prev = alloclog.GENESIS
    for r, e in zip(restricted, opened, strict=True):
        r["open_hash"], r["prev_hash"] = e["hash"], prev
        r["hash"] = prev = alloclog.entry_hash(r)
    for path, entries in ((log, opened), (rpath, restricted)):
        path.write_bytes(b"".join(alloclog.canonical_json(e) + b"\n" for e in entries))
        head = {"sequence": len(entries), "hash": entries[-1]["hash"], "bytes": path.stat().st_size}
        alloclog.head_path_for(path).write_text(json.dumps(head))
    assert alloclog.verify_log(log).ok
    report = replay_log(log, secret, design)
    assert not report.ok
    assert report.problems == (
        f"{log}, line {k + 1}: sequence {k + 1}: logged arm {others[0]}, the draw gives "
        f"{report.entries[k].replayed_arm}",
    )


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
    assert lines[0] == "sequence\tpatient_id\ttrait\tarm"
    assert [line.split("\t")[:2] for line in lines[1:]] == [
        ["1", "EX-01"],
        ["2", "EX-02"],
        ["3", "EX-03"],
        ["4", "EX-05"],
    ]
    assert all(len(line.split("\t")) == 4 for line in lines)
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
    with log.open("a") as f:
        f.write('{"arm":"hc')
    capsys.readouterr()
    assert main(["log", "verify", str(log)]) == 1
    assert main(["log", "recover", str(log)]) == 0
    out = capsys.readouterr().out
    assert "removed the incomplete last line 5" in out and '\'{"arm":"hc\'' in out
    assert main(["log", "head", str(log)]) == 0
    digest = capsys.readouterr().out
    anchor = digest.split(" anchor ")[1].split()[0]
    assert main(["log", "verify", str(log), "--anchor", anchor]) == 0
    secret_file = tmp_path / "wrong"
    secret_file.write_text("a wrong secret of enough length")
    monkeypatch.delenv(SECRET_ENV)
    capsys.readouterr()
    assert main(["log", "replay", str(log), "--secret-file", str(secret_file)]) == 1
    assert "the secret does not match this log" in capsys.readouterr().out
    assert main(["log", "replay", str(log)]) == 2
    assert "no trial secret" in capsys.readouterr().err
