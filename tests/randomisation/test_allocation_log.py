"""The allocation log (palette_core.randomisation.allocation_log): hash chain, anchor, lock, kill-mid-write, recovery.

Every tamper test changes one thing in a log of five entries and checks that ``verify_log``
names the kind of damage and the line. The crash tests stop a writer at every step of an append
(in process, by an exception thrown from inside the write) and for real (a subprocess appending
in a loop, killed with SIGKILL); after ``recover_log`` the log verifies and every committed
entry is still there, byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support import ROOT

from palette_core.errors import AllocationLogError, LogIntegrityError, LogLockError
from palette_core.randomisation import allocation_log as alloclog
from palette_core.randomisation.allocation_log import (
    GENESIS,
    append_entry,
    entry_hash,
    head_digest,
    head_path_for,
    load_entries,
    locked,
    parse_anchor,
    recover_log,
    restricted_path_for,
    verify_log,
)

REPO = ROOT


INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # a test log's instance value


def _bodies(snap, patient: str, arm: str = "a") -> tuple[dict, dict]:
    opened = {
        "trial": "T",
        "instance": INSTANCE,
        "patient_id": patient,
        "time": "2026-05-01T00:00:00.000000Z",
        "trait": "t",
        "stratum": "t",
        "stratum_sequence": 1 + sum(e["stratum"] == "t" for e in snap.open_entries),
        "arm": arm,
        "commitment": "0" * 64,
    }
    restricted = {
        "patient_id": patient,
        "trait": "t",
        "stratum": "t",
        "arm": arm,
        "probabilities": {"a": 0.5, "b": 0.5},
        "seal": "0" * 64,
    }
    return opened, restricted


def _append(log: Path, patient: str, arm: str = "a", **kwargs) -> dict:
    entry, _ = append_entry(log, lambda snap: _bodies(snap, patient, arm), **kwargs)
    return entry


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "alloc.jsonl"
    for i in range(1, 6):
        _append(path, f"p{i}", "a" if i % 2 else "b")
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def _problems(report, kind: str) -> list:
    return [p for p in report.problems if p.kind == kind]


def _rechain(entries: list[dict]) -> list[str]:
    """Recompute every prev_hash and hash, as someone with write access could."""
    prev, out = GENESIS, []
    for e in entries:
        e = {**e, "prev_hash": prev}
        e["hash"] = entry_hash(e)
        prev = e["hash"]
        out.append(alloclog.canonical_json(e).decode() + "\n")
    return out


# ----------------------------------------------------------------------------- intact
def test_an_appended_log_verifies_with_sequences_chain_and_anchors(log):
    report = verify_log(log)
    assert report.ok, report.lines()
    assert report.entries == 5 and report.restricted_entries == 5
    entries = load_entries(log)
    assert [e["sequence"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    head = json.loads(head_path_for(log).read_text())
    assert (head["sequence"], head["hash"], head["bytes"]) == (
        5,
        entries[-1]["hash"],
        log.stat().st_size,
    )


def test_restricted_entries_link_to_open_entries_and_stay_private(log):
    opened = load_entries(log)
    restricted = load_entries(restricted_path_for(log))
    assert [r["open_hash"] for r in restricted] == [e["hash"] for e in opened]
    assert oct(restricted_path_for(log).stat().st_mode & 0o777) == "0o600"
    open_text = log.read_text() + head_path_for(log).read_text()
    assert "probabilities" not in open_text
    for r in restricted:  # a restricted hash could be matched against guesses: never shown
        assert r["hash"] not in open_text


def test_the_open_log_refuses_a_field_that_does_not_belong_there(tmp_path):
    path = tmp_path / "alloc.jsonl"

    def leaky(snap):
        opened, restricted = _bodies(snap, "p1")
        return {**opened, "probabilities": {"a": 1.0}}, restricted

    with pytest.raises(ValueError, match="do not belong"):
        append_entry(path, leaky)
    assert not path.exists() and not restricted_path_for(path).exists()


def test_a_refusal_inside_build_writes_nothing(log):
    before = log.read_bytes(), restricted_path_for(log).read_bytes()

    def refuse(snap):
        raise RuntimeError("patient not eligible")

    with pytest.raises(RuntimeError):
        append_entry(log, refuse)
    assert (log.read_bytes(), restricted_path_for(log).read_bytes()) == before


# ----------------------------------------------------------------------------- tamper
def test_an_edited_field_is_detected_at_its_line(log):
    lines = _lines(log)
    lines[2] = lines[2].replace('"arm":"a"', '"arm":"b"')
    _write_lines(log, lines)
    report = verify_log(log, restricted=False)
    assert [(p.kind, p.line) for p in report.problems] == [("edited", 3)]
    assert "sequence 3" in report.problems[0].message


def test_an_edited_and_rehashed_entry_breaks_the_chain_at_the_next_line(log):
    entries = load_entries(log)
    entries[2]["arm"] = "b"
    entries[2]["hash"] = entry_hash(entries[2])
    _write_lines(log, [alloclog.canonical_json(e).decode() + "\n" for e in entries])
    report = verify_log(log, restricted=False)
    assert not report.ok
    assert [(p.kind, p.line) for p in _problems(report, "chain")] == [("chain", 4)]
    assert "line 3" in _problems(report, "chain")[0].message
    assert _problems(report, "anchor") == []  # the anchor names sequence 5, still intact
    # ... but the restricted log no longer agrees with the open entry
    full = verify_log(log)
    assert any(p.kind == "restricted" and p.line == 3 for p in full.problems)


def test_a_removed_entry_is_detected_as_a_sequence_gap(log):
    lines = _lines(log)
    del lines[2]
    _write_lines(log, lines)
    report = verify_log(log, restricted=False)
    removed = _problems(report, "removed")
    assert [(p.line, "sequence 3 missing" in p.message) for p in removed] == [(3, True)]
    assert [p.line for p in _problems(report, "chain")] == [3]


def test_removing_the_first_entry_is_detected(log):
    _write_lines(log, _lines(log)[1:])
    report = verify_log(log, restricted=False)
    assert {(p.kind, p.line) for p in report.problems} >= {("removed", 1), ("chain", 1)}


def test_reordered_entries_are_detected(log):
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write_lines(log, lines)
    report = verify_log(log, restricted=False)
    reordered = _problems(report, "reordered")
    assert [p.line for p in reordered] == [3]
    assert "sequence 2 comes after sequence 3" in reordered[0].message
    assert "removed" not in report.kinds  # the "missing" sequence is found later: a reorder
    assert "links to line 3" in _problems(report, "chain")[0].message


def test_a_duplicated_entry_is_detected(log):
    lines = _lines(log)
    _write_lines(log, [*lines[:3], lines[2], *lines[3:]])
    report = verify_log(log, restricted=False)
    assert [(p.kind, p.line) for p in _problems(report, "duplicate")] == [("duplicate", 4)]


def test_a_truncated_tail_is_caught_by_the_anchor(log):
    _write_lines(log, _lines(log)[:3])
    report = verify_log(log, restricted=False)
    assert [p.kind for p in report.problems] == ["truncated"]
    assert "sequence 4..5 removed from the end" in report.problems[0].message
    # the chain alone is still valid: only the anchor shows the loss
    assert not any(p.kind in {"chain", "removed"} for p in report.problems)


def test_a_tail_truncated_to_nothing_is_detected(log):
    log.unlink()
    report = verify_log(log, restricted=False)
    assert report.kinds == {"truncated"}


def test_a_deleted_anchor_is_reported_and_not_silently_recreated(log):
    head_path_for(log).unlink()
    assert "anchor" in verify_log(log).kinds
    recovered = recover_log(log)
    assert not recovered.ok and not head_path_for(log).exists()


def test_a_restricted_log_inconsistent_with_the_open_log_is_detected(log):
    rpath = restricted_path_for(log)
    entries = load_entries(rpath)
    entries[3]["arm"] = "a" if entries[3]["arm"] == "b" else "b"
    _write_lines(rpath, _rechain(entries))
    rhead = json.loads(head_path_for(rpath).read_text())
    rhead.update(hash=load_entries(rpath)[-1]["hash"], bytes=rpath.stat().st_size)
    head_path_for(rpath).write_text(json.dumps(rhead))
    assert verify_log(log, restricted=False).ok
    report = verify_log(log)
    assert [(p.kind, p.line) for p in report.problems] == [("restricted", 4)]
    assert "['arm'] differ from the open entry (line 4)" in report.problems[0].message


def test_a_restricted_log_deleted_with_its_anchor_fails_unless_only_the_open_log_is_asked(log):
    """Issue 13: deleting the restricted log and its anchor still verified (exit status 0)."""
    rpath = restricted_path_for(log)
    rpath.unlink()
    head_path_for(rpath).unlink()
    report = verify_log(log)
    assert not report.ok and report.kinds == {"restricted"}
    assert "restricted log not found" in report.problems[0].message
    assert verify_log(log, restricted=rpath).kinds == {"restricted"}
    site = verify_log(log, restricted=False)
    assert site.ok and "open log only" in site.notes[0]


def test_append_is_refused_on_a_log_that_does_not_verify(log):
    lines = _lines(log)
    lines[1] = lines[1].replace('"patient_id":"p2"', '"patient_id":"px"')
    _write_lines(log, lines)
    before = log.read_bytes()
    with pytest.raises(LogIntegrityError, match="line 2"):
        _append(log, "p6")
    assert log.read_bytes() == before


def test_a_consistently_rewritten_chain_is_caught_by_the_countersigned_anchor(log):
    digest = head_digest(log)
    anchor = parse_anchor(digest.split(" anchor ")[1].split()[0])
    assert anchor[0] == 5 and anchor[2] == load_entries(restricted_path_for(log))[-1]["hash"]
    assert verify_log(log, anchor=anchor).ok
    # someone with write access changes an arm and rebuilds chain, restricted log and anchors
    opened, restricted = load_entries(log), load_entries(restricted_path_for(log))
    opened[1]["arm"] = restricted[1]["arm"] = "a"
    _write_lines(log, _rechain(opened))
    for r, o in zip(restricted, load_entries(log), strict=True):
        r["open_hash"] = o["hash"]
    _write_lines(restricted_path_for(log), _rechain(restricted))
    for p in (log, restricted_path_for(log)):
        last = load_entries(p)[-1]
        head_path_for(p).write_text(
            json.dumps({"sequence": 5, "hash": last["hash"], "bytes": p.stat().st_size})
        )
    assert verify_log(log).ok  # without the secret, only the countersigned anchor sees it
    report = verify_log(log, anchor=anchor)
    assert [(p.kind, p.line) for p in report.problems] == [("countersigned", 5)] * 2
    assert [p.file for p in report.problems] == [str(log), str(restricted_path_for(log))]


def _rewrite(log: Path, opened: list[dict], restricted: list[dict]) -> None:
    """Rewrite both logs as someone with write access (but not the secret) could: renumber,
    rechain, relink and re-anchor, so that the chain and the anchors are consistent."""
    for i, (o, r) in enumerate(zip(opened, restricted, strict=True), start=1):
        o["sequence"] = r["sequence"] = i
    _write_lines(log, _rechain(opened))
    for r, o in zip(restricted, load_entries(log), strict=True):
        r["open_hash"] = o["hash"]
    rpath = restricted_path_for(log)
    _write_lines(rpath, _rechain(restricted))
    for p in (log, rpath):
        last = load_entries(p)[-1]
        head = {"sequence": last["sequence"], "hash": last["hash"], "bytes": p.stat().st_size}
        head_path_for(p).write_text(json.dumps(head))


def _both(log: Path) -> tuple[list[dict], list[dict]]:
    return load_entries(log), load_entries(restricted_path_for(log))


def test_an_entry_deleted_and_the_rest_renumbered_fails_the_stratum_numbering(log):
    """Issue 13: an entry deleted and the rest renumbered and re-hashed passed verify."""
    opened, restricted = _both(log)
    del opened[2], restricted[2]
    _rewrite(log, opened, restricted)
    report = verify_log(log)
    assert [(p.kind, p.line) for p in report.problems] == [("stratum_sequence", 3)]
    assert "stratum_sequence 4, expected 3" in report.problems[0].message


def test_a_repeated_stratum_sequence_number_fails(log):
    """Issue 13: a repeated stratum sequence number passed verify."""
    opened, restricted = _both(log)
    opened[3]["stratum_sequence"] = 3
    _rewrite(log, opened, restricted)
    report = verify_log(log)
    assert ("stratum_sequence", 4) in [(p.kind, p.line) for p in report.problems]
    assert "repeated" in report.problems[0].message


def test_a_duplicate_patient_id_fails(log):
    """Issue 13: a duplicate patient id passed verify."""
    opened, restricted = _both(log)
    opened[4]["patient_id"] = restricted[4]["patient_id"] = "p2"
    _rewrite(log, opened, restricted)
    report = verify_log(log)
    assert [(p.kind, p.line) for p in report.problems] == [("duplicate_patient", 5)]
    assert "already randomised at sequence 2 (line 2)" in report.problems[0].message


def test_time_going_backwards_fails(log):
    """Issue 13: time going backwards passed verify."""
    opened, restricted = _both(log)
    opened[3]["time"] = "2026-04-30T23:59:59.000000Z"
    _rewrite(log, opened, restricted)
    report = verify_log(log)
    assert [(p.kind, p.line) for p in report.problems] == [("time_order", 4)]


def test_entries_of_another_log_instance_fail(log):
    opened, restricted = _both(log)
    opened[1]["instance"] = "a" * 32
    _rewrite(log, opened, restricted)
    assert [(p.kind, p.line) for p in verify_log(log).problems] == [("instance", 2)]


def test_every_file_is_created_owner_only(log):
    files = [log, restricted_path_for(log), alloclog.lock_path_for(log)]
    files += [head_path_for(p) for p in files[:2]]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}


def test_a_restricted_log_readable_by_others_is_reported_then_tightened(log):
    """Issue 13: a pre-existing restricted log kept mode 0644. It is now tightened to 0600
    before the next append, and reported by verify until then."""
    rpath = restricted_path_for(log)
    os.chmod(rpath, 0o644)
    report = verify_log(log)
    assert report.kinds == {"exposed"} and "mode 0644" in report.problems[0].message
    _append(log, "p6")
    assert oct(rpath.stat().st_mode & 0o777) == "0o600" and verify_log(log).ok


def test_a_new_restricted_log_file_with_wide_permissions_is_tightened(tmp_path):
    path = tmp_path / "alloc.jsonl"
    rpath = restricted_path_for(path)
    rpath.touch(mode=0o644)
    os.chmod(rpath, 0o644)
    _append(path, "p1")
    assert oct(rpath.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("name", ["alloc.jsonl", "./alloc.jsonl", "alloc.jsonl.head"])
def test_the_restricted_log_may_never_be_the_open_log(tmp_path, monkeypatch, name):
    """Issue 13: --restricted-log naming the open log wrote probabilities into the open log."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "alloc.jsonl"
    with pytest.raises(AllocationLogError, match="cannot be the open log"):
        _append(path, "p1", restricted=name)
    assert not path.exists()
    _append(path, "p1")
    with pytest.raises(AllocationLogError, match="cannot be the open log"):
        verify_log(path, restricted=name)
    os.link(path, tmp_path / "hard.jsonl")
    with pytest.raises(AllocationLogError, match="cannot be the open log"):
        _append(path, "p2", restricted=tmp_path / "hard.jsonl")


