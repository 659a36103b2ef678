"""Concealed randomisation within a trait, and its replay by those who hold the secret.

The trial is open-label and this code is public, so concealment rests on a **trial secret**
(a key of at least 16 bytes) held outside the repository by the independent statistician and
given to the randomisation service at run time:

* the environment variable ``PALETTE_TRIAL_SECRET`` (hex digits, or any other text), or
* a file named by ``--secret-file`` or by ``PALETTE_TRIAL_SECRET_FILE`` (its text, stripped of
  surrounding whitespace, read the same way; a file that is not UTF-8 is taken as raw bytes).

A value made only of an even number of hex digits is decoded as hex; anything else is its UTF-8
bytes. The secret never enters the repository, the open log, the restricted log or an error
message (:class:`TrialSecret` does not print it).

The draw
--------
Patients randomised in the same **stratum** are numbered 1, 2, ... in the order they are
logged (``stratum_sequence``). By default the stratum is the trait, i.e. one sequence per
trait; with ``stratify=("age_group",)``, ``("site",)`` or both, the stratum is
``"<trait>;age_group=<id>;site=<id>"`` and each stratum has its own sequence. A log is
stratified one way from its first entry on (a change is refused). The uniform of the draw is::

    u = int(HMAC-SHA256(secret, f"{trial_id}|{stratum_sequence}|{stratum}")[:8]) >> 11) / 2**53

(53 bits, in [0, 1)), and the arm is the first arm, in design order (usual care first), whose
cumulative probability exceeds ``u``. The probabilities are those in force for the trait (the
allocation state, see below), restricted to the arms open to the patient's age group and
renormalised. Knowing the code, the log and the probabilities, nobody without the secret can
predict ``u`` for the next sequence number (HMAC-SHA256 is a pseudo-random function).

The open log holds ``commitment = sha256(HMAC-SHA256(secret, "commit|" + draw_input))``: with
the secret, :func:`replay_log` recomputes it and checks that this key produced this entry;
without it, the commitment says nothing about ``u``.

The multi-trait draw (which positive trait a patient is randomised in) uses
:func:`palette_core.screening.classify.classify_patients` with a seed derived from the secret
(:func:`trait_draw_seed`), so it is concealed and replayable too. Its concealment is weaker
than the arm's: the seed has 64 bits and the draw uses numpy's ``SeedSequence``, which is not
a cryptographic function (enough against guessing, not a proof against cryptanalysis).

The allocation state
--------------------
The probabilities in force come from a JSON file written by the independent statistician::

    {"version": 1, "effective_from": "2026-05-01", "source": "...",
     "traits": {"<trait_id>": {"<arm_id>": <probability>, ...}, ...}}

over usual care and the open arms of each trait (closed arms absent or 0, summing to 1); a
trait absent from the file is not randomising. Without a file, :func:`default_allocation_state`
gives equal allocation among usual care and the arms whose ``availability.initial_state`` is
``open``. The probabilities and the file's SHA-256 go to the restricted log only; the site sees
sequence, patient id, time, trait and arm.

Examples
--------
>>> secret = parse_secret("an example secret, never a real one")
>>> u = draw_uniform(secret, "NCT06381661", 1, "mals")
>>> 0 <= u < 1, choose_arm(u, ("a", "b"), (0.5, 0.5)) in ("a", "b")
(True, True)
>>> secret
TrialSecret(<hidden>)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd

from palette_core.design.loader import Design
from palette_core.errors import (
    AllocationLogError,
    AllocationStateError,
    AlreadyRandomisedError,
    RandomisationRefusedError,
    RecordError,
    TrialSecretError,
)
from palette_core.isotime import utc_timestamp
from palette_core.randomisation import allocation_log as alloclog
from palette_core.randomisation import records
from palette_core.randomisation.records import STATE_VERSION, AllocationStateRecord
from palette_core.screening.classify import classify_patients
from palette_core.screening.patients import PatientValidation, validate_patients
from palette_core.screening.traits import POSITIVE, assign_trait, trait_columns

SECRET_ENV = "PALETTE_TRIAL_SECRET"
SECRET_FILE_ENV = "PALETTE_TRIAL_SECRET_FILE"
MIN_SECRET_BYTES = 16
#: Factors a stratum may use, in the order they appear in its name.
STRATIFY_FACTORS = ("age_group", "site")
_SITE_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")

Policy = Literal["default", "sensitivity"]


# ----------------------------------------------------------------------------- the secret
class TrialSecret:
    """The trial secret: a key of at least 16 bytes that never prints."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes, source: str = "secret"):
        if not isinstance(key, bytes):
            raise TrialSecretError(f"{source}: the secret must be bytes")
        if len(key) < MIN_SECRET_BYTES:
            raise TrialSecretError(
                f"{source}: the trial secret has {len(key)} bytes; at least {MIN_SECRET_BYTES} "
                "are needed"
            )
        self._key = key

    def mac(self, message: str) -> bytes:
        """HMAC-SHA256 of a UTF-8 message under the secret."""
        return hmac.digest(self._key, message.encode("utf-8"), "sha256")

    def __repr__(self) -> str:
        return "TrialSecret(<hidden>)"

    def __reduce__(self) -> Any:  # never pickled into a worker's or a report's state
        raise TypeError("a TrialSecret cannot be pickled")


