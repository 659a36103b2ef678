"""The simulation engine: keys, chunks, compilation, Dask, scenario files, progress, results, CLI.

The program is adaptr's binomial trial on a tiny configuration (few looks, small grid), so
that compiling it is quick; its rules are tested in ``test_adaptr.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg  # noqa: F401  (loads the OpenBLAS that jaxlib's CPU linear algebra calls)
from threadpoolctl import threadpool_info

from palette_core.cli import main
from palette_core.errors import ScenarioError
from palette_core.simulate import engine

TINY = """\
design: adaptr_binomial
description: a tiny configuration for the engine's tests
settings:
  arms: [A, B, C]
  n_looks: 4
  max_n: 200
  max_batch: 60
  grid_points: 65
scenarios:
  - name: differ
    true_ys: [0.3, 0.15, 0.45]
    min_probs: [0.1, 0.1, 0.1]
    data_looks: [50, 100, 150, 200]
    superiority: 0.95
    inferiority: 0.05
    equivalence_prob: 0.9
    equivalence_diff: 0.1
    soften_power: 0.5
  - name: null_lag
    true_ys: [0.3, 0.3, 0.3]
    data_looks: [40, 80, 120, 160]
    randomised_at_looks: [60, 100, 140, 160]
    superiority: 0.95
    inferiority: 0.05
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _run(path: Path, n: int = 23, seed: int = 5, **kw) -> engine.SimulationResult:
    kw.setdefault("scheduler", engine.IN_PROCESS)
    kw.setdefault("progress", False)
    return engine.run_scenarios(engine.load_scenarios(path), n, seed, **kw)


def test_results_do_not_depend_on_chunk_size_bit_for_bit(tiny):
    a = _run(tiny, chunk_size=8, keep_looks=True)
    b = _run(tiny, chunk_size=5, keep_looks=True)
    pd.testing.assert_frame_equal(a.trials, b.trials, check_exact=True)
    pd.testing.assert_frame_equal(a.looks, b.looks, check_exact=True)
    assert len(a.trials) == 2 * 23  # the padding of the last chunk is dropped
    assert list(a.trials["trial"][:23]) == list(range(23))


def test_a_trial_depends_on_seed_scenario_and_index_only(tiny):
    both = _run(tiny, chunk_size=8)
    alone = _run(tiny, chunk_size=5, names=["null_lag"])
    mine = both.trials[both.trials["scenario"] == "null_lag"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, alone.trials, check_exact=True)
    other = _run(tiny, seed=6, chunk_size=8)
    assert not other.trials.equals(both.trials)


def test_one_compilation_per_program_and_chunk_size(tiny):
    scenarios = engine.load_scenarios(tiny)
    key = (scenarios.design, scenarios.settings_json, 3)
    before = engine.TRACE_COUNTS.get(key, 0)
    result = _run(tiny, n=7, chunk_size=3)  # 2 scenarios x 3 chunks, the last one padded
    assert engine.TRACE_COUNTS[key] - before == 1
    assert result.facts["compilations_in_process"] == {f"{scenarios.design} chunk 3": 1}
    result = _run(tiny, n=5, seed=99, chunk_size=3)  # another seed, another number of trials
    assert engine.TRACE_COUNTS[key] - before == 1
    assert result.facts["compilations_in_process"] == {}
    key2 = (scenarios.design, scenarios.settings_json, 2)
    before2 = engine.TRACE_COUNTS.get(key2, 0)
    _run(tiny, n=3, chunk_size=2)  # another chunk size: one more compilation
    assert engine.TRACE_COUNTS[key2] - before2 == 1


def test_stopped_trials_step_as_masked_no_ops(tiny):
    r = _run(tiny, n=40, chunk_size=8, keep_looks=True, names=["differ"])
    looks = r.looks.groupby("trial")
    conducted = looks.size()
    assert (conducted.values == r.trials["looks"].values).all()
    assert (conducted < 4).any(), "some trials stop early in this scenario"
    last = looks.tail(1).set_index("trial")
    assert (last["randomised_n"].values == r.trials["final_n"].values).all()
    early = r.trials["final_status"] != "max"
    assert early.any() and (r.trials.loc[early, "looks"] < 4).any()


