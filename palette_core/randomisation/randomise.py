"""Concealed randomisation within a trait, and its replay by those who hold the secret.

The trial is open-label and this code is public, so concealment rests on a **trial secret**
held outside the repository by the independent statistician and given to the randomisation
service at run time:

* the environment variable ``PALETTE_TRIAL_SECRET``, or
* a file named by ``--secret-file`` or by ``PALETTE_TRIAL_SECRET_FILE`` (its text, stripped of
  surrounding whitespace; a file that is not UTF-8 is taken as raw bytes).

The secret never enters the repository, the open log, the restricted log or an error message
(:class:`TrialSecret` does not print it).

The secret
----------
``palette secret new FILE`` (:func:`write_new_secret`) writes 256 bits from the operating
system's cryptographic generator as 64 hex digits, in a new file of mode 0600. A secret given
otherwise is accepted only when (:func:`parse_secret`, :func:`secret_problem`):

1. it is hex digits (an even number), or raw bytes that are not UTF-8; **text is refused**:
   its entropy cannot be checked, and a word or phrase (``password12345678``) is recovered from
   the open log's commitments by a dictionary attack on the first guesses;
2. it has at least 16 bytes (128 bits);
3. it is not a repeated pattern (32 hex zeros, ``abab...``, one block twice);
4. no 8 consecutive bytes form an arithmetic progression (``12345678``, ``00 11 22 33 ...``);
5. it has at least ``min(n / 2, 128)`` distinct byte values among its ``n`` bytes;
6. its bytes are not all printable text (a word or phrase written in hex).

A key from a cryptographic generator passes rules 3 to 6 except with negligible probability
(below 2e-7 for 16 bytes, mostly rule 6; below 1e-13 for the 32 bytes of ``secret new``).

The draw
--------
Every log has an **instance value**: 128 random bits drawn when its first entry is written
(:func:`new_instance`) and repeated in every open entry. It enters every draw, so no two logs
share a sequence of draws: a test log, a demonstration, or a log restarted after a loss, even
with the trial secret, does not replay the trial's sequence. Patients randomised in the same
**stratum** are numbered 1, 2, ... in the order they are logged (``stratum_sequence``). By
default the stratum is the trait, i.e. one sequence per trait; with
``stratify=("age_group",)``, ``("site",)`` or both, the stratum is
``"<trait>;age_group=<id>;site=<id>"`` and each stratum has its own sequence. A log is
stratified one way from its first entry on (a change is refused). The uniform of the draw is::

    u = int(HMAC-SHA256(secret, f"{trial_id}|{instance}|{stratum_sequence}|{stratum}")[:8])
        >> 11) / 2**53

(53 bits, in [0, 1)), and the arm is the first arm, in design order (usual care first), whose
cumulative probability exceeds ``u``. The probabilities are those in force for the trait (the
allocation state, see below), restricted to the arms open to the patient's age group and
renormalised. Knowing the code, the log and the probabilities, nobody without the secret can
predict ``u`` for the next sequence number (HMAC-SHA256 is a pseudo-random function).

The open log holds a ``commitment``, a keyed digest of the whole entry (:func:`commitment`:
sequence, chain link, trial, instance, patient, time, trait, stratum, stratum sequence, arm), and
the restricted log a ``seal`` of its entry (:func:`seal`). With the secret, :func:`replay_log`
recomputes both: an entry written, rewritten, renumbered or moved by anyone without the secret
fails the replay. Without the secret, neither says anything about ``u``.

The multi-trait draw (which positive trait a patient is randomised in) uses
:func:`palette_core.screening.classify.classify_patients` with a seed derived from the secret and
the log's instance (:func:`trait_draw_seed`), so it is concealed and replayable too. Its
concealment is weaker than the arm's: the seed has 64 bits and the draw uses numpy's
``SeedSequence``, which is not a cryptographic function (enough against guessing, not a proof
against cryptanalysis).

The allocation state
--------------------
The probabilities in force come from a JSON file written by the independent statistician::

    {"version": 1, "effective_from": "2026-05-01", "source": "...",
     "traits": {"<trait_id>": {"<arm_id>": <probability>, ...}, ...}}

over usual care and the open arms of each trait (closed arms absent or 0, summing to 1); a
trait absent from the file is not randomising. Without a file, :func:`default_allocation_state`
gives equal allocation among usual care and the arms whose ``availability.initial_state`` is
``open`` and that are not suspended. The probabilities and the file's SHA-256 go to the
restricted log only; the site sees sequence, patient id, time, trait and arm.

Suspended arms
--------------
An arm whose dose a registry finding blocks is *suspended* for the age groups blocked
(``proposed/lifecycle.yaml`` ``suspension``: a dose that cannot be computed cannot be given).
An allocation state may not give a positive probability to an arm suspended for every age
group on its ``effective_from`` date; an arm suspended for some age groups only (the children
of baricitinib, anakinra and MTx.100) keeps its probability for the others, and the draw of a
patient of a suspended age group is made among the other arms, renormalised, as for an arm
that does not admit the age group (both are logged in the restricted log as
``excluded_for_age_group``). Suspension is read on the day of randomisation, so a lift
recorded with a later date does not apply before it.

Examples
--------
>>> secret = parse_secret("8f14e45fceea167a5a36dedd4bea2543")  # an example, never a real one
>>> u = draw_uniform(secret, "NCT06381661", new_instance(), 1, "mals")
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
import secrets
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
from palette_core.tableio import normalise_id

SECRET_ENV = "PALETTE_TRIAL_SECRET"
SECRET_FILE_ENV = "PALETTE_TRIAL_SECRET_FILE"
#: The shortest trial secret accepted (128 bits).
MIN_SECRET_BYTES = 16
#: The length of a secret made by ``palette secret new`` (256 bits).
NEW_SECRET_BYTES = 32
#: A secret holding this many consecutive bytes in arithmetic progression is refused.
MAX_PROGRESSION_RUN = 8
#: Bytes of a log's random instance value (128 bits).
INSTANCE_BYTES = 16
#: Factors a stratum may use, in the order they appear in its name.
STRATIFY_FACTORS = ("age_group", "site")
_SITE_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")

Policy = Literal["default", "sensitivity"]


# ----------------------------------------------------------------------------- the secret
def secret_problem(key: bytes) -> str | None:
    """What makes a key unfit to be the trial secret, or ``None`` (the rule of the module
    docstring, *The secret*): at least :data:`MIN_SECRET_BYTES` bytes, not a repeated pattern,
    no run of :data:`MAX_PROGRESSION_RUN` bytes in arithmetic progression, at least
    ``min(n / 2, 128)`` distinct byte values, and not text written in hex."""
    n = len(key)
    if n < MIN_SECRET_BYTES:
        return f"it has {n} bytes; at least {MIN_SECRET_BYTES} are needed"
    for period in range(1, n // 2 + 1):
        if key[period:] == key[:-period]:
            return f"it repeats a pattern of {period} byte(s)"
    run = 2
    for i in range(2, n):
        run = run + 1 if (key[i] - key[i - 1]) % 256 == (key[i - 1] - key[i - 2]) % 256 else 2
        if run >= MAX_PROGRESSION_RUN:
            return (
                f"it holds a run of {run} bytes in arithmetic progression (a counting sequence "
                "such as 12345678 or 00 11 22 33 ...)"
            )
    distinct = len(set(key))
    if distinct < min(n // 2, 128):
        return f"it uses only {distinct} distinct byte values of {n}"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in key):
        return "its bytes are printable text (a word or phrase written in hex)"
    return None


class TrialSecret:
    """The trial secret: a key that passes :func:`secret_problem` and never prints."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes, source: str = "secret"):
        if not isinstance(key, bytes):
            raise TrialSecretError(f"{source}: the secret must be bytes")
        problem = secret_problem(key)
        if problem is not None:
            raise TrialSecretError(
                f"{source}: the trial secret is refused: {problem}; create one with "
                "`palette secret new FILE`"
            )
        self._key = key

    def mac(self, message: str | bytes) -> bytes:
        """HMAC-SHA256 of a message (text as UTF-8) under the secret."""
        data = message.encode("utf-8") if isinstance(message, str) else message
        return hmac.digest(self._key, data, "sha256")

    def __repr__(self) -> str:
        return "TrialSecret(<hidden>)"

    def __reduce__(self) -> Any:  # never pickled into a worker's or a report's state
        raise TypeError("a TrialSecret cannot be pickled")