def parse_secret(value: str | bytes, source: str = "secret") -> TrialSecret:
    """Read a secret: an even number of hex digits is hex, other text its UTF-8 bytes.

    Surrounding whitespace is ignored. Bytes that are not UTF-8 are taken as they are.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return TrialSecret(value, source)
    text = value.strip()
    if not text:
        raise TrialSecretError(f"{source}: the trial secret is empty")
    key = bytes.fromhex(text) if _HEX.fullmatch(text) else text.encode("utf-8")
    return TrialSecret(key, source)


def load_secret(
    secret_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> TrialSecret:
    """The trial secret from ``secret_file``, else ``$PALETTE_TRIAL_SECRET_FILE``, else
    ``$PALETTE_TRIAL_SECRET``.

    Raises
    ------
    TrialSecretError
        No source is given, both environment variables are set, the file cannot be read, or the
        secret is shorter than 16 bytes.
    """
    env = os.environ if environ is None else environ
    if secret_file is None:
        named, value = env.get(SECRET_FILE_ENV), env.get(SECRET_ENV)
        if named and value:
            raise TrialSecretError(f"both {SECRET_ENV} and {SECRET_FILE_ENV} are set; set only one")
        if value:
            return parse_secret(value, f"${SECRET_ENV}")
        if not named:
            raise TrialSecretError(
                f"no trial secret: set {SECRET_ENV} or {SECRET_FILE_ENV}, or pass --secret-file"
            )
        secret_file = named
    path = Path(secret_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrialSecretError(f"{path}: cannot read the secret file ({exc.strerror})") from None
    return parse_secret(data, str(path))


# ----------------------------------------------------------------------------- the draw
def draw_input(trial_id: str, stratum_sequence: int, stratum: str) -> str:
    """The message of the draw: ``f"{trial_id}|{stratum_sequence}|{stratum}"``."""
    return f"{trial_id}|{stratum_sequence}|{stratum}"


def draw_uniform(secret: TrialSecret, trial_id: str, stratum_sequence: int, stratum: str) -> float:
    """The concealed uniform of a draw: 53 bits of HMAC-SHA256, in [0, 1)."""
    mac = secret.mac(draw_input(trial_id, stratum_sequence, stratum))
    return (int.from_bytes(mac[:8], "big") >> 11) / 2.0**53


def commitment(secret: TrialSecret, trial_id: str, stratum_sequence: int, stratum: str) -> str:
    """``sha256(HMAC-SHA256(secret, "commit|" + draw_input))`` in hex: logged in the open log."""
    mac = secret.mac("commit|" + draw_input(trial_id, stratum_sequence, stratum))
    return hashlib.sha256(mac).hexdigest()


def choose_arm(u: float, arms: Sequence[str], probabilities: Sequence[float]) -> str:
    """The first arm whose cumulative probability exceeds ``u`` (an arm of probability 0 never).

    Where rounding leaves the total a hair below ``u``, the last arm of positive probability.
    """
    if len(arms) != len(probabilities) or not arms:
        raise ValueError("arms and probabilities must be non-empty and of equal length")
    if not 0 <= u < 1:
        raise ValueError(f"u must lie in [0, 1), got {u!r}")
    total = 0.0
    for arm, p in zip(arms, probabilities, strict=True):
        total += p
        if p > 0 and total > u:
            return arm
    return next(a for a, p in zip(reversed(arms), reversed(probabilities), strict=True) if p > 0)


def trait_draw_seed(secret: TrialSecret, trial_id: str) -> int:
    """The seed of the multi-trait draw, derived from the secret (64 bits)."""
    return int.from_bytes(secret.mac(f"{trial_id}|multi-trait-draw")[:8], "big")


def stratum_of(
    trait: str, age_group: str | None = None, site: str | None = None, stratify: Sequence[str] = ()
) -> str:
    """The stratum's name: the trait, then ``;age_group=...`` and ``;site=...`` if stratified."""
    unknown = [f for f in stratify if f not in STRATIFY_FACTORS]
    if unknown:
        raise ValueError(f"cannot stratify by {unknown}; choose among {list(STRATIFY_FACTORS)}")
    parts = [trait]
    for factor, value in (("age_group", age_group), ("site", site)):
        if factor in stratify:
            parts.append(f"{factor}={value}")
    return ";".join(parts)