def test_local_dask_cluster_gives_the_in_process_results(tiny):
    from dask.distributed import LocalCluster

    local = _run(tiny, n=30, chunk_size=8)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = _run(tiny, n=30, chunk_size=8, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(local.trials, remote.trials, check_exact=True)
    assert remote.facts["scheduler"] == "dask.distributed"


@pytest.mark.parametrize(
    ("edit", "entry", "field", "words"),
    [
        (
            ("    soften_power: 0.5\n", "    soften_power: 0.5\n    colour: red\n"),
            "differ",
            "colour",
            "Extra inputs",
        ),
        (
            ("true_ys: [0.3, 0.15, 0.45]", "true_ys: [0.3, 0.15]"),
            "differ",
            "true_ys",
            "2 values for 3 arms",
        ),
        (
            ("true_ys: [0.3, 0.3, 0.3]", "true_ys: [0.3, 1.3, 0.3]"),
            "null_lag",
            "true_ys[1]",
            "less than or equal",
        ),
        (
            ("data_looks: [40, 80, 120, 160]", "data_looks: [40, 80, 80, 160]"),
            "null_lag",
            "data_looks",
            "increase",
        ),
        (
            ("randomised_at_looks: [60, 100, 140, 160]", "randomised_at_looks: [60, 70, 140, 160]"),
            "null_lag",
            "randomised_at_looks[1]",
            "70 randomised",
        ),
        (
            ("inferiority: 0.05\n    equivalence_prob", "inferiority: 0.4\n    equivalence_prob"),
            "differ",
            "inferiority",
            "1 / number of arms",
        ),
        (("  max_batch: 60", "  max_batch: 30"), "differ", "data_looks[0]", "max_batch"),
        (("  n_looks: 4", "  n_looks: four"), "settings", "n_looks", "integer"),
        (("design: adaptr_binomial", "design: palette"), None, "design", "unknown trial program"),
        (("  - name: null_lag", "  - name: differ"), "differ", "name", "another scenario"),
    ],
)
def test_a_bad_scenario_file_names_file_entry_and_field(tiny, edit, entry, field, words):
    old, new = edit
    text = tiny.read_text()
    assert old in text
    tiny.write_text(text.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        engine.load_scenarios(tiny)
    err = info.value
    assert (err.file, err.entry, err.field) == (str(tiny), entry, field)
    assert words in err.message
    assert str(tiny) in str(err)


def test_yaml_errors_and_missing_files_are_scenario_errors(tiny, tmp_path):
    tiny.write_text(TINY + "settings: {}\n")  # a repeated key
    with pytest.raises(ScenarioError, match="repeated"):
        engine.load_scenarios(tiny)
    tiny.write_text("design: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        engine.load_scenarios(tiny)
    with pytest.raises(ScenarioError, match="no such file"):
        engine.load_scenarios(tmp_path / "absent.yaml")


def test_run_arguments_are_checked_at_the_boundary(tiny):
    scenarios = engine.load_scenarios(tiny)
    for kw, field in (
        ({"n_trials": 0, "seed": 1}, "trials"),
        ({"n_trials": 5, "seed": -1}, "seed"),
        ({"n_trials": 5, "seed": 2**32}, "seed"),
        ({"n_trials": 5, "seed": 1, "chunk_size": 0}, "chunk_size"),
        ({"n_trials": 5, "seed": 1, "names": ["nope"]}, "scenarios"),
    ):
        with pytest.raises(ScenarioError) as info:
            engine.run_scenarios(scenarios, scheduler=engine.IN_PROCESS, progress=False, **kw)
        assert info.value.field == field


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_plain_lines_off_a_terminal_and_one_line_on_it():
    plain = _Stream(False)
    bar = engine.Progress(30, stream=plain, every=3600)
    for _ in range(3):
        bar.update(10)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2  # the first update, then the final one (the rest are throttled)
    assert lines[-1].startswith("simulate: 30/30 trials, ") and "\r" not in plain.getvalue()
    assert "trials/s" in lines[-1] and "left" in lines[-1]
    tty = _Stream(True)
    bar = engine.Progress(20, stream=tty)
    bar.update(10)
    bar.update(10)
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().endswith("\n")


def test_results_are_written_as_parquet_with_a_manifest(tiny, tmp_path):
    scenarios = engine.load_scenarios(tiny)
    result = engine.run_scenarios(
        scenarios, 8, 17, chunk_size=8, scheduler=engine.IN_PROCESS, keep_looks=True, progress=False
    )
    out = engine.write_results(tmp_path / "out", scenarios, result, note="test")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"] == ["trials.parquet", "looks.parquet"]
    assert (
        manifest["scenario_sha256"]
        == scenarios.sha256
        == engine.hashlib.sha256(tiny.read_bytes()).hexdigest()
    )
    assert manifest["seed"] == 17 and manifest["n_trials"] == 8 and manifest["note"] == "test"
    assert manifest["key_derivation"] == engine.KEY_DERIVATION
    assert manifest["settings"]["grid_points"] == 65
    assert {"jax", "dask", "distributed", "pyarrow"} <= set(manifest["packages"])
    assert manifest["git_revision"]
    back = pd.read_parquet(out / "trials.parquet")
    assert len(back) == 16 and set(back["scenario"]) == {"differ", "null_lag"}
    np.testing.assert_array_equal(back["final_n"].to_numpy(), result.trials["final_n"].to_numpy())


def test_cli_simulate_writes_results(tiny, tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(
        [
            "simulate",
            str(tiny),
            "--trials",
            "5",
            "--seed",
            "4",
            "--out",
            str(out),
            "--scheduler",
            "in-process",
            "--chunk-size",
            "5",
            "--quiet",
        ]
    )
    assert code == 0
    assert (out / "trials.parquet").is_file() and (out / "manifest.json").is_file()
    assert "10 trials of 2 scenarios" in capsys.readouterr().out


def test_cli_simulate_bad_file_exits_2_with_one_line(tiny, tmp_path, capsys):
    tiny.write_text(TINY.replace("true_ys: [0.3, 0.15, 0.45]", "true_ys: [0.3, 0.15]"))
    code = main(
        ["simulate", str(tiny), "--trials", "5", "--seed", "4", "--out", str(tmp_path / "x")]
    )
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(tiny) in err and "'differ'" in err and "'true_ys'" in err
    tiny.write_text(TINY)
    code = main(
        ["simulate", str(tiny), "--trials", "0", "--seed", "4", "--out", str(tmp_path / "x")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'trials'" in err


def test_scenario_set_lookup(tiny):
    scenarios = engine.load_scenarios(tiny)
    assert scenarios.scenario("null_lag").params["randomised_at_looks"].tolist() == [
        60,
        100,
        140,
        160,
    ]
    with pytest.raises(KeyError):
        scenarios.scenario("nope")
    assert "adaptr_binomial" in engine.known_programs()


def test_chunks_run_with_one_lapack_thread():
    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    assert blas_threads()
    with engine.one_lapack_thread():
        assert set(blas_threads()) == {1}
