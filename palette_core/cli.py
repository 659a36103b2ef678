"""The ``palette`` command line.

Exit status, the same in every command:

* **0** done, every row (or entry) fine;
* **1** done, but some rows are invalid or were not randomised, or the log or the design has
  problems: each is reported on stderr with its file, row (and CSV line) and field;
* **2** an input cannot be used as a whole: a file that cannot be read (empty, binary, not
  UTF-8, an unbalanced quote, a carriage return inside a line, a corrupt Parquet file, a JSON
  value nested too deeply), columns that do not fit the contract, an invalid design, a
  missing secret, a log whose folder does not exist; one line names the file and the problem;
* **3** an internal error (a bug in palette_core, not a problem of the input): one line says
  so; set ``PALETTE_DEBUG=1`` to see the traceback.

Outputs written as CSV neutralise formula prefixes (a text cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is written with a leading ``'``), so that no output
opened in a spreadsheet runs a formula.

``palette design check`` validates ``data/design`` (every hook it declares must have an
implementation) and prints the registry-fidelity findings. Exit status: 0 valid and faithful;
1 valid but the fidelity check reports problems; 2 the design is invalid or not found (the typed
error is printed).

Every command that reads the design takes ``--design DIR``; without it, the folder named by
``$PALETTE_DESIGN``, else the source checkout's ``data/design`` (an installed package has no
design of its own: pass one).

``palette classify FILE --seed N`` screens a file of patients. Exit status: 0 every row valid;
1 some rows invalid (each reported on stderr with its row, CSV line and field, and kept,
unclassified, in the output: as many output rows as input rows); 2 the file or the design
cannot be read; 3 an internal error.

``palette secret new FILE`` writes a new trial secret (256 random bits, hex) to a new file of
mode 0600 and prints nothing of it. Exit status: 0 written; 2 the file exists or cannot be made.

``palette randomise FILE --log LOG`` classifies the patients of a file and randomises the
eligible ones with the trial secret (``$PALETTE_TRIAL_SECRET``, ``$PALETTE_TRIAL_SECRET_FILE``
or ``--secret-file``); it prints, per patient, only sequence, patient id, trait, arm and status
(``randomised``, or ``randomised earlier`` for a patient already in the log: after a crash the
site sees the arm that was committed). Exit status: 0 every row randomised; 1 some rows not
randomised now (reasons on stderr, nothing logged for them); 2 the secret, the allocation state,
the design, the file or the log cannot be used (one line); 3 an internal error.

``palette analyse EXPORT`` runs the pre-specified interim analysis of a data export (validate,
derive outcomes, fit, decide, allocate, sensitivity analyses) and writes the results and the
open and closed HTML reports. Exit status: 0 done (unresolved rules and sensitivity fits that
failed the gates are reported on stderr); 2 the export, the design or an option cannot be used
(one line naming the error); 3 the primary fit failed the convergence gates after the
pre-specified escalation: no decision and no allocation record (results and both reports are
written, with the reason).

``palette simulate FILE... --trials N --seed S --out DIR`` runs virtual trials of the scenarios of
each scenario file (``palette_core.simulate``) and writes one result folder per file (Parquet
tables and a manifest). Exit status: 0 done; 2 a scenario file or an option cannot be used (one
line naming file, entry and field).

``palette log verify|replay|recover|head LOG`` checks, replays (with the secret), repairs after a
crash (printing nothing of what it removes), or prints the anchor of both logs to countersign.
Exit status: 0 intact (or repaired); 1 problems (listed with their line numbers); 2 the log or
the secret cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from palette_core import __version__
from palette_core.design import DESIGN_ENV, Design, load_design
from palette_core.design.tipping import load_tipping_spec
from palette_core.errors import DesignError, PaletteError
from palette_core.randomisation import allocation_log as alloclog
from palette_core.randomisation.randomise import (
    NEW_SECRET_BYTES,
    SECRET_ENV,
    SECRET_FILE_ENV,
    STRATIFY_FACTORS,
    default_allocation_state,
    load_allocation_state,
    load_secret,
    randomise_patients,
    replay_log,
    write_new_secret,
)
from palette_core.registry.fidelity import check_fidelity
from palette_core.screening.classify import classification_summary, classify_patients
from palette_core.screening.patients import read_patients
from palette_core.screening.traits import check_hooks
from palette_core.tableio import neutralise_formulas

#: Exit statuses (see the module docstring).
EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE, EXIT_INTERNAL = 0, 1, 2, 3
DEBUG_ENV = "PALETTE_DEBUG"
DESIGN_HELP = (
    f"design directory (default: ${DESIGN_ENV}, else data/design of the source checkout "
    "palette_core runs from)"
)


# ----------------------------------------------------------------------------- options
class _Shared(NamedTuple):
    """Options that mean the same in every command that has them: parent parsers, declared once
    (argparse copies their arguments into each command given them as ``parents``)."""

    design: argparse.ArgumentParser
    json: argparse.ArgumentParser
    quiet: argparse.ArgumentParser
    secret: argparse.ArgumentParser
    restricted_log: argparse.ArgumentParser


def _parent(*flags: str, **kwargs: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(*flags, **kwargs)
    return parser


def _shared() -> _Shared:
    return _Shared(
        design=_parent(
            "--design",
            type=Path,
            default=None,
            help=DESIGN_HELP,
        ),
        json=_parent("--json", action="store_true", help="print a machine-readable report"),
        quiet=_parent("--quiet", action="store_true", help="do not print progress"),
        secret=_parent(
            "--secret-file",
            type=Path,
            help=f"file holding the trial secret (default: ${SECRET_FILE_ENV}, else "
            f"${SECRET_ENV}); hex digits, at least 32 (make one with `palette secret new`)",
        ),
        restricted_log=_parent(
            "--restricted-log", type=Path, help="restricted log (default: LOG.restricted.jsonl)"
        ),
    )


# The seed, the output path and the multi-trait policy differ in meaning from one command to
# the next (the seed of a multi-trait draw, of an MCMC run, of a rebuild; a file or a folder),
# so their flag, type and choices are declared here once and each command says what they mean.
def _seed(parser: argparse.ArgumentParser, help: str, **kwargs: Any) -> None:
    parser.add_argument("--seed", type=int, help=help, **kwargs)


def _out(parser: argparse.ArgumentParser, help: str, **kwargs: Any) -> None:
    parser.add_argument("--out", type=Path, help=help, **kwargs)


def _policy(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--policy", choices=["default", "sensitivity"], default="default", help=help
    )


# ----------------------------------------------------------------------------- commands
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="palette",
        description="PALETTE (NCT06381661): executable protocol and statistical analysis plan.",
    )
    p.add_argument("--version", action="version", version=f"palette_core {__version__}")
    shared = _shared()
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    design = sub.add_parser("design", help="work with the trial design in data/design")
    dsub = design.add_subparsers(dest="design_command", metavar="SUBCOMMAND", required=True)
    dsub.add_parser(
        "check",
        parents=[shared.design, shared.json],
        help="validate the design and print the registry-fidelity findings",
        description="Validate data/design (typed errors name file, entry and field) and cross-check it "
        "against the registry record; print every registry finding.",
    )
    _add_results_commands(sub, shared)
    classify = sub.add_parser(
        "classify",
        parents=[shared.design],
        help="eligibility, treatable traits and assigned trait for a file of patients",
        description="Validate a CSV or Parquet file of patient records (data/design/patient_record.yaml), "
        "assess eligibility, classify the treatable traits and assign the trait under the multi-trait "
        "policy. Writes one output row per input row, with reasons; a bad row is reported with its row "
        "number and field and is not classified, the others are.",
    )
    classify.add_argument("file", type=Path, help="patients (.csv or .parquet)")
    _out(classify, "output file (.csv or .parquet; default: FILE.classified.csv)")
    _seed(classify, "seed of the multi-trait draw (logged in the output)", required=True)
    _policy(
        classify, "multi-trait policy: random among positive traits (default) or priority order"
    )
    secret = sub.add_parser("secret", help="create the trial secret")
    ssub = secret.add_subparsers(dest="secret_command", metavar="SUBCOMMAND", required=True)
    new = ssub.add_parser(
        "new",
        help="write a new trial secret (256 random bits, hex) to a new file of mode 0600",
        description="Write a new trial secret to FILE (which must not exist), created with mode "
        "0600; nothing of the secret is printed. Give the file to the independent "
        "statistician and the randomisation service only.",
    )
    new.add_argument("file", type=Path, help="the new secret file")
    _add_allocation_commands(sub, shared)
    _add_analyse_command(sub, shared)
    _add_simulate_command(sub, shared)
    return p


def _add_simulate_command(sub: argparse._SubParsersAction, shared: _Shared) -> None:
    """``palette simulate FILE... --trials N --seed S --out DIR``."""
    sim = sub.add_parser(
        "simulate",
        parents=[shared.quiet],
        help="simulate virtual trials of the scenarios in scenario files",
        description="Validate each scenario file (YAML: design, settings, scenarios), run TRIALS "
        "virtual trials of every scenario on the compiled trial program (in chunks, on local "
        "worker processes, in this process, or on a Dask cluster) and write, per file, "
        "trials.parquet (one row per trial), optionally looks.parquet, and manifest.json "
        "(scenario file hash, seed, key derivation, versions, git revision). A trial's result "
        "depends only on the seed, the scenario and its index.",
    )
    sim.add_argument(
        "files", type=Path, nargs="+", metavar="SCENARIO_FILE", help="scenario files (.yaml)"
    )
    sim.add_argument("--trials", type=int, required=True, help="virtual trials per scenario")
    _seed(sim, "root seed (0 to 2**32 - 1)", required=True)
    _out(sim, "output directory (one folder per file)", required=True)
    sim.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="trials compiled and run together (default: 1000)",
    )
    sim.add_argument(
        "--scheduler",
        default="processes",
        help="'processes' (local worker processes, default), 'in-process', or the address of a "
        "dask.distributed scheduler (tcp://host:port)",
    )
    sim.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: one per CPU)"
    )
    sim.add_argument(
        "--looks", action="store_true", help="also write looks.parquet (one row per look)"
    )


def _simulate(args: argparse.Namespace) -> int:
    from palette_core.simulate import engine  # imports JAX and Dask: only when asked

    chunk = engine.DEFAULT_CHUNK_SIZE if args.chunk_size is None else args.chunk_size
    try:
        sets = [engine.load_scenarios(f) for f in args.files]
        stems = [f.stem for f in args.files]
        if len(set(stems)) != len(stems):
            raise engine.ScenarioError(
                args.files[0], None, None, "two scenario files share a name; run them separately"
            )
        for path, scenarios in zip(args.files, sets, strict=True):
            out = args.out / path.stem if len(sets) > 1 else args.out
            result = engine.run_scenarios(
                scenarios,
                args.trials,
                args.seed,
                chunk_size=chunk,
                scheduler=args.scheduler,
                workers=args.workers,
                keep_looks=args.looks,
                progress=not args.quiet,
            )
            engine.write_results(out, scenarios, result)
            print(
                f"{path}: {len(result.trials)} trials of {len(scenarios.scenarios)} scenarios -> {out}"
            )
    except PaletteError as exc:
        print(f"palette: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an unreachable scheduler address
        print(f"palette: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_analyse_command(sub: argparse._SubParsersAction, shared: _Shared) -> None:
    """``palette analyse EXPORT``."""
    an = sub.add_parser(
        "analyse",
        parents=[shared.design, shared.quiet],
        help="interim analysis of a data export: results and the open and closed reports",
        description="Validate a data export (a folder with export.yaml and patients.csv, "
        "data/design/export_contract.yaml), derive the day-28 outcomes, fit the pre-specified "
        "joint model, apply the decision and allocation rules, run the sensitivity analyses, "
        "and write every table (CSV), the allocation record (JSON), a manifest and two "
        "self-contained HTML reports: open (accrual, completeness, pooled outcomes, data "
        "problems) and closed (for the DMC). The same export and seed give the same files.",
    )
    an.add_argument("export", type=Path, help="export folder (export.yaml + patients.csv)")
    _out(an, "output directory (default: EXPORT_analysis beside the export)")
    _seed(an, "MCMC seed (default: %(default)s)", default=20260601)
    an.add_argument(
        "--size",
        choices=["full", "small"],
        default="full",
        help="run size: full (pre-specified) or small (a quick check of an export: its fits "
        "fail the gates, so it takes no decision and exits with status 3)",
    )
    an.add_argument(
        "--sensitivity",
        default=None,
        help="comma-separated sensitivity analyses to run, or 'none' (default: every one of "
        "proposed/interim_analysis.yaml)",
    )


def _progress_printer():
    """``progress(step, i, n)`` that prints each step with the elapsed time to stderr."""
    import time

    start = time.perf_counter()

    def progress(step: str, i: int, n: int) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {i}/{n} {step}", file=sys.stderr)

    return progress


def _analyse(args: argparse.Namespace) -> int:
    from palette_core.interim.analyse import analyse  # imports JAX: only when asked
    from palette_core.interim.report import write_reports

    progress = _progress_printer()
    out = args.out or args.export.parent / f"{args.export.name}_analysis"
    analyses = None
    if args.sensitivity is not None:
        text = args.sensitivity.strip()
        analyses = () if text in ("", "none") else tuple(x.strip() for x in text.split(","))
    try:
        design = load_design(args.design)
        result = analyse(
            args.export,
            design,
            seed=args.seed,
            size=args.size,
            out_dir=out,
            progress=None if args.quiet else progress,
            analyses=analyses,
        )
        open_html, closed_html = write_reports(out, design=design)
    except (PaletteError, ValueError) as exc:
        print(f"palette: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    counts = result.manifest["counts"]
    if counts["invalid"]:
        print(
            f"palette: {counts['invalid']} of {counts['rows']} rows of the export are invalid "
            "(listed in errors.csv and in both reports)",
            file=sys.stderr,
        )
    manifest = result.manifest
    for item in manifest["monte_carlo"]["unresolved"]:
        print(f"palette: unresolved (no decision): {item}", file=sys.stderr)
    if manifest["decisions_taken"] and not manifest["gates_passed"]:
        print(
            "palette: warning: some sensitivity fits failed the convergence gates "
            "(see diagnostics.csv)",
            file=sys.stderr,
        )
    signals = manifest["safety_rule"]["signals"]
    if signals:
        print(
            f"palette: {signals} safety signal(s) under the proposed rule of "
            "protocol/safety_monitoring.yaml: see the closed report (DMC only)",
            file=sys.stderr,
        )
    print(f"results: {out}")
    print(f"open report: {open_html}")
    print(f"closed report: {closed_html}")
    if not manifest["decisions_taken"]:
        print(f"palette: NO DECISION: {manifest['no_decision_reason']}", file=sys.stderr)
        return 3
    return 0


def _add_allocation_commands(sub: argparse._SubParsersAction, shared: _Shared) -> None:
    """``palette randomise`` and ``palette log verify|replay|recover|head``."""
    rnd = sub.add_parser(
        "randomise",
        parents=[shared.design, shared.secret, shared.restricted_log],
        help="classify patients and randomise the eligible ones (shows the site the arm only)",
        description="Validate and classify a CSV or Parquet file of patients, assign the trait, "
        "draw the arm with the trial secret from the allocation probabilities in force, and append "
        "each randomised patient to the allocation log (open) and its restricted log. Prints only "
        "sequence, patient id, trait and arm; rows not randomised are reported on stderr with "
        "the reason and not logged.",
    )
    rnd.add_argument("file", type=Path, help="patients (.csv or .parquet), one or more rows")
    rnd.add_argument("--log", type=Path, required=True, help="the open allocation log (.jsonl)")
    rnd.add_argument(
        "--allocation",
        type=Path,
        help="allocation state (JSON) in force (default: equal allocation among usual care and "
        "the arms open at the start)",
    )
    rnd.add_argument(
        "--stratify",
        default="",
        help=f"comma-separated factors among {', '.join(STRATIFY_FACTORS)}: one sequence per "
        "stratum (default: one sequence per trait); fixed for the life of a log",
    )
    _policy(rnd, "multi-trait policy (default: random among positive traits)")
    log = sub.add_parser("log", help="verify, replay, recover the allocation log")
    lsub = log.add_subparsers(dest="log_command", metavar="SUBCOMMAND", required=True)
    verify = lsub.add_parser(
        "verify",
        parents=[shared.restricted_log, shared.json],
        help="check the hash chain, the anchor and the restricted log",
        description="Detect edited, removed, reordered, duplicated or truncated entries, an "
        "incomplete last line and a restricted log inconsistent with the open log; name the line.",
    )
    replay = lsub.add_parser(
        "replay",
        parents=[shared.restricted_log, shared.secret, shared.design],
        help="recompute every draw with the secret and check it against the log",
        description="With the trial secret, recompute every commitment, arm and multi-trait draw "
        "from the logged inputs and the restricted log's probabilities.",
    )
    recover = lsub.add_parser(
        "recover",
        parents=[shared.restricted_log],
        help="repair what a killed write left (an incomplete last line, a lagging anchor)",
        description="Remove an incomplete final line or an uncommitted restricted entry that no "
        "anchor covers (saved beside the log), update lagging anchors; never a committed entry.",
    )
    head = lsub.add_parser(
        "head",
        parents=[shared.restricted_log],
        help="print the anchor line to countersign off-site (sequence, open and restricted hash)",
    )
    for cmd in (verify, replay, recover, head):
        cmd.add_argument("log", type=Path, help="the open allocation log (.jsonl)")
    verify.add_argument(
        "--open-only", action="store_true", help="check the open log only (e.g. at a site)"
    )
    verify.add_argument(
        "--anchor",
        help="SEQ:HASH:RESTRICTED_HASH from a countersigned `palette log head`: both logs must "
        "still hold that entry unchanged",
    )
    replay.add_argument(
        "--allocation",
        type=Path,
        action="append",
        default=[],
        help="an allocation state file the log's entries name (repeatable): their "
        "probabilities are compared with it (the default state is always known)",
    )


def _randomise(args: argparse.Namespace) -> int:
    stratify = tuple(f.strip() for f in args.stratify.split(",") if f.strip())
    try:
        secret = load_secret(args.secret_file)
        design = _screening_design(args.design)
        state = (
            load_allocation_state(args.allocation, design)
            if args.allocation is not None
            else default_allocation_state(design)
        )
        validation = read_patients(args.file, design)
        result = randomise_patients(
            validation,
            design,
            state,
            secret,
            args.log,
            stratify=stratify,
            policy=args.policy,
            restricted=args.restricted_log,
        )
    except (PaletteError, ValueError) as exc:
        print(f"palette: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print(
            f"palette: {args.log}: a JSON value nested too deeply: not an allocation log",
            file=sys.stderr,
        )
        return 2
    for note in result.notes:
        print(f"palette: note: {note}", file=sys.stderr)
    print("sequence\tpatient_id\ttrait\tarm\tstatus")
    shown = [(a, "randomised") for a in result.allocations]
    shown += [(r.committed, "randomised earlier") for r in result.refused if r.committed]
    for a, status in sorted(shown, key=lambda x: x[0].sequence):
        print(f"{a.sequence}\t{a.patient_id}\t{a.trait}\t{a.arm}\t{status}")
    for r in result.refused:
        print(
            f"{args.file}: {validation.where(r.row)} (patient {r.patient_id}): not randomised: "
            f"{r.reason}",
            file=sys.stderr,
        )
    n = len(validation.frame)
    print(
        f"randomised {len(result.allocations)} of {n} rows; {len(result.refused)} not randomised",
        file=sys.stderr,
    )
    if result.error is not None:
        print(
            f"palette: stopped at row {result.stopped_at}: {result.error}",
            file=sys.stderr,
        )
        return 2
    return 1 if result.refused else 0


def _log(args: argparse.Namespace) -> int:
    try:
        if args.log_command == "verify":
            anchor = alloclog.parse_anchor(args.anchor) if args.anchor else None
            restricted = False if args.open_only else args.restricted_log
            report = alloclog.verify_log(args.log, restricted=restricted, anchor=anchor)
            if args.json:
                out = {
                    "log": str(report.path),
                    "restricted_log": None
                    if report.restricted_path is None
                    else str(report.restricted_path),
                    "ok": report.ok,
                    "entries": report.entries,
                    "restricted_entries": report.restricted_entries,
                    "problems": [
                        {"kind": p.kind, "file": p.file, "line": p.line, "message": p.message}
                        for p in report.problems
                    ],
                    "notes": list(report.notes),
                }
                print(json.dumps(out, indent=2, ensure_ascii=False))
            else:
                print("\n".join(report.lines()))
            return 0 if report.ok else 1
        if args.log_command == "replay":
            secret = load_secret(args.secret_file)
            design = load_design(args.design)
            states = [load_allocation_state(f, design) for f in args.allocation]
            replayed = replay_log(
                args.log, secret, design, restricted=args.restricted_log, states=states
            )
            print("\n".join(replayed.lines()))
            return 0 if replayed.ok else 1
        if args.log_command == "recover":
            recovered = alloclog.recover_log(args.log, restricted=args.restricted_log)
            for action in recovered.actions:
                print(action)
            for r in recovered.removed:  # never the content: it may hold the next draw's arm
                print(f"  removed from {r.file}, line {r.line} ({r.reason}): {r.n_bytes} bytes")
                print(f"  saved to {r.saved_to} (mode 0600)")
            for p in recovered.problems:
                print(f"  ! [{p.kind}] {p}")
            if not recovered.ok:
                print("not recovered: these problems are not what a killed write leaves")
            return 0 if recovered.ok else 1
        if args.log_command == "head":
            print(alloclog.head_digest(args.log, restricted=args.restricted_log))
            return 0
    except (PaletteError, ValueError) as exc:
        print(f"palette: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print(
            f"palette: {args.log}: a JSON value nested too deeply: not an allocation log",
            file=sys.stderr,
        )
        return 2
    raise AssertionError("unreachable: argparse requires a log subcommand")  # pragma: no cover


def _secret(args: argparse.Namespace) -> int:
    try:
        path = write_new_secret(args.file)
    except PaletteError as exc:
        print(f"palette: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote a new trial secret ({8 * NEW_SECRET_BYTES} random bits, hex) to {path} "
        "(mode 0600); it is not shown"
    )
    return 0


def _screening_design(path: Path | None) -> Design:
    """The design, loaded, with an implementation for every hook it declares (screening)."""
    design = load_design(path)
    check_hooks(design)
    return design


def _design_check(args: argparse.Namespace) -> int:
    try:
        design = _screening_design(args.design)
        report = check_fidelity(design)
        load_tipping_spec(design)  # proposed/tipping_point.yaml, read apart from the design
    except DesignError as exc:
        print(f"palette: design invalid: {exc}", file=sys.stderr)
        return 2
    except PaletteError as exc:
        print(f"palette: {exc}", file=sys.stderr)
        return 2
    problems = report.problems()
    if args.json:
        out = {
            "design": str(design.root),
            "design_hash": design.design_hash,
            "summary": design.summary(),
            "fidelity_ok": report.ok,
            "problems": problems,
            "findings": report.findings_table().to_dict(orient="records"),
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0 if report.ok else 1
    n = design.summary()
    print(f"Design {design.root}: valid (hash {design.design_hash[:12]})")
    print(
        f"  {n['traits']} traits, {n['arms']} arms ({n['control_arms']} usual care, {n['experimental_arms']} experimental), "
        f"{n['shared_effect_groups']} shared-effect groups"
    )
    print(
        f"Registry fidelity ({report.registry_path}): "
        f"{'faithful' if report.ok else 'PROBLEMS'}; {len(report.signals)} automatic signals, "
        f"{len(report.findings)} findings"
    )
    for line in problems:
        print(f"  ! {line}")
    print()
    for f in report.findings:
        lines = ", ".join(str(x) for x in sorted({e.line for e in f.evidence}))
        print(f"{f.id} [{f.severity}, {f.category}] {f.title} (registry lines {lines})")
        text = " ".join(f.adopted_reading.replace("*", "").split()).removeprefix("Proposed: ")
        label = "reading (proposed)" if f.reading_status == "proposed" else "reading (as written)"
        print(textwrap.indent(textwrap.fill(f"{label}: {text}", 96), "    "))
        for b in f.blocks_dose:
            print(f"    blocks dose: {b.arm} ({', '.join(b.age_groups)})")
    return 0 if report.ok else 1


def _classify(args: argparse.Namespace) -> int:
    try:
        design = _screening_design(args.design)
        validation = read_patients(args.file, design)
    except PaletteError as exc:
        print(f"palette: {exc}", file=sys.stderr)
        return 2
    result = classify_patients(validation, design, seed=args.seed, policy=args.policy)
    result.insert(1, "seed", args.seed)
    result.insert(2, "policy", args.policy)
    out = args.out or args.file.with_suffix(".classified.csv")
    try:
        if out.suffix.lower() == ".parquet":
            result.to_parquet(out, index=False)
        else:
            neutralise_formulas(result).to_csv(out, index=False)
    except OSError as exc:
        print(f"palette: {out}: cannot write the output ({exc.strerror})", file=sys.stderr)
        return 2
    for _, e in validation.errors.iterrows():
        print(
            f"{args.file}: {validation.where(int(e['row']))} (patient {e['patient_id']}), "
            f"field {e['field']!r} = {e['value']!r}: {e['problem']}",
            file=sys.stderr,
        )
    summary = classification_summary(result, design)
    print(summary.to_string(index=False))
    print(f"wrote {len(result)} rows (input {len(validation.frame)}) to {out}")
    return 1 if len(validation.errors) else 0


def _add_results_commands(sub: argparse._SubParsersAction, shared: _Shared) -> None:
    results = sub.add_parser("results", help="regenerate the stored results in data/derived")
    rsub = results.add_subparsers(dest="results_command", metavar="SUBCOMMAND", required=True)
    rebuild = rsub.add_parser(
        "rebuild",
        parents=[shared.design],
        help="recompute prior predictive, example fit, SBC and the worked interim analysis",
        description="Recompute the stored results (prior predictive, example fit, SBC and the "
        "worked interim analysis of the synthetic export), each with a manifest (design hash, "
        "seed, versions, git revision). About 15 minutes on 2 cores.",
    )
    rebuild.add_argument("--small", action="store_true", help="tiny sizes (for tests)")
    rebuild.add_argument(
        "--trials",
        type=int,
        default=None,
        help="simulated trials per scenario of calibration and operating_characteristics "
        "(default: the size's)",
    )
    rebuild.add_argument(
        "--only",
        default=None,
        help="comma-separated results to make (default: every one: "
        "prior_predictive, example_fit, sbc, worked_interim, adaptr_crosscheck, ...)",
    )
    rebuild.add_argument(
        "--skip", default="", help="comma-separated results to leave out (e.g. worked_interim)"
    )
    _out(rebuild, "output directory (default: derived/ beside the design folder)")
    _seed(rebuild, "seed (default: %(default)s)", default=20260505)


def _results_rebuild(args: argparse.Namespace) -> int:
    from palette_core.results.store import rebuild  # imports JAX: only when asked

    def names(text: str | None) -> list[str] | None:
        return None if text is None else [n.strip() for n in text.split(",") if n.strip()]

    try:
        folders = rebuild(
            load_design(args.design),
            out_dir=args.out,
            size="small" if args.small else "full",
            seed=args.seed,
            only=names(args.only),
            skip=names(args.skip) or (),
            progress=_progress_printer(),
            trials=args.trials,
        )
    except PaletteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, folder in folders.items():
        print(f"{name}: {folder}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:  # e.g. `palette design check | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # a bug, not a problem of the input: say so, no traceback
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"palette: internal error ({type(exc).__name__}: {str(exc)[:300]}); this is a bug "
            f"in palette_core, not a problem of the input; set {DEBUG_ENV}=1 for the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "design" and args.design_command == "check":
        return _design_check(args)
    if args.command == "classify":
        return _classify(args)
    if args.command == "secret" and args.secret_command == "new":
        return _secret(args)
    if args.command == "randomise":
        return _randomise(args)
    if args.command == "log":
        return _log(args)
    if args.command == "analyse":
        return _analyse(args)
    if args.command == "results" and args.results_command == "rebuild":
        return _results_rebuild(args)
    if args.command == "simulate":
        return _simulate(args)
    raise AssertionError("unreachable: argparse requires a command")  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