def test_a_log_in_a_missing_folder_is_a_typed_error(tmp_path):
    """Issue 13: a missing folder ended in a FileNotFoundError traceback (from the lock file)."""
    with pytest.raises(AllocationLogError, match="does not exist"):
        _append(tmp_path / "absent" / "alloc.jsonl", "p1")


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("where", ["open", "restricted", "anchor"])
def test_a_line_nested_100000_deep_is_malformed_not_a_recursion_error(log, where):
    """Issue 13: a JSON line nested 100,000 deep gave RecursionError in log verify/recover/head."""
    target = {
        "open": log,
        "restricted": restricted_path_for(log),
        "anchor": head_path_for(log),
    }[where]
    if where == "anchor":
        target.write_bytes(DEEP + b"\n")
    else:
        lines = target.read_bytes().splitlines(keepends=True)
        target.write_bytes(b"".join([*lines[:2], DEEP + b"\n", *lines[3:]]))
    report = verify_log(log)
    kinds = {"anchor"} if where == "anchor" else {"malformed"}
    assert kinds <= report.kinds
    assert any("nested more than" in p.message for p in report.problems)
    assert not recover_log(log).ok
    with pytest.raises(LogIntegrityError):
        head_digest(log)
    with pytest.raises(LogIntegrityError):
        _append(log, "p6")


