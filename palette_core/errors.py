"""Typed errors raised at the boundaries of palette_core (design files, registry text).

Every error names the file, the entry (an id, or a list index where the entry has no id) and
the field, so that a statistician editing ``data/design`` sees exactly what to fix. The
classes follow rpact's vocabulary: an illegal value, an argument out of range, conflicting
arguments, plus the cases particular to a trial design (unknown reference, duplicate id,
missing control, unknown unit).
"""

from __future__ import annotations

from typing import NamedTuple


class PaletteError(Exception):
    """Base class of every error raised by palette_core."""


class DesignError(PaletteError, ValueError):
    """A design file is invalid.

    Parameters
    ----------
    file
        Path of the design file, relative to the design directory where possible.
    entry
        The entry at fault: an id such as ``"hinf_anakinra"``, or ``"[3]"`` for a list index.
    field
        The field at fault, dotted for nested fields (``"components[0].adult.unit"``).
    message
        What is wrong, in words.
    """

    kind = "invalid design"

    def __init__(self, file: str, entry: str | None, field: str | None, message: str):
        self.file = str(file)
        self.entry = entry
        self.field = field
        self.message = message
        where = self.file
        if entry is not None:
            where += f", entry {entry!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {self.kind}: {message}")


class DesignNotFoundError(PaletteError, LookupError):
    """No design folder was named and none can be found (no ``$PALETTE_DESIGN``, no checkout)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class DesignSchemaError(DesignError):
    """A value has the wrong type or form, a required field is missing or a field is unknown."""

    kind = "illegal argument"


class UnknownReferenceError(DesignError):
    """A reference (trait, arm, substance, biomarker, hook, finding, age group) is not declared."""

    kind = "unknown reference"


class DuplicateIdError(DesignError):
    """Two entries share an id (or a YAML mapping repeats a key)."""

    kind = "duplicate id"


class MissingControlError(DesignError):
    """A trait has no usual-care control arm."""

    kind = "missing control"


class UnknownUnitError(DesignError):
    """A unit is not declared in ``units.yaml`` or has the wrong dimension."""

    kind = "unit not recognised"


class OutOfRangeError(DesignError):
    """A number lies outside its allowed or physiologically plausible range."""

    kind = "argument out of range"


class ConflictingArgumentsError(DesignError):
    """Two valid values contradict each other (e.g. an arm open to an excluded age group)."""

    kind = "conflicting arguments"


class RegistryFormatError(PaletteError, ValueError):
    """The registry text does not have the structure the parser expects."""

    def __init__(self, file: str, line: int, message: str):
        self.file = str(file)
        self.line = line
        self.message = message
        super().__init__(f"{file}, line {line}: {message}")


class PatientFileError(PaletteError, ValueError):
    """A patient file cannot be read as a whole (unknown or missing columns, wrong format)."""

    def __init__(self, file: str, message: str):
        self.file = str(file)
        self.message = message
        super().__init__(f"{file}: {message}")


class PatientRecordError(PaletteError, ValueError):
    """One value of a patient record is invalid (unparseable, out of range, not a category)."""

    def __init__(
        self,
        field: str,
        value: object,
        message: str,
        patient_id: object = None,
        row: int | None = None,
    ):
        self.field = field
        self.value = value
        self.patient_id = patient_id
        self.row = row
        self.message = message
        where = f"row {row}, " if row is not None else ""
        known = patient_id is not None and str(patient_id) not in ("<NA>", "nan")
        who = f"patient {str(patient_id)!r}, " if known else ""
        super().__init__(f"{where}{who}field {field!r} = {value!r}: {message}")


class MissingPatientDataError(PaletteError):
    """A value needed for a computation (e.g. weight for a per-kg dose) is missing.

    Parameters
    ----------
    field
        The patient-record field that is missing (``"weight_kg"``, ``"height_cm"``).
    patient_id
        The patient's identifier, where known.
    message
        What needed the value, in words.
    """

    def __init__(self, field: str, patient_id: object, message: str):
        self.field = field
        self.patient_id = patient_id
        self.message = message
        known = patient_id is not None and str(patient_id) not in ("<NA>", "nan", "None")
        who = f"patient {str(patient_id)!r}, " if known else ""
        super().__init__(f"{who}field {field!r} missing: {message}")


class MissingHookError(DesignError):
    """A hook declared in ``traits.yaml`` has no implementation in ``palette_core.screening.traits.HOOKS``."""

    kind = "hook not implemented"


class LocatedError(PaletteError, ValueError):
    """Base of errors located by a phrase (``where``) rather than a file, entry and field."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