def _factors(stratum: str) -> tuple[str, ...]:
    return tuple(p.split("=", 1)[0] for p in stratum.split(";")[1:])


# ----------------------------------------------------------------------------- the state
@dataclass(frozen=True)
class AllocationState:
    """The allocation probabilities in force, validated against the design.

    ``traits`` maps a trait to ``{arm: probability}`` (usual care and the open arms; an arm
    absent has probability 0). ``sha256`` is the SHA-256 of the state file's bytes (of the
    canonical JSON for the default state); ``file`` names it.
    """

    version: int
    effective_from: dt.date
    source: str
    traits: Mapping[str, Mapping[str, float]]
    sha256: str
    file: str

    def probabilities(self, trait: str, design: Design) -> tuple[tuple[str, float], ...]:
        """``(arm, probability)`` for every arm of the trait, in design order (control first)."""
        probs = self.traits[trait]
        return tuple((a.id, float(probs.get(a.id, 0.0))) for a in design.arms_of(trait))


def allocation_state_from_dict(
    data: Any, design: Design, file: str = "<allocation state>", sha256: str | None = None
) -> AllocationState:
    """Validate a parsed allocation state against the design.

    The record is :class:`~palette_core.randomisation.records.AllocationStateRecord`, checked by
    :meth:`~palette_core.randomisation.records.AllocationStateRecord.for_design` (the checks
    of :func:`palette_core.randomisation.allocation.validate_allocation_state`, which writes it).
    ``sha256`` defaults to the SHA-256 of the canonical JSON of ``data`` as given.

    Raises
    ------
    AllocationStateError
        Naming the file and the entry (``traits.<trait>.<arm>``; none for a missing or unknown
        key at the top level): unknown key, trait or arm, an arm of another trait, a probability
        that is not a number in [0, 1], probabilities not summing to 1, or usual care without a
        positive probability.
    """
    try:
        record = AllocationStateRecord.parse(data).for_design(design)
    except RecordError as exc:
        first = exc.problems[0]
        more = len(exc.problems) - 1
        raise AllocationStateError(
            file,
            records.dotted(first.loc),
            first.message + (f" (and {more} more problem(s))" if more else ""),
        ) from None
    if sha256 is None:
        sha256 = hashlib.sha256(alloclog.canonical_json(data)).hexdigest()
    return AllocationState(
        version=record.version,
        effective_from=record.effective_from,
        source=record.source,
        traits=MappingProxyType({t: MappingProxyType(dict(p)) for t, p in record.traits.items()}),
        sha256=sha256,
        file=file,
    )


