"""The JSON records of randomisation, each defined once as a pydantic model.

* :class:`AllocationStateRecord`: the allocation probabilities in force. Written by
  :func:`~palette_core.randomisation.allocation.allocation_state` (``palette analyse`` stores it
  as ``allocation_state.json``), read by
  :func:`~palette_core.randomisation.randomise.load_allocation_state` and
  :func:`~palette_core.randomisation.allocation.validate_allocation_state`.
* :class:`PlatformStateRecord`: the arm lifecycle, written by
  :func:`~palette_core.randomisation.lifecycle.to_json`, read by
  :func:`~palette_core.randomisation.lifecycle.from_json`.
* :class:`OpenLogEntry` and :class:`RestrictedLogEntry`: the two allocation logs, written by
  :func:`~palette_core.randomisation.allocation_log.append_entry` (the restricted fields come
  from :mod:`~palette_core.randomisation.randomise`), checked by
  :func:`~palette_core.randomisation.allocation_log.verify_log`.

Every model forbids keys it does not declare (``extra="forbid"``: nothing restricted can reach
the open log by mistake, and a misspelt key is an error, not a silent default) and is strict:
an integer is an ``int`` (not ``true``, not ``1.0``, not ``"1"``), text is a ``str``, an object
a ``dict``, a list a ``list``. Dates are ISO 8601 calendar dates and time stamps UTC, both read
by :mod:`palette_core.isotime`.

Validation has two steps. :meth:`Record.parse` checks the structure (the model) and raises
:class:`~palette_core.errors.RecordError` listing every problem as a
:class:`~palette_core.errors.RecordProblem` (location, message); a missing or unknown key is
reported at the object that should (not) hold it. Checks that need the trial design (a known
trait, an arm of that trait, usual care allocated, probabilities summing to 1) are
:meth:`AllocationStateRecord.for_design`; the platform state's are the replay of
:func:`~palette_core.randomisation.lifecycle.from_json`. The module that reads a file turns a
``RecordError`` into its own typed error naming the file, entry and field
(:class:`~palette_core.errors.AllocationStateError`,
:class:`~palette_core.errors.AllocationError`, :class:`~palette_core.errors.LifecycleStateError`,
a ``malformed`` line of the log).

Bytes. The allocation state and the platform state are written from their models
(``model_dump(mode="json")``, then the writer's ``json.dumps``), which gives exactly the JSON
the former hand-written dictionaries gave. A log entry is written as the ``dict`` its writer
built and only *checked* here: its canonical JSON is what is hashed into the chain, so it never
passes through a model that could change a byte (an integer probability would become a float).

Examples
--------
>>> record = AllocationStateRecord.parse({"version": 1, "effective_from": "2026-06-01",
...     "source": "look 1", "traits": {"mals": {"mals_usual_care": 0.5, "mals_anakinra": 0.5}}})
>>> record.effective_from
datetime.date(2026, 6, 1)
>>> from palette_core.errors import RecordError
>>> try:
...     OpenLogEntry.parse({"v": 1, "sequence": 0})
... except RecordError as exc:
...     print(describe(exc.problems))  # doctest: +ELLIPSIS
field 'sequence': expected a positive integer, got 0; missing key(s) ['trial', ...]
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from numbers import Real
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from palette_core.design.loader import Design
from palette_core.errors import RecordError, RecordProblem
from palette_core.isotime import (
    ISO_DATE,
    UTC_TIMESTAMP,
    parse_iso_date,
    parse_utc_timestamp,
)

#: Version of the allocation state record.
STATE_VERSION = 1
#: How far the probabilities of one trait in an allocation state may be from summing to 1.
STATE_SUM_TOLERANCE = 1e-9
#: Version tag of the platform (lifecycle) state.
LIFECYCLE_FORMAT = "palette-lifecycle/1"
#: Version of the entries of the allocation log (open and restricted) and of their anchors.
#: Version 2 added the log's random ``instance`` (open entries), the commitment over the whole
#: open entry and the ``seal`` of the restricted entry; a version-1 log is not read.
LOG_VERSION = 2
#: Hex digits of a log's random instance value (128 bits).
INSTANCE_HEX_DIGITS = 32
#: Hex digits of a commitment or a seal (a SHA-256 digest).
DIGEST_HEX_DIGITS = 64
#: How far the probabilities of a restricted log entry may be from summing to 1.
LOG_SUM_TOLERANCE = 1e-9
#: How a lifecycle move came about: the design's initial state, a request, the trait rule, an
#: amendment (``Transition.by``).
Origin = Literal["design", "request", "trait_rule", "amendment"]
ORIGINS: tuple[str, ...] = get_args(Origin)


# ----------------------------------------------------------------------------- field types
def _fail(message: str) -> PydanticCustomError:
    """A validation error whose message is ``message``, in the package's words."""
    return PydanticCustomError("palette", "{message}", {"message": message})


