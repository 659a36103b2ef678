"""An interim look, end to end: export -> derived outcomes -> joint model -> decisions -> files.

:func:`analyse` is the one verb the DMC statistician runs (``palette analyse EXPORT``). It

1. reads and validates the export (:func:`palette_core.exports.contract.read_export`; a bad *file*
   raises, a bad *row* is kept, marked invalid and listed),
2. derives the day-28 outcomes and their completeness
   (:func:`palette_core.exports.derive.derive_outcomes`),
3. builds the cell counts of the outcomes the decision rules use (primary OSFD and 28-day
   mortality) from complete outcomes only, and fits the pre-specified joint model
   (:func:`palette_core.analysis.sensitivity.fit_escalated`, analysis ``"primary"``): a fit
   that fails the convergence gates is run again with each step of the escalation of
   ``proposed/interim_analysis.yaml`` (``convergence``);
4. summarises the posterior once (:func:`palette_core.analysis.quantities.summarise`), every
   decision probability with its Monte Carlo standard error; where a rule of an open arm lies
   within the margin of its threshold (``monte_carlo``) the primary fit of that outcome gets
   another run of chains (:func:`palette_core.analysis.sensitivity.add_chains`), up to the
   maximum; then applies the decision rules to that table
   (:func:`palette_core.analysis.decisions.decide`, information from
   :func:`palette_core.exports.derive.information`; a rule still within the margin is
   "unresolved" and decides nothing),
5. computes the next period's allocation probabilities per trait
   (:func:`palette_core.randomisation.allocation.trait_allocation` on the primary-outcome draws, with the
   arms closed by this look's decisions) and the allocation record the randomiser reads
   (:func:`palette_core.randomisation.allocation.allocation_state`),
6. runs every sensitivity analysis of ``proposed/interim_analysis.yaml``
   (:func:`palette_core.analysis.sensitivity.sensitivity_analyses`) and the harm check in children on
   the no-borrowing fit (``population="child"``),
7. applies the safety rule of ``data/protocol/safety_monitoring.yaml`` (*proposed*) to every
   monitored arm and safety outcome against usual care of its trait
   (:func:`palette_core.analysis.safety.safety_signals`, complete patients; table
   ``safety_signals``, the rule's numbers and consequence in the manifest's ``safety_rule``;
   shown in the closed report only). The file is read before anything else: an analysis
   never runs without its safety rule,
8. writes every table as CSV, the allocation record as JSON, the primary draws (gzip CSV)
   and a manifest into ``out_dir``.

Design choices
--------------
* **Gates decide.** If the primary fit of either outcome still fails the gates after the
  escalation, the look produces **no decision and no allocation record**: the decisions, rules
  and allocation tables are empty, ``allocation_state.json`` is not written, the manifest says
  ``decisions_taken: false`` with the reason (``no_decision_reason``), both reports show it, and
  ``palette analyse`` exits with status 3. The quantities, diagnostics and sensitivity analyses
  are still written, for the DMC to see what failed.
* **Analyse once, decide many.** Everything a report shows is a stored table; the reports
  (:mod:`palette_core.interim.report`) and the book read the folder with :func:`load_analysis`
  and never refit. The primary draws are stored too, so anyone can recompute the quantities,
  the decisions and the allocation from the folder (the tests do).
* **Decisions on the primary analysis only** (``interim_analysis.yaml``); the sensitivity
  analyses and the children's harm check are reported beside them for the DMC's judgement and
  never change a decision by themselves.
* **Arm states.** By default an arm is open at the look if ``arms.yaml`` starts it open or
  the export holds a patient allocated to it (an arm cannot have patients unless it opened);
  a planned arm without patients stays planned; an arm suspended for every age group it
  admits on the data cut (a dose blocked by a registry finding, ``proposed/lifecycle.yaml``
  ``suspension``) is suspended, patients or not, and gets no allocation. The caller may pass the states of the
  lifecycle instead (:func:`palette_core.randomisation.lifecycle.states_mapping`). An open arm whose
  decision is not "continue" closes into the matching lifecycle state (graduated, futility,
  harm, cap_reached) for the next period's allocation; usual care closes with its trait when
  no experimental arm is open, planned or suspended (``proposed/lifecycle.yaml`` trait rule).
  The DMC confirms the moves; the allocation record is the proposal that follows from the
  rules.
* **Suspended allocations.** A patient allocated to an arm that was suspended for the
  patient's age group on the randomisation date (a dose that cannot be computed cannot be
  given) stays in the analysis (intention to treat) and is listed in the table
  ``suspended_allocations`` with the findings; both reports flag it.
* **Eras.** The model's number of calendar eras is that of the latest era holding a complete
  outcome (eras are counted from the study start, ``interim_analysis.yaml``); for the
  concurrent-controls analysis an arm is open in every era in which a patient of its trait
  was allocated to it (complete or not).
* **Reproducible bytes.** Same export, design, seed, size and code give byte-identical files:
  no timestamps, no absolute paths, no run times in any output (the progress callback gets
  the elapsed time instead); gzip is written with ``mtime=0``. MCMC draws are bit-identical
  only on the same CPU and JAX build (the manifest records the platform).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from palette_core.analysis import sensitivity as _sensitivity
from palette_core.analysis.decisions import (
    DECISION_NAMES,
    UNRESOLVED,
    UNRESOLVED_DECISION,
    children_decisions,
    decide,
    decision_outcomes,
    evaluate_rules,
)
from palette_core.analysis.diagnostics import GATES
from palette_core.analysis.quantities import QUANTITY_COLUMNS, summarise
from palette_core.analysis.safety import safety_signals
from palette_core.analysis.sampler import NutsSettings
from palette_core.design.loader import Design, load_design
from palette_core.design.protocol import load_children_rule, load_safety_monitoring
from palette_core.errors import ModelDataError, StaleResultError, StoredResultError
from palette_core.exports import contract as _export
from palette_core.exports import derive as _derive
from palette_core.provenance import build_manifest, file_sha256
from palette_core.randomisation import allocation as _allocation
from palette_core.randomisation import lifecycle as _lifecycle

Size = Literal["full", "small"]
Progress = Callable[[str, int, int], None]

#: Run sizes: NUTS settings of the primary fit and of each sensitivity analysis. "full" is
#: the pre-specified size (4 chains x 1,000 warm-up x 1,000 draws); "small" is for tests and
#: quick checks of an export (its fits do not pass the convergence gates).
#: Fitter settings. The full size raises NUTS's target acceptance to 0.95: at 0.9 the primary
#: OSFD fit of the synthetic export had 3 divergent transitions in 4,000 draws. Sensitivity fits
#: keep 2 x 1,000 draws: with 2 x 500 most of them missed the ESS gate of 400.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "primary": {
            "num_warmup": 1000,
            "num_samples": 1000,
            "num_chains": 4,
            "target_accept_prob": 0.95,
        },
        "sensitivity": {
            "num_warmup": 500,
            "num_samples": 1000,
            "num_chains": 2,
            "target_accept_prob": 0.95,
        },
    },
    "small": {
        "primary": {"num_warmup": 40, "num_samples": 40, "num_chains": 2},
        "sensitivity": {"num_warmup": 20, "num_samples": 20, "num_chains": 2},
    },
}
DEFAULT_SEED = 20260601
PRIMARY = _sensitivity.PRIMARY
#: the analysis whose children's draws give the harm check in children (no borrowing)
CHILD_HARM_ANALYSIS = "no_borrowing"
CHILD = "child"
#: decision -> the lifecycle state an open arm closes into (the lifecycle's own rule)
DECISION_STATE = _lifecycle.DECISION_STATE
#: files of the export that are hashed into the manifest (the contract's files)
EXPORT_FILES = ("export.yaml", "patients.csv")
#: the tables written by :func:`analyse`, in order (``<name>.csv``); ``cells_<outcome>`` follow
TABLES = (
    "arms",
    "derived",
    "errors",
    "incomplete",
    "completeness",
    "accrual_site",
    "accrual_trait",
    "accrual_age_group",
    "accrual_arm",
    "accrual_month",
    "pooled_outcomes",
    "pooled_osfd",
    "information",
    "quantities",
    "rules",
    "decisions",
    "sensitivity_decisions",
    "child_harm",
    "children_decisions",
    "arm_states",
    "allocation",
    "safety",
    "safety_signals",
    "diagnostics",
    "suspended_allocations",
)
#: columns of the table ``suspended_allocations``
SUSPENDED_COLUMNS = (
    "line",
    "patient_id",
    "site_id",
    "randomisation_date",
    "assigned_trait",
    "age_group",
    "arm",
    "findings",
)
#: columns of the decisions, rules and allocation tables (empty when no decision is taken)
DECISION_COLUMNS = (
    "arm",
    "decision",
    "code",
    "rule",
    "outcome",
    "quantity",
    "value",
    "threshold",
    "reason",
    "not_evaluable",
    "unresolved",
    "n_complete",
    "n_allocated",
)
RULE_COLUMNS = (
    "arm",
    "rule",
    "outcome",
    "quantity",
    "value",
    "mcse",
    "comparison",
    "threshold",
    "min_complete",
    "n_complete",
    "n_allocated",
    "status",
    "reason",
)
ALLOCATION_COLUMNS = (
    "trait",
    "arm",
    "role",
    "state",
    "phase",
    "n_complete",
    "pr_best",
    "probability",
)
ALLOCATION_FILE = "allocation_state.json"
MANIFEST_FILE = "manifest.json"
DRAWS_DIR = "draws"
STATUS_COLUMNS = _derive.STATUS
#: the worst diagnostics of a fit (:func:`palette_core.analysis.diagnostics.gate`)
WORST_DIAGNOSTICS = (
    "divergences",
    "max_rhat",
    "max_rhat_variable",
    "min_ess_bulk",
    "min_ess_bulk_variable",
    "min_ess_tail",
    "min_ess_tail_variable",
)
DIAGNOSTIC_COLUMNS = (
    "analysis",
    "outcome",
    "fit",
    "attempt",
    "used",
    "runs",
    "num_chains",
    "num_warmup",
    "num_samples",
    "target_accept_prob",
    "n_draws",
    "gates_passed",
    "failures",
    *WORST_DIAGNOSTICS,
)
UNKNOWN = "(not given)"


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class InterimAnalysis:
    """An interim analysis: its tables, allocation record and manifest, and the fits.

    ``tables`` maps the names of :data:`TABLES` (and ``cells_<outcome>``) to DataFrames;
    ``draws`` maps ``outcome -> [n_draws, n_arms]`` primary benefit-oriented log ORs in the
    order of ``arms``; ``fits`` maps ``analysis -> outcome -> AnalysisFit`` (in memory only,
    ``{}`` for an analysis read back by :func:`load_analysis`).
    """

    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    allocation_state: dict[str, Any] | None
    draws: dict[str, np.ndarray]
    arms: tuple[str, ...]
    out_dir: Path | None = None
    fits: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def decisions(self) -> pd.DataFrame:
        return self.tables["decisions"]

    @property
    def quantities(self) -> pd.DataFrame:
        return self.tables["quantities"]

    def table(self, name: str) -> pd.DataFrame:
        """A stored table by name (:class:`StoredResultError` if there is none)."""
        if name not in self.tables:
            raise StoredResultError(f"interim analysis: no table {name!r}")
        return self.tables[name]


# ----------------------------------------------------------------------------- pure pieces
_allocated = _derive.allocated


def status_counts(derived: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Rows per group and outcome status: ``rows``, ``allocated`` and one column per status.

    ``allocated`` counts valid rows not withdrawn from all data use (the information
    definition of :func:`palette_core.exports.derive.information`); every status of
    :data:`palette_core.exports.derive.STATUS` has a column, zeros kept. A missing group value
    (an invalid row) is shown as ``"(not given)"``. Groups are sorted.
    """
    by = list(by)
    df = derived[[*by, "status"]].copy()
    for col in by:
        df[col] = df[col].astype("object").where(df[col].notna(), UNKNOWN).astype(str)
    table = pd.crosstab([df[c] for c in by], df["status"])
    for s in STATUS_COLUMNS:
        if s not in table.columns:
            table[s] = 0
    table = table[list(STATUS_COLUMNS)].astype(int)
    table.insert(0, "rows", table.sum(axis=1))
    table.insert(1, "allocated", table[["complete", "pending", "missing"]].sum(axis=1))
    table.columns.name = None
    return table.reset_index().sort_values(by, kind="stable").reset_index(drop=True)


