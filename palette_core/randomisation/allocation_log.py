"""The allocation log: append-only, hash-chained JSON Lines, with an anchor, a lock and recovery.

Two logs are written for every randomised patient:

* the **open log** (``alloc.jsonl``) holds what a site may see: ``sequence`` (1, 2, ... over the
  whole log), ``trial``, ``instance`` (the log's random instance value, the same in every entry),
  ``patient_id``, ``time`` (UTC), ``trait``, ``stratum``, ``stratum_sequence``, ``arm``,
  ``commitment`` (a keyed digest of the entry, see :mod:`palette_core.randomisation.randomise`),
  ``prev_hash`` and ``hash``. No other field is accepted, so nothing restricted can leak into it
  by mistake (:class:`~palette_core.randomisation.records.OpenLogEntry`);
* the **restricted log** (``alloc.restricted.jsonl``) holds, for the independent statistician,
  the probabilities in force for that draw and where they came from (the allocation state file
  and its SHA-256). Each restricted entry repeats ``sequence``, ``patient_id``, ``trait``,
  ``stratum`` and ``arm``, carries ``open_hash``, the hash of the open entry it belongs to, and
  ``seal``, a keyed digest of its content; it is hash-chained in its own right
  (:class:`~palette_core.randomisation.records.RestrictedLogEntry`, which also declares the
  fields that the randomiser adds: a field it does not declare is refused).

Every file this module creates (both logs, their anchors, the lock, a copy of removed bytes) is
created with mode 0600: the randomisation service and the statistician read them; a site sees the
output of ``palette randomise``. A restricted log or anchor found readable by group or others is
tightened to 0600 before the next append (:func:`tighten_permissions`) and reported by
:func:`verify_log` (kind ``exposed``) until then: its probabilities may have been read.

Each entry's ``hash`` is ``sha256(canonical_json(entry without "hash"))`` in hex, where
``canonical_json`` is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` encoded as UTF-8; ``prev_hash`` is the previous entry's ``hash`` (64 zeros
for the first entry). An auditor can recompute both with any JSON library. A line nested deeper
than :data:`MAX_JSON_DEPTH` levels is malformed (never a recursion error).

The anchor ``<log>.head`` holds the last sequence, its hash and the log's size in bytes; it is
replaced atomically (temporary file, fsync, ``os.replace``, directory fsync) after every
append. The restricted log has its own anchor next to it.

What :func:`verify_log` checks
------------------------------
Each line parses as an entry of its log; the chain (hashes, ``prev_hash``, sequence 1, 2, ...
without gap, repeat or reordering); the anchors (a truncated tail, a rewritten file); in the open
log, that every entry has the first entry's trial and instance, that ``stratum_sequence`` counts
1, 2, ... within each stratum in log order, that no patient id appears twice and that times never
go backwards; and that the restricted log exists (unless only the open log is asked for) and
holds exactly one linked, agreeing entry (patient, trait, stratum, arm, ``open_hash``) per
committed open entry, with probabilities that sum to 1 and give the arm drawn a positive
probability.

Writing
-------
:func:`append_entry` takes an exclusive ``fcntl.flock`` on ``<log>.lock``, verifies both logs,
lets the caller build the entry from what is already logged (so that sequence numbers, the
time and duplicate checks are decided under the lock), then writes, in this order: the restricted
line (fsync), the open line (fsync; **this is the commit point**), the restricted anchor, the open
anchor. A line is written with one ``write`` of the whole line and its newline; a line without
its final newline is incomplete and never counts as written. So a writer killed at any moment
leaves one of: nothing; an incomplete last line in the restricted or the open log; a complete
restricted entry whose open entry is missing (not committed); or anchors one entry behind a
committed entry. :func:`verify_log` reports each of these and :func:`recover_log` repairs
exactly these and nothing else: it removes an incomplete final line, or an uncommitted
restricted entry, only when no anchor covers it, saves what it removed next to the log (mode
0600; its content is never printed: it may hold the arm of the stratum's next draw), and brings
the anchors up to date. Appending to a log that does not verify is refused. The open log and the
restricted log must be two different files, in a folder that exists.

Security model (what the chain proves and what it does not)
-----------------------------------------------------------
* The chain makes every committed entry depend on all the entries before it. Editing a field,
  removing, inserting or reordering entries is detected and located (:func:`verify_log` names
  the line) **unless the writer recomputes every later hash**. Removing entries from the end
  leaves a valid chain, which is why the anchor exists: an anchor ahead of the log is a
  truncated tail.
* Anyone with write access to the log files can rebuild a whole, consistent chain and anchor
  (change an arm, recompute every hash after it, rewrite ``.head``). The chain alone cannot
  detect that. Two things can. (1) A replay with the secret
  (:func:`palette_core.randomisation.randomise.replay_log`): every open entry's ``commitment``
  and every restricted entry's ``seal`` is a keyed digest of the whole entry, which nobody
  without the secret can recompute, so an entry rewritten, renumbered, moved or given another
  patient id fails the replay. (2) A copy of the head kept where the writer cannot change it:
  :func:`head_digest` prints one line (trial, sequence, the open entry's hash and the restricted
  entry's hash) for the independent statistician to countersign, timestamp or publish off-site at
  each look (e.g. an RFC 3161 timestamp or a signed e-mail), and
  ``verify_log(..., anchor=(sequence, hash, restricted_hash))`` (``palette log verify
  --anchor``) checks that both logs still contain those entries unchanged. Entries up to the
  last countersigned digest are protected against a rewrite even by a holder of the secret.
* The chain does not prove that the recorded time is true (it is the writer's clock), that the
  patient data were true, or that the arm was drawn as claimed: only a replay with the secret
  proves the draw.
* The restricted log's hashes are kept out of the open files (its anchor sits beside it). They
  can be published in the countersigned digest: the ``seal`` makes a restricted entry's hash
  impossible to find by trying candidate entries (probabilities often lie on a coarse grid).
* A write killed mid-way can leave in the files the arm of a draw that was never committed
  (an incomplete open line, an uncommitted restricted entry). :func:`recover_log` removes it
  and the next patient of that stratum then receives the same draw (same stratum sequence,
  same ``u``). So whoever can both stop the writer and read its files before recovery could
  learn the next arm of one stratum: the files are 0600, recovery prints nothing of what it
  removed, and sites see the allocations (``palette randomise`` output, which after a crash
  shows the arms already committed) rather than the files.
* The lock is advisory: it excludes every writer that uses this module, not an editor or another
  program. ``flock`` is reliable on a local file system; do not keep the log on NFS.

Examples
--------
>>> import tempfile, pathlib
>>> log = pathlib.Path(tempfile.mkdtemp()) / "alloc.jsonl"
>>> body = {"trial": "T", "instance": "0f" * 16, "patient_id": "p1",
...         "time": "2026-05-01T00:00:00.000000Z", "trait": "t", "stratum": "t",
...         "stratum_sequence": 1, "arm": "a", "commitment": "00" * 32}
>>> opened, restricted = append_entry(log, lambda snap: (body, {"patient_id": "p1",
...     "trait": "t", "stratum": "t", "arm": "a", "probabilities": {"a": 1.0},
...     "seal": "00" * 32}))
>>> opened["sequence"], verify_log(log).ok, oct(log.stat().st_mode & 0o777)
(1, True, '0o600')
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from palette_core.errors import AllocationLogError, LogIntegrityError, LogLockError
from palette_core.isotime import utc_timestamp
from palette_core.randomisation.records import (
    LOG_VERSION,
    OPEN_FIELDS,
    RESTRICTED_FIELDS,
    ChainFields,
    OpenLogEntry,
    Record,
    RestrictedLogEntry,
    probabilities_problem,
)

GENESIS = "0" * 64
#: Mode of every file this module creates (logs, anchors, lock, removed bytes).
FILE_MODE = 0o600
#: The deepest nesting of objects and lists a log line or an anchor may have (entries have 3).
MAX_JSON_DEPTH = 8

#: Fields that :func:`append_entry` fills in itself.
CHAIN_FIELDS = ("v", "sequence", "prev_hash", "hash")

# Problem kinds reported by verify_log.
PARTIAL = "partial_line"
MALFORMED = "malformed"
EDITED = "edited"
REMOVED = "removed"
REORDERED = "reordered"
DUPLICATE = "duplicate"
CHAIN = "chain"
TRUNCATED = "truncated"
ANCHOR = "anchor"
ANCHOR_BEHIND = "anchor_behind"
ANCHOR_MISSING = "anchor_missing"
UNCOMMITTED = "uncommitted"
RESTRICTED = "restricted"
COUNTERSIGNED = "countersigned"
STRATUM_SEQUENCE = "stratum_sequence"
DUPLICATE_PATIENT = "duplicate_patient"
TIME_ORDER = "time_order"
INSTANCE = "instance"
EXPOSED = "exposed"
#: Kinds that a killed writer can leave and :func:`recover_log` repairs.
CRASH_KINDS = frozenset({PARTIAL, ANCHOR_BEHIND, ANCHOR_MISSING, UNCOMMITTED})


# ----------------------------------------------------------------------------- basics
def canonical_json(obj: Any) -> bytes:
    """The canonical JSON bytes that are hashed and written (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``entry`` without its ``hash`` field."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in entry.items() if k != "hash"})
    ).hexdigest()


