"""Benchmark of the simulation engine: ``python -m palette_core.simulate.bench`` (``scripts/bench``).

Each workload is a small function (:data:`WORKLOADS`) that returns rows measured in the same
run: the compilation (trace and lower, then XLA compile, in a fresh process without the
persistent compilation cache, so that it is a real compilation), seconds per 1000 trials in this process once compiled,
the same on local Dask worker processes once each has compiled (the cluster's start and the
first chunks are reported apart), and peak resident memory (``resource.getrusage``: this process, and the
largest worker). Beside them, adaptr's own published timings of the same designs. Nothing here
is a pass/fail test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import numpy as np
from numpyro.infer import MCMC, NUTS

from palette_core.analysis.checking import empty_data
from palette_core.analysis.models import joint_model, model_priors
from palette_core.simulate import engine
from palette_core.simulate import posterior as lp
from palette_core.simulate.accuracy import simulate_looks
from palette_core.simulate.adaptr import scenario_path
from palette_core.simulate.platform import PlatformSettings, context, platform_scenarios

#: NUTS settings of the naive loop: those of the interim analysis's pre-specified primary fit
#: (``palette_core.interim.analyse.SIZES["full"]["primary"]``; a test keeps the two equal).
NAIVE_NUTS: dict[str, Any] = {
    "num_warmup": 1000,
    "num_samples": 1000,
    "num_chains": 4,
    "target_accept_prob": 0.95,
}


@dataclass(frozen=True)
class Published:
    """A timing adaptr's documentation prints: ``seconds`` for ``n_rep`` trials."""

    source: str
    n_rep: int
    seconds: float
    workers: str

    @property
    def per_1000(self) -> float:
        return 1000.0 * self.seconds / self.n_rep


#: adaptr's printed "Simulation time" of run_trials() for the scenarios benchmarked here
ADAPTR_TIMINGS: dict[str, list[Published]] = {
    "readme": [
        Published(
            "adaptr 1.1.2 README, summary() of run_trials(n_rep = 10)",
            10,
            0.448,
            "1 (no cluster set up)",
        ),
        Published(
            "adaptr 1.0/1.1 Overview vignette, run_trials(n_rep = 25)",
            25,
            1.18,
            "1 (no cluster set up)",
        ),
    ],
    "readme_v1_4_null": [
        Published(
            "adaptr 1.4.0 README, summary() of calibrate_trial()$best_sims",
            1000,
            33.1,
            "2 (setup_cluster(2))",
        ),
    ],
    "overview_v1_5_null": [
        Published(
            "adaptr 1.5.0 Overview vignette, summary() of best_sims",
            1000,
            39.8,
            "1 (setup_cluster(1))",
        ),
    ],
}


#: the issue's targets on the 2-core machine: minutes for the operating characteristics of
#: 10 scenarios x 1,000 trials, with the primary OSFD model (and mortality) at every look, and
#: with the binary mortality model alone
OC_TRIALS = 10 * 1000
TARGET_MINUTES = {"full design": 10.0, "mortality model alone": 2.0}


def _max_rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # KiB on Linux


def compile_seconds(scenario_file: str, scenario: str, chunk_size: int) -> dict[str, float]:
    """Trace+lower and XLA-compile times of one chunk function, in this process."""
    scenarios = engine.load_scenarios(scenario_file)
    program = scenarios.program()
    fn = engine.compiled_chunk(program, scenarios.settings_json, chunk_size)
    params = scenarios.scenario(scenario).params
    index = np.arange(chunk_size, dtype=np.int32)
    t0 = time.perf_counter()
    lowered = fn.lower(np.uint32(0), np.int32(0), index, params)
    t1 = time.perf_counter()
    lowered.compile()
    t2 = time.perf_counter()
    return {"trace_lower_s": t1 - t0, "xla_compile_s": t2 - t1}


