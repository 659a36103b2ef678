"""``python -m benchmarks [NAME ...] [--repeat N] [--quick] [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import workloads  # noqa: F401  (registers the workloads)
from benchmarks.harness import WORKLOADS, measure, table
from palette_core.design import load_design


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Time palette_core workloads against a NumPy baseline measured in the same "
        "run; the ratio (workload / baseline) is what to compare between commits.",
    )
    parser.add_argument(
        "names", nargs="*", help=f"workloads (default: all of {', '.join(WORKLOADS)})"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed calls of each (default: 5)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    chosen = [WORKLOADS[n] for n in args.names or WORKLOADS]
    results = measure(chosen, load_design(), repeat=args.repeat, quick=args.quick)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
