"""The benchmark harness (benchmarks/, run by scripts/bench): ratios, registration, and every
registered workload runs (at its quick size; nothing here is timed)."""

from __future__ import annotations

import json

import pytest

from benchmarks import workloads  # noqa: F401  (registers the workloads)
from benchmarks.__main__ import main
from benchmarks.harness import WORKLOADS, Result, Workload, measure, table, workload


class FakeClock:
    """A clock that moves only when a fake call says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def call(self, *durations: float):
        remaining = list(durations)

        def run() -> None:
            self.now += remaining.pop(0) if len(remaining) > 1 else remaining[0]

        return run


def test_ratio_is_the_median_of_the_workload_over_the_median_of_the_baseline() -> None:
    clock = FakeClock()
    w = Workload("w", "fake", lambda design, quick: clock.call(9.0, 1.0, 3.0, 2.0))
    baseline = clock.call(0.0, 4.0, 5.0, 6.0)  # the first call warms up, untimed
    (result,) = measure([w], None, repeat=3, baseline=baseline, clock=clock)
    assert result == Result("w", first_s=9.0, median_s=2.0, baseline_s=5.0)
    assert result.ratio == pytest.approx(0.4)
    assert result.as_dict()["ratio"] == pytest.approx(0.4)


def test_quick_is_passed_to_the_workload() -> None:
    seen = []
    w = Workload("w", "fake", lambda design, quick: seen.append((design, quick)) or (lambda: 0))
    measure([w], "the design", repeat=1, quick=True, baseline=lambda: 0)
    assert seen == [("the design", True)]
    with pytest.raises(ValueError, match="repeat"):
        measure([w], None, repeat=0)


def test_a_name_is_registered_once() -> None:
    name = next(iter(WORKLOADS))
    with pytest.raises(ValueError, match="registered twice"):
        workload(name, "again")(lambda design, quick: lambda: None)


def test_table_lists_each_workload_with_its_ratio() -> None:
    text = table([Result("cohort", 1.0, 0.5, 0.25)])
    header, row = text.splitlines()
    assert header.split()[-1] == "ratio"
    assert row.split() == ["cohort", "1.000", "0.500", "0.250", "2.00"]


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_workload_runs_at_its_quick_size(design, name: str) -> None:
    assert WORKLOADS[name].prepare(design, True)() is not None


def test_the_command_refuses_an_unknown_workload(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["no_such_workload"])
    assert exit_.value.code == 2
    assert "unknown workload(s) no_such_workload" in capsys.readouterr().err


def test_the_command_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["cohort", "--quick", "--repeat", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["name"] == "cohort" and row["ratio"] > 0
    assert "cohort" in capsys.readouterr().out
