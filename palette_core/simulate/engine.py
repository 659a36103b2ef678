"""The simulation engine: virtual trials as pure JAX programs, compiled once, run in chunks.

A virtual trial is a :class:`TrialProgram`: ``init(key, params) -> carry``, a ``look(carry,
look_index) -> (carry, record)`` step that :func:`jax.lax.scan` runs over a fixed number of looks,
and ``summary(carry) -> pytree``. A trial that has stopped keeps stepping, but the engine masks
the step (``stopped(carry)``), so a stopped trial's carry never changes again and its records
say ``conducted = False``. Scenario parameters (``params``) are a pytree of arrays whose shapes
and dtypes are fixed by the program's settings, so every scenario of a design runs on the same
compiled code.

Execution
    :func:`run_scenarios` compiles ``jax.jit(jax.vmap(run_one_trial))`` once per program and
    chunk size (:func:`compiled_chunk`; :data:`TRACE_COUNTS` counts the traces), runs the trials
    of each scenario in chunks of ``chunk_size`` (the last chunk padded with repeated indices,
    the padding dropped), in-process or on Dask: local worker processes by default (each
    compiles once; the project's persistent JAX compilation cache is shared through the
    environment) or a ``dask.distributed`` scheduler given by address (``"tcp://host:port"``).

Keys
    Trial ``i`` of scenario ``s`` runs on ``fold_in(fold_in(key(seed), s), i)``, so a trial's
    result depends on (seed, scenario index, trial index) only, never on the chunk size or the
    number of workers.

Scenario files
    YAML, validated once by :func:`load_scenarios` with pydantic (``extra="forbid"``): ``design``
    names a registered program (:func:`register_program`, :data:`BUILTIN_PROGRAMS`),
    ``settings`` configure it (shapes, posterior method), ``scenarios`` list the scenarios.
    Problems raise :class:`~palette_core.errors.ScenarioError` naming file, entry and field.

Results
    :class:`SimulationResult` holds one row per trial (``trials``) and, where asked, one row
    per conducted look (``looks``); :func:`write_results` writes them as Parquet with a
    ``manifest.json`` (scenario file hash, seed, key derivation, chunk size, versions, git
    revision; :mod:`palette_core.provenance`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError
from threadpoolctl import threadpool_limits

from palette_core.errors import DesignError, ScenarioError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "IN_PROCESS",
    "KEY_DERIVATION",
    "PROCESSES",
    "ProgramDefinition",
    "Progress",
    "Scenario",
    "ScenarioError",
    "ScenarioSet",
    "SimulationResult",
    "TrialProgram",
    "compiled_chunk",
    "load_scenarios",
    "register_program",
    "run_scenarios",
    "write_results",
]
from palette_core.design.locate import checkout_design_dir, display_path
from palette_core.provenance import KEY_PACKAGES, git_revision, package_versions
from palette_core.yamlio import read_yaml

Params = Any  # a pytree of arrays
Carry = Any
Record = Any

#: default number of trials compiled and run together (memory grows linearly with it)
DEFAULT_CHUNK_SIZE = 1000
#: how trial keys are derived, written into every manifest
KEY_DERIVATION = "fold_in(fold_in(jax.random.key(seed), scenario_index), trial_index)"
#: scheduler value for running chunks in the calling process
IN_PROCESS = "in-process"
#: scheduler value for a local Dask cluster of worker processes (the default)
PROCESSES = "processes"


# ----------------------------------------------------------------------------- programs
@dataclass(frozen=True, eq=False)
class TrialProgram:
    """One virtual trial as a pure JAX program (hashable by identity, so it keys caches).

    Parameters
    ----------
    name
        The program's registry name (``"adaptr_binomial"``).
    n_looks
        Number of looks the scan runs (a trial stopped earlier steps as a masked no-op).
    init
        ``init(key, params) -> carry``: the state before the first look. The carry must hold
        whatever ``look`` needs from ``params``.
    look
        ``look(carry, look_index) -> (carry, record)``: one interim look. ``record`` is a dict
        of arrays (``{}`` for none).
    stopped
        ``stopped(carry) -> bool``: whether the trial has stopped; the engine then keeps the
        carry unchanged and marks the look's record as not conducted.
    summary
        ``summary(carry) -> dict`` of arrays: the per-trial results.
    labels
        For a field whose arrays have a last axis (one value per arm, say), the labels of that
        axis; columns are named ``field[label]``. Other fields with a last axis get
        ``field[0]``, ``field[1]``, ...
    categories
        For an integer-coded field, the category of each code; the column becomes categorical.
    """

    name: str
    n_looks: int
    init: Callable[[Any, Params], Carry]
    look: Callable[[Carry, Any], tuple[Carry, Record]]
    stopped: Callable[[Carry], Any]
    summary: Callable[[Carry], Mapping[str, Any]]
    labels: Mapping[str, Sequence[str]] = field(default_factory=dict)
    categories: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgramDefinition:
    """How a scenario file configures a trial program.

    Parameters
    ----------
    name
        The value of ``design:`` in a scenario file.
    settings_model
        Pydantic model of ``settings`` (static: shapes, posterior method); frozen and
        ``extra="forbid"``.
    scenario_model
        Pydantic model of one entry of ``scenarios`` (it must have a ``name`` field).
    build
        ``build(settings) -> TrialProgram``.
    parameters
        ``parameters(settings, scenario, where) -> dict`` of NumPy arrays: the scenario's
        parameter pytree, after the checks that need several fields at once. ``where`` is
        ``(file, entry)`` for the :class:`~palette_core.errors.ScenarioError` it raises.
    """

    name: str
    settings_model: type[BaseModel]
    scenario_model: type[BaseModel]
    build: Callable[[Any], TrialProgram]
    parameters: Callable[[Any, Any, tuple[str, str]], dict[str, np.ndarray]]


_PROGRAMS: dict[str, ProgramDefinition] = {}
#: programs registered by importing a module, looked up on first use (also in Dask workers)
BUILTIN_PROGRAMS: dict[str, str] = {
    "adaptr_binomial": "palette_core.simulate.adaptr",
    "palette_platform": "palette_core.simulate.platform",
}


def register_program(definition: ProgramDefinition) -> ProgramDefinition:
    """Make ``definition`` available to scenario files under ``definition.name``."""
    _PROGRAMS[definition.name] = definition
    return definition


def program_definition(name: str) -> ProgramDefinition:
    """The registered program ``name`` (importing its module if it is a built-in one).

    Raises ``KeyError`` for an unknown name (:func:`load_scenarios` turns it into a
    :class:`~palette_core.errors.ScenarioError`).
    """
    if name not in _PROGRAMS and name in BUILTIN_PROGRAMS:
        importlib.import_module(BUILTIN_PROGRAMS[name])
    return _PROGRAMS[name]


def known_programs() -> list[str]:
    """Names a scenario file may give as ``design``."""
    return sorted(set(_PROGRAMS) | set(BUILTIN_PROGRAMS))


_BUILT: dict[tuple[str, str], TrialProgram] = {}


def build_program(name: str, settings_json: str) -> TrialProgram:
    """The program ``name`` built from its settings (JSON); one object per process and settings."""
    key = (name, settings_json)
    if key not in _BUILT:
        definition = program_definition(name)
        settings = definition.settings_model.model_validate_json(settings_json)
        _BUILT[key] = definition.build(settings)
    return _BUILT[key]


# ----------------------------------------------------------------------------- compilation
#: number of times each (program name, settings, chunk size) was traced in this process
TRACE_COUNTS: dict[tuple[str, str, int], int] = {}
_COMPILED: dict[tuple[str, str, int], Callable[..., Any]] = {}


def trial_keys(seed: Any, scenario_index: Any, trial_index: Any) -> Any:
    """The key of each trial: ``fold_in(fold_in(key(seed), scenario_index), trial_index)``."""
    import jax

    root = jax.random.fold_in(jax.random.key(seed), scenario_index)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(trial_index)


def run_one_trial(program: TrialProgram, key: Any, params: Params) -> tuple[Any, Any]:
    """One virtual trial: ``summary`` of the carry after scanning the masked look step.

    Returns ``(summary, records)``; ``records`` stacks each look's record along a leading
    axis of length ``program.n_looks`` and adds ``conducted`` (the look was not masked).
    """
    import jax
    import jax.numpy as jnp

    def step(carry: Carry, look_index: Any) -> tuple[Carry, Record]:
        done = program.stopped(carry)
        new, record = program.look(carry, look_index)
        carry = jax.tree_util.tree_map(lambda n, o: jnp.where(done, o, n), new, carry)
        return carry, {**record, "conducted": ~done}

    carry = program.init(key, params)
    carry, records = jax.lax.scan(step, carry, jnp.arange(program.n_looks, dtype=jnp.int32))
    return program.summary(carry), records


def compiled_chunk(program: TrialProgram, settings_json: str, chunk_size: int) -> Callable:
    """``jit(vmap(run_one_trial))`` over ``chunk_size`` trial indices; one per process and key.

    The function takes ``(seed, scenario_index, trial_index[chunk_size], params)`` and returns
    ``(summaries, records)`` with a leading axis of ``chunk_size``. Its trace increments
    :data:`TRACE_COUNTS`, so a test can see that a new scenario or chunk does not compile again.
    """
    import jax

    cache_key = (program.name, settings_json, int(chunk_size))
    if cache_key not in _COMPILED:

        def chunk(seed: Any, scenario_index: Any, trial_index: Any, params: Params) -> Any:
            TRACE_COUNTS[cache_key] = TRACE_COUNTS.get(cache_key, 0) + 1  # runs at trace time
            keys = trial_keys(seed, scenario_index, trial_index)
            return jax.vmap(lambda k: run_one_trial(program, k, params))(keys)

        _COMPILED[cache_key] = jax.jit(chunk)
    return _COMPILED[cache_key]


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of trials of one scenario: what a worker needs to run it (picklable)."""

    program: str
    settings_json: str
    params: dict[str, np.ndarray]
    seed: int
    scenario_index: int
    start: int
    stop: int
    chunk_size: int
    keep_looks: bool