def test_an_entry_nested_deeper_than_the_limit_is_malformed(log):
    lines = _lines(log)
    entry = json.loads(lines[1])
    value: object = 1
    for _ in range(alloclog.MAX_JSON_DEPTH + 1):
        value = [value]
    entry["patient_id"] = value
    lines[1] = json.dumps(entry) + "\n"
    _write_lines(log, lines)
    assert ("malformed", 2) in [(p.kind, p.line) for p in verify_log(log).problems]


def test_head_digest_refuses_a_damaged_log(log):
    _write_lines(log, _lines(log)[:4])
    with pytest.raises(LogIntegrityError):
        head_digest(log)


def test_verify_of_a_log_that_never_existed_is_a_typed_error(tmp_path):
    with pytest.raises(AllocationLogError, match="not found"):
        verify_log(tmp_path / "nothing.jsonl")


# ----------------------------------------------------------------------------- crashes
def test_a_half_written_last_line_is_detected_and_recovered(log):
    committed = log.read_bytes()
    half = _lines(log)[0][:40]
    with log.open("a", encoding="utf-8") as f:
        f.write(half)
    report = verify_log(log)
    assert [(p.kind, p.line) for p in report.problems] == [("partial_line", 6)]
    recovered = recover_log(log)
    assert recovered.ok, recovered.problems
    assert log.read_bytes() == committed
    [removed] = recovered.removed
    assert (removed.line, removed.n_bytes) == (6, len(half.encode()))
    assert Path(removed.saved_to).read_text(encoding="utf-8") == half
    assert oct(Path(removed.saved_to).stat().st_mode & 0o777) == "0o600"
    assert verify_log(log).ok
    assert _append(log, "p6")["sequence"] == 6