def _iso_date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_iso_date(value)
        except ValueError as exc:
            raise _fail(f"{exc}: {value!r}") from None
    raise _fail(f"expected an ISO 8601 date ({ISO_DATE}), got {value!r}")


def _optional_iso_date(value: Any) -> dt.date | None:
    return None if value is None else _iso_date(value)


def _utc_timestamp(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(f"expected a UTC time stamp ({UTC_TIMESTAMP}), got {value!r}")
    try:
        parse_utc_timestamp(value)
    except ValueError as exc:
        raise _fail(f"{exc}: {value!r}") from None
    return value


def _non_empty_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"expected a non-empty text, got {value!r}")
    return value


def _probability(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise _fail(f"probability must be a number in [0, 1], got {value!r}")
    return float(value)


def _positive_integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(f"expected a positive integer, got {value!r}")
    return value


def _exactly(expected: int | str, what: str = "") -> PlainValidator:
    """A field that holds one value only (a version): same type and value as ``expected``."""

    def check(value: Any) -> Any:
        if type(value) is not type(expected) or value != expected:
            raise _fail(f"expected {what}{expected!r}, got {value!r}")
        return value

    return PlainValidator(check)


def _lower_hex(digits: int, what: str) -> PlainValidator:
    """Text of exactly ``digits`` lowercase hex digits."""

    def check(value: Any) -> str:
        if (
            not isinstance(value, str)
            or len(value) != digits
            or any(c not in "0123456789abcdef" for c in value)
        ):
            raise _fail(f"expected {what} of {digits} lowercase hex digits, got {value!r}")
        return value

    return PlainValidator(check)


def _seed(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(f"expected an integer seed or a text, got {value!r}")
    return value


def _optional_seed(value: Any) -> int | str | None:
    return None if value is None else _seed(value)


def _as_dict(value: Any) -> Any:
    """Any mapping as a ``dict`` (a ``MappingProxyType`` from Python callers); else unchanged."""
    return dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value


def _non_empty(what: str) -> AfterValidator:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise _fail(f"expected a non-empty mapping {what}")
        return value

    return AfterValidator(check)


def _write_date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


# (the explicit serialiser: pydantic 2.14 warns when a plain validator's date goes to JSON)
#: A calendar date written ``YYYY-MM-DD`` (or a ``datetime.date``, not a ``datetime``).
IsoDate = Annotated[
    dt.date,
    PlainValidator(_iso_date),
    PlainSerializer(_write_date, return_type=str, when_used="json"),
]
#: :data:`IsoDate` or ``null``.
OptionalIsoDate = Annotated[
    dt.date | None,
    PlainValidator(_optional_iso_date),
    PlainSerializer(_write_date, return_type=str | None, when_used="json"),
]
#: A UTC time stamp ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, kept as its text.
UtcTimestamp = Annotated[str, PlainValidator(_utc_timestamp)]
#: Text with at least one character that is not white space.
NonEmptyText = Annotated[str, PlainValidator(_non_empty_text)]
#: A finite number in [0, 1] (not a bool), as a ``float``.
Probability = Annotated[float, PlainValidator(_probability)]
#: An integer >= 1 (not a bool).
PositiveInt = Annotated[int, PlainValidator(_positive_integer)]
#: The log version, exactly.
LogVersion = Annotated[int, _exactly(LOG_VERSION, "log version ")]
#: A log's instance value: 32 lowercase hex digits.
Instance = Annotated[str, _lower_hex(INSTANCE_HEX_DIGITS, "an instance value")]
#: A commitment or a seal: 64 lowercase hex digits.
Digest = Annotated[str, _lower_hex(DIGEST_HEX_DIGITS, "a digest")]


# ----------------------------------------------------------------------------- errors
_EXPECTED = {
    "string_type": "text",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
}


def _got(value: Any) -> str:
    return type(value).__name__ if isinstance(value, Mapping | list | tuple) else repr(value)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "palette":
        return str(error["msg"])
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}, got {error['input']!r}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_got(error['input'])}"
    return f"{error['msg']}, got {_got(error['input'])}"