def parse_secret(value: str | bytes, source: str = "secret") -> TrialSecret:
    """Read a secret: hex digits (an even number, surrounding whitespace ignored), or raw bytes
    that are not UTF-8 (a binary key file). Text that is not hex is refused: its entropy cannot
    be checked, and a word or phrase is found by a dictionary attack on the open log.

    Raises
    ------
    TrialSecretError
        Empty, not hex, or refused by :func:`secret_problem`.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return TrialSecret(value, source)
    text = value.strip()
    if not text:
        raise TrialSecretError(f"{source}: the trial secret is empty")
    if not _HEX.fullmatch(text):
        raise TrialSecretError(
            f"{source}: the trial secret must be hex digits (at least {2 * MIN_SECRET_BYTES}), "
            "as `palette secret new FILE` writes; text is refused (a word or phrase is found by "
            "a dictionary attack on the open log's commitments)"
        )
    return TrialSecret(bytes.fromhex(text), source)


def new_secret_hex() -> str:
    """A new trial secret: :data:`NEW_SECRET_BYTES` bytes from the operating system's
    cryptographic generator, in hex (one that fails :func:`secret_problem`, which happens with
    probability below 1e-13, is drawn again)."""
    while True:
        key = secrets.token_bytes(NEW_SECRET_BYTES)
        if secret_problem(key) is None:
            return key.hex()


def write_new_secret(path: str | Path) -> Path:
    """Write a new trial secret (:func:`new_secret_hex`) to a file that must not exist yet,
    created with mode 0600 (owner only), and return its path. The secret is not printed.

    Raises
    ------
    TrialSecretError
        The file exists or cannot be created.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise TrialSecretError(f"{path}: exists; a trial secret is never overwritten") from None
    except OSError as exc:
        raise TrialSecretError(f"{path}: cannot create ({exc.strerror})") from None
    try:
        os.write(fd, (new_secret_hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


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
def new_instance() -> str:
    """A log's instance value: 128 random bits from the operating system, as 32 hex digits."""
    return secrets.token_hex(INSTANCE_BYTES)


def check_instance(value: Any, source: str = "instance") -> str:
    """``value`` if it is 32 lowercase hex digits (a log's instance value); else a typed error."""
    if (
        not isinstance(value, str)
        or len(value) != 2 * INSTANCE_BYTES
        or any(c not in "0123456789abcdef" for c in value)
    ):
        raise AllocationLogError(
            source, f"an instance value is {2 * INSTANCE_BYTES} lowercase hex digits, got {value!r}"
        )
    return value


def draw_input(trial_id: str, instance: str, stratum_sequence: int, stratum: str) -> str:
    """The message of the draw: ``f"{trial_id}|{instance}|{stratum_sequence}|{stratum}"``."""
    return f"{trial_id}|{instance}|{stratum_sequence}|{stratum}"


def draw_uniform(
    secret: TrialSecret, trial_id: str, instance: str, stratum_sequence: int, stratum: str
) -> float:
    """The concealed uniform of a draw: 53 bits of HMAC-SHA256, in [0, 1)."""
    mac = secret.mac(draw_input(trial_id, instance, stratum_sequence, stratum))
    return (int.from_bytes(mac[:8], "big") >> 11) / 2.0**53


def _keyed_digest(secret: TrialSecret, label: bytes, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(secret.mac(label + alloclog.canonical_json(dict(fields)))).hexdigest()


def commitment(secret: TrialSecret, entry: Mapping[str, Any]) -> str:
    """The open entry's commitment: ``sha256(HMAC-SHA256(secret, b"commit|" + canonical_json(
    entry without "commitment" and "hash")))`` in hex.

    It covers every other field of the entry (``v``, ``sequence``, ``prev_hash``, ``trial``,
    ``instance``, ``patient_id``, ``time``, ``trait``, ``stratum``, ``stratum_sequence``,
    ``arm``), so only the secret's holder can write or rewrite an entry that replays.
    """
    fields = {k: v for k, v in entry.items() if k not in ("commitment", "hash")}
    return _keyed_digest(secret, b"commit|", fields)


#: Fields of a restricted entry that its seal does not cover: the chain, the link to the open
#: entry (checked against the open log by ``verify``) and the seal itself.
UNSEALED = ("seal", "hash", "prev_hash", "open_hash")


def seal(secret: TrialSecret, restricted: Mapping[str, Any]) -> str:
    """The restricted entry's seal: ``sha256(HMAC-SHA256(secret, b"seal|" + canonical_json(
    entry without seal, hash, prev_hash and open_hash)))`` in hex (it covers ``sequence``, the
    probabilities and where they came from)."""
    fields = {k: v for k, v in restricted.items() if k not in UNSEALED}
    return _keyed_digest(secret, b"seal|", fields)


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


def trait_draw_seed(secret: TrialSecret, trial_id: str, instance: str) -> int:
    """The seed of the multi-trait draw of one log, derived from the secret (64 bits)."""
    return int.from_bytes(secret.mac(f"{trial_id}|{instance}|multi-trait-draw")[:8], "big")


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
    except RecursionError:
        raise AllocationStateError(str(path), None, "not valid JSON (nested too deep)") from None
    return allocation_state_from_dict(data, design, str(path), hashlib.sha256(raw).hexdigest())


def default_allocation_state(design: Design) -> AllocationState:
    """Equal allocation among usual care and the arms open at the start, in every trait.

    An arm suspended for every age group it admits at the study start (a dose blocked by a
    registry finding, not lifted by then) is not open: it gets no probability.
    """
    start = design.trial.study_start
    traits = {}
    for t in design.traits:
        arms = [
            a.id
            for a in design.arms_of(t.id)
            if a.availability.initial_state == "open" and not design.is_suspended(a.id, start)
        ]
        traits[t.id] = {a: 1.0 / len(arms) for a in arms}
    data = {
        "version": STATE_VERSION,
        "effective_from": start.isoformat(),
        "source": "default: equal allocation among usual care and the arms open at the start "
        "(data/design/arms.yaml, availability.initial_state; suspended arms left out)",
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
    """A row that was not randomised now (nothing logged), with the reason.

    ``committed`` is the patient's allocation already in the log (code ``already_randomised``):
    after a crash the site learns the arm that was committed, which it may not have seen.
    """

    row: int
    patient_id: str
    reason: str
    code: str = "refused"
    committed: Allocation | None = None


@dataclass(frozen=True)
class RandomisationResult:
    """The outcome of :func:`randomise_patients`: allocations and refusals, in row order.

    ``error`` is set when the log could not be appended to (it does not verify, its lock was
    not obtained, it belongs to another trial or stratification): the rows from ``stopped_at``
    on were not attempted; the allocations before it stand. ``notes`` says what was done to
    the files on the way (a restricted log tightened to mode 0600).
    """

    allocations: tuple[Allocation, ...]
    refused: tuple[Refusal, ...]
    error: AllocationLogError | None = None
    stopped_at: int | None = None
    notes: tuple[str, ...] = ()

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
    traits_drawn_among: str
    assignment_rule: str


def _arms_for(
    design: Design, state: AllocationState, trait: str, age_group: str, today: dt.date
) -> tuple[list[tuple[str, float]], dict[str, Any], list[bool]]:
    """The trait's arms under ``state`` with their probabilities, each arm's suspension for the
    age group on ``today``, and whether the arm may be given to the age group then."""
    probs = state.probabilities(trait, design)
    suspended = {a: design.suspended_by(a, age_group, today) for a, _ in probs}
    allowed = [
        age_group in design.arm_age_groups(design.arm(a)) and not suspended[a] for a, _ in probs
    ]
    return probs, suspended, allowed


def open_traits_now(
    design: Design, state: AllocationState, today: dt.date
) -> dict[str, frozenset[str]]:
    """Per age group, the traits that can randomise a patient of that group on ``today``.

    A trait can when it randomises under ``state`` (in force on ``today``) and has an
    experimental arm with a positive probability that may be given to the age group (its age
    range, no suspension). The multi-trait draw chooses among the positive traits that can
    (:func:`palette_core.screening.classify.classify_patients`), so that a child positive for
    a trait whose arms are all closed to children, and for one with an open arm, is randomised
    in the second rather than turned away. The trial simulator applies the same rule
    (:func:`palette_core.simulate.platform.open_traits`).
    """
    groups = [g.id for g in design.strata.age_groups]
    out: dict[str, frozenset[str]] = {}
    for group in groups:
        found = {t for t in state.traits if _closed(design, state, t, group, today) is None}
        out[group] = frozenset(found)
    return out


def _closed(
    design: Design, state: AllocationState, trait: str, age_group: str, today: dt.date
) -> tuple[str, str] | None:
    """Why ``trait`` cannot randomise a patient of ``age_group`` on ``today``: ``(refusal code,
    reason)``, or ``None`` when it can (the rule of :func:`open_traits_now`)."""
    if trait not in state.traits:
        return (
            "trait_not_randomising",
            f"trait {trait} is not randomising (no allocation in force in {state.file})",
        )
    if today < state.effective_from:
        return (
            "state_not_in_effect",
            f"the allocation state {state.file} takes effect on {state.effective_from}, "
            f"after today ({today})",
        )
    probs, suspended, allowed = _arms_for(design, state, trait, age_group, today)
    control = design.control_of(trait).id
    if any(ok and p > 0 and a != control for (a, p), ok in zip(probs, allowed, strict=True)):
        return None
    held = [
        f"{a} ({', '.join(f.id for f in suspended[a])})" for a, p in probs if p > 0 and suspended[a]
    ]
    why = f"; suspended for it: {', '.join(held)}" if held else ""
    return (
        "no_open_arm",
        f"trait {trait} has no open experimental arm for age group {age_group}{why}",
    )


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
    age_group = str(row["age_group"])
    trait = _text(row["assigned_trait"])
    if trait is None:
        positive = [t for t in (_text(row.get("positive_traits")) or "").split(";") if t]
        closed = [c for c in (_closed(design, state, t, age_group, today) for t in positive) if c]
        if positive and len(closed) == len(positive):
            codes = {code for code, _ in closed}
            code = codes.pop() if len(codes) == 1 else "no_open_trait"
            return refuse(code, "; ".join(reason for _, reason in closed))
        undecided = _text(row.get("indeterminate_traits"))
        more = f" (indeterminate: {undecided})" if undecided else ""
        return refuse("no_trait", f"no trait assigned: {row['assignment_rule']}{more}")
    shut = _closed(design, state, trait, age_group, today)
    if shut is not None:
        return refuse(*shut)
    probs, _, allowed = _arms_for(design, state, trait, age_group, today)
    excluded = tuple(a for (a, p), ok in zip(probs, allowed, strict=True) if p > 0 and not ok)
    kept = [p if ok else 0.0 for (_, p), ok in zip(probs, allowed, strict=True)]
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
        traits_drawn_among=str(row["traits_drawn_among"]),
        assignment_rule=str(row["assignment_rule"]),
    )


def _committed(entry: Mapping[str, Any]) -> Allocation:
    return Allocation(
        entry["sequence"], entry["patient_id"], entry["time"], entry["trait"], entry["arm"]
    )


def _clock(now: dt.datetime | None) -> Callable[[], dt.datetime]:
    if now is None:
        return lambda: dt.datetime.now(dt.UTC)
    return lambda: now


def _builder(
    plan: _Plan,
    design: Design,
    state: AllocationState,
    secret: TrialSecret,
    stratify: Sequence[str],
    clock: Callable[[], dt.datetime],
    policy: str,
    trait_seed: int | None,
    instance: str,
    log_path: Path,
) -> Callable[[alloclog.LogSnapshot], tuple[dict[str, Any], dict[str, Any]]]:
    trial = design.trial.registry_id

    def build(snap: alloclog.LogSnapshot) -> tuple[dict[str, Any], dict[str, Any]]:
        for e in snap.open_entries:  # a log written before ids were canonical still counts
            if normalise_id(str(e["patient_id"])) == normalise_id(plan.patient_id):
                raise AlreadyRandomisedError(
                    plan.patient_id,
                    f"already randomised (sequence {e['sequence']}, {e['time']}: trait "
                    f"{e['trait']}, arm {e['arm']}): a patient is randomised once",
                    plan.row,
                    committed=_committed(e),
                )
        if snap.open_entries:
            first = snap.open_entries[0]
            if first["trial"] != trial:
                raise AllocationLogError(
                    str(log_path), f"the log belongs to trial {first['trial']!r}, not {trial!r}"
                )
            if first["instance"] != instance:
                raise AllocationLogError(
                    str(log_path),
                    f"the log's instance is {first['instance']}, not {instance}: another writer "
                    "started the log while these patients were classified; run again (nothing "
                    "was logged for this row)",
                )
            if _factors(first["stratum"]) != tuple(f for f in STRATIFY_FACTORS if f in stratify):
                raise AllocationLogError(
                    str(log_path),
                    f"the log is stratified by {list(_factors(first['stratum'])) or 'trait only'}; "
                    f"this call by {list(stratify) or 'trait only'}: a log keeps one stratification",
                )
        when = utc_timestamp(clock().astimezone(dt.UTC))  # read under the lock: times never fall
        if snap.open_entries and when < snap.open_entries[-1]["time"]:
            raise AllocationLogError(
                str(log_path),
                f"the clock reads {when}, before the last entry's time "
                f"{snap.open_entries[-1]['time']}: correct the clock (nothing was logged)",
            )
        seq = 1 + sum(e["stratum"] == plan.stratum for e in snap.open_entries)
        u = draw_uniform(secret, trial, instance, seq, plan.stratum)
        arm = choose_arm(u, plan.arms, plan.probabilities)
        opened: dict[str, Any] = {
            "trial": trial,
            "instance": instance,
            "patient_id": plan.patient_id,
            "time": when,
            "trait": plan.trait,
            "stratum": plan.stratum,
            "stratum_sequence": seq,
            "arm": arm,
        }
        chain = {
            "v": records.LOG_VERSION,
            "sequence": snap.next_sequence,
            "prev_hash": snap.prev_hash,
        }
        opened["commitment"] = commitment(secret, {**opened, **chain})
        restricted: dict[str, Any] = {
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
            "traits_drawn_among": plan.traits_drawn_among,
            "assignment_rule": plan.assignment_rule,
            "assignment_policy": policy,
            "trait_seed": "derived from the secret" if trait_seed is None else trait_seed,
            "design_hash": design.design_hash,
        }
        restricted["seal"] = seal(
            secret, {**restricted, "v": records.LOG_VERSION, "sequence": snap.next_sequence}
        )
        return opened, restricted

    return build


def _log_instance(log_path: Path, instance: str | None) -> str:
    """The instance of an existing log (checked against ``instance`` if given), else ``instance``
    or a new random one. Read before the lock; :func:`_builder` checks it again under it."""
    logged = None
    if log_path.exists():
        for entry in alloclog.load_entries(log_path):
            logged = entry.get("instance")
            break
    if logged is not None:
        logged = check_instance(logged, f"{log_path}, line 1")
        if instance is not None and instance != logged:
            raise AllocationLogError(
                str(log_path),
                f"the log's instance is {logged}; an instance is chosen once, when a log starts",
            )
        return logged
    return new_instance() if instance is None else check_instance(instance)


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
    instance: str | None = None,
) -> RandomisationResult:
    """Classify and randomise every row; refused rows are reported and not logged.

    Each row is classified (eligibility, traits, assigned trait), then appended to the open
    and restricted logs under the lock, one row at a time, in row order. See
    :func:`randomise` for the parameters. If the log cannot be appended to, the run stops and
    ``result.error`` says why (the allocations made before stand): check it. A patient already
    in the log is refused with the committed allocation (``Refusal.committed``).

    Raises
    ------
    AllocationLogError
        Before anything is done: the restricted log is the open log, a folder does not exist,
        or the log's instance is not ``instance``.
    """
    if not isinstance(secret, TrialSecret):
        raise TrialSecretError("randomisation needs the trial secret (a TrialSecret)")
    stratify = tuple(stratify)
    stratum_of("-", stratify=stratify)  # rejects an unknown factor before anything is done
    log_path = Path(log_path)
    rpath = Path(restricted) if restricted is not None else alloclog.restricted_path_for(log_path)
    alloclog.check_log_paths(log_path, rpath, writing=True)
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    trial = design.trial.registry_id
    log_instance = _log_instance(log_path, instance)
    seed = (
        trait_draw_seed(secret, trial, log_instance)
        if seed_for_trait_draw is None
        else seed_for_trait_draw
    )
    validation = _validation(patients, design)
    clock = _clock(now)
    today = clock().astimezone(dt.UTC).date()
    result = classify_patients(
        validation,
        design,
        seed=seed,
        policy=policy,
        open_traits=open_traits_now(design, state, today),
    )
    result["site_id"] = validation.frame["site_id"]  # for stratification by site
    notes = tuple(alloclog.tighten_permissions(rpath))
    allocations: list[Allocation] = []
    refused: list[Refusal] = []
    for number, (_, row) in enumerate(result.iterrows(), start=1):
        plan = _plan(row, number, design, state, stratify, clock().astimezone(dt.UTC).date())
        if isinstance(plan, Refusal):
            refused.append(plan)
            continue
        build = _builder(
            plan,
            design,
            state,
            secret,
            stratify,
            clock,
            policy,
            seed_for_trait_draw,
            log_instance,
            log_path,
        )
        try:
            entry, _ = alloclog.append_entry(
                log_path, build, restricted=rpath, lock_timeout=lock_timeout
            )
        except AlreadyRandomisedError as exc:
            refused.append(
                Refusal(number, plan.patient_id, exc.reason, "already_randomised", exc.committed)
            )
            continue
        except AllocationLogError as exc:
            return RandomisationResult(tuple(allocations), tuple(refused), exc, number, notes)
        allocations.append(_committed(entry))
    return RandomisationResult(tuple(allocations), tuple(refused), notes=notes)


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
    instance: str | None = None,
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
        The time of randomisation (timezone-aware); default the current UTC time, read under
        the log's lock (so times never go backwards in the log).
    instance
        The log's instance value (32 hex digits) when the log is started. ``None`` (the
        default, and the only choice for the trial) draws 128 random bits, so that no two logs,
        not even a test log or a restarted log with the trial secret, share a sequence of
        draws; a fixed value (a demonstration that must give the same arms every time) is
        public in every entry. For an existing log it must be the log's or ``None``.

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
        instance=instance,
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
        if r.code == "already_randomised":
            raise AlreadyRandomisedError(r.patient_id, r.reason, committed=r.committed)
        raise RandomisationRefusedError(r.patient_id, r.reason)
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
    restricted: list[dict[str, Any]], design: Design, secret: TrialSecret, instance: str
) -> dict[int, str | None]:
    """Recompute the multi-trait draw of every logged patient from the traits it was drawn
    among (the positive traits open to the patient; the positive traits in a log written before
    that field was recorded)."""

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
            value = trait_draw_seed(secret, design.trial.registry_id, instance)
        frame = pd.DataFrame(
            {
                col: [
                    POSITIVE
                    if t
                    in str(r.get("traits_drawn_among", r.get("positive_traits", ""))).split(";")
                    else "negative"
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


#: How far a logged probability may be from the one recomputed from its allocation state.
PROBABILITY_TOLERANCE = 1e-12


def _probability_problems(
    r: Mapping[str, Any], design: Design, states: Mapping[str, AllocationState], where: str
) -> tuple[list[str], bool]:
    """The restricted entry's probabilities recomputed from the state it names: ``(problems,
    checked against the state)``. Without the state file only their derivation is checked."""
    out: list[str] = []
    order = list(r.get("arm_order") or r["probabilities"])
    state_p = r.get("state_probabilities")
    excluded = set(r.get("excluded_for_age_group") or ())
    if isinstance(state_p, Mapping):
        kept = [0.0 if a in excluded else float(state_p.get(a, 0.0)) for a in order]
        total = math.fsum(kept)
        logged = [float(r["probabilities"].get(a, 0.0)) for a in order]
        if total <= 0 or any(
            abs(k / total - v) > PROBABILITY_TOLERANCE for k, v in zip(kept, logged, strict=True)
        ):
            out.append(
                f"{where}: the probabilities are not those of state_probabilities with the arms "
                "closed to the age group removed (restricted entry rewritten?)"
            )
    sha = (r.get("state") or {}).get("sha256")
    state = states.get(sha) if isinstance(sha, str) else None
    if state is None:
        return out, False
    trait = r["trait"]
    if trait not in state.traits:
        out.append(f"{where}: trait {trait} does not randomise under state {sha[:12]}")
        return out, True
    expected = {a: p for a, p in state.probabilities(trait, design) if p > 0}
    given = dict(state_p) if isinstance(state_p, Mapping) else {}
    if set(expected) != set(given) or any(
        abs(expected[a] - float(given[a])) > PROBABILITY_TOLERANCE for a in expected
    ):
        out.append(
            f"{where}: state_probabilities differ from the allocation state {state.file} "
            f"(sha256 {sha[:12]}) that the entry names"
        )
    return out, True


def replay_log(
    path: str | Path,
    secret: TrialSecret | None,
    design: Design,
    restricted: str | Path | None = None,
    states: Sequence[AllocationState] = (),
) -> ReplayReport:
    """Recompute every draw of a log with the secret and check it against the log.

    For every entry: the commitment (is this entry, every field of it, what the key wrote?),
    the restricted entry's seal (the same for the probabilities), the arm (``u`` from the secret,
    the log's instance and the logged stratum and stratum sequence, applied to the probabilities
    and arm order of the restricted log), the probabilities (recomputed from the allocation state
    the entry names: the default state, or one of ``states``; a note lists the entries whose
    state file was not given) and the multi-trait draw (from the logged positive traits and the
    seed derived from the secret). The log's integrity is verified too
    (:func:`~palette_core.randomisation.allocation_log.verify_log`).

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
    alloclog.check_log_paths(path, rpath)
    if not rpath.exists():
        raise AllocationLogError(str(rpath), "restricted log not found: replay needs it")
    verification = alloclog.verify_log(path, restricted=rpath)
    opened = alloclog.load_entries(path)
    rentries = alloclog.load_entries(rpath)
    rby = {r["sequence"]: r for r in rentries}
    instance = str(opened[0].get("instance")) if opened else ""
    traits = _replay_traits(rentries, design, secret, instance)
    known = {s.sha256: s for s in (default_allocation_state(design), *states)}
    trial = design.trial.registry_id
    replayed: list[ReplayedEntry] = []
    problems: list[str] = []
    notes: list[str] = []
    seals_bad: list[str] = []
    unchecked: list[int] = []
    for line, e in enumerate(opened, start=1):
        seq, stratum, sseq = e.get("sequence"), e.get("stratum"), e.get("stratum_sequence")
        if not (isinstance(stratum, str) and isinstance(sseq, int) and isinstance(seq, int)):
            problems.append(f"{path}, line {line}: entry cannot be replayed (fields missing)")
            continue
        ok_commit = hmac.compare_digest(
            str(e.get("commitment")).encode("utf-8"), commitment(secret, e).encode("utf-8")
        )
        r = rby.get(seq)
        arm = None
        if r is not None:
            order = r.get("arm_order") or list(r["probabilities"])
            probs = [float(r["probabilities"].get(a, 0.0)) for a in order]
            u = draw_uniform(secret, str(e.get("trial")), str(e.get("instance")), sseq, stratum)
            arm = choose_arm(u, order, probs)
            where = f"{rpath}, sequence {seq}"
            if not hmac.compare_digest(
                str(r.get("seal")).encode("utf-8"), seal(secret, r).encode("utf-8")
            ):
                seals_bad.append(
                    f"{where}: the seal does not match the secret (restricted entry altered, or "
                    "written with another key)"
                )
            found, checked = _probability_problems(r, design, known, where)
            problems.extend(found)
            if not checked:
                unchecked.append(seq)
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
                    "match the secret (entry altered, renumbered or moved, or written with "
                    "another key)"
                )
        problems.extend(seals_bad)
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
    if unchecked:
        notes.append(
            f"the probabilities of {len(unchecked)} entr(y/ies) (sequence {unchecked[0]}...) were "
            "not compared with their allocation state: pass its file (--allocation)"
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
    "INSTANCE_BYTES",
    "MAX_PROGRESSION_RUN",
    "MIN_SECRET_BYTES",
    "NEW_SECRET_BYTES",
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
    "check_instance",
    "choose_arm",
    "commitment",
    "default_allocation_state",
    "draw_input",
    "draw_uniform",
    "load_allocation_state",
    "load_secret",
    "new_instance",
    "new_secret_hex",
    "parse_secret",
    "randomise",
    "randomise_patients",
    "replay_log",
    "seal",
    "secret_problem",
    "stratum_of",
    "trait_draw_seed",
    "write_new_secret",
]
