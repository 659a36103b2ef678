"""Timing of the registered workloads, each against a baseline measured in the same run.

A workload is one function, registered with :func:`workload`, that takes the design and
``quick`` (a small size, for the smoke test) and returns the call to time. The first call is
timed apart (it includes compilation and caches), then the call and the baseline alternate
``repeat`` times and the ratio of their medians is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from palette_core.design import Design

Prepare = Callable[[Design, bool], Callable[[], object]]


@dataclass(frozen=True)
class Workload:
    """A named call to time, built by ``prepare(design, quick)``."""

    name: str
    description: str
    prepare: Prepare


@dataclass(frozen=True)
class Result:
    """Seconds of one workload and of the baseline, measured alternately in one run."""

    name: str
    first_s: float
    median_s: float
    baseline_s: float

    @property
    def ratio(self) -> float:
        """Median time of the workload over median time of the baseline."""
        return self.median_s / self.baseline_s

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self) | {"ratio": self.ratio}


#: every registered workload, by name, in registration order
WORKLOADS: dict[str, Workload] = {}


def workload(name: str, description: str) -> Callable[[Prepare], Prepare]:
    """Register ``prepare(design, quick) -> call`` as the workload ``name``."""

    def register(prepare: Prepare) -> Prepare:
        if name in WORKLOADS:
            raise ValueError(f"workload {name!r} is registered twice")
        WORKLOADS[name] = Workload(name, description, prepare)
        return prepare

    return register


def numpy_baseline() -> Callable[[], object]:
    """The reference call: sort two million uniform floats (about 0.15 s on one core)."""
    values = np.random.default_rng(0).random(2_000_000)
    return lambda: np.sort(values)


def _seconds(call: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    call()
    return clock() - start


def measure(
    workloads: Iterable[Workload],
    design: Design,
    *,
    repeat: int = 5,
    quick: bool = False,
    baseline: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Result]:
    """Time each workload: its first call, then ``repeat`` calls alternating with the baseline."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {repeat}")
    reference = baseline or numpy_baseline()
    reference()  # warm the baseline's memory before the first measurement
    results = []
    for w in workloads:
        call = w.prepare(design, quick)
        first = _seconds(call, clock)
        own, base = [], []
        for _ in range(repeat):
            base.append(_seconds(reference, clock))
            own.append(_seconds(call, clock))
        results.append(Result(w.name, first, statistics.median(own), statistics.median(base)))
    return results


def table(results: Iterable[Result]) -> str:
    """The results as a fixed-width text table."""
    lines = [f"{'workload':<24} {'first s':>9} {'median s':>9} {'baseline s':>11} {'ratio':>8}"]
    for r in results:
        lines.append(
            f"{r.name:<24} {r.first_s:>9.3f} {r.median_s:>9.3f} {r.baseline_s:>11.3f} "
            f"{r.ratio:>8.2f}"
        )
    return "\n".join(lines)