def restricted_path_for(log: str | Path) -> Path:
    """Default restricted log of an open log: ``alloc.jsonl`` -> ``alloc.restricted.jsonl``."""
    p = Path(log)
    return p.with_name(f"{p.stem}.restricted{p.suffix}" if p.suffix else f"{p.name}.restricted")


def head_path_for(log: str | Path) -> Path:
    """The anchor file of a log: ``<log>.head``."""
    return Path(f"{log}.head")


def lock_path_for(log: str | Path) -> Path:
    """The lock file of a log (and of its restricted log): ``<log>.lock``."""
    return Path(f"{log}.lock")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_log_paths(path: str | Path, restricted: str | Path, *, writing: bool = False) -> None:
    """Refuse an open log and a restricted log that are one file (by name, link or inode), a
    restricted log that is the open log's anchor or lock, and, for ``writing``, a folder that
    does not exist.

    Raises
    ------
    AllocationLogError
        Naming the file at fault.
    """
    path, rpath = Path(path), Path(restricted)
    others = (path, head_path_for(path), lock_path_for(path))
    if any(_same_file(rpath, p) for p in others):
        raise AllocationLogError(
            str(rpath),
            f"the restricted log cannot be the open log {path} (or its anchor or lock): the "
            "probabilities would be written where sites can read them",
        )
    if writing:
        for p in (path, rpath):
            if not p.parent.is_dir():
                raise AllocationLogError(
                    str(p), f"folder {p.parent} does not exist: create it before randomising"
                )