def load_allocation_state(path: str | Path, design: Design) -> AllocationState:
    """Read and validate an allocation state file (see :func:`allocation_state_from_dict`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AllocationStateError(str(path), None, f"cannot read ({exc.strerror})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AllocationStateError(str(path), None, f"not valid JSON ({exc})") from None
    return allocation_state_from_dict(data, design, str(path), hashlib.sha256(raw).hexdigest())


def default_allocation_state(design: Design) -> AllocationState:
    """Equal allocation among usual care and the arms open at the start, in every trait."""
    traits = {}
    for t in design.traits:
        arms = [a.id for a in design.arms_of(t.id) if a.availability.initial_state == "open"]
        traits[t.id] = {a: 1.0 / len(arms) for a in arms}
    data = {
        "version": STATE_VERSION,
        "effective_from": design.trial.study_start.isoformat(),
        "source": "default: equal allocation among usual care and the arms open at the start "
        "(data/design/arms.yaml, availability.initial_state)",
        "traits": traits,
    }
    return allocation_state_from_dict(data, design, "<default allocation state>")


# ----------------------------------------------------------------------------- randomise
@dataclass(frozen=True)
class Allocation:
    """What the site sees: the sequence, the patient, the time, the trait and the arm."""

    sequence: int
    patient_id: str
    time: str
    trait: str
    arm: str


@dataclass(frozen=True)
class Refusal:
    """A row that was not randomised (nothing logged), with the reason."""

    row: int
    patient_id: str
    reason: str
    code: str = "refused"


@dataclass(frozen=True)
class RandomisationResult:
    """The outcome of :func:`randomise_patients`: allocations and refusals, in row order.

    ``error`` is set when the log could not be appended to (it does not verify, its lock was
    not obtained, it belongs to another trial or stratification): the rows from ``stopped_at``
    on were not attempted; the allocations before it stand.
    """

    allocations: tuple[Allocation, ...]
    refused: tuple[Refusal, ...]
    error: AllocationLogError | None = None
    stopped_at: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.refused


def _validation(patient: Any, design: Design) -> PatientValidation:
    if isinstance(patient, PatientValidation):
        return patient
    if isinstance(patient, pd.DataFrame):
        return validate_patients(patient, design, source="records")
    if isinstance(patient, pd.Series):
        row = {k: v for k, v in patient.to_dict().items() if k in design.patient_fields}
        return validate_patients(pd.DataFrame([row]), design, source="record")
    if isinstance(patient, Mapping):
        return validate_patients(pd.DataFrame([dict(patient)]), design, source="record")
    raise TypeError(
        "patient must be a record (mapping), a validated row (Series), a DataFrame or a "
        f"PatientValidation, got {type(patient).__name__}"
    )


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) or str(value) == "" else str(value)


@dataclass(frozen=True)
class _Plan:
    """Everything decided before the lock: the patient's trait, stratum and probabilities."""

    row: int
    patient_id: str
    trait: str
    stratum: str
    age_group: str
    arms: tuple[str, ...]
    probabilities: tuple[float, ...]
    state_probabilities: dict[str, float]
    excluded: tuple[str, ...]
    positive_traits: str
    assignment_rule: str


def _plan(
    row: pd.Series,
    number: int,
    design: Design,
    state: AllocationState,
    stratify: Sequence[str],
    today: dt.date,
) -> _Plan | Refusal:
    pid = _text(row["patient_id"]) or ""

    def refuse(code: str, reason: str) -> Refusal:
        return Refusal(number, pid, reason, code)

    if row["record_status"] != "valid":
        return refuse("invalid_record", f"invalid record: {row['record_errors']}")
    if not pid:
        return refuse("invalid_record", "no patient id")
    if row["eligible"] != "eligible":
        why = _text(row.get("eligibility_reasons")) or ""
        return refuse("not_eligible", f"{row['eligible']}" + (f": {why}" if why else ""))
    trait = _text(row["assigned_trait"])
    if trait is None:
        undecided = _text(row.get("indeterminate_traits"))
        more = f" (indeterminate: {undecided})" if undecided else ""
        return refuse("no_trait", f"no trait assigned: {row['assignment_rule']}{more}")
    if trait not in state.traits:
        return refuse(
            "trait_not_randomising",
            f"trait {trait} is not randomising (no allocation in force in {state.file})",
        )
    if today < state.effective_from:
        return refuse(
            "state_not_in_effect",
            f"the allocation state {state.file} takes effect on {state.effective_from}, "
            f"after today ({today})",
        )
    age_group = str(row["age_group"])
    probs = state.probabilities(trait, design)
    allowed = [age_group in design.arm_age_groups(design.arm(a)) for a, _ in probs]
    excluded = tuple(a for (a, p), ok in zip(probs, allowed, strict=True) if p > 0 and not ok)
    kept = [p if ok else 0.0 for (_, p), ok in zip(probs, allowed, strict=True)]
    control = design.control_of(trait).id
    experimental = [a for (a, _), p in zip(probs, kept, strict=True) if p > 0 and a != control]
    if not experimental:
        return refuse(
            "no_open_arm", f"trait {trait} has no open experimental arm for age group {age_group}"
        )
    total = math.fsum(kept)
    site = _text(row.get("site_id"))
    if "site" in stratify and (site is None or not _SITE_ID.fullmatch(site)):
        return refuse(
            "no_site", f"stratified by site, but site_id is {site!r} (letters, digits, _ . -)"
        )
    return _Plan(
        row=number,
        patient_id=pid,
        trait=trait,
        stratum=stratum_of(trait, age_group, site, stratify),
        age_group=age_group,
        arms=tuple(a for a, _ in probs),
        probabilities=tuple(p / total for p in kept),
        state_probabilities={a: p for a, p in probs if p > 0},
        excluded=excluded,
        positive_traits=str(row["positive_traits"]),
        assignment_rule=str(row["assignment_rule"]),
    )