def _fresh_compile_seconds(scenario_file: str, scenario: str, chunk_size: int) -> dict[str, float]:
    """:func:`compile_seconds` in a new process without the persistent compilation cache."""
    code = (
        "import json, sys; from palette_core.simulate.bench import compile_seconds; "
        "print(json.dumps(compile_seconds(*sys.argv[1:3], int(sys.argv[3]))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    out = subprocess.run(
        [sys.executable, "-c", code, scenario_file, scenario, str(chunk_size)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def adaptr_workload(
    scenario: str, trials: int, chunk_size: int, workers: int, seed: int = 1
) -> list[dict[str, Any]]:
    """adaptr's binomial design (``data/scenarios/adaptr_readme.yaml``), one scenario."""

    scenarios = engine.load_scenarios(scenario_path())
    chunk = min(chunk_size, trials)
    comp = _fresh_compile_seconds(str(scenario_path()), scenario, chunk)
    run = dict(chunk_size=chunk, names=[scenario], progress=False)
    engine.run_scenarios(
        scenarios, chunk, seed + 1, scheduler=engine.IN_PROCESS, **run
    )  # jit cache
    t0 = time.perf_counter()
    res = engine.run_scenarios(scenarios, trials, seed, scheduler=engine.IN_PROCESS, **run)
    in_process = time.perf_counter() - t0
    rows = [
        {
            "workload": f"adaptr {scenario}",
            "mode": "in-process, compiled",
            "trials": trials,
            "s_per_1000": 1000 * in_process / trials,
            "mean_size": float(res.trials["final_n"].mean()),
            **comp,
            "peak_rss_mib": _max_rss_mib(resource.RUSAGE_SELF),
        }
    ]
    if workers > 0:
        from dask.distributed import LocalCluster

        t0 = time.perf_counter()
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            started = time.perf_counter() - t0
            address = cluster.scheduler_address
            t0 = time.perf_counter()  # one chunk per worker: each compiles (or reads the cache)
            engine.run_scenarios(scenarios, chunk * workers, seed + 2, scheduler=address, **run)
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            engine.run_scenarios(scenarios, trials, seed, scheduler=address, **run)
            steady = time.perf_counter() - t0
        rows.append(
            {
                "workload": f"adaptr {scenario}",
                "mode": f"Dask, {workers} local processes, compiled (cluster start {started:.1f} s "
                f"and first chunks {warm:.1f} s not counted)",
                "trials": trials,
                "s_per_1000": 1000 * steady / trials,
                "peak_rss_mib": _max_rss_mib(resource.RUSAGE_CHILDREN),
            }
        )
    for pub in ADAPTR_TIMINGS.get(scenario, []):
        rows.append(
            {
                "workload": f"adaptr {scenario}",
                "mode": f"adaptr (R), published: {pub.source}; workers {pub.workers}",
                "trials": pub.n_rep,
                "s_per_1000": pub.per_1000,
            }
        )
    return rows


def palette_workload(
    trials: int, chunk_size: int, scenario: str = "global_null", seed: int = 1
) -> list[dict[str, Any]]:
    """The full PALETTE design (``data/scenarios/platform.yaml``, one scenario), in this
    process: seconds per 1,000 trials once compiled, analyses per second (one analysis = one
    outcome's Laplace posterior at one conducted look), and the minutes the operating
    characteristics of 10 scenarios x 1,000 trials would take at that rate, beside the target
    (:data:`TARGET_MINUTES`). Then the mortality model alone (and the OSFD model alone), timed
    on looks of the same size: :func:`analysis_rows`."""
    path = str(platform_scenarios())
    scenarios = engine.load_scenarios(path)
    chunk = min(chunk_size, trials)
    comp = _fresh_compile_seconds(path, scenario, chunk)
    run = dict(chunk_size=chunk, names=[scenario], progress=False)
    engine.run_scenarios(scenarios, chunk, seed + 1, scheduler=engine.IN_PROCESS, **run)
    t0 = time.perf_counter()
    res = engine.run_scenarios(scenarios, trials, seed, scheduler=engine.IN_PROCESS, **run)
    seconds = time.perf_counter() - t0
    n_looks = int(res.trials["n_looks"].sum())
    analyses = 2 * n_looks  # OSFD and mortality at every look
    oc_minutes = OC_TRIALS * seconds / trials / 60
    rows = [
        {
            "workload": f"palette {scenario}",
            "mode": "in-process, compiled; full design (OSFD and mortality at every look)",
            "trials": trials,
            "s_per_1000": 1000 * seconds / trials,
            "trials_per_min": 60 * trials / seconds,
            "analyses_per_s": analyses / seconds,
            "oc_minutes": oc_minutes,
            "target_minutes": TARGET_MINUTES["full design"],
            **comp,
            "peak_rss_mib": _max_rss_mib(resource.RUSAGE_SELF),
        }
    ]
    return rows + analysis_rows(chunk, n_looks / trials, seed)


def analysis_rows(batch: int, looks_per_trial: float, seed: int = 1) -> list[dict[str, Any]]:
    """Each outcome's Laplace analysis alone, ``jax.vmap``-ed over ``batch`` looks of
    :func:`~palette_core.simulate.accuracy.simulate_looks` trials at the simulator's era
    capacity, warm-started from the previous look (as in the simulator), with one LAPACK
    thread: CPU milliseconds per analysis, and the minutes of the operating characteristics
    (10 scenarios x 1,000 trials x ``looks_per_trial`` looks, measured by the full run) if an
    analysis were all a look cost. The mortality row is the issue's "binary mortality model
    in 2 minutes" target; the rest of a look (accrual, allocation draws, decisions) is the
    difference between the full design's row and the two analyses."""
    ctx = context(PlatformSettings().model_dump_json())
    specs = {"OSFD model alone": ctx.spec, "mortality model alone": ctx.spec_mortality}
    n_looks = 3
    looks = simulate_looks(ctx.design, ctx.spec, ctx.spec_mortality, batch, n_looks, seed)
    rows = []
    for label, spec in specs.items():
        post = lp.LaplacePosterior(spec, empty_data(ctx.design, spec), model_priors(ctx.design))
        last = np.stack([lk.counts[spec.outcome] for lk in looks if lk.look == n_looks - 1])
        prev = np.stack([lk.counts[spec.outcome] for lk in looks if lk.look == n_looks - 2])
        with engine.one_lapack_thread():
            states = post.analyse_batch(prev).state
            jax.block_until_ready(post.analyse_batch(last, states))  # compile
            cpu = []
            for _ in range(3):
                c0 = time.process_time()
                jax.block_until_ready(post.analyse_batch(last, states))
                cpu.append(time.process_time() - c0)
        ms = 1e3 * float(np.median(cpu)) / len(last)
        per_1000 = ms * looks_per_trial  # ms per trial = s per 1000 trials
        rows.append(
            {
                "workload": label,
                "mode": f"Laplace analysis only, warm, batch {len(last)}, CPU time, "
                f"{looks_per_trial:.1f} looks per trial; {ms:.1f} ms per analysis",
                "trials": OC_TRIALS,
                "s_per_1000": per_1000,
                "oc_minutes": OC_TRIALS * per_1000 / 1000 / 60,
                "target_minutes": TARGET_MINUTES.get(label),
            }
        )
    return rows


def naive_loop_seconds(n_looks: int, seed: int = 1) -> tuple[float, int]:
    """Seconds per look of the naive loop: NumPyro's ``MCMC.run`` once per look of the
    primary (OSFD) model at the pre-specified settings of the interim analysis
    (:data:`NAIVE_NUTS`), with ``jit_model_args=True`` and
    its default progress bar, on looks of simulated trials at the simulator's era capacity.
    The first call compiles and is not counted; returns (seconds per look, looks timed)."""
    ctx = context(PlatformSettings().model_dump_json())
    design, spec = ctx.design, ctx.spec
    binary = ctx.spec_mortality
    looks = simulate_looks(design, spec, binary, 1, n_looks + 1, seed)
    template, priors = empty_data(design, spec), model_priors(design)
    settings = NAIVE_NUTS
    model = partial(joint_model, spec)  # the spec is static: bound, not a model argument
    kernel = NUTS(model, target_accept_prob=settings["target_accept_prob"])
    mcmc = MCMC(
        kernel,
        num_warmup=settings["num_warmup"],
        num_samples=settings["num_samples"],
        num_chains=settings["num_chains"],
        jit_model_args=True,
        chain_method="sequential",
    )
    times = []
    for i, look in enumerate(looks):
        data = template._replace(counts=look.counts[spec.outcome])
        t0 = time.perf_counter()
        mcmc.run(jax.random.key(seed + i), data, priors)
        jax.block_until_ready(mcmc.get_samples())
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:])), len(times) - 1


