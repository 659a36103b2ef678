"""The simulator's benchmark: its naive loop runs at the interim analysis's settings, and its
rows print as one line each (the benchmark itself times nothing in the test suite)."""

from __future__ import annotations

from palette_core.interim.analyse import SIZES
from palette_core.simulate import bench


def test_the_naive_loop_uses_the_interim_analysis_settings():
    assert bench.NAIVE_NUTS == SIZES["full"]["primary"]


def test_rows_print_their_rates(capsys):
    bench._print(
        [
            {
                "workload": "palette global_null",
                "mode": "in-process, compiled",
                "trials": 64,
                "s_per_1000": 250.0,
                "trials_per_min": 240.0,
                "analyses_per_s": 80.0,
                "oc_minutes": 41.7,
                "target_minutes": 10.0,
                "peak_rss_mib": 1500.0,
            },
            {
                "workload": "mortality model alone",
                "mode": "Laplace analysis only",
                "trials": 10000,
                "s_per_1000": 30.0,
                "oc_minutes": 5.0,
                "target_minutes": 2.0,
            },
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2
    assert "240 trials/min, 80 analyses/s; 10 scenarios x 1,000 trials: 41.7 min" in out[0]
    assert "target 10 min: 4.17x the target" in out[0]
    assert "peak RSS 1500 MiB" in out[0]
    assert "10 scenarios x 1,000 trials: 5.0 min, target 2 min: 2.50x the target" in out[1]