def _builder(
    plan: _Plan,
    design: Design,
    state: AllocationState,
    secret: TrialSecret,
    stratify: Sequence[str],
    when: str,
    policy: str,
    trait_seed: int | None,
    log_path: Path,
) -> Callable[[alloclog.LogSnapshot], tuple[dict[str, Any], dict[str, Any]]]:
    trial = design.trial.registry_id

    def build(snap: alloclog.LogSnapshot) -> tuple[dict[str, Any], dict[str, Any]]:
        for e in snap.open_entries:
            if e["patient_id"] == plan.patient_id:
                raise AlreadyRandomisedError(
                    plan.patient_id,
                    f"already randomised (sequence {e['sequence']}, {e['time']}): a patient is "
                    "randomised once",
                    plan.row,
                )
        if snap.open_entries:
            first = snap.open_entries[0]
            if first["trial"] != trial:
                raise AllocationLogError(
                    str(log_path), f"the log belongs to trial {first['trial']!r}, not {trial!r}"
                )
            if _factors(first["stratum"]) != tuple(f for f in STRATIFY_FACTORS if f in stratify):
                raise AllocationLogError(
                    str(log_path),
                    f"the log is stratified by {list(_factors(first['stratum'])) or 'trait only'}; "
                    f"this call by {list(stratify) or 'trait only'}: a log keeps one stratification",
                )
        seq = 1 + sum(e["stratum"] == plan.stratum for e in snap.open_entries)
        u = draw_uniform(secret, trial, seq, plan.stratum)
        arm = choose_arm(u, plan.arms, plan.probabilities)
        opened = {
            "trial": trial,
            "patient_id": plan.patient_id,
            "time": when,
            "trait": plan.trait,
            "stratum": plan.stratum,
            "stratum_sequence": seq,
            "arm": arm,
            "commitment": commitment(secret, trial, seq, plan.stratum),
        }
        restricted = {
            "patient_id": plan.patient_id,
            "trait": plan.trait,
            "stratum": plan.stratum,
            "arm": arm,
            "age_group": plan.age_group,
            "arm_order": list(plan.arms),
            "probabilities": dict(zip(plan.arms, plan.probabilities, strict=True)),
            "state_probabilities": plan.state_probabilities,
            "excluded_for_age_group": list(plan.excluded),
            "state": {
                "file": state.file,
                "sha256": state.sha256,
                "source": state.source,
                "effective_from": state.effective_from.isoformat(),
            },
            "positive_traits": plan.positive_traits,
            "assignment_rule": plan.assignment_rule,
            "assignment_policy": policy,
            "trait_seed": "derived from the secret" if trait_seed is None else trait_seed,
            "design_hash": design.design_hash,
        }
        return opened, restricted

    return build