#: name -> ``workload(trials, chunk_size, workers) -> rows``
WORKLOADS: dict[str, Callable[[int, int, int], list[dict[str, Any]]]] = {
    "adaptr_readme": lambda n, c, w: adaptr_workload("readme", n, c, w),
    "adaptr_readme_v1_4_null": lambda n, c, w: adaptr_workload("readme_v1_4_null", n, c, w),
    "palette": lambda n, c, w: palette_workload(min(n, 128), c),
}


def _print(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        extras = []
        if "trace_lower_s" in r:
            extras.append(
                f"compile: trace+lower {r['trace_lower_s']:.1f} s, XLA {r['xla_compile_s']:.1f} s"
            )
        if "peak_rss_mib" in r:
            extras.append(f"peak RSS {r['peak_rss_mib']:.0f} MiB")
        if "mean_size" in r:
            extras.append(f"mean size {r['mean_size']:.0f}")
        if "analyses_per_s" in r:
            extras.append(
                f"{r['trials_per_min']:.0f} trials/min, {r['analyses_per_s']:.0f} analyses/s"
            )
        if "oc_minutes" in r:
            oc = f"10 scenarios x 1,000 trials: {r['oc_minutes']:.1f} min"
            if r.get("target_minutes"):
                target = r["target_minutes"]
                oc += f", target {target:.0f} min: {r['oc_minutes'] / target:.2f}x the target"
            extras.append(oc)
        tail = f" ({'; '.join(extras)})" if extras else ""
        print(
            f"{r['workload']:<32} {r['s_per_1000']:8.2f} s / 1000 trials  [{r['mode']}, n={r['trials']}]{tail}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m palette_core.simulate.bench", description=__doc__)
    p.add_argument("--workload", action="append", choices=sorted(WORKLOADS), help="default: all")
    p.add_argument("--trials", type=int, default=4000)
    p.add_argument("--chunk-size", type=int, default=engine.DEFAULT_CHUNK_SIZE)
    p.add_argument("--workers", type=int, default=2, help="local Dask processes (0: skip)")
    p.add_argument(
        "--naive-looks",
        type=int,
        default=2,
        help="looks timed of the naive loop (NumPyro MCMC.run per look; 0: skip)",
    )
    args = p.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.default_backend()}; chunk size {args.chunk_size}")
    engine_rate = None
    for name in args.workload or sorted(WORKLOADS):
        rows = WORKLOADS[name](args.trials, args.chunk_size, args.workers)
        _print(rows)
        engine_rate = next(
            (r["analyses_per_s"] for r in rows if "analyses_per_s" in r), engine_rate
        )
        sys.stdout.flush()
    if args.naive_looks > 0 and engine_rate is not None:
        per_look, n = naive_loop_seconds(args.naive_looks)
        print(
            f"naive loop (NumPyro MCMC.run per look, jit_model_args=True, OSFD, {n} looks): "
            f"{per_look:.1f} s per analysis = {1 / per_look:.4f} analyses/s; "
            f"engine {engine_rate:.1f} analyses/s: ratio {engine_rate * per_look:.0f}x"
        )
    return 0


if __name__ == "__main__":  # the guard matters: Dask's worker processes import this module
    sys.exit(main())