def test_recover_touches_nothing_when_the_damage_is_not_a_crash(log):
    _write_lines(log, _lines(log)[:3])  # a truncated tail: restore from a copy, never guess
    before = log.read_bytes(), restricted_path_for(log).read_bytes()
    recovered = recover_log(log)
    assert not recovered.ok and "truncated" in {p.kind for p in recovered.problems}
    assert (log.read_bytes(), restricted_path_for(log).read_bytes()) == before


def test_recover_on_an_intact_log_does_nothing(log):
    before = log.read_bytes()
    recovered = recover_log(log)
    assert recovered.ok and recovered.actions == ("nothing to recover",)
    assert log.read_bytes() == before


class _Killed(BaseException):
    """Stands for SIGKILL inside a write: nothing after it runs (except closing files)."""


# the writes of one append, in order: restricted line, open line, restricted anchor, open anchor
KILL_POINTS = [
    (1, 0.0, 5),
    (1, 0.5, 5),
    (2, 0.0, 5),
    (2, 0.5, 5),
    (2, 1.0, 6),
    (3, 0.5, 6),
    (4, 0.0, 6),
    (4, 0.5, 6),
]


@pytest.mark.parametrize(("call", "fraction", "entries_after"), KILL_POINTS)
def test_a_writer_killed_at_any_step_loses_no_committed_entry(
    log, monkeypatch, call, fraction, entries_after
):
    committed = log.read_bytes()
    real_write_all = alloclog._write_all
    calls = {"n": 0}

    def dying_write_all(fd, data):
        calls["n"] += 1
        if calls["n"] == call:
            real_write_all(fd, data[: int(len(data) * fraction)])
            raise _Killed
        real_write_all(fd, data)

    monkeypatch.setattr(alloclog, "_write_all", dying_write_all)
    with pytest.raises(_Killed):
        _append(log, "p6")
    monkeypatch.setattr(alloclog, "_write_all", real_write_all)
    report = verify_log(log)
    assert report.kinds <= alloclog.CRASH_KINDS, report.lines()
    assert log.read_bytes().startswith(committed)
    recovered = recover_log(log)
    assert recovered.ok, recovered.problems
    assert log.read_bytes().startswith(committed)  # no committed entry touched
    assert len(load_entries(log)) == entries_after
    assert verify_log(log).ok
    nxt = _append(log, "p7")
    assert nxt["sequence"] == entries_after + 1
    assert not list(log.parent.glob("*.tmp*"))