def accrual_by_month(derived: pd.DataFrame) -> pd.DataFrame:
    """Patients allocated per calendar month of randomisation and trait, with running totals."""
    df = derived[_allocated(derived)]
    month = pd.to_datetime(df["randomisation_date"]).dt.strftime("%Y-%m")
    table = (
        pd.DataFrame({"month": month, "trait": df["assigned_trait"].astype(str)})
        .groupby(["month", "trait"])
        .size()
        .rename("allocated")
        .reset_index()
        .sort_values(["trait", "month"], kind="stable")
    )
    table["cumulative"] = table.groupby("trait")["allocated"].cumsum()
    return table.sort_values(["month", "trait"], kind="stable").reset_index(drop=True)


def _rate(k: int, n: int) -> float:
    return k / n if n else math.nan


def _outcome_summary(rows: pd.DataFrame) -> dict[str, Any]:
    n = len(rows)
    osfd = rows["osfd28"].dropna().astype(float)
    deaths = int(rows["mortality28"].fillna(0).astype(int).sum())
    bleeding = int(rows["isth_major_bleeding"].fillna(0).astype(int).sum())
    infection = int(rows["secondary_infection"].fillna(0).astype(int).sum())
    q = osfd.quantile([0.25, 0.5, 0.75]) if n else pd.Series([math.nan] * 3)
    return {
        "n_complete": n,
        "deaths": deaths,
        "mortality": _rate(deaths, n),
        "osfd_mean": float(osfd.mean()) if n else math.nan,
        "osfd_q1": float(q.iloc[0]),
        "osfd_median": float(q.iloc[1]),
        "osfd_q3": float(q.iloc[2]),
        "isth_major_bleeding": bleeding,
        "bleeding_rate": _rate(bleeding, n),
        "secondary_infection": infection,
        "infection_rate": _rate(infection, n),
    }