def problems(exc: ValidationError) -> tuple[RecordProblem, ...]:
    """pydantic's errors as :class:`~palette_core.errors.RecordProblem`, in the package's words.

    Missing and unknown keys of one object become one problem located at that object
    (``missing key(s) [...]``, ``unknown key(s) [...]``); every other problem is located at its
    field. The order is pydantic's (the fields in declaration order).
    """
    out: list[RecordProblem | tuple[str | int, ...]] = []
    keys: dict[tuple[str | int, ...], dict[str, list[str]]] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] in ("missing", "extra_forbidden"):
            parent = loc[:-1]
            if parent not in keys:
                keys[parent] = {"missing": [], "extra_forbidden": []}
                out.append(parent)
            keys[parent][error["type"]].append(str(loc[-1]))
        else:
            out.append(RecordProblem(loc, _message(error)))
    result = []
    for item in out:
        if isinstance(item, RecordProblem):
            result.append(item)
            continue
        found = keys[item]
        parts = []
        if found["missing"]:
            parts.append(f"missing key(s) {found['missing']}")
        if found["extra_forbidden"]:
            parts.append(
                f"unknown key(s) {found['extra_forbidden']}, which do not belong in this record"
            )
        result.append(RecordProblem(item, "; ".join(parts)))
    return tuple(result)


def dotted(loc: tuple[str | int, ...]) -> str | None:
    """``("traits", "mals", "mals_anakinra")`` -> ``"traits.mals.mals_anakinra"``; ``()`` -> None."""
    return ".".join(str(k) for k in loc) or None


def indexed(loc: tuple[str | int, ...]) -> str:
    """``("log", 12, "on")`` -> ``"log[12].on"``; ``()`` -> ``"top level"``."""
    out = ""
    for k in loc:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "top level"


def describe(found: tuple[RecordProblem, ...]) -> str:
    """Every problem on one line: ``field 'sequence': expected ...; missing key(s) [...]``."""
    return "; ".join(
        p.message if not p.loc else f"field {dotted(p.loc)!r}: {p.message}" for p in found
    )