class AllocationError(LocatedError):
    """An input to the allocation rules is invalid (``palette_core.randomisation.allocation``).

    Raised at the Python boundary, never inside jitted code: an unknown trait or arm, an arm
    without a state, arrays of the wrong shape or with non-finite values, negative counts, or
    an allocation record whose probabilities do not sum to 1 or name an arm of another trait.

    Parameters
    ----------
    where
        What is at fault, in words: ``"trait 'mals', arm 'hinf_anakinra'"``,
        ``"argument 'draws'"``, ``"allocation state, field 'effective_from'"``.
    message
        What is wrong, in words.
    """


class IllegalTransitionError(PaletteError, ValueError):
    """An arm lifecycle move is not allowed (``palette_core.randomisation.lifecycle``).

    Raised for a move that ``proposed/lifecycle.yaml`` does not declare (closed -> open,
    planned -> graduated), a date before the last move in the arm's trait, an unknown arm, a
    move of usual care on its own, or an arm that cannot be added to its trait.

    Parameters
    ----------
    arm
        The arm's id.
    from_state
        Its state before the move (``None`` for an unknown arm or an arm being added).
    to_state
        The state asked for.
    on
        The date of the move.
    message
        Why it is refused, in words.
    """

    def __init__(self, arm: str, from_state: str | None, to_state: str, on: object, message: str):
        self.arm = arm
        self.from_state = from_state
        self.to_state = to_state
        self.on = on
        self.message = message
        super().__init__(f"arm {arm!r}, {from_state} -> {to_state} on {on}: {message}")


class LifecycleStateError(PaletteError, ValueError):
    """A stored platform state (JSON) is malformed, or is not reachable by legal moves.

    Parameters
    ----------
    where
        The part at fault: ``"log[3]"``, ``"added_arms[0].opens_on"``, ``"design_hash"``.
    message
        What is wrong, in words.
    """

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"platform state, {where}: {message}")


# ----------------------------------------------------------------------------- randomisation
class RecordProblem(NamedTuple):
    """One problem of a JSON record: where (keys and list indices from the top) and what."""

    loc: tuple[str | int, ...]
    message: str


class RecordError(PaletteError, ValueError):
    """A JSON record does not match its model (``palette_core.randomisation.records``).

    The modules that read records catch it and raise their own typed error naming the file and
    the entry (:class:`AllocationStateError`, :class:`AllocationError`,
    :class:`LifecycleStateError`); the allocation log reports it as a malformed line.

    Parameters
    ----------
    record
        Which record: ``"allocation state"``, ``"platform state"``, ``"open log entry"``.
    problems
        Every problem found, in the order of the record's fields (at least one).
    """

    def __init__(self, record: str, problems: tuple[RecordProblem, ...]):
        self.record = record
        self.problems = problems
        first = problems[0]
        where = ".".join(str(k) for k in first.loc) or "top level"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{record}, {where}: {first.message}{more}")


class AllocationStateError(PaletteError, ValueError):
    """An allocation state file (the probabilities in force) is invalid.

    ``entry`` is dotted: ``"traits.hyperinflammation.hinf_tocilizumab"``.
    """

    def __init__(self, file: str, entry: str | None, message: str):
        self.file = str(file)
        self.entry = entry
        self.message = message
        where = self.file if entry is None else f"{self.file}, entry {entry!r}"
        super().__init__(f"{where}: {message}")


class TrialSecretError(PaletteError):
    """The trial secret (the key of the concealed draw) is missing, unreadable or too short."""


class RandomisationRefusedError(PaletteError):
    """A patient cannot be randomised (invalid record, not eligible, no trait, no open arm).

    Nothing is written to the allocation log when this is raised.
    """

    def __init__(self, patient_id: object, reason: str, row: int | None = None):
        self.patient_id = patient_id
        self.reason = reason
        self.row = row
        where = f"row {row}, " if row is not None else ""
        super().__init__(f"{where}patient {str(patient_id)!r}: not randomised: {reason}")


class AlreadyRandomisedError(RandomisationRefusedError):
    """The patient id is already in the allocation log: a patient is randomised once.

    ``committed`` is the allocation already logged for the patient (sequence, patient, time,
    trait, arm), so that a site that did not see it (after a crash) learns it.
    """

    def __init__(
        self, patient_id: object, reason: str, row: int | None = None, committed: object = None
    ):
        super().__init__(patient_id, reason, row)
        self.committed = committed


class AllocationLogError(PaletteError):
    """An allocation log cannot be read, appended to or recovered."""

    def __init__(self, file: str, message: str, line: int | None = None):
        self.file = str(file)
        self.line = line
        self.message = message
        where = self.file if line is None else f"{self.file}, line {line}"
        super().__init__(f"{where}: {message}")


class LogIntegrityError(AllocationLogError):
    """The log fails verification, so nothing is appended (``problems`` lists why)."""

    def __init__(self, file: str, message: str, problems: tuple[str, ...] = ()):
        self.problems = problems
        super().__init__(file, message)


class LogLockError(AllocationLogError):
    """The log's lock could not be taken in time (another writer holds it)."""