def pooled_outcomes(derived: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Outcomes of complete patients pooled across arms: overall, by trait, by age group.

    Nothing here compares arms: this is the table of the *open* report.
    """
    complete = derived[derived["status"] == "complete"]
    rows = [{"group": "all patients", "level": "all", **_outcome_summary(complete)}]
    for t in design.trait_ids:
        sub = complete[complete["assigned_trait"] == t]
        rows.append({"group": "trait", "level": t, **_outcome_summary(sub)})
    for g in design.age_group_ids:
        sub = complete[complete["age_group"] == g]
        rows.append({"group": "age group", "level": g, **_outcome_summary(sub)})
    return pd.DataFrame(rows)


def pooled_osfd(derived: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Distribution of OSFD to day 28 among complete patients, all arms pooled (-1 = death)."""
    o = design.outcome("osfd28")
    lo, hi = o.support_range if o.support_range is not None else (-1, 28)
    values = derived.loc[derived["status"] == "complete", "osfd28"].dropna().astype(int)
    counts = values.value_counts().reindex(range(lo, hi + 1), fill_value=0)
    return pd.DataFrame({"osfd28": counts.index.astype(int), "patients": counts.to_numpy()})


def arms_table(design: Design) -> pd.DataFrame:
    """Every arm with its trait, role and names (the reports' labels)."""
    return pd.DataFrame(
        [
            {
                "trait": a.trait,
                "trait_name": design.trait(a.trait).short_name or design.trait(a.trait).name,
                "arm": a.id,
                "role": a.role,
                "name": a.short_name or a.name,
                "age_groups": ";".join(design.arm_age_groups(a)),
            }
            for t in design.trait_ids
            for a in design.arms_of(t)
        ]
    )


def safety_by_arm(derived: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Deaths, ISTH major bleeding and secondary infection by arm among complete patients."""
    rows = []
    allocated = derived[_allocated(derived)]
    complete = derived[derived["status"] == "complete"]
    for t in design.trait_ids:
        for a in design.arms_of(t):
            s = _outcome_summary(complete[complete["arm"] == a.id])
            rows.append(
                {
                    "trait": t,
                    "arm": a.id,
                    "role": a.role,
                    "n_allocated": int((allocated["arm"] == a.id).sum()),
                    "n_complete": s["n_complete"],
                    "deaths": s["deaths"],
                    "mortality": s["mortality"],
                    "isth_major_bleeding": s["isth_major_bleeding"],
                    "bleeding_rate": s["bleeding_rate"],
                    "secondary_infection": s["secondary_infection"],
                    "infection_rate": s["infection_rate"],
                }
            )
    return pd.DataFrame(rows)


def n_complete_by_arm(derived: pd.DataFrame, design: Design) -> dict[str, int]:
    """Complete day-28 outcomes per arm, usual care included (zeros kept)."""
    info = _derive.information(derived, design, arms=[a.id for a in design.arms])
    return {a: v["n_complete"] for a, v in info.items()}


def arm_states_before(
    design: Design,
    derived: pd.DataFrame,
    states: Mapping[str, str] | None = None,
    on: dt.date | None = None,
) -> dict[str, str]:
    """The arm states at the look (see the module docstring): ``states`` if given, else the
    initial states of ``arms.yaml`` with every arm that has patients in the export open, and
    every arm suspended for all its age groups on ``on`` (the data cut; ``None``: the design
    as it stands) suspended."""
    if states is not None:
        missing = [a.id for a in design.arms if a.id not in states]
        if missing:
            raise ModelDataError(f"no state given for arm(s) {', '.join(missing)}", "states")
        known = _lifecycle.state_codes(design).names
        unknown = [a.id for a in design.arms if str(states[a.id]) not in known]
        if unknown:
            raise ModelDataError(
                f"state of arm(s) {', '.join(unknown)} is not a state of proposed/lifecycle.yaml "
                f"({', '.join(known)})",
                "states",
            )
        return {a.id: str(states[a.id]) for a in design.arms}
    with_patients = set(derived.loc[_allocated(derived), "arm"].dropna().astype(str))
    out = {}
    for a in design.arms:
        initial = a.availability.initial_state
        out[a.id] = _allocation.OPEN if a.id in with_patients else initial
        if design.is_suspended(a.id, on):
            out[a.id] = design.lifecycle.suspension.state
    return out


def suspended_allocations(derived: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Patients allocated to an arm suspended for their age group on their randomisation date.

    A dose that cannot be computed cannot be given (``proposed/lifecycle.yaml``
    ``suspension``): such an allocation should not have happened. The patients stay in the
    analysis; this table, flagged in both reports, lists them with the findings that
    suspended the arm (columns :data:`SUSPENDED_COLUMNS`, export order).
    """
    rows = derived  # every row with an arm: a withdrawal does not undo the allocation
    known = {a.id for a in design.arms}
    out = []
    for _, r in rows.iterrows():
        arm, group, day = r["arm"], r["age_group"], r["randomisation_date"]
        if pd.isna(arm) or pd.isna(group) or pd.isna(day) or str(arm) not in known:
            continue
        found = design.suspended_by(str(arm), str(group), pd.Timestamp(day).date())
        if found:
            out.append(
                {
                    "line": r["line"],
                    "patient_id": r["patient_id"],
                    "site_id": r["site_id"],
                    "randomisation_date": pd.Timestamp(day).date().isoformat(),
                    "assigned_trait": r["assigned_trait"],
                    "age_group": group,
                    "arm": arm,
                    "findings": ", ".join(f.id for f in found),
                }
            )
    return pd.DataFrame(out, columns=list(SUSPENDED_COLUMNS))


def arm_states_after(
    design: Design, before: Mapping[str, str], decisions: pd.DataFrame
) -> dict[str, str]:
    """States for the next period: open arms closed by their decision, then the trait rule
    (the lifecycle's pure core, :func:`~palette_core.randomisation.lifecycle.next_arm_states`
    and :func:`~palette_core.randomisation.lifecycle.live_traits`, which the simulator runs)."""
    codes = _lifecycle.state_codes(design)
    arms = design.experimental_arms()
    decided = dict(zip(decisions["arm"], decisions["decision"], strict=True))
    states = np.array([codes.code(before[a.id]) for a in arms], dtype=np.int32)
    names = list(DECISION_NAMES)
    # an unresolved decision (Monte Carlo error) changes nothing: the arm goes on as "continue"
    made = np.array(
        [
            names.index(d if (d := decided.get(a.id, "continue")) in names else "continue")
            for a in arms
        ],
        dtype=np.int32,
    )
    targets = _lifecycle.decision_targets(codes, names)
    new = _lifecycle.next_arm_states(np, states, made, np.zeros(len(arms), bool), targets, codes)
    after = dict(before)
    after.update({a.id: codes.names[int(k)] for a, k in zip(arms, new, strict=True)})
    traits = list(design.trait_ids)
    arm_trait = np.array([traits.index(a.trait) for a in arms], dtype=np.int32)
    live = _lifecycle.live_traits(np, new, arm_trait, len(traits), codes)
    for t, is_live in zip(traits, live, strict=True):
        if not is_live:
            after[design.control_of(t).id] = design.lifecycle.trait_rule.control_closed_state
    return after


def next_allocation(
    design: Design,
    states: Mapping[str, str],
    draws: np.ndarray,
    arms: Sequence[str],
    n_complete: Mapping[str, int],
) -> pd.DataFrame:
    """Allocation probabilities of the next period, one row per arm of every trait.

    ``draws`` are the primary-outcome draws ``[n_draws, len(arms)]`` (benefit-oriented log ORs);
    each trait gets the columns of its experimental arms in design order
    (:func:`palette_core.randomisation.allocation.trait_allocation`). Columns: ``trait``, ``arm``, ``role``,
    ``state``, ``phase``, ``n_complete``, ``pr_best`` (NaN for usual care and closed arms),
    ``probability``.
    """
    arms = list(arms)
    rows = []
    for t in design.trait_ids:
        exp = [a.id for a in design.experimental_arms(t)]
        cols = [arms.index(a) for a in exp]
        counts = {a.id: int(n_complete.get(a.id, 0)) for a in design.arms_of(t)}
        res = _allocation.trait_allocation(design, t, states, draws[:, cols], counts)
        for a in design.arms_of(t):
            is_open = states[a.id] == _allocation.OPEN
            rows.append(
                {
                    "trait": t,
                    "arm": a.id,
                    "role": a.role,
                    "state": states[a.id],
                    "phase": res.phase,
                    "n_complete": counts[a.id],
                    "pr_best": res.pr_best[a.id]
                    if a.role == "experimental" and is_open
                    else math.nan,
                    "probability": float(res.probabilities.get(a.id, 0.0)),
                }
            )
    return pd.DataFrame(rows)


def child_information(
    derived: pd.DataFrame, design: Design, arms: Sequence[str]
) -> dict[str, dict[str, int]]:
    """``n_complete`` and ``n_allocated`` of children per arm (the child harm check's minimum)."""
    return _derive.information(derived[derived["age_group"] == CHILD], design, arms=arms)


def child_harm_check(
    quantities: pd.DataFrame, derived: pd.DataFrame, design: Design
) -> pd.DataFrame:
    """The harm rule in children, on the children-only effect of the no-borrowing fit.

    ``quantities`` must hold rows ``analysis="no_borrowing", population="child"`` for the arms
    open to children. Returns the harm rows of
    :func:`palette_core.analysis.decisions.evaluate_rules` with children's information (an arm needs
    the harm rule's minimum of complete children); empty when no such rows exist. This check
    informs the DMC; it does not change the decisions, which are taken on the primary analysis.
    """
    sel = quantities[
        (quantities["analysis"] == CHILD_HARM_ANALYSIS) & (quantities["population"] == CHILD)
    ]
    if sel.empty:
        return pd.DataFrame(
            columns=["arm", "rule", "outcome", "quantity", "value", "threshold", "status", "reason"]
        )
    arms = list(dict.fromkeys(sel["arm"]))
    rules = evaluate_rules(
        quantities,
        child_information(derived, design, arms),
        design,
        population=CHILD,
        analysis=CHILD_HARM_ANALYSIS,
    )
    return rules[rules["rule"] == "harm"].reset_index(drop=True)


def decisions_by_analysis(
    quantities: pd.DataFrame, information: Any, design: Design, *, primary: bool = True
) -> pd.DataFrame:
    """The decision of every arm under every analysis of ``quantities`` (population "all").

    One column per analysis, primary first. Only the primary column is a decision; the others
    show whether a sensitivity analysis would have decided otherwise. ``primary=False`` (the
    primary fit failed the gates: no decision) leaves the primary column out.
    """
    q = quantities[quantities["population"] == "all"]
    out = pd.DataFrame({"arm": list(dict.fromkeys(q["arm"]))})
    for name in dict.fromkeys(q["analysis"]):
        if name == PRIMARY and not primary:
            continue
        d = decide(q, information, design, analysis=name)
        out[name] = out["arm"].map(dict(zip(d["arm"], d["decision"], strict=True)))
    return out


def diagnostics_rows(
    analysis: str,
    fits: Mapping[str, Any],
    tried: Mapping[str, Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per fit of an analysis: its settings, gates, failures and worst diagnostics.

    ``tried`` (outcome -> the fits of :func:`palette_core.analysis.sensitivity.fit_escalated`)
    adds a row per escalation attempt before the one used (``attempt`` 0 is the pre-specified
    run); ``runs`` counts the runs of chains pooled in a fit (more draws, ``monte_carlo``).
    """
    rows = []
    for oid, fit in fits.items():
        before = list((tried or {}).get(oid, (fit,)))[:-1]
        for attempt, f in enumerate([*before, fit]):
            settings = NutsSettings()._replace(**f.run)
            for i, res in enumerate(f.results):
                d = res.diagnostics
                rows.append(
                    {
                        "analysis": analysis,
                        "outcome": oid,
                        "fit": i + 1,
                        "attempt": attempt,
                        "used": f is fit,
                        "runs": f.runs,
                        "num_chains": f.n_chains,
                        "num_warmup": settings.num_warmup,
                        "num_samples": settings.num_samples,
                        "target_accept_prob": settings.target_accept_prob,
                        "n_draws": int(f.draws.shape[0]),
                        "gates_passed": bool(res.gates_passed),
                        "failures": "; ".join(res.failures),
                        **{c: d.get(c, math.nan) for c in WORST_DIAGNOSTICS},
                    }
                )
    return rows


def summarise_fits(
    fits: Mapping[str, Any],
    arms: Sequence[str],
    design: Design,
    *,
    open_arms: Sequence[str],
    analysis: str,
    population: str = "all",
    columns: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The quantities table of an analysis's fits (one per outcome, each with its own number of
    chains): adults' draws, or with ``population="child"`` the children's draws of the
    ``columns`` of the arms ``arms``."""
    parts = []
    for oid, fit in fits.items():
        d = fit.draws if population == "all" else fit.child_draws
        d = np.asarray(d, dtype=np.float64)
        if columns is not None:
            d = d[:, list(columns)]
        parts.append(
            summarise(
                {oid: d},
                arms,
                design,
                open_arms=open_arms,
                population=population,
                analysis=analysis,
                chains=fit.n_chains,
            )
        )
    return pd.concat(parts, ignore_index=True)


def unresolved_outcomes(
    quantities: pd.DataFrame, information: Any, design: Design, open_arms: Sequence[str]
) -> list[str]:
    """The outcomes of the primary fit on which a rule of an open arm is unresolved (within the
    Monte Carlo margin of its threshold): those that need more draws."""
    rules = evaluate_rules(quantities, information, design)
    hit = rules[(rules["status"] == UNRESOLVED) & rules["arm"].isin(list(open_arms))]
    return list(dict.fromkeys(hit["outcome"]))


def primary_outcome(design: Design) -> str:
    """The primary outcome (``role: primary`` in ``proposed/outcomes.yaml``): allocation uses it."""
    return next(o.id for o in design.outcomes.outcomes if o.role == "primary")


def _children_arms(design: Design, arms: Sequence[str]) -> list[str]:
    return [a for a in arms if CHILD in design.arm_age_groups(design.arm(a))]


def _open_eras(derived: pd.DataFrame, design: Design) -> dict[str, list[int]]:
    """Eras in which each experimental arm had a patient allocated (complete or not)."""
    rows = derived[_allocated(derived) & derived["era"].notna()]
    out = {}
    for a in design.experimental_arms():
        eras = rows.loc[rows["arm"] == a.id, "era"].astype(int)
        out[a.id] = sorted(set(eras.tolist()))
    return out


# ----------------------------------------------------------------------------- writing
def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n", date_format="%Y-%m-%d")
    return buf.getvalue().encode("utf-8")


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _draws_frame(draws: np.ndarray, arms: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(draws, dtype=np.float64), columns=list(arms))


def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n").encode("utf-8")


def write_analysis(analysis: InterimAnalysis, out_dir: Path | str) -> Path:
    """Write the tables, draws, allocation record and manifest of ``analysis`` into ``out_dir``.

    A look without an allocation record (no decision taken, or every trait closed) removes an
    ``allocation_state.json`` that an earlier run left in ``out_dir``, so that the randomiser
    never reads a record the look did not produce."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in analysis.tables.items():
        _write_bytes(out / f"{name}.csv", _csv_bytes(df))
    for oid, d in analysis.draws.items():
        data = _gzip_bytes(_csv_bytes(_draws_frame(d, analysis.arms)))
        _write_bytes(out / DRAWS_DIR / f"{PRIMARY}_{oid}.csv.gz", data)
    if analysis.allocation_state is not None:
        _write_bytes(out / ALLOCATION_FILE, _json_bytes(analysis.allocation_state))
    else:  # no record at this look: one left by an earlier run into this folder must not be read
        (out / ALLOCATION_FILE).unlink(missing_ok=True)
    _write_bytes(out / MANIFEST_FILE, _json_bytes(analysis.manifest))
    return out


# ----------------------------------------------------------------------------- analyse
def _steps(analyses: Sequence[str]) -> list[str]:
    steps = [
        "read and validate the export",
        "derive outcomes",
        "fit the primary analysis",
        "decisions and next allocation",
    ]
    steps += [f"sensitivity analysis {a}" for a in analyses]
    steps.append("write results")
    return steps


def analyse(
    export_path: str | Path,
    design: Design | None = None,
    *,
    seed: int = DEFAULT_SEED,
    size: Size = "full",
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    analyses: Sequence[str] | None = None,
    states: Mapping[str, str] | None = None,
    effective_from: dt.date | str | None = None,
) -> InterimAnalysis:
    """Run the pre-specified interim analysis of the export in ``export_path``.

    Parameters
    ----------
    export_path
        The export folder: ``export.yaml`` and ``patients.csv`` as
        ``data/design/export_contract.yaml`` describes them.
    design
        Defaults to :func:`palette_core.design.loader.load_design`.
    seed
        NUTS seed of the primary fit; sensitivity analysis ``k`` (1-based) uses ``seed + 1000 k``.
    size
        ``"full"`` (pre-specified) or ``"small"`` (tests), see :data:`SIZES`.
    out_dir
        If given, everything is written there (:func:`write_analysis`).
    progress
        Called as ``progress(step, i, n)`` before each step ``i`` of ``n`` (1-based) and once
        more as ``progress("done", n, n)``.
    analyses
        Sensitivity analyses to run; default every one of
        :func:`palette_core.analysis.sensitivity.sensitivity_analyses`; ``()`` for none. The no-borrowing
        fit is needed for the harm check in children: without it the check is not run (its
        table is empty and the manifest says so).
    states
        Arm states at the look (``arm -> state`` for every arm); default: see the module
        docstring.
    effective_from
        Date of the allocation record; default the export's data cut (the DMC replaces it by
        the date the allocation comes into force).

    Raises
    ------
    palette_core.errors.ExportFileError
        The export cannot be read as a whole (missing file or column, bad metadata).
    palette_core.errors.ModelDataError
        An unknown size or analysis.
    palette_core.errors.DesignSchemaError
        The safety monitoring file (``protocol/safety_monitoring.yaml``) is missing or invalid
        (checked first, before the export is read).
    """
    if size not in SIZES:
        raise ModelDataError(f"size must be one of {', '.join(SIZES)}, not {size!r}", "size")
    design = load_design() if design is None else design
    safety_rule = load_safety_monitoring(design)
    all_sensitivity = _sensitivity.sensitivity_analyses(design)
    if analyses is None:
        analyses = all_sensitivity
    else:
        analyses = tuple(analyses)
        for a in analyses:
            _sensitivity.analysis_options(design, a)  # raises for an unknown name
            if a == PRIMARY:
                raise ModelDataError("the primary analysis is always run", "analyses")
        repeated = sorted({a for a in analyses if analyses.count(a) > 1})
        if repeated:
            raise ModelDataError(f"analysis(es) {repeated} named more than once", "analyses")
    run_child_harm = CHILD_HARM_ANALYSIS in analyses
    steps = _steps(analyses)
    n_steps = len(steps)
    step = iter(range(1, n_steps + 1))

    def report(name: str) -> None:
        if progress is not None:
            progress(name, next(step), n_steps)

    # 1-2. read, validate, derive
    report(steps[0])
    export_path = Path(export_path)
    validation = _export.read_export(export_path, design)
    meta = validation.meta
    report(steps[1])
    derived = _derive.derive_outcomes(validation, design)

    # 3. primary fit on complete outcomes, escalated until it passes the gates
    report(steps[2])
    outcomes = decision_outcomes(design)
    n_eras = _derive.n_eras_of(derived)
    cells = {o: _derive.cell_counts(derived, o, design, n_eras) for o in outcomes}
    open_eras = _open_eras(derived, design)
    sizes = SIZES[size]
    primary: dict[str, Any] = {}
    tried: dict[str, tuple[Any, ...]] = {}
    for i, o in enumerate(outcomes):
        primary[o], tried[o] = _sensitivity.fit_escalated(
            design,
            cells[o],
            o,
            n_eras,
            run=sizes["primary"],
            seed=seed + 100 * i,
            open_eras=open_eras,
        )
    arms = primary[outcomes[0]].arms

    # 4. quantities with their Monte Carlo error; more draws where a rule is unresolved
    report(steps[3])
    before = arm_states_before(design, derived, states, meta.data_cut)
    open_now = [a for a in arms if before[a] == _allocation.OPEN]
    info = _derive.information(derived, design)
    mc = design.interim_analysis.monte_carlo
    extra = dict.fromkeys(outcomes, 0)
    while True:
        q_primary = summarise_fits(primary, arms, design, open_arms=open_now, analysis=PRIMARY)
        if not all(primary[o].gates_passed for o in outcomes):
            break
        todo = [
            o
            for o in unresolved_outcomes(q_primary, info, design, open_now)
            if extra[o] < mc.max_extra_runs
        ]
        if not todo:
            break
        for o in todo:
            primary[o] = _sensitivity.add_chains(design, cells[o], primary[o], n_eras)
            extra[o] += 1
    fits: dict[str, dict[str, Any]] = {PRIMARY: primary}
    draws = {o: np.asarray(primary[o].draws, dtype=np.float64) for o in outcomes}
    quantities = [q_primary]
    failed = {o: primary[o].failures for o in outcomes if not primary[o].gates_passed}
    decided = not failed
    n_complete = n_complete_by_arm(derived, design)
    record = None
    no_decision = None
    if decided:
        # decisions, states and allocation: only from a primary fit that passed the gates
        decisions = decide(q_primary, info, design)
        rules = evaluate_rules(q_primary, info, design)
        after: dict[str, str] | None = arm_states_after(design, before, decisions)
        assert after is not None
        allocation = next_allocation(
            design, after, draws[primary_outcome(design)], arms, n_complete
        )
        probs = {  # traits that randomise next period (a closed trait is absent from the record)
            t: dict(zip(g["arm"], g["probability"], strict=True))
            for t, g in allocation.groupby("trait", sort=False)
            if g["probability"].sum() > 0
        }
        when = meta.data_cut if effective_from is None else effective_from
        source = (
            f"interim analysis of export {meta.export_id} (data cut {meta.data_cut.isoformat()}, "
            f"design {design.design_hash[:12]}, seed {seed}, size {size})"
        )
        record = _allocation.allocation_state(design, probs, when, source) if probs else None
    else:
        n_steps_esc = len(design.interim_analysis.convergence.escalation)
        no_decision = (
            "the primary analysis failed the convergence gates after the pre-specified "
            f"escalation ({n_steps_esc} step(s) of proposed/interim_analysis.yaml): "
            + "; ".join(f"{o}: {', '.join(f)}" for o, f in failed.items())
            + ". No decision and no allocation for the next period were produced."
        )
        decisions = pd.DataFrame(columns=list(DECISION_COLUMNS))
        rules = pd.DataFrame(columns=list(RULE_COLUMNS))
        after = None
        allocation = pd.DataFrame(columns=list(ALLOCATION_COLUMNS))

    # 5. sensitivity analyses (and the no-borrowing children's effect)
    diags = diagnostics_rows(PRIMARY, primary, tried)
    for k, name in enumerate(analyses, start=1):
        report(steps[4 + k - 1])
        fit = _sensitivity.run_analysis(
            design, cells, n_eras, name, sizes["sensitivity"], seed + 1000 * k, open_eras=open_eras
        )
        fits[name] = fit
        quantities.append(summarise_fits(fit, arms, design, open_arms=open_now, analysis=name))
        diags += diagnostics_rows(name, fit)
    if run_child_harm:
        fit = fits[CHILD_HARM_ANALYSIS]
        child_arms = _children_arms(design, arms)
        cols = [list(arms).index(a) for a in child_arms]
        child_open = [a for a in child_arms if a in open_now]
        quantities.append(
            summarise_fits(
                fit,
                child_arms,
                design,
                open_arms=child_open,
                population=CHILD,
                analysis=CHILD_HARM_ANALYSIS,
                columns=cols,
            )
        )
    q = pd.concat(quantities, ignore_index=True)[list(QUANTITY_COLUMNS)]
    child_harm = child_harm_check(q, derived, design)
    rule = load_children_rule(design)
    children = children_decisions(child_harm, binding=None if rule is None else rule.binding)
    sens_decisions = decisions_by_analysis(q, info, design, primary=decided)
    unresolved = [
        f"{r.arm}: {r.unresolved}"
        for r in decisions.itertuples()
        if r.decision == UNRESOLVED_DECISION
    ]

    # 6. tables
    report(steps[-1])
    arm_trait = {a.id: a.trait for a in design.arms}
    information = pd.DataFrame(
        [
            {"trait": arm_trait[a], "arm": a, **info[a], "n_complete_all_outcomes": n_complete[a]}
            for a in arms
        ]
    )
    arm_states = pd.DataFrame(
        [
            {
                "trait": a.trait,
                "arm": a.id,
                "role": a.role,
                "state_at_look": before[a.id],
                "decision": decisions.set_index("arm")["decision"].get(a.id, ""),
                "state_next_period": "" if after is None else after[a.id],
            }
            for t in design.trait_ids
            for a in design.arms_of(t)
        ]
    )
    suspended = suspended_allocations(derived, design)
    safety = safety_by_arm(derived, design)
    incomplete = derived.loc[
        derived["status"] != "complete",
        ["line", "patient_id", "site_id", "assigned_trait", "age_group", "status", "status_reason"],
    ]
    tables: dict[str, pd.DataFrame] = {
        "arms": arms_table(design),
        "derived": derived,
        "errors": validation.errors,
        "incomplete": incomplete.reset_index(drop=True),
        "completeness": _derive.completeness_table(derived),
        "accrual_site": status_counts(derived, ["country", "site_id"]),
        "accrual_trait": status_counts(derived, ["assigned_trait"]),
        "accrual_age_group": status_counts(derived, ["age_group"]),
        "accrual_arm": status_counts(derived, ["assigned_trait", "arm"]),
        "accrual_month": accrual_by_month(derived),
        "pooled_outcomes": pooled_outcomes(derived, design),
        "pooled_osfd": pooled_osfd(derived, design),
        "information": information,
        "quantities": q,
        "rules": rules,
        "decisions": decisions,
        "sensitivity_decisions": sens_decisions,
        "child_harm": child_harm,
        "children_decisions": children,
        "arm_states": arm_states,
        "allocation": allocation,
        "safety": safety,
        "safety_signals": safety_signals(design, safety, safety_rule),
        "diagnostics": pd.DataFrame(diags, columns=list(DIAGNOSTIC_COLUMNS)),
        "suspended_allocations": suspended,
    }
    for o in outcomes:
        tables[f"cells_{o}"] = cells[o]
    export_files = {
        name: file_sha256(export_path / name)
        for name in EXPORT_FILES
        if (export_path / name).is_file()
    }
    manifest = build_manifest(
        design,
        seed,
        result="interim_analysis",
        export={
            "trial_id": meta.trial_id,
            "export_id": meta.export_id,
            "data_cut": meta.data_cut.isoformat(),
            "created_by": meta.created_by,
            "files_sha256": export_files,
        },
        size=size,
        runs=sizes,
        outcomes=list(outcomes),
        outcome_labels={o: design.outcome(o).label for o in outcomes},
        primary_outcome=primary_outcome(design),
        n_eras=n_eras,
        arms=list(arms),
        analyses=[PRIMARY, *analyses],
        sensitivity_analyses_of_design=list(all_sensitivity),
        child_harm_check=run_child_harm,
        safety_rule={
            "file": "protocol/safety_monitoring.yaml",
            "status": safety_rule.status,
            "comparison": safety_rule.rule.comparison,
            "prior_events": safety_rule.rule.prior_events,
            "prior_non_events": safety_rule.rule.prior_non_events,
            "threshold": safety_rule.rule.threshold,
            "min_patients_arm": safety_rule.rule.min_patients_arm,
            "consequence": " ".join(safety_rule.rule.consequence.split()),
            "signals": int(tables["safety_signals"]["signal"].sum()),
        },
        counts={
            "rows": int(validation.n_rows),
            "valid": int(validation.n_valid),
            "invalid": int(validation.n_invalid),
            **{s: int((derived["status"] == s).sum()) for s in STATUS_COLUMNS},
            "suspended_allocations": len(suspended),
        },
        gates_passed=bool(all(r["gates_passed"] for r in diags if r["used"])),
        gates=dict(GATES),
        primary_gates_passed=decided,
        decisions_taken=decided,
        no_decision_reason=no_decision,
        primary_fits={
            o: {
                "attempts": len(tried[o]),
                "settings": dict(NutsSettings()._replace(**primary[o].run)._asdict()),
                "runs_of_chains": primary[o].runs,
                "chains": primary[o].n_chains,
                "draws": int(primary[o].draws.shape[0]),
                "gates_passed": bool(primary[o].gates_passed),
            }
            for o in outcomes
        },
        monte_carlo={
            "mcse_margin": float(mc.mcse_margin),
            "max_extra_runs": int(mc.max_extra_runs),
            "extra_runs": extra,
            "unresolved": unresolved,
        },
        tables=[f"{n}.csv" for n in tables],
        draws=[f"{DRAWS_DIR}/{PRIMARY}_{o}.csv.gz" for o in outcomes],
        allocation_state=ALLOCATION_FILE if record is not None else None,
    )
    analysis = InterimAnalysis(
        manifest=manifest,
        tables=tables,
        allocation_state=record,
        draws=draws,
        arms=tuple(arms),
        out_dir=None if out_dir is None else Path(out_dir),
        fits=fits,
    )
    if out_dir is not None:
        write_analysis(analysis, out_dir)
    if progress is not None:
        progress("done", n_steps, n_steps)
    return analysis


# ----------------------------------------------------------------------------- reading
def load_analysis(
    folder: str | Path, *, design: Design | None = None, allow_stale: bool = True
) -> InterimAnalysis:
    """Read an interim analysis written by :func:`analyse` (nothing is refitted).

    Tables are read with empty cells as missing and every other text kept as text (a patient
    id ``"NA"`` stays ``"NA"``). With ``design`` given and ``allow_stale=False``, a folder
    computed from another design raises :class:`~palette_core.errors.StaleResultError`.
    Raises :class:`~palette_core.errors.StoredResultError` for a missing or unreadable folder.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise StoredResultError(f"{path}: no interim analysis here (run `palette analyse`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        names = list(manifest["tables"])
        draw_files = list(manifest["draws"])
        arms = tuple(manifest["arms"])
        alloc_name = manifest.get("allocation_state")
        stored_hash = manifest["design_hash"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoredResultError(f"{path}: unreadable manifest ({exc})") from None
    if design is not None and not allow_stale and stored_hash != design.design_hash:
        raise StaleResultError(str(folder), str(stored_hash), design.design_hash)
    tables = {}
    for t in names:
        p = folder / t
        if not p.is_file():
            raise StoredResultError(f"{p}: table listed in the manifest is missing")
        tables[t.removesuffix(".csv")] = pd.read_csv(
            p, keep_default_na=False, na_values=[""], low_memory=False
        )
    draws = {}
    for f in draw_files:
        p = folder / f
        if not p.is_file():
            raise StoredResultError(f"{p}: draws listed in the manifest are missing")
        oid = Path(f).name.removesuffix(".csv.gz").removeprefix(f"{PRIMARY}_")
        frame = pd.read_csv(p, compression="gzip")
        draws[oid] = frame[list(arms)].to_numpy(dtype=np.float64)
    record = None
    if alloc_name:
        p = folder / alloc_name
        if not p.is_file():
            raise StoredResultError(f"{p}: allocation record listed in the manifest is missing")
        record = json.loads(p.read_text(encoding="utf-8"))
    return InterimAnalysis(manifest, tables, record, draws, arms, folder, {})


__all__ = [
    "CHILD_HARM_ANALYSIS",
    "DECISION_STATE",
    "DEFAULT_SEED",
    "SIZES",
    "TABLES",
    "InterimAnalysis",
    "accrual_by_month",
    "analyse",
    "arm_states_after",
    "arm_states_before",
    "arms_table",
    "child_harm_check",
    "child_information",
    "decisions_by_analysis",
    "load_analysis",
    "n_complete_by_arm",
    "next_allocation",
    "pooled_osfd",
    "pooled_outcomes",
    "primary_outcome",
    "safety_by_arm",
    "status_counts",
    "suspended_allocations",
    "write_analysis",
]