# ----------------------------------------------------------------------------- base
class Record(BaseModel):
    """A JSON record: unknown keys forbidden, strict types, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    #: What the record is called in messages.
    record_name: ClassVar[str] = "record"

    @classmethod
    def parse(cls, data: Any) -> Self:
        """Validate parsed JSON (or a Python mapping) against the model.

        Raises
        ------
        RecordError
            Every problem, located (:func:`problems`).
        """
        try:
            return cls.model_validate(_as_dict(data))
        except ValidationError as exc:
            raise RecordError(cls.record_name, problems(exc)) from None

    @classmethod
    def problem(cls, data: Any) -> str | None:
        """``None`` if ``data`` is a valid record, else every problem on one line."""
        try:
            cls.parse(data)
        except RecordError as exc:
            return describe(exc.problems)
        return None


# ----------------------------------------------------------------------------- allocation state
TraitProbabilities = Annotated[
    dict[str, Probability],
    BeforeValidator(_as_dict),
    _non_empty("arm_id -> probability"),
]


class AllocationStateRecord(Record):
    """The allocation probabilities in force, as the independent statistician's file holds them.

    ``{"version": 1, "effective_from": "YYYY-MM-DD", "source": text, "traits": {trait_id:
    {arm_id: probability}}}``, with at least one trait and one arm per trait. A trait absent is
    not randomising; an arm absent from its trait has probability 0.
    """

    record_name: ClassVar[str] = "allocation state"

    version: Annotated[int, _exactly(STATE_VERSION)]
    effective_from: IsoDate
    source: NonEmptyText
    traits: Annotated[
        dict[str, TraitProbabilities],
        BeforeValidator(_as_dict),
        _non_empty("trait_id -> {arm_id: probability}"),
    ]

    def for_design(self, design: Design) -> AllocationStateRecord:
        """Check the record against the design; return it with traits and arms in design order.

        Each trait must be in ``traits.yaml`` and name only its own arms, give usual care a
        positive probability (it always has one under the allocation rules), give none to an
        arm suspended for every age group on ``effective_from``
        (:meth:`~palette_core.design.loader.Design.is_suspended`) and sum to 1 within
        :data:`STATE_SUM_TOLERANCE`.

        Raises
        ------
        RecordError
            Every problem, located at ``("traits", trait)`` or ``("traits", trait, arm)``.
        """
        found: list[RecordProblem] = []
        for trait in self.traits:
            if trait not in design.trait_ids:
                found.append(
                    RecordProblem(
                        ("traits", trait),
                        f"not in traits.yaml (unknown trait); known: {', '.join(design.trait_ids)}",
                    )
                )
        ordered: dict[str, dict[str, float]] = {}
        for trait in design.trait_ids:
            probs = self.traits.get(trait)
            if probs is None:
                continue
            ids = [a.id for a in design.arms_of(trait)]
            for arm in probs:
                if arm not in ids:
                    other = next((a.trait for a in design.arms if a.id == arm), None)
                    why = f"an arm of trait {other!r}" if other else "unknown arm: not in arms.yaml"
                    found.append(
                        RecordProblem(
                            ("traits", trait, arm),
                            f"not an arm of this trait ({why}); the arms of {trait} are "
                            f"{', '.join(ids)}",
                        )
                    )
            for arm, p in probs.items():
                if arm in ids and p > 0 and design.is_suspended(arm, self.effective_from):
                    why = sorted(
                        {
                            f.id
                            for g in design.suspended_age_groups(arm, self.effective_from)
                            for f in design.suspended_by(arm, g, self.effective_from)
                        }
                    )
                    found.append(
                        RecordProblem(
                            ("traits", trait, arm),
                            f"arm suspended on {self.effective_from} (dose not computable: "
                            f"{', '.join(why)}): it cannot have a positive probability",
                        )
                    )
            control = design.control_of(trait).id
            if not probs.get(control, 0.0) > 0:
                found.append(
                    RecordProblem(
                        ("traits", trait, control),
                        "usual care must have a positive probability in a trait that randomises",
                    )
                )
            total = math.fsum(probs.values())
            if abs(total - 1.0) > STATE_SUM_TOLERANCE:
                found.append(
                    RecordProblem(
                        ("traits", trait),
                        f"probabilities sum to {total:.12g}, not 1 "
                        f"(tolerance {STATE_SUM_TOLERANCE:g})",
                    )
                )
            ordered[trait] = {a: probs[a] for a in ids if a in probs}
        if found:
            raise RecordError(self.record_name, tuple(found))
        return self.model_copy(update={"traits": ordered})

    def to_json_dict(self) -> dict[str, Any]:
        """The record as JSON-ready Python values (the date as text)."""
        return self.model_dump(mode="json")


# ----------------------------------------------------------------------------- platform state
class TransitionRecord(Record):
    """One dated move of one arm (``from`` is ``null`` for the arm's first entry)."""

    record_name: ClassVar[str] = "lifecycle move"

    arm: str
    from_: str | None = Field(alias="from")
    to: str
    on: IsoDate
    reason: str
    by: Origin


class AddedArmRecord(Record):
    """An arm added by amendment: its specification (as in ``arms.yaml``) and opening date."""

    record_name: ClassVar[str] = "added arm"

    arm: dict[str, Any]
    opens_on: OptionalIsoDate


class ArmSummaryRecord(Record):
    """Where one arm stands: its state, since when and why."""

    record_name: ClassVar[str] = "arm summary"

    arm: str
    trait: str
    state: str
    since: IsoDate
    reason: str


class PlatformStateRecord(Record):
    """The stored platform (lifecycle) state: the design it was built under, the arms added by
    amendment, every move in order (the log), and a summary of the arms."""

    record_name: ClassVar[str] = "platform state"

    format: Annotated[str, _exactly(LIFECYCLE_FORMAT)]
    design_hash: str
    study_start: IsoDate
    added_arms: list[AddedArmRecord]
    log: list[TransitionRecord]
    arms: list[ArmSummaryRecord]

    def to_json_dict(self) -> dict[str, Any]:
        """The record as JSON-ready Python values (``from`` under its own name)."""
        return self.model_dump(mode="json", by_alias=True)


# ----------------------------------------------------------------------------- log entries
class ChainFields(Record):
    """The fields every entry of either log has (what the hash chain needs), other keys allowed.

    The one model that allows unknown keys: it reads a log whose kind (open or restricted) is
    not known (:func:`~palette_core.randomisation.allocation_log.load_entries`); the logs
    themselves are checked with :class:`OpenLogEntry` and :class:`RestrictedLogEntry`.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    record_name: ClassVar[str] = "log entry"

    v: LogVersion
    sequence: PositiveInt
    prev_hash: str
    hash: str


class OpenLogEntry(Record):
    """An entry of the open log: what a site may see, and the chain. Nothing else is accepted."""

    record_name: ClassVar[str] = "open log entry"

    v: LogVersion
    sequence: PositiveInt
    trial: str
    instance: Instance
    patient_id: str
    time: UtcTimestamp
    trait: str
    stratum: str
    stratum_sequence: PositiveInt
    arm: str
    commitment: Digest
    prev_hash: str
    hash: str


class StateReference(Record):
    """Which allocation state file gave the probabilities of a draw."""

    record_name: ClassVar[str] = "allocation state reference"

    file: str
    sha256: str
    source: str
    effective_from: IsoDate


class RestrictedLogEntry(Record):
    """An entry of the restricted log: the probabilities of the draw, where they came from, and
    the chain; it repeats the open entry's patient, trait, stratum and arm and carries the open
    entry's hash (``open_hash``).

    The first group of fields is what every restricted entry has; the second is what
    :func:`~palette_core.randomisation.randomise.randomise_patients` adds (a writer may leave
    them out, not add others).
    """

    record_name: ClassVar[str] = "restricted log entry"

    v: LogVersion
    sequence: PositiveInt
    open_hash: str
    patient_id: str
    trait: str
    stratum: str
    arm: str
    #: arm -> probability of the draw; its values are checked by :func:`probabilities_problem`
    #: (a ``restricted`` problem of the log, not a malformed line).
    probabilities: dict[str, Any]
    #: a keyed digest of the entry (:func:`palette_core.randomisation.randomise.seal`): only
    #: the secret's holder can recompute it, so a restricted entry rewritten without the secret
    #: fails the replay, and its hash cannot be found by trying candidate entries
    seal: Digest
    prev_hash: str
    hash: str

    age_group: str | None = None
    arm_order: list[str] | None = None
    state_probabilities: dict[str, float] | None = None
    excluded_for_age_group: list[str] | None = None
    state: StateReference | None = None
    positive_traits: str | None = None
    #: the positive traits open to the patient, among which the multi-trait draw chose
    traits_drawn_among: str | None = None
    assignment_rule: str | None = None
    assignment_policy: str | None = None
    trait_seed: Annotated[int | str | None, PlainValidator(_optional_seed)] = None
    design_hash: str | None = None


def probabilities_problem(probabilities: Mapping[str, Any], arm: str) -> str | None:
    """What is wrong with the probabilities of a restricted entry, or ``None``.

    They must be finite numbers in [0, 1] summing to 1 within :data:`LOG_SUM_TOLERANCE`, and the
    arm drawn must have a positive probability.
    """
    values = list(probabilities.values())
    if not values or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        return "probabilities are not finite numbers"
    if any(v < 0 or v > 1 for v in values):
        return "a probability lies outside [0, 1]"
    if abs(math.fsum(values) - 1.0) > LOG_SUM_TOLERANCE:
        return f"probabilities sum to {math.fsum(values):.12g}, not 1"
    if probabilities.get(arm, 0) <= 0:
        return f"the arm drawn ({arm}) has probability 0"
    return None


#: The fields of an open-log entry (exactly these).
OPEN_FIELDS = tuple(OpenLogEntry.model_fields)
#: The fields every restricted-log entry has.
RESTRICTED_FIELDS = tuple(k for k, f in RestrictedLogEntry.model_fields.items() if f.is_required())


__all__ = [
    "DIGEST_HEX_DIGITS",
    "INSTANCE_HEX_DIGITS",
    "LIFECYCLE_FORMAT",
    "LOG_SUM_TOLERANCE",
    "LOG_VERSION",
    "OPEN_FIELDS",
    "ORIGINS",
    "RESTRICTED_FIELDS",
    "STATE_SUM_TOLERANCE",
    "STATE_VERSION",
    "AddedArmRecord",
    "AllocationStateRecord",
    "ArmSummaryRecord",
    "ChainFields",
    "Digest",
    "Instance",
    "IsoDate",
    "NonEmptyText",
    "Origin",
    "OpenLogEntry",
    "OptionalIsoDate",
    "PlatformStateRecord",
    "PositiveInt",
    "Probability",
    "Record",
    "RestrictedLogEntry",
    "StateReference",
    "TransitionRecord",
    "UtcTimestamp",
    "describe",
    "dotted",
    "indexed",
    "probabilities_problem",
    "problems",
]