# ----------------------------------------------------------------------------- decisions
class DecisionInputError(LocatedError):
    """An input to the posterior quantities or the decision rules is invalid.

    Raised at the Python boundary of ``palette_core.analysis.quantities`` and
    ``palette_core.analysis.decisions`` (never inside jitted code): draws of the wrong shape or with
    non-finite values, an unknown outcome or arm, a stored quantities table that lacks a row or
    a column the rules need or was computed at another odds-ratio reference than the design
    asks for, or per-arm information that is missing or negative.

    Parameters
    ----------
    where
        What is at fault, in words: ``"argument 'draws_by_outcome', outcome 'osfd28'"``,
        ``"quantities table, arm 'hinf_anakinra', outcome 'mortality28'"``.
    message
        What is wrong, in words.
    """


# ----------------------------------------------------------------------------- models and fitting
class ModelDataError(PaletteError, ValueError):
    """Cell counts or model arguments handed to the joint model are invalid.

    ``column`` names the column (or argument) at fault, ``row`` the row of the cell table.
    """

    def __init__(self, message: str, column: str | None = None, row: int | None = None):
        self.column = column
        self.row = row
        self.message = message
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConvergenceError(PaletteError):
    """A fit failed its convergence gates (R-hat, bulk/tail ESS, divergences).

    ``failures`` lists each failing diagnostic in words.
    """

    def __init__(self, failures: tuple[str, ...]):
        self.failures = tuple(failures)
        super().__init__("MCMC failed its convergence gates: " + "; ".join(self.failures))


# ----------------------------------------------------------------------------- stored results
class StoredResultError(PaletteError):
    """A stored result in ``data/derived`` is missing or unreadable (run ``palette results rebuild``)."""


class StaleResultError(StoredResultError):
    """A stored result was computed from another design than the current one.

    ``name`` is the result, ``stored`` and ``current`` the design hashes.
    """

    def __init__(self, name: str, stored: str, current: str):
        self.name, self.stored, self.current = name, stored, current
        super().__init__(
            f"stored result {name!r} was computed from design {stored[:12]}, but the current "
            f"design is {current[:12]}: run `palette results rebuild`"
        )


# ----------------------------------------------------------------------------- data exports
class ExportFileError(PaletteError, ValueError):
    """A data export cannot be read as a whole (``palette_core.exports.contract``).

    Raised for a missing folder or file, a CSV that is not UTF-8 or not rectangular, an unknown,
    repeated or missing column, or metadata (``export.yaml``) that is missing, malformed or for
    another trial. Problems of single rows never raise: they mark the row invalid.

    Parameters
    ----------
    path
        The export folder or the file at fault.
    field
        The column or metadata entry at fault (``None`` for the file as a whole).
    message
        What is wrong, in words.
    """

    def __init__(self, path: object, field: str | None, message: str):
        self.path = str(path)
        self.field = field
        self.message = message
        where = self.path if field is None else f"{self.path}, field {field!r}"
        super().__init__(f"{where}: {message}")


class ExportRowError(PaletteError, ValueError):
    """One row of a data export is invalid (raised only on request, e.g. ``require_valid``).

    ``line`` is the 1-based line of the CSV file (the header is line 1), ``row`` the 0-based
    index of the data row.
    """

    def __init__(
        self,
        line: int | None,
        row: int | None,
        patient_id: object,
        field: str,
        value: object,
        message: str,
    ):
        self.line = line
        self.row = row
        self.patient_id = patient_id
        self.field = field
        self.value = value
        self.message = message
        where = f"line {line}, " if line is not None else ""
        known = patient_id is not None and str(patient_id) not in ("<NA>", "nan", "None", "")
        who = f"patient {str(patient_id)!r}, " if known else ""
        super().__init__(f"{where}{who}field {field!r} = {value!r}: {message}")


# ----------------------------------------------------------------------------- simulation
class ScenarioError(PaletteError, ValueError):
    """A scenario file of the trial simulator is invalid (``palette_core.simulate.engine``).

    Raised once, when the file is loaded: not YAML, an unknown trial program, a missing,
    unknown or ill-typed field, or values that contradict each other (looks that go down,
    probabilities that do not sum to 1, a scenario with another number of looks than the
    file's settings). Nothing is validated inside jitted code.

    Parameters
    ----------
    file
        Path of the scenario file.
    entry
        The entry at fault: ``"settings"``, a scenario's name, or ``"scenarios[2]"`` where the
        scenario has no usable name; ``None`` for the file as a whole.
    field
        The field at fault, dotted for nested fields (``"true_ys[1]"``).
    message
        What is wrong, in words.
    """

    def __init__(self, file: object, entry: str | None, field: str | None, message: str):
        self.file = str(file)
        self.entry = entry
        self.field = field
        self.message = message
        where = self.file
        if entry is not None:
            where += f", entry {entry!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