def one_lapack_thread() -> threadpool_limits:
    """A context in which LAPACK and BLAS (the OpenBLAS that jaxlib's CPU linear algebra calls)
    run on one thread. The simulator's matrices are small (order ~100) and batched over trials,
    so LAPACK's own threads only contend with XLA's and with other processes: on the shared
    2-core machine they made the Laplace approximation several times slower."""
    return threadpool_limits(limits=1, user_api="blas")


def run_chunk(task: ChunkTask) -> dict[str, Any]:
    """Run one chunk (in this process): trials ``start .. stop-1``, padded to ``chunk_size``,
    with one LAPACK thread (:func:`one_lapack_thread`; the parallelism is over trials).

    Returns NumPy arrays, the padding dropped: ``summary`` (dict), ``records`` (dict, or
    ``None`` unless ``keep_looks``), and ``seconds``.
    """
    import jax

    t0 = time.perf_counter()
    program = build_program(task.program, task.settings_json)
    fn = compiled_chunk(program, task.settings_json, task.chunk_size)
    n = task.stop - task.start
    index = np.arange(task.start, task.start + task.chunk_size, dtype=np.int32)
    index[n:] = task.stop - 1  # padding: repeats of the last trial, dropped below
    with one_lapack_thread():
        out = fn(np.uint32(task.seed), np.int32(task.scenario_index), index, task.params)
        summary, records = jax.device_get(out)
    summary = {k: np.asarray(v)[:n] for k, v in summary.items()}
    recs = {k: np.asarray(v)[:n] for k, v in records.items()} if task.keep_looks else None
    return {"summary": summary, "records": recs, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- scenario files
class ScenarioFileModel(BaseModel):
    """The top level of a scenario file (``settings`` and ``scenarios`` checked by the program)."""

    model_config = ConfigDict(extra="forbid")

    design: str
    description: str | None = None
    settings: dict[str, Any] = {}
    scenarios: list[dict[str, Any]]


@dataclass(frozen=True)
class Scenario:
    """One validated scenario: its name, its model and its parameter pytree (NumPy arrays)."""

    name: str
    model: Any
    params: dict[str, np.ndarray]


@dataclass(frozen=True)
class ScenarioSet:
    """A validated scenario file: the program, its settings and every scenario."""

    path: Path
    sha256: str
    design: str
    description: str | None
    settings: Any
    scenarios: tuple[Scenario, ...]

    @property
    def settings_json(self) -> str:
        return self.settings.model_dump_json()

    @property
    def definition(self) -> ProgramDefinition:
        return program_definition(self.design)

    def program(self) -> TrialProgram:
        return build_program(self.design, self.settings_json)

    def scenario(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(name)


def _loc_text(loc: Sequence[Any]) -> str | None:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _from_validation(file: Path, entry: str | None, exc: ValidationError) -> ScenarioError:
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    return ScenarioError(file, entry, _loc_text(loc), err["msg"])


def load_scenarios(path: Path | str, settings: Mapping[str, Any] | None = None) -> ScenarioSet:
    """Read and validate a scenario file; raise :class:`~palette_core.errors.ScenarioError`.

    The error names the file, the entry (``"settings"``, the scenario's name, or
    ``"scenarios[i]"``) and the field. Validation happens here, once: the arrays handed to the
    compiled program are not checked again. ``settings`` replace the file's settings of the
    same names (a smaller trial for the tests, another design folder); they are validated as
    the file's are and recorded in the manifest like them.
    """
    path = Path(path)
    overrides = dict(settings or {})
    if not path.is_file():
        raise ScenarioError(path, None, None, "no such file")
    try:
        raw = read_yaml(path, str(path))
    except DesignError as exc:  # read_yaml speaks the design's error; re-issue it as ours
        raise ScenarioError(path, exc.entry, exc.field, exc.message) from None
    if not isinstance(raw, dict):
        raise ScenarioError(
            path, None, None, "a scenario file is a mapping (design, settings, scenarios)"
        )
    try:
        top = ScenarioFileModel.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation(path, None, exc) from None
    try:
        definition = program_definition(top.design)
    except KeyError:
        known = ", ".join(known_programs())
        raise ScenarioError(
            path, None, "design", f"unknown trial program {top.design!r} (known: {known})"
        ) from None
    try:
        settings = definition.settings_model.model_validate({**top.settings, **overrides})
    except ValidationError as exc:
        raise _from_validation(path, "settings", exc) from None
    if not top.scenarios:
        raise ScenarioError(path, None, "scenarios", "no scenario")
    scenarios: list[Scenario] = []
    for i, entry in enumerate(top.scenarios):
        name = entry.get("name") if isinstance(entry.get("name"), str) else None
        label = name or f"scenarios[{i}]"
        try:
            model = definition.scenario_model.model_validate(entry)
        except ValidationError as exc:
            raise _from_validation(path, label, exc) from None
        if any(s.name == model.name for s in scenarios):
            raise ScenarioError(path, label, "name", "another scenario has this name")
        params = definition.parameters(settings, model, (str(path), label))
        scenarios.append(Scenario(model.name, model, params))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return ScenarioSet(path, sha, top.design, top.description, settings, tuple(scenarios))


# ----------------------------------------------------------------------------- progress
class Progress:
    """Trials done, rate and time left, on stderr (or ``stream``).

    On a terminal the line is rewritten in place; otherwise a plain line is written at most
    every ``every`` seconds, and always at the end, so logs stay readable.
    """

    def __init__(
        self, total: int, label: str = "simulate", stream: IO[str] | None = None, every: float = 5.0
    ):
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.done = 0
        self.start = time.perf_counter()
        self._last = -math.inf
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = f"{left:.0f} s left" if math.isfinite(left) else "time left unknown"
        return f"{self.label}: {self.done}/{self.total} trials, {rate:.0f} trials/s, {eta}"

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        final = self.done >= self.total
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self._last >= self.every:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last = now


# ----------------------------------------------------------------------------- running
@dataclass
class SimulationResult:
    """Per-trial results (``trials``), per-look records (``looks``, or ``None``) and facts."""

    trials: pd.DataFrame
    looks: pd.DataFrame | None
    facts: dict[str, Any]


def _chunks(n_trials: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_trials, chunk_size):
        yield start, min(start + chunk_size, n_trials)


def _columns(program: TrialProgram, name: str, values: np.ndarray) -> dict[str, Any]:
    """Flatten one field into DataFrame columns (one per label of a trailing axis)."""
    cats = program.categories.get(name)

    def decode(v: np.ndarray) -> Any:
        if cats is None:
            return v
        return pd.Categorical.from_codes(v.astype(np.int64), categories=list(cats))

    if values.ndim <= 1:
        return {name: decode(values)}
    flat = values.reshape(values.shape[0], -1)
    labels = program.labels.get(name)
    if labels is None or len(labels) != flat.shape[1]:
        labels = [str(i) for i in range(flat.shape[1])]
    return {f"{name}[{lab}]": decode(flat[:, j]) for j, lab in enumerate(labels)}


def _frames(
    program: TrialProgram, scenario: str, start: int, out: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    summary = out["summary"]
    n = len(next(iter(summary.values())))
    trial = np.arange(start, start + n)
    cols: dict[str, Any] = {"scenario": scenario, "trial": trial}
    for k, v in summary.items():
        cols.update(_columns(program, k, v))
    trials = pd.DataFrame(cols)
    looks = None
    if out["records"] is not None:
        rec = out["records"]
        conducted = rec["conducted"].reshape(-1)
        lcols: dict[str, Any] = {
            "scenario": scenario,
            "trial": np.repeat(trial, program.n_looks),
            "look": np.tile(np.arange(program.n_looks), n),
        }
        for k, v in rec.items():
            if k == "conducted":
                continue
            v = v.reshape((n * program.n_looks,) + v.shape[2:])
            lcols.update(_columns(program, k, v))
        looks = pd.DataFrame(lcols)[conducted].reset_index(drop=True)
    return trials, looks


def _submit_all(
    tasks: list[ChunkTask], scheduler: str, workers: int | None
) -> Iterator[tuple[ChunkTask, dict[str, Any]]]:
    """Run the tasks and yield ``(task, output)`` as each finishes."""
    if scheduler == IN_PROCESS:
        for t in tasks:
            yield t, run_chunk(t)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == PROCESSES:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = {client.submit(run_chunk, t, pure=False): t for t in tasks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_scenarios(
    scenarios: ScenarioSet,
    n_trials: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    scheduler: str = PROCESSES,
    workers: int | None = None,
    keep_looks: bool = False,
    names: Iterable[str] | None = None,
    progress: bool | Progress = True,
) -> SimulationResult:
    """Simulate ``n_trials`` trials of each scenario (or of the scenarios ``names``).

    Parameters
    ----------
    scenarios
        A validated scenario file (:func:`load_scenarios`).
    n_trials
        Trials per scenario.
    seed
        Root seed (0 to 2**32 - 1); trial keys follow :data:`KEY_DERIVATION`.
    chunk_size
        Trials compiled and run together; the results do not depend on it.
    scheduler
        ``"processes"`` (a local Dask cluster of ``workers`` processes, default one per CPU),
        ``"in-process"``, or the address of a ``dask.distributed`` scheduler.
    keep_looks
        Also return one row per conducted look.
    progress
        Report trials done, rate and time left on stderr (or pass a :class:`Progress`).

    Raises
    ------
    ScenarioError
        For an argument out of range (the file is named, the entry is the argument).
    """
    where = scenarios.path
    if not (isinstance(n_trials, int) and n_trials >= 1):
        raise ScenarioError(
            where, "arguments", "trials", f"must be a whole number >= 1, not {n_trials!r}"
        )
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ScenarioError(
            where, "arguments", "seed", f"must be a whole number in [0, 2**32), not {seed!r}"
        )
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ScenarioError(
            where, "arguments", "chunk_size", f"must be a whole number >= 1, not {chunk_size!r}"
        )
    chosen = list(scenarios.scenarios)
    if names is not None:
        wanted = list(names)
        missing = [n for n in wanted if n not in {s.name for s in chosen}]
        if missing:
            raise ScenarioError(
                where, "arguments", "scenarios", f"no scenario named {missing[0]!r}"
            )
        chosen = [s for s in chosen if s.name in wanted]
    chunk_size = min(chunk_size, n_trials)
    program = scenarios.program()
    index = {s.name: i for i, s in enumerate(scenarios.scenarios)}
    tasks = [
        ChunkTask(
            scenarios.design,
            scenarios.settings_json,
            s.params,
            seed,
            index[s.name],
            start,
            stop,
            chunk_size,
            keep_looks,
        )
        for s in chosen
        for start, stop in _chunks(n_trials, chunk_size)
    ]
    name_of = {index[s.name]: s.name for s in chosen}
    bar = progress if isinstance(progress, Progress) else None
    if bar is None and progress:
        bar = Progress(n_trials * len(chosen))
    t0 = time.perf_counter()
    before = dict(TRACE_COUNTS)
    parts: dict[tuple[int, int], tuple[pd.DataFrame, pd.DataFrame | None]] = {}
    seconds = 0.0
    for task, out in _submit_all(tasks, scheduler, workers):
        parts[(task.scenario_index, task.start)] = _frames(
            program, name_of[task.scenario_index], task.start, out
        )
        seconds += out["seconds"]
        if bar is not None:
            bar.update(task.stop - task.start)
    order = sorted(parts)
    trials = pd.concat([parts[k][0] for k in order], ignore_index=True)
    looks = pd.concat([parts[k][1] for k in order], ignore_index=True) if keep_looks else None
    traces = {
        f"{k[0]} chunk {k[2]}": v - before.get(k, 0)
        for k, v in TRACE_COUNTS.items()
        if v != before.get(k, 0)
    }
    facts = {
        "program": scenarios.design,
        "scenarios": [s.name for s in chosen],
        "n_trials": n_trials,
        "seed": seed,
        "key_derivation": KEY_DERIVATION,
        "chunk_size": chunk_size,
        "scheduler": scheduler if scheduler in (IN_PROCESS, PROCESSES) else "dask.distributed",
        "workers": (workers or os.cpu_count()) if scheduler == PROCESSES else None,
        "compilations_in_process": traces,
        "wall_s": round(time.perf_counter() - t0, 3),
        "chunk_seconds_total": round(seconds, 3),
    }
    return SimulationResult(trials, looks, facts)


# ----------------------------------------------------------------------------- results
#: packages whose versions decide a simulation's numbers, beyond provenance.KEY_PACKAGES
SIMULATION_PACKAGES = ("dask", "distributed", "pyarrow")


def simulation_manifest(
    scenarios: ScenarioSet, sim: SimulationResult, **extra: Any
) -> dict[str, Any]:
    """The manifest of a simulation: inputs (scenario file hash), seed, keys, code, platform."""
    import platform

    import jax

    shown = display_path(scenarios.path)
    checkout = checkout_design_dir()  # the code's revision: of the checkout it runs from
    revision = git_revision(checkout.parent) if checkout is not None else "unknown (installed)"
    return {
        "result": "simulation",
        "scenario_file": shown,
        "scenario_sha256": scenarios.sha256,
        "settings": json.loads(scenarios.settings_json),
        **sim.facts,
        "git_revision": revision,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "jax_backend": jax.default_backend(),
        "packages": package_versions(KEY_PACKAGES + SIMULATION_PACKAGES),
        **extra,
    }


def write_results(
    out_dir: Path | str,
    scenarios: ScenarioSet,
    sim: SimulationResult,
    *,
    csv_tables: Mapping[str, pd.DataFrame] | None = None,
    trials: bool = True,
    **extra: Any,
) -> Path:
    """Write the results into ``out_dir``: Parquet tables, optional CSV tables, ``manifest.json``.

    ``trials.parquet`` (and ``looks.parquet`` when the result has looks), then
    ``<name>.csv`` for each of ``csv_tables`` (small summaries worth reading or diffing); the
    manifest (:func:`simulation_manifest` plus ``extra``) lists every table. ``trials=False``
    leaves out the per-trial and per-look Parquet tables (a stored summary that stays small).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = []
    for name, df in (csv_tables or {}).items():
        df.to_csv(out / f"{name}.csv", index=False)
        tables.append(f"{name}.csv")
    if trials:
        sim.trials.to_parquet(out / "trials.parquet", index=False)
        tables.append("trials.parquet")
    if trials and sim.looks is not None:
        sim.looks.to_parquet(out / "looks.parquet", index=False)
        tables.append("looks.parquet")
    manifest = {**simulation_manifest(scenarios, sim, **extra), "tables": tables}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return out