@pytest.mark.parametrize(("call", "fraction", "entries_after"), KILL_POINTS)
def test_a_writer_killed_during_the_first_append_is_recovered(
    tmp_path, monkeypatch, call, fraction, entries_after
):
    path = tmp_path / "alloc.jsonl"
    real_write_all = alloclog._write_all
    calls = {"n": 0}

    def dying_write_all(fd, data):
        calls["n"] += 1
        if calls["n"] == call:
            real_write_all(fd, data[: int(len(data) * fraction)])
            raise _Killed
        real_write_all(fd, data)

    monkeypatch.setattr(alloclog, "_write_all", dying_write_all)
    with pytest.raises(_Killed):
        _append(path, "p1")
    monkeypatch.setattr(alloclog, "_write_all", real_write_all)
    recovered = recover_log(path)
    assert recovered.ok, recovered.problems
    committed = len(load_entries(path)) if path.exists() else 0
    assert committed == entries_after - 5
    assert _append(path, "p2")["sequence"] == entries_after - 4


def test_a_crash_before_the_first_anchor_is_recovered(tmp_path, monkeypatch):
    path = tmp_path / "alloc.jsonl"
    real = alloclog._write_head

    def die(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr(alloclog, "_write_head", die)
    with pytest.raises(_Killed):
        _append(path, "p1")
    monkeypatch.setattr(alloclog, "_write_head", real)
    assert verify_log(path).kinds == {"anchor_missing"}
    assert recover_log(path).ok
    assert verify_log(path).ok and len(load_entries(path)) == 1


WRITER = textwrap.dedent(
    """
    import sys
    from palette_core.randomisation.allocation_log import append_entry

    log, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def bodies(snap, patient):
        opened = {"trial": "T", "instance": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                  "patient_id": patient, "time": "2026-05-01T00:00:00.000000Z",
                  "trait": "t", "stratum": "t", "stratum_sequence": snap.next_sequence,
                  "arm": "a", "commitment": "0" * 64}
        restricted = {"patient_id": patient, "trait": "t", "stratum": "t", "arm": "a",
                      "probabilities": {"a": 1.0}, "seal": "0" * 64}
        return opened, restricted

    i = 0
    while count < 0 or i < count:
        i += 1
        append_entry(log, lambda snap, p=f"{tag}-{i}": bodies(snap, p))
    """
)


def _writer(tmp_path: Path, log: Path, tag: str, count: int) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    if not script.exists():  # never rewritten while another writer may be reading it
        script.write_text(WRITER, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), str(log), tag, str(count)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_writer_killed_with_sigkill_loses_no_committed_entry(tmp_path):
    log = tmp_path / "alloc.jsonl"
    for round_ in range(3):
        proc = _writer(tmp_path, log, f"r{round_}", -1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if log.exists() and log.read_bytes().count(b"\n") >= 15 * (round_ + 1):
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        data = log.read_bytes()
        committed = data[: data.rfind(b"\n") + 1]  # every complete line at the time of the kill
        report = verify_log(log)
        assert report.kinds <= alloclog.CRASH_KINDS, report.lines()
        recovered = recover_log(log)
        assert recovered.ok, recovered.problems
        assert log.read_bytes() == committed
        assert verify_log(log).ok
    ids = [e["patient_id"] for e in load_entries(log)]
    assert len(ids) == len(set(ids)) >= 45


def test_concurrent_writers_never_interleave(tmp_path):
    log = tmp_path / "alloc.jsonl"
    writers, each = 4, 25
    procs = [_writer(tmp_path, log, f"w{k}", each) for k in range(writers)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    report = verify_log(log)
    assert report.ok, report.lines()
    entries = load_entries(log)
    assert [e["sequence"] for e in entries] == list(range(1, writers * each + 1))
    ids = sorted(e["patient_id"] for e in entries)
    assert ids == sorted(f"w{k}-{i}" for k in range(writers) for i in range(1, each + 1))


def test_a_held_lock_makes_a_second_writer_wait_then_give_up(log):
    with locked(log):
        with pytest.raises(LogLockError, match="still held"):
            _append(log, "p6", lock_timeout=0.2)
    assert _append(log, "p6")["sequence"] == 6
