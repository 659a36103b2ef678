"""The ``palette`` command line.

``palette design check`` validates ``data/design`` and prints the registry-fidelity findings.
Exit status: 0 valid and faithful; 1 valid but the fidelity check reports problems; 2 the
design is invalid (the typed error is printed).

``palette classify FILE --seed N`` screens a file of patients. Exit status: 0 every row valid;
1 some rows invalid (they are reported on stderr and kept, unclassified, in the output);
2 the file or the design cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .design import DEFAULT_DESIGN_DIR, load_design
from .errors import PaletteError
from .fidelity import check_fidelity


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="palette",
        description="PALETTE (NCT06381661): executable protocol and statistical analysis plan.",
    )
    p.add_argument("--version", action="version", version=f"palette_core {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    design = sub.add_parser("design", help="work with the trial design in data/design")
    dsub = design.add_subparsers(dest="design_command", metavar="SUBCOMMAND", required=True)
    check = dsub.add_parser(
        "check",
        help="validate the design and print the registry-fidelity findings",
        description="Validate data/design (typed errors name file, entry and field) and cross-check it "
        "against the registry record; print every registry finding.",
    )
    check.add_argument(
        "--design",
        type=Path,
        default=DEFAULT_DESIGN_DIR,
        help="design directory (default: %(default)s)",
    )
    check.add_argument("--json", action="store_true", help="print a machine-readable report")
    classify = sub.add_parser(
        "classify",
        help="eligibility, treatable traits and assigned trait for a file of patients",
        description="Validate a CSV or Parquet file of patient records (data/design/patient_record.yaml), "
        "assess eligibility, classify the treatable traits and assign the trait under the multi-trait "
        "policy. Writes one output row per input row, with reasons; a bad row is reported with its row "
        "number and field and is not classified, the others are.",
    )
    classify.add_argument("file", type=Path, help="patients (.csv or .parquet)")
    classify.add_argument(
        "--out", type=Path, help="output file (.csv or .parquet; default: FILE.classified.csv)"
    )
    classify.add_argument(
        "--seed",
        type=int,
        required=True,
        help="seed of the multi-trait draw (logged in the output)",
    )
    classify.add_argument(
        "--policy",
        choices=["default", "sensitivity"],
        default="default",
        help="multi-trait policy: random among positive traits (default) or priority order",
    )
    classify.add_argument(
        "--design",
        type=Path,
        default=DEFAULT_DESIGN_DIR,
        help="design directory (default: %(default)s)",
    )
    return p


def _design_check(args: argparse.Namespace) -> int:
    try:
        design = load_design(args.design)
        report = check_fidelity(design)
    except PaletteError as exc:
        print(f"palette: design invalid: {exc}", file=sys.stderr)
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
    from .classify import classification_summary, classify_patients
    from .patients import read_patients

    try:
        design = load_design(args.design)
        validation = read_patients(args.file, design)
    except PaletteError as exc:
        print(f"palette: {exc}", file=sys.stderr)
        return 2
    result = classify_patients(validation, design, seed=args.seed, policy=args.policy)
    result.insert(1, "seed", args.seed)
    result.insert(2, "policy", args.policy)
    out = args.out or args.file.with_suffix(".classified.csv")
    if out.suffix.lower() == ".parquet":
        result.to_parquet(out, index=False)
    else:
        result.to_csv(out, index=False)
    for _, e in validation.errors.iterrows():
        print(
            f"{args.file}: row {e['row']} (patient {e['patient_id']}), field {e['field']!r} = {e['value']!r}: {e['problem']}",
            file=sys.stderr,
        )
    summary = classification_summary(result, design)
    print(summary.to_string(index=False))
    print(f"wrote {len(result)} rows (input {len(validation.frame)}) to {out}")
    return 1 if len(validation.errors) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "design" and args.design_command == "check":
            return _design_check(args)
        if args.command == "classify":
            return _classify(args)
    except BrokenPipeError:  # e.g. `palette design check | head`
        sys.stderr.close()
        return 0
    raise AssertionError("unreachable: argparse requires a command")  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