def randomise_patients(
    patients: Any,
    design: Design,
    state: AllocationState,
    secret: TrialSecret,
    log_path: str | Path,
    *,
    seed_for_trait_draw: int | None = None,
    stratify: Sequence[str] = (),
    policy: Policy = "default",
    restricted: str | Path | None = None,
    now: dt.datetime | None = None,
    lock_timeout: float = 30.0,
) -> RandomisationResult:
    """Classify and randomise every row; refused rows are reported and not logged.

    Each row is classified (eligibility, traits, assigned trait), then appended to the open
    and restricted logs under the lock, one row at a time, in row order. See
    :func:`randomise` for the parameters. If the log cannot be appended to, the run stops and
    ``result.error`` says why (the allocations made before stand): check it.
    """
    if not isinstance(secret, TrialSecret):
        raise TrialSecretError("randomisation needs the trial secret (a TrialSecret)")
    stratify = tuple(stratify)
    stratum_of("-", stratify=stratify)  # rejects an unknown factor before anything is done
    log_path = Path(log_path)
    trial = design.trial.registry_id
    seed = trait_draw_seed(secret, trial) if seed_for_trait_draw is None else seed_for_trait_draw
    validation = _validation(patients, design)
    result = classify_patients(validation, design, seed=seed, policy=policy)
    result["site_id"] = validation.frame["site_id"]  # for stratification by site
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    allocations: list[Allocation] = []
    refused: list[Refusal] = []
    for number, (_, row) in enumerate(result.iterrows(), start=1):
        when_dt = (now if now is not None else dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        when = utc_timestamp(when_dt)
        plan = _plan(row, number, design, state, stratify, when_dt.date())
        if isinstance(plan, Refusal):
            refused.append(plan)
            continue
        build = _builder(
            plan, design, state, secret, stratify, when, policy, seed_for_trait_draw, log_path
        )
        try:
            entry, _ = alloclog.append_entry(
                log_path, build, restricted=restricted, lock_timeout=lock_timeout
            )
        except AlreadyRandomisedError as exc:
            refused.append(Refusal(number, plan.patient_id, exc.reason, "already_randomised"))
            continue
        except AllocationLogError as exc:
            return RandomisationResult(tuple(allocations), tuple(refused), exc, number)
        allocations.append(
            Allocation(
                entry["sequence"], entry["patient_id"], entry["time"], entry["trait"], entry["arm"]
            )
        )
    return RandomisationResult(tuple(allocations), tuple(refused))


def randomise(
    patient: Any,
    design: Design,
    state: AllocationState,
    secret: TrialSecret,
    log_path: str | Path,
    *,
    seed_for_trait_draw: int | None = None,
    stratify: Sequence[str] = (),
    policy: Policy = "default",
    restricted: str | Path | None = None,
    now: dt.datetime | None = None,
    lock_timeout: float = 30.0,
) -> Allocation:
    """Randomise one patient: classify, assign the trait, draw the arm, log it.

    Parameters
    ----------
    patient
        A raw record (mapping of contract fields), a validated row (``Series``), a one-row
        ``DataFrame`` or a one-row :class:`~palette_core.screening.patients.PatientValidation`.
    design
        The trial design.
    state
        The allocation probabilities in force (:func:`load_allocation_state` or
        :func:`default_allocation_state`).
    secret
        The trial secret (:func:`load_secret`).
    log_path
        The open log; the restricted log is ``restricted`` or
        :func:`~palette_core.randomisation.allocation_log.restricted_path_for` of it.
    seed_for_trait_draw
        Seed of the multi-trait draw. ``None`` (the default, and the only concealed choice)
        derives it from the secret; an integer (for simulations and tests) is written to the
        restricted log so that a replay can use it.
    stratify
        ``()`` (one sequence per trait), or any of ``"age_group"``, ``"site"``.
    policy
        The multi-trait policy (``"default"`` random, ``"sensitivity"`` priority order).
    now
        The time of randomisation (timezone-aware); default the current UTC time.

    Returns
    -------
    Allocation
        What the site may see: sequence, patient id, time, trait, arm (not the probabilities).

    Raises
    ------
    LogIntegrityError, LogLockError, AllocationLogError
        The log cannot be appended to.
    RandomisationRefusedError
        Invalid record, not eligible, no trait, trait not randomising or without an open arm
        for the patient's age group, allocation not yet in effect; nothing is logged.
    AlreadyRandomisedError
        The patient id is already in the log.
    """
    result = randomise_patients(
        patient,
        design,
        state,
        secret,
        log_path,
        seed_for_trait_draw=seed_for_trait_draw,
        stratify=stratify,
        policy=policy,
        restricted=restricted,
        now=now,
        lock_timeout=lock_timeout,
    )
    if result.error is None and len(result.allocations) + len(result.refused) != 1:
        raise ValueError(
            f"randomise takes one patient, got {len(result.allocations) + len(result.refused)}; "
            "use randomise_patients for several"
        )
    if result.error is not None:
        raise result.error
    if result.refused:
        r = result.refused[0]
        cls = (
            AlreadyRandomisedError if r.code == "already_randomised" else RandomisationRefusedError
        )
        raise cls(r.patient_id, r.reason)
    return result.allocations[0]


# ----------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class ReplayedEntry:
    """One entry replayed: what was logged and what the secret recomputes."""

    sequence: int
    line: int
    patient_id: str
    logged_arm: str
    replayed_arm: str | None
    commitment_ok: bool
    trait_ok: bool | None

    @property
    def ok(self) -> bool:
        return (
            self.commitment_ok
            and self.replayed_arm == self.logged_arm
            and self.trait_ok is not False
        )


@dataclass(frozen=True)
class ReplayReport:
    """What :func:`replay_log` found. ``ok``: the log verifies and every draw replays."""

    path: Path
    entries: tuple[ReplayedEntry, ...]
    verification: alloclog.VerificationReport
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def secret_matches(self) -> bool:
        """Every commitment verifies (the secret is the one the log was written with)."""
        return bool(self.entries) and all(e.commitment_ok for e in self.entries)

    @property
    def ok(self) -> bool:
        return self.verification.ok and not self.problems

    def lines(self) -> list[str]:
        n = len(self.entries)
        good = sum(e.ok for e in self.entries)
        status = "every draw replays" if self.ok else "PROBLEMS"
        out = [f"{self.path}: {good} of {n} draws replayed and match: {status}"]
        out += [f"  ! {p}" for p in self.problems]
        out += [f"  ! [{p.kind}] {p}" for p in self.verification.problems]
        out += [f"  note: {x}" for x in (*self.verification.notes, *self.notes)]
        return out


def _replay_traits(
    restricted: list[dict[str, Any]], design: Design, secret: TrialSecret
) -> dict[int, str | None]:
    """Recompute the multi-trait draw of every logged patient from the positive traits."""

    out: dict[int, str | None] = {}
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in restricted:
        key = (r.get("assignment_policy", "default"), r.get("trait_seed"))
        groups.setdefault(key, []).append(r)
    cols = trait_columns(design)
    for (policy, seed), rows in groups.items():
        if policy not in ("default", "sensitivity"):
            continue
        if isinstance(seed, int) and not isinstance(seed, bool):
            value = seed
        else:
            value = trait_draw_seed(secret, design.trial.registry_id)
        frame = pd.DataFrame(
            {
                col: [
                    POSITIVE if t in str(r.get("positive_traits", "")).split(";") else "negative"
                    for r in rows
                ]
                for t, col in zip(design.trait_ids, cols, strict=True)
            }
        )
        ids = pd.Series([r["patient_id"] for r in rows])
        assigned = assign_trait(frame, design, seed=value, policy=policy, patient_ids=ids)
        for r, a in zip(rows, assigned["assigned_trait"], strict=True):
            out[r["sequence"]] = None if pd.isna(a) else str(a)
    return out


def replay_log(
    path: str | Path,
    secret: TrialSecret | None,
    design: Design,
    restricted: str | Path | None = None,
) -> ReplayReport:
    """Recompute every draw of a log with the secret and check it against the log.

    For every entry: the commitment (is this the key the log was written with?), the arm
    (``u`` from the secret and the logged stratum and stratum sequence, applied to the
    probabilities and arm order of the restricted log) and the multi-trait draw (from the
    logged positive traits and the seed derived from the secret). The log's integrity is
    verified too (:func:`~palette_core.randomisation.allocation_log.verify_log`).

    With a wrong secret the report says so (no commitment verifies); it does not raise.

    Raises
    ------
    TrialSecretError
        No secret was given.
    AllocationLogError
        The log or its restricted log (which holds the probabilities) is missing.
    """
    if not isinstance(secret, TrialSecret):
        raise TrialSecretError(
            f"replay needs the trial secret: set {SECRET_ENV} or {SECRET_FILE_ENV}, or pass "
            "--secret-file"
        )
    path = Path(path)
    rpath = Path(restricted) if restricted is not None else alloclog.restricted_path_for(path)
    if not rpath.exists():
        raise AllocationLogError(str(rpath), "restricted log not found: replay needs it")
    verification = alloclog.verify_log(path, restricted=rpath)
    opened = alloclog.load_entries(path)
    rentries = alloclog.load_entries(rpath)
    rby = {r["sequence"]: r for r in rentries}
    traits = _replay_traits(rentries, design, secret)
    trial = design.trial.registry_id
    replayed: list[ReplayedEntry] = []
    problems: list[str] = []
    notes: list[str] = []
    for line, e in enumerate(opened, start=1):
        seq, stratum, sseq = e.get("sequence"), e.get("stratum"), e.get("stratum_sequence")
        if not (isinstance(stratum, str) and isinstance(sseq, int) and isinstance(seq, int)):
            problems.append(f"{path}, line {line}: entry cannot be replayed (fields missing)")
            continue
        ok_commit = hmac.compare_digest(
            str(e.get("commitment")).encode("utf-8"),
            commitment(secret, str(e.get("trial")), sseq, stratum).encode("utf-8"),
        )
        r = rby.get(seq)
        arm = None
        if r is not None:
            order = r.get("arm_order") or list(r["probabilities"])
            probs = [float(r["probabilities"].get(a, 0.0)) for a in order]
            arm = choose_arm(draw_uniform(secret, str(e.get("trial")), sseq, stratum), order, probs)
        trait = traits.get(seq)
        trait_ok = None if r is None or seq not in traits else trait == e.get("trait")
        item = ReplayedEntry(
            seq, line, str(e.get("patient_id")), str(e.get("arm")), arm, ok_commit, trait_ok
        )
        replayed.append(item)
        if e.get("trial") != trial:
            problems.append(f"{path}, line {line}: trial {e.get('trial')!r} is not {trial!r}")
        if r is None:
            problems.append(f"{path}, line {line}: sequence {seq} has no restricted entry")
    n_commit = sum(x.commitment_ok for x in replayed)
    if replayed and n_commit == 0:
        problems.insert(
            0,
            f"the secret does not match this log: 0 of {len(replayed)} commitments verify "
            "(wrong secret?)",
        )
    else:
        for x in replayed:
            if not x.commitment_ok:
                problems.append(
                    f"{path}, line {x.line}: sequence {x.sequence}: the commitment does not "
                    "match the secret (entry altered, or drawn with another key)"
                )
    for x in replayed:
        if not x.commitment_ok and n_commit == 0:
            continue
        if x.replayed_arm is not None and x.replayed_arm != x.logged_arm:
            problems.append(
                f"{path}, line {x.line}: sequence {x.sequence}: logged arm {x.logged_arm}, the "
                f"draw gives {x.replayed_arm}"
            )
        if x.trait_ok is False:
            problems.append(
                f"{path}, line {x.line}: sequence {x.sequence}: the multi-trait draw gives "
                f"{traits.get(x.sequence)}, the log says {opened[x.line - 1].get('trait')}"
            )
    hashes = {r.get("design_hash") for r in rentries} - {design.design_hash}
    if hashes:
        notes.append(
            "some entries were randomised under another design version (design_hash differs); "
            "the multi-trait draw is replayed with the current design's weights"
        )
    return ReplayReport(
        path=path,
        entries=tuple(replayed),
        verification=verification,
        problems=tuple(problems),
        notes=tuple(notes),
    )


__all__ = [
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "STRATIFY_FACTORS",
    "Allocation",
    "AllocationState",
    "RandomisationResult",
    "Refusal",
    "ReplayReport",
    "ReplayedEntry",
    "TrialSecret",
    "allocation_state_from_dict",
    "choose_arm",
    "commitment",
    "default_allocation_state",
    "draw_input",
    "draw_uniform",
    "load_allocation_state",
    "load_secret",
    "parse_secret",
    "randomise",
    "randomise_patients",
    "replay_log",
    "stratum_of",
    "trait_draw_seed",
]