def tighten_permissions(restricted: str | Path) -> list[str]:
    """Set the restricted log and its anchor to mode 0600 if group or others may read them.

    Returns one line per file tightened (empty when nothing was to do). Its probabilities may
    have been read meanwhile: :func:`verify_log` reports such a file until this is done.
    """
    done = []
    for p in (Path(restricted), head_path_for(restricted)):
        if p.exists() and p.stat().st_mode & 0o077:
            before = p.stat().st_mode & 0o777
            os.chmod(p, FILE_MODE)
            done.append(
                f"{p}: mode {before:04o} tightened to {FILE_MODE:04o} (group or others could "
                "read the restricted probabilities)"
            )
    return done


@dataclass(frozen=True)
class Head:
    """An anchor: the last committed sequence, its hash and the log's size in bytes."""

    sequence: int
    hash: str
    bytes: int


@dataclass(frozen=True)
class LogProblem:
    """One problem found in a log: its kind, the file and line at fault, and what is wrong."""

    kind: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class VerificationReport:
    """What :func:`verify_log` found. ``ok`` when there is no problem."""

    path: Path
    restricted_path: Path | None
    entries: int
    restricted_entries: int | None
    head: Head | None
    problems: tuple[LogProblem, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(p.kind for p in self.problems)

    def lines(self) -> list[str]:
        """A readable report, one problem or note per line."""
        status = "intact" if self.ok else f"{len(self.problems)} problem(s)"
        restricted = (
            f", restricted log {self.restricted_path} ({self.restricted_entries} entries)"
            if self.restricted_entries is not None
            else ""
        )
        out = [f"{self.path}: {self.entries} entries{restricted}: {status}"]
        out += [f"  ! [{p.kind}] {p}" for p in self.problems]
        out += [f"  note: {n}" for n in self.notes]
        return out


@dataclass(frozen=True)
class RemovedBytes:
    """What :func:`recover_log` removed: the file, the line, how many bytes, where a copy was
    saved (mode 0600). The removed text itself is not part of the report: it may hold the arm of
    the stratum's next draw."""

    file: str
    line: int
    n_bytes: int
    saved_to: str
    reason: str


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover_log` did. ``ok`` when both logs verify afterwards."""

    path: Path
    actions: tuple[str, ...]
    removed: tuple[RemovedBytes, ...]
    problems: tuple[LogProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# ----------------------------------------------------------------------------- scanning
@dataclass
class _Line:
    number: int
    start: int
    end: int  # offset just after the newline
    entry: dict[str, Any] | None


@dataclass
class _Scan:
    path: Path
    exists: bool
    size: int = 0
    lines: list[_Line] = field(default_factory=list)
    partial: bytes = b""
    partial_start: int = 0
    problems: list[LogProblem] = field(default_factory=list)

    @property
    def parsed(self) -> list[_Line]:
        return [ln for ln in self.lines if ln.entry is not None]

    @property
    def complete_size(self) -> int:
        return self.lines[-1].end if self.lines else 0

    @property
    def last(self) -> _Line | None:
        parsed = self.parsed
        return parsed[-1] if parsed else None

    def add(self, kind: str, line: int | None, message: str) -> None:
        self.problems.append(LogProblem(kind, str(self.path), line, message))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} repeated")
        out[k] = v
    return out


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _loads(raw: bytes) -> Any:
    """Parse one line or anchor: UTF-8 JSON, no repeated key, at most :data:`MAX_JSON_DEPTH`
    levels deep (a deeper value raises ``ValueError``, never ``RecursionError``)."""
    text = raw.decode("utf-8")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _scan(path: Path, model: type[Record]) -> _Scan:
    """Parse a log line by line and check each entry and the chain between them."""
    if not path.exists():
        return _Scan(path=path, exists=False)
    data = path.read_bytes()
    scan = _Scan(path=path, exists=True, size=len(data))
    pos, number = 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl == -1:
            scan.partial, scan.partial_start = data[pos:], pos
            scan.add(
                PARTIAL,
                number + 1,
                f"incomplete last line ({len(data) - pos} bytes, no final newline): a write "
                "stopped mid-way; `palette log recover` removes it",
            )
            break
        number += 1
        raw, entry = data[pos:nl], None
        try:
            value = _loads(raw)
            problem = model.problem(value)
            if problem is None:
                entry = value
            else:
                scan.add(MALFORMED, number, f"malformed entry: {problem}")
        except (UnicodeDecodeError, ValueError) as exc:
            scan.add(MALFORMED, number, f"not a JSON entry ({exc})")
        scan.lines.append(_Line(number, pos, nl + 1, entry))
        pos = nl + 1
    _check_chain(scan)
    return scan


def _check_chain(scan: _Scan) -> None:
    parsed = scan.parsed
    all_seqs = {ln.entry["sequence"] for ln in parsed}  # type: ignore[index]
    hash_line = {ln.entry["hash"]: ln for ln in parsed}  # type: ignore[index]
    seen: dict[int, int] = {}
    top, top_line, prev = 0, 0, None
    for ln in parsed:
        e = ln.entry
        assert e is not None
        s = e["sequence"]
        if entry_hash(e) != e["hash"]:
            scan.add(
                EDITED,
                ln.number,
                f"entry edited: sequence {s} does not match its hash (the content was changed "
                "after it was written)",
            )
        if s in seen:
            scan.add(
                DUPLICATE,
                ln.number,
                f"sequence {s} appears again (first at line {seen[s]})",
            )
        elif s < top:
            scan.add(
                REORDERED,
                ln.number,
                f"entries reordered: sequence {s} comes after sequence {top} (line {top_line})",
            )
        elif s > top + 1:
            absent = [m for m in range(top + 1, s) if m not in all_seqs]
            if absent:
                span = f"{absent[0]}" if len(absent) == 1 else f"{absent[0]}..{absent[-1]}"
                scan.add(
                    REMOVED,
                    ln.number,
                    f"entry removed: sequence {span} missing before sequence {s}",
                )
        expected = GENESIS if prev is None else prev.entry["hash"]  # type: ignore[index]
        if e["prev_hash"] != expected:
            target = hash_line.get(e["prev_hash"])
            if prev is None:
                what = (
                    "the first line does not start the chain (prev_hash is not the genesis value)"
                )
            else:
                what = f"prev_hash does not match the hash of line {prev.number}"
            if target is not None:
                what += f"; it links to line {target.number} (sequence {target.entry['sequence']})"  # type: ignore[index]
            elif e["prev_hash"] != GENESIS:
                what += "; it links to an entry not in the file (removed or altered)"
            scan.add(CHAIN, ln.number, f"chain broken: {what}")
        seen.setdefault(s, ln.number)
        if s > top:
            top, top_line = s, ln.number
        prev = ln


def _check_open_entries(scan: _Scan) -> None:
    """The open log's own rules: one trial and instance; ``stratum_sequence`` counts 1, 2, ...
    within each stratum in log order; each patient id once; times never go backwards (the
    fixed-width UTC time stamps order as text)."""
    parsed = scan.parsed
    if not parsed:
        return
    first = parsed[0].entry
    assert first is not None
    counts: dict[str, int] = {}
    patients: dict[str, tuple[int, int]] = {}
    latest: tuple[str, int] | None = None
    for ln in parsed:
        e = ln.entry
        assert e is not None
        seq = e["sequence"]
        if (e["trial"], e["instance"]) != (first["trial"], first["instance"]):
            scan.add(
                INSTANCE,
                ln.number,
                f"sequence {seq}: trial {e['trial']!r} and instance {e['instance']} are not the "
                f"first entry's ({first['trial']!r}, {first['instance']}): entries of another "
                "log were mixed in",
            )
        stratum, number = e["stratum"], e["stratum_sequence"]
        expected = counts.get(stratum, 0) + 1
        if number != expected:
            what = "repeated" if number < expected else "missing before it"
            scan.add(
                STRATUM_SEQUENCE,
                ln.number,
                f"sequence {seq}: stratum {stratum!r} has stratum_sequence {number}, expected "
                f"{expected} (within a stratum entries count 1, 2, ... in log order: a number "
                f"{what}, i.e. an entry of this stratum removed, repeated or renumbered)",
            )
        counts[stratum] = max(expected, number)
        pid = e["patient_id"]
        if pid in patients:
            line, at = patients[pid]
            scan.add(
                DUPLICATE_PATIENT,
                ln.number,
                f"sequence {seq}: patient {pid!r} was already randomised at sequence {at} "
                f"(line {line}): a patient is randomised once",
            )
        else:
            patients[pid] = (ln.number, seq)
        if latest is not None and e["time"] < latest[0]:
            scan.add(
                TIME_ORDER,
                ln.number,
                f"sequence {seq}: time {e['time']} is before the time of line {latest[1]} "
                f"({latest[0]}): times never go backwards in a log written under its lock",
            )
        if latest is None or e["time"] >= latest[0]:
            latest = (e["time"], ln.number)


def _read_head(path: Path) -> tuple[Head | None, str | None]:
    hp = head_path_for(path)
    if not hp.exists():
        return None, None
    try:
        raw = _loads(hp.read_bytes())
        head = Head(int(raw["sequence"]), str(raw["hash"]), int(raw["bytes"]))
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"anchor {hp} unreadable ({exc})"
    return head, None


def _check_head(scan: _Scan, head: Head | None, head_error: str | None) -> None:
    hp = head_path_for(scan.path)
    if head_error is not None:
        scan.add(ANCHOR, None, head_error)
        return
    last = scan.last
    if head is None:
        first_only = len(scan.lines) == 1 and last is not None and last.entry["sequence"] == 1  # type: ignore[index]
        if first_only:  # the only way a writer leaves a log without its anchor
            scan.add(
                ANCHOR_MISSING,
                None,
                f"anchor {hp.name} not found after the first entry: a write stopped before "
                "the first anchor was written; `palette log recover` writes it",
            )
        elif scan.lines:
            scan.add(
                ANCHOR,
                None,
                f"anchor {hp.name} not found: it was deleted (a log with more than one entry "
                "always has one), so removal of entries from the end cannot be checked",
            )
        return
    last_seq = last.entry["sequence"] if last is not None else 0  # type: ignore[index]
    if head.sequence > last_seq:
        ends = f"ends at sequence {last_seq} (line {last.number})" if last else "is empty"
        missing = (
            f"{last_seq + 1}"
            if head.sequence == last_seq + 1
            else f"{last_seq + 1}..{head.sequence}"
        )
        scan.add(
            TRUNCATED,
            None if last is None else last.number + 1,
            f"tail truncated: the anchor {hp.name} records sequence {head.sequence} "
            f"(hash {head.hash[:12]}) but the log {ends}: sequence {missing} removed from the end",
        )
        return
    if head.sequence == 0:
        return
    at = next((ln for ln in scan.parsed if ln.entry["sequence"] == head.sequence), None)  # type: ignore[index]
    if at is None:
        scan.add(ANCHOR, None, f"the anchored sequence {head.sequence} is not in the log")
    elif at.entry["hash"] != head.hash:  # type: ignore[index]
        scan.add(
            ANCHOR,
            at.number,
            f"the anchor's hash of sequence {head.sequence} does not match the entry: the "
            "entry was altered (and re-hashed) or the log was replaced",
        )
    elif head.sequence < last_seq:
        scan.add(
            ANCHOR_BEHIND,
            at.number,
            f"the anchor {hp.name} records sequence {head.sequence} but the log ends at "
            f"sequence {last_seq}: a write stopped before the anchor was updated; "
            "`palette log recover` updates it",
        )
    elif head.bytes != scan.complete_size:
        scan.add(
            ANCHOR,
            None,
            f"the log's size ({scan.complete_size} bytes of complete lines) differs from the "
            f"anchor's ({head.bytes}): the file was rewritten",
        )


def _cross_check(open_scan: _Scan, rscan: _Scan) -> None:
    """The restricted log must hold exactly one linked entry per committed open entry."""
    by_seq = {ln.entry["sequence"]: ln for ln in open_scan.parsed}  # type: ignore[index]
    if not rscan.exists:
        if open_scan.lines:
            rscan.add(
                RESTRICTED,
                None,
                "restricted log not found: it holds the probabilities of every draw and must be "
                "kept with the open log (check the open log alone with --open-only)",
            )
        return
    rby_seq = {ln.entry["sequence"]: ln for ln in rscan.parsed}  # type: ignore[index]
    last = open_scan.last
    open_last = last.entry["sequence"] if last is not None else 0  # type: ignore[index]
    extra = sorted(s for s in rby_seq if s not in by_seq)
    rlast = rscan.last
    if (
        extra == [open_last + 1] and rlast is not None and rlast.entry["sequence"] == open_last + 1  # type: ignore[index]
    ):
        rscan.add(
            UNCOMMITTED,
            rlast.number,
            f"restricted entry for sequence {open_last + 1} has no open entry: a write stopped "
            "before it was committed; `palette log recover` removes it",
        )
    elif extra:
        rscan.add(
            RESTRICTED,
            None,
            f"restricted entries for sequence(s) {extra[:10]} not in the open log",
        )
    missing = [s for s in by_seq if s not in rby_seq]
    if missing:
        rscan.add(
            RESTRICTED,
            None,
            f"no restricted entry for sequence(s) {missing[:10]} "
            f"(open line(s) {[by_seq[s].number for s in missing[:10]]})",
        )
    for s, rln in rby_seq.items():
        r = rln.entry
        assert r is not None
        problem = probabilities_problem(r["probabilities"], r["arm"])
        if problem:
            rscan.add(RESTRICTED, rln.number, f"sequence {s}: {problem}")
        oln = by_seq.get(s)
        if oln is None:
            continue
        o = oln.entry
        assert o is not None
        if r["open_hash"] != o["hash"]:
            rscan.add(
                RESTRICTED,
                rln.number,
                f"sequence {s}: open_hash does not match the open entry (line {oln.number})",
            )
        differ = [k for k in ("patient_id", "trait", "stratum", "arm") if r[k] != o[k]]
        if differ:
            rscan.add(
                RESTRICTED,
                rln.number,
                f"sequence {s}: {differ} differ from the open entry (line {oln.number})",
            )


#: A countersigned anchor: ``(sequence, open hash, restricted hash or None)``.
Anchor = tuple[int, str] | tuple[int, str, str | None]


def _check_countersigned(scan: _Scan, seq: int, digest: str, what: str) -> None:
    at = next((ln for ln in scan.parsed if ln.entry["sequence"] == seq), None)  # type: ignore[index]
    if at is None:
        scan.add(COUNTERSIGNED, None, f"the countersigned sequence {seq} is not in the {what}")
    elif at.entry["hash"] != digest or entry_hash(at.entry) != digest:  # type: ignore[index]
        scan.add(
            COUNTERSIGNED,
            at.number,
            f"sequence {seq} does not match the countersigned hash {digest[:12]}: the {what} "
            "was rewritten after it was countersigned",
        )


def _verify_scans(
    path: Path, restricted: Path | None, anchor: Anchor | None = None
) -> tuple[_Scan, _Scan | None, Head | None]:
    scan = _scan(path, OpenLogEntry)
    head, head_error = _read_head(path)
    _check_head(scan, head, head_error)
    _check_open_entries(scan)
    rscan = None
    if restricted is not None:
        rscan = _scan(restricted, RestrictedLogEntry)
        rhead, rhead_error = _read_head(restricted)
        _check_head(rscan, rhead, rhead_error)
        _cross_check(scan, rscan)
    if anchor is not None:
        seq, digest = anchor[0], anchor[1]
        _check_countersigned(scan, seq, digest, "log")
        rdigest = anchor[2] if len(anchor) > 2 else None
        if rdigest is not None and rscan is not None:
            _check_countersigned(rscan, seq, rdigest, "restricted log")
    return scan, rscan, head


def verify_log(
    path: str | Path,
    restricted: str | Path | bool | None = None,
    anchor: Anchor | None = None,
) -> VerificationReport:
    """Check an allocation log, its anchor and its restricted log.

    Parameters
    ----------
    path
        The open log.
    restricted
        The restricted log: ``None`` or ``True`` checks :func:`restricted_path_for` (a missing
        restricted log is a problem), a path checks that file, ``False`` checks the open log only
        (e.g. at a site that holds only the open log; a note says so).
    anchor
        ``(sequence, hash)`` or ``(sequence, hash, restricted_hash)`` from a countersigned
        :func:`head_digest`: the log (and, unless ``restricted=False``, the restricted log) must
        still hold that entry unchanged.

    Returns
    -------
    VerificationReport
        Every problem with its kind and line: ``edited`` (hash mismatch), ``removed``
        (sequence gap), ``reordered``, ``duplicate``, ``chain`` (prev_hash mismatch),
        ``truncated`` (anchor ahead of the log), ``partial_line``, ``malformed``, ``anchor``,
        ``anchor_behind``, ``anchor_missing``, ``uncommitted``, ``restricted`` (missing, or
        inconsistent with the open log), ``countersigned``, ``stratum_sequence``,
        ``duplicate_patient``, ``time_order``, ``instance`` and ``exposed`` (a restricted file
        readable by group or others).

    Raises
    ------
    AllocationLogError
        Neither the log nor its anchor exists, or the restricted log is the open log.
    """
    path = Path(path)
    named = restricted if isinstance(restricted, str | Path) else restricted_path_for(path)
    if not any(p.exists() for p in (path, head_path_for(path), Path(named))):
        raise AllocationLogError(str(path), "allocation log not found")
    notes: list[str] = []
    rpath: Path | None
    if restricted is False:
        rpath = None
        notes.append("the open log only was checked (--open-only): not its restricted log")
    else:
        rpath = Path(named)
        check_log_paths(path, rpath)
    scan, rscan, head = _verify_scans(path, rpath, anchor)
    if rscan is not None:
        for p in (rscan.path, head_path_for(rscan.path)):
            if p.exists() and p.stat().st_mode & 0o077:
                rscan.add(
                    EXPOSED,
                    None,
                    f"{p.name} has mode {p.stat().st_mode & 0o777:04o}: group or others can read "
                    "the restricted probabilities (the next append tightens it to 0600)",
                )
    problems = tuple(scan.problems) + (tuple(rscan.problems) if rscan is not None else ())
    return VerificationReport(
        path=path,
        restricted_path=rpath,
        entries=len(scan.lines),
        restricted_entries=None if rscan is None else len(rscan.lines),
        head=head,
        problems=problems,
        notes=tuple(notes),
    )


def load_entries(path: str | Path) -> list[dict[str, Any]]:
    """The parsed entries of a log's complete lines, in file order (no verification)."""
    path = Path(path)
    if not path.exists():
        raise AllocationLogError(str(path), "log not found")
    return [ln.entry for ln in _scan(path, ChainFields).parsed if ln.entry]


# ----------------------------------------------------------------------------- writing
@contextmanager
def locked(path: str | Path, timeout: float = 30.0) -> Iterator[None]:
    """Hold the exclusive lock of a log (``<log>.lock``, ``fcntl.flock``) for the block."""
    lock = lock_path_for(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise AllocationLogError(
            str(path), f"cannot open the lock file {lock.name} ({exc.strerror})"
        ) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LogLockError(
                        str(path),
                        f"lock {lock.name} still held by another writer after {timeout:g} s",
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_line(path: Path, line: bytes, mode: int) -> int:
    """Append one complete line in one write, fsync it; return the file's new size."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        _write_all(fd, line)
        os.fsync(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path)
    return size


def _write_head(path: Path, head: Head, mode: int) -> None:
    """Replace ``<path>.head`` atomically: temporary file, fsync, os.replace, directory fsync."""
    target = head_path_for(path)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    body = {
        "v": LOG_VERSION,
        "log": path.name,
        "sequence": head.sequence,
        "hash": head.hash,
        "bytes": head.bytes,
        "updated": utc_now(),
    }
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        _write_all(fd, canonical_json(body) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    _fsync_dir(target)


def utc_now() -> str:
    """The current UTC time as written in the log (:func:`palette_core.isotime.utc_timestamp`)."""
    return utc_timestamp()


@dataclass(frozen=True)
class LogSnapshot:
    """What is logged when an entry is built (under the lock): both logs' entries in order."""

    open_entries: tuple[dict[str, Any], ...]
    restricted_entries: tuple[dict[str, Any], ...]

    @property
    def next_sequence(self) -> int:
        return len(self.open_entries) + 1

    @property
    def prev_hash(self) -> str:
        """The ``prev_hash`` the next open entry will have."""
        return self.open_entries[-1]["hash"] if self.open_entries else GENESIS

    @property
    def restricted_prev_hash(self) -> str:
        """The ``prev_hash`` the next restricted entry will have."""
        return self.restricted_entries[-1]["hash"] if self.restricted_entries else GENESIS


def _require_intact(path: Path, rpath: Path) -> tuple[_Scan, _Scan]:
    scan, rscan, _ = _verify_scans(path, rpath)
    assert rscan is not None
    problems = scan.problems + rscan.problems
    if problems:
        raise LogIntegrityError(
            str(path),
            "the allocation log does not verify, so nothing was appended "
            f"({len(problems)} problem(s); after a crash run `palette log recover`): "
            + "; ".join(str(p) for p in problems[:5]),
            tuple(str(p) for p in problems),
        )
    return scan, rscan


def append_entry(
    path: str | Path,
    build: Callable[[LogSnapshot], tuple[Mapping[str, Any], Mapping[str, Any]]],
    restricted: str | Path | None = None,
    lock_timeout: float = 30.0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Append one entry to the open log and its restricted log, under the lock.

    ``build(snapshot)`` returns the open and the restricted fields (without ``v``,
    ``sequence``, ``prev_hash``, ``hash`` and, for the restricted entry, ``open_hash``); it runs
    under the lock after both logs were verified, and may raise to refuse: nothing is then
    written. Returns the two entries as written. Files are created with mode 0600; a restricted
    log or anchor readable by others is tightened to 0600 first (:func:`tighten_permissions`).

    Raises
    ------
    AllocationLogError
        The restricted log is the open log, or a folder does not exist.
    LogIntegrityError
        A log does not verify (edited, truncated, a crash not yet recovered...).
    LogLockError
        Another writer held the lock for longer than ``lock_timeout`` seconds.
    """
    path = Path(path)
    rpath = Path(restricted) if restricted is not None else restricted_path_for(path)
    check_log_paths(path, rpath, writing=True)
    with locked(path, lock_timeout):
        tighten_permissions(rpath)
        scan, rscan = _require_intact(path, rpath)
        snapshot = LogSnapshot(
            open_entries=tuple(ln.entry for ln in scan.parsed if ln.entry),
            restricted_entries=tuple(ln.entry for ln in rscan.parsed if ln.entry),
        )
        open_body, restricted_body = build(snapshot)
        for name, body in (("open", open_body), ("restricted", restricted_body)):
            clash = [k for k in (*CHAIN_FIELDS, "open_hash") if k in body]
            if clash:
                raise ValueError(f"the {name} entry must not set {clash}: append_entry does")
        seq = snapshot.next_sequence
        last_open = snapshot.open_entries[-1]["hash"] if snapshot.open_entries else GENESIS
        last_r = snapshot.restricted_entries[-1]["hash"] if snapshot.restricted_entries else GENESIS
        entry: dict[str, Any] = {
            **open_body,
            "v": LOG_VERSION,
            "sequence": seq,
            "prev_hash": last_open,
        }
        entry["hash"] = entry_hash(entry)
        rentry: dict[str, Any] = {
            **restricted_body,
            "v": LOG_VERSION,
            "sequence": seq,
            "open_hash": entry["hash"],
            "prev_hash": last_r,
        }
        rentry["hash"] = entry_hash(rentry)
        for e, model, name in (
            (entry, OpenLogEntry, "open"),
            (rentry, RestrictedLogEntry, "restricted"),
        ):
            problem = model.problem(e)
            if problem:
                raise ValueError(f"the {name} entry is invalid: {problem}")
        problem = probabilities_problem(rentry["probabilities"], rentry["arm"])
        if problem:
            raise ValueError(f"the restricted entry is invalid: {problem}")
        rsize = _append_line(rpath, canonical_json(rentry) + b"\n", FILE_MODE)
        size = _append_line(path, canonical_json(entry) + b"\n", FILE_MODE)  # the commit point
        _write_head(rpath, Head(seq, rentry["hash"], rsize), FILE_MODE)
        _write_head(path, Head(seq, entry["hash"], size), FILE_MODE)
    return entry, rentry


# ----------------------------------------------------------------------------- recovery
def _stamp() -> str:
    """The suffix of a saved file: UTC time without ``-`` or ``:`` (a file name, never read back)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _cut(scan: _Scan, start: int, line: int, reason: str) -> RemovedBytes:
    """Remove bytes from ``start`` to the end of the file, keeping a copy beside the log."""
    data = scan.path.read_bytes()[start:]
    saved = scan.path.with_name(f"{scan.path.name}.removed-{_stamp()}")
    # 0600 whichever log: an uncommitted line may hold the arm of the stratum's next draw
    fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(scan.path, os.O_WRONLY)
    try:
        os.ftruncate(fd, start)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(scan.path)
    return RemovedBytes(
        file=str(scan.path), line=line, n_bytes=len(data), saved_to=str(saved), reason=reason
    )


def recover_log(
    path: str | Path, restricted: str | Path | None = None, lock_timeout: float = 30.0
) -> RecoveryReport:
    """Repair what a killed writer leaves, and nothing else; report what was done.

    Under the lock: removes an incomplete final line (no newline) of either log when no anchor
    covers it; removes a restricted entry whose open entry was never committed (the last one,
    one sequence past the open log, not anchored); then brings anchors that are behind (or
    missing after the first entry) up to the last committed entry, and deletes temporary anchor
    files left behind. Every removed byte is saved to
    ``<log>.removed-<UTC time>`` (mode 0600) and listed in the report by size only (the
    removed bytes may hold the arm of the next draw). A committed entry (a complete open
    line) is never removed. Any other problem (an edit, a gap, a truncated tail) is left
    untouched and reported: recovery does not guess.
    """
    path = Path(path)
    rpath = Path(restricted) if restricted is not None else restricted_path_for(path)
    check_log_paths(path, rpath)
    if not any(p.exists() for p in (path, head_path_for(path), rpath)):
        raise AllocationLogError(str(path), "allocation log not found")
    actions: list[str] = []
    removed: list[RemovedBytes] = []
    with locked(path, lock_timeout):
        for p, model in ((path, OpenLogEntry), (rpath, RestrictedLogEntry)):
            scan = _scan(p, model)
            head, _ = _read_head(p)
            if scan.partial:
                anchored = head is not None and head.bytes > scan.partial_start
                line = len(scan.lines) + 1
                if anchored:
                    actions.append(
                        f"{p}: NOT removed: the incomplete line {line} lies inside the anchored "
                        "part of the log (damage, not a crash)"
                    )
                else:
                    removed.append(_cut(scan, scan.partial_start, line, "incomplete last line"))
                    actions.append(
                        f"{p}: removed the incomplete last line {line} "
                        f"({len(scan.partial)} bytes; a write stopped mid-way)"
                    )
        scan, rscan, _ = _verify_scans(path, rpath)
        assert rscan is not None
        other = [p for p in scan.problems + rscan.problems if p.kind not in CRASH_KINDS]
        if not other:
            rhead, _ = _read_head(rpath)
            rlast = rscan.last
            if any(p.kind == UNCOMMITTED for p in rscan.problems) and rlast is not None:
                seq = rlast.entry["sequence"]  # type: ignore[index]
                if rhead is not None and rhead.sequence >= seq:
                    actions.append(f"{rpath}: NOT removed: sequence {seq} is anchored")
                else:
                    removed.append(
                        _cut(rscan, rlast.start, rlast.number, "uncommitted restricted entry")
                    )
                    actions.append(
                        f"{rpath}: removed the uncommitted restricted entry for sequence {seq} "
                        f"(line {rlast.number}; its open entry was never written)"
                    )
            for p in (path, rpath):
                s = _scan(p, OpenLogEntry if p == path else RestrictedLogEntry)
                head, _ = _read_head(p)
                last = s.last
                if last is None:
                    continue
                seq = last.entry["sequence"]  # type: ignore[index]
                if head is None or head.sequence < seq:
                    before = "missing" if head is None else f"at sequence {head.sequence}"
                    _write_head(p, Head(seq, last.entry["hash"], s.complete_size), FILE_MODE)  # type: ignore[index]
                    actions.append(
                        f"{head_path_for(p)}: anchor updated to sequence {seq} (was {before})"
                    )
        for p in (path, rpath):
            target = head_path_for(p)
            for stale in sorted(target.parent.glob(f"{target.name}.tmp*")):
                stale.unlink()
                actions.append(f"{stale}: removed a temporary anchor left by a stopped write")
        scan, rscan, _ = _verify_scans(path, rpath)
        assert rscan is not None
        problems = scan.problems + rscan.problems
    if not actions:
        actions.append("nothing to recover")
    return RecoveryReport(
        path=path, actions=tuple(actions), removed=tuple(removed), problems=tuple(problems)
    )


def head_digest(path: str | Path, restricted: str | Path | None = None) -> str:
    """One line to countersign off-site: the trial, the log, the last sequence and the hashes of
    its open and restricted entries.

    Both logs must verify. Check them later with ``verify_log(path, anchor=parse_anchor(...))``
    or ``palette log verify --anchor SEQ:HASH:RESTRICTED_HASH`` (the ``anchor`` printed here):
    a rewrite of either log up to that entry is then detected, even by someone who holds the
    secret. Publishing the restricted hash reveals nothing: the entry's ``seal`` makes it
    impossible to find by trying candidate entries.

    Raises
    ------
    LogIntegrityError
        A log does not verify.
    """
    path = Path(path)
    rpath = Path(restricted) if restricted is not None else restricted_path_for(path)
    report = verify_log(path, restricted=rpath)
    if not report.ok:
        raise LogIntegrityError(
            str(path),
            "the log does not verify; a digest of it would be meaningless",
            tuple(str(p) for p in report.problems),
        )
    entries = load_entries(path)
    if not entries:
        raise AllocationLogError(str(path), "the log is empty: nothing to countersign")
    last = entries[-1]
    rlast = load_entries(rpath)[-1]
    return (
        f"{last['trial']} allocation log {path.name} anchor "
        f"{last['sequence']}:{last['hash']}:{rlast['hash']} time {last['time']}"
    )


def parse_anchor(text: str) -> tuple[int, str, str | None]:
    """``"SEQ:HASH:RESTRICTED_HASH"`` (as printed by ``palette log head``), or ``"SEQ:HASH"``
    (the open log only) -> ``(sequence, hash, restricted hash or None)``."""
    parts = [p.strip() for p in text.split(":")]
    hexdigits = set("0123456789abcdefABCDEF")
    ok = (
        len(parts) in (2, 3)
        and parts[0].isdigit()
        and all(len(h) == 64 and set(h) <= hexdigits for h in parts[1:])
    )
    if not ok:
        raise ValueError(
            f"anchor must be SEQUENCE:HASH:RESTRICTED_HASH (64 hex digits each), got {text!r}"
        )
    return int(parts[0]), parts[1].lower(), parts[2].lower() if len(parts) == 3 else None


__all__ = [
    "FILE_MODE",
    "GENESIS",
    "MAX_JSON_DEPTH",
    "OPEN_FIELDS",
    "RESTRICTED_FIELDS",
    "Head",
    "LogProblem",
    "LogSnapshot",
    "RecoveryReport",
    "RemovedBytes",
    "VerificationReport",
    "Anchor",
    "append_entry",
    "canonical_json",
    "check_log_paths",
    "entry_hash",
    "head_digest",
    "head_path_for",
    "load_entries",
    "lock_path_for",
    "locked",
    "parse_anchor",
    "recover_log",
    "restricted_path_for",
    "tighten_permissions",
    "utc_now",
    "verify_log",
]
