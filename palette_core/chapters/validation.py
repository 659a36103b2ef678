"""Chapter "Computational validation": the simulator's approximation against NUTS, the adaptr
cross-check, simulation-based calibration, the tipping-point analysis of missing outcomes and
the reproducibility of every stored result.

Every table and figure is computed from stored results (:mod:`palette_core.results.store`);
nothing here fits a model or runs a simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from palette_core.design.loader import Design
from palette_core.results.store import (
    NOT_READ,
    RESULTS,
    StoredResult,
    derived_root,
    load_result,
)
from palette_core.simulate.accuracy import DEFAULT_BANDS
from palette_core.viz.labels import trait_label

#: Decision probabilities of the accuracy panel: label and the rule's minimum information.
QUANTITY_LABELS = {
    "graduation": "Graduation: Pr(OR > 1)",
    "futility": "Futility: Pr(OR > 1.1)",
    "harm": "Harm: Pr(OR < 1)",
    "pr_best": "Pr(best)",
}
POPULATION_LABELS = {"adult": "Adults", "child": "Children"}
#: Two-sided tail probability of a standard normal beyond 2 (chance of |z| > 2 under no bias).
P_ABS_Z_ABOVE_2 = 0.0455003


def _quantity_label(design: Design, quantity: str) -> str:
    dec = design.decisions
    ref = {
        "graduation": ("Graduation", ">", dec.graduation.or_reference),
        "futility": ("Futility", ">", dec.futility.or_reference),
        "harm": ("Harm", "<", dec.harm.or_reference),
    }
    if quantity not in ref:
        return QUANTITY_LABELS.get(quantity, quantity)
    name, op, r = ref[quantity]
    return f"{name}: Pr(OR {op} {r:g})"


def _outcome_label(design: Design, oid: str) -> str:
    return design.outcome(oid).label


def target_of(design: Design, oid: str) -> float:
    """The accuracy target of an outcome's decision probabilities (issue targets, by outcome
    type: :data:`palette_core.simulate.accuracy.DEFAULT_BANDS`)."""
    return DEFAULT_BANDS[design.outcome(oid).type]


def _evaluable(design: Design, comparisons: pd.DataFrame) -> pd.DataFrame:
    """The comparison rows the panel summarises: arms with the rule's minimum information."""
    dec = design.decisions
    minimum = {
        "graduation": dec.graduation.min_complete,
        "futility": dec.futility.min_complete,
        "harm": dec.harm.min_complete,
        "pr_best": 1,
    }
    return comparisons[comparisons["n_arm"] >= comparisons["quantity"].map(minimum)]


def accuracy_table(
    panel: pd.DataFrame, comparisons: pd.DataFrame, design: Design, rule: str | None = None
) -> pd.DataFrame:
    """The approximation-against-NUTS panel as the chapter shows it.

    Parameters
    ----------
    panel, comparisons
        The stored tables ``panel`` and ``comparisons`` of ``laplace_accuracy``.
    design
        The loaded design (labels, minimum information, targets).
    rule
        Keep one quadrature rule (default: all, rule first).

    Returns
    -------
    pandas.DataFrame
        One row per rule, probability, outcome and population: the number of comparisons,
        the largest and 99th-percentile ``|Laplace - NUTS|``, the target and whether the 99th
        percentile meets it, the median Monte Carlo SE of NUTS, the share of differences beyond
        3 NUTS SEs (about 0.3 % if only NUTS's error were at work) and the share of decisions
        that differ.
    """
    ev = _evaluable(design, comparisons)
    ev = ev.assign(z=(ev["laplace"] - ev["nuts"]).abs() / ev["nuts_mcse"])
    beyond = ev.groupby(["rule", "quantity", "outcome", "population"])["z"].apply(
        lambda z: float(np.mean(z.to_numpy() > 3.0))
    )
    rows = []
    for r in panel.itertuples(index=False):
        if rule is not None and r.rule != rule:
            continue
        target = target_of(design, r.outcome)
        rows.append(
            {
                "Rule": r.rule,
                "Probability": _quantity_label(design, r.quantity),
                "Outcome": _outcome_label(design, r.outcome),
                "Population": POPULATION_LABELS[r.population],
                "Comparisons": int(r.n),
                "Largest |diff.|": round(float(r.max_abs_diff), 3),
                "99th pct |diff.|": round(float(r.p99_abs_diff), 3),
                "Target": target,
                "Target met (99th pct)": "yes" if r.p99_abs_diff <= target else "no",
                "NUTS MC SE (median)": round(float(r.median_nuts_mcse), 4),
                "|diff.| > 3 NUTS SE": round(
                    float(beyond.get((r.rule, r.quantity, r.outcome, r.population), np.nan)), 3
                ),
                "Decision differs": (
                    "-" if np.isnan(r.decision_differs) else round(float(r.decision_differs), 4)
                ),
            }
        )
    return pd.DataFrame(rows)


def panel_looks(comparisons: pd.DataFrame) -> dict[str, int]:
    """Number of distinct looks compared per outcome (trial and look index)."""
    return {
        o: int(len(g[["trial", "look"]].drop_duplicates()))
        for o, g in comparisons.groupby("outcome", sort=True)
    }


def _pct_range(values: pd.Series) -> str:
    return f"{100 * values.min():.1f} % to {100 * values.max():.1f} %"


def accuracy_numbers(design: Design, accuracy: StoredResult, shown: pd.DataFrame) -> dict[str, Any]:
    """The numbers the chapter's prose quotes about the stored accuracy panel (glue name ->
    value, in the chapter's order), from its manifest, its tables and ``shown``
    (:func:`accuracy_table` of the default rule)."""
    comparisons, panel = accuracy.tables["comparisons"], accuracy.tables["panel"]
    cfg, timings = accuracy.manifest["config"], accuracy.manifest["timings"]
    looks = panel_looks(comparisons)
    rule = cfg["rules"][0]
    met = shown["Target met (99th pct)"].eq("yes")
    adults = shown[shown["Population"] == "Adults"]
    ratio = adults["99th pct |diff.|"] / adults["Target"]
    is_osfd = adults["Outcome"] == design.outcome("osfd28").label
    children = shown.loc[shown["Population"] == "Children", "|diff.| > 3 NUTS SE"]
    return {
        "target_binary": target_of(design, "mortality28"),
        "target_ordinal": target_of(design, "osfd28"),
        "looks_mortality": looks["mortality28"],
        "looks_osfd": looks["osfd28"],
        "nuts_chains": cfg["nuts"]["num_chains"],
        "nuts_warmup": cfg["nuts"]["num_warmup"],
        "nuts_draws": cfg["nuts"]["num_samples"],
        "default_rule": rule,
        "rules": ", ".join(cfg["rules"]),
        "nuts_s_osfd": f"{timings['nuts_s_per_look[osfd28]']:.1f}",
        "nuts_s_mortality": f"{timings['nuts_s_per_look[mortality28]']:.1f}",
        "nuts_device": ", ".join(accuracy.manifest["devices"]),
        "nuts_batch": int(cfg["batch"]),
        "median_mcse": f"{panel['median_nuts_mcse'].median():.3f}",
        "n_rows": len(shown),
        "n_met": int(met.sum()),
        "met_phrase": (
            f"None of the {len(shown)} rows meets"
            if not met.any()
            else f"{int(met.sum())} of the {len(shown)} rows meet"
        ),
        "ratio_osfd": f"{ratio[is_osfd].min():.1f} to {ratio[is_osfd].max():.1f}",
        "ratio_mortality": f"{ratio[~is_osfd].max():.1f}",
        "beyond3_adults": _pct_range(adults["|diff.| > 3 NUTS SE"]),
        "beyond3_children": _pct_range(children),
        "beyond3_chance": f"{100 * math.erfc(3 / math.sqrt(2)):.1f} %",
        "largest_flip": f"{panel.loc[panel['rule'] == rule, 'decision_differs'].max():.4f}",
    }


def accuracy_chart(
    comparisons: pd.DataFrame, design: Design, rule: str, *, extreme: float = 1e-3
) -> alt.FacetChart:
    """Laplace against NUTS, one panel per decision probability, the threshold band shaded.

    Parameters
    ----------
    comparisons
        The stored ``comparisons`` table of ``laplace_accuracy``.
    design
        The loaded design.
    rule
        The quadrature rule shown.
    extreme
        Points where both probabilities are within ``extreme`` of 0 or 1 are left out (they
        sit on the corners; the caption gives their number).

    Returns
    -------
    altair.FacetChart
        A scatter per probability and outcome, the diagonal, and the band of the threshold.
    """
    ev = _evaluable(design, comparisons)
    ev = ev[(ev["rule"] == rule) & ev["threshold"].notna()].copy()
    lo = ev[["nuts", "laplace"]].min(axis=1)
    hi = ev[["nuts", "laplace"]].max(axis=1)
    ev = ev[~((hi < extreme) | (lo > 1 - extreme))]
    ev["panel"] = [
        f"{_quantity_label(design, q)}, {_outcome_label(design, o)}"
        for q, o in zip(ev["quantity"], ev["outcome"], strict=True)
    ]
    ev["Population"] = ev["population"].map(POPULATION_LABELS)
    ev["band"] = [target_of(design, o) for o in ev["outcome"]]
    bands = ev.groupby("panel", sort=True).agg(
        threshold=("threshold", "first"), band=("band", "first")
    )
    bands = bands.reset_index().assign(
        lo=lambda d: d["threshold"] - d["band"], hi=lambda d: d["threshold"] + d["band"]
    )
    # one point per 3 x 3 pixels of the 220-pixel panels, a point's own width: points that
    # overlap on the screen are drawn once, which keeps the page light
    grid = 3.0 / 220.0
    data = ev[["panel", "Population", "nuts", "laplace"]].copy()
    data[["nuts", "laplace"]] = (data[["nuts", "laplace"]] / grid).round() * grid
    data = data.drop_duplicates().round(4)
    scale = alt.Scale(domain=[0, 1])
    points = (
        alt.Chart()
        .mark_circle(size=9, opacity=0.5, aria=False)
        .encode(
            x=alt.X("nuts:Q", title="NUTS", scale=scale),
            y=alt.Y("laplace:Q", title="Laplace approximation", scale=scale),
            color=alt.Color("Population:N", scale=alt.Scale(range=["#2166ac", "#d6604d"])),
        )
    )
    diagonal = (
        alt.Chart(pd.DataFrame({"nuts": [0.0, 1.0], "laplace": [0.0, 1.0]}))
        .mark_line(color="grey", strokeDash=[4, 3])
        .encode(x="nuts:Q", y="laplace:Q")
    )
    one_band = alt.Chart().transform_aggregate(lo="min(lo)", hi="max(hi)", groupby=["panel"])
    band_x = one_band.mark_rect(color="#fdb863", opacity=0.35, aria=False).encode(
        x="lo:Q", x2="hi:Q"
    )
    band_y = one_band.mark_rect(color="#fdb863", opacity=0.35, aria=False).encode(
        y="lo:Q", y2="hi:Q"
    )
    merged = data.merge(bands, on="panel", how="left")
    return (
        alt.layer(band_x, band_y, diagonal, points, data=merged)
        .properties(width=220, height=220)
        .facet(facet=alt.Facet("panel:N", title=None), columns=2)
        .properties(
            title=f"Decision probabilities, Laplace ({rule}) against NUTS",
            description=(
                "Scatter plots of each decision probability computed by the Laplace "
                "approximation against long NUTS runs, one panel per probability and outcome; "
                "points near the diagonal agree; the shaded band marks the threshold plus or "
                "minus the accuracy target."
            ),
        )
    )


def adaptr_summary(crosscheck: pd.DataFrame) -> pd.DataFrame:
    """Per adaptr source: comparisons with a standard error, largest ``|z|``, the count of
    ``|z| > 2`` and the count expected by chance.

    Parameters
    ----------
    crosscheck
        The stored ``crosscheck`` table of ``adaptr_crosscheck``.

    Returns
    -------
    pandas.DataFrame
        One row per scenario and a total row.
    """
    ok = crosscheck[
        crosscheck["z"].notna() & ((crosscheck["se_adaptr"] + crosscheck["se_ours"]) > 0)
    ]
    rows = []
    for (sc, n_rep), g in ok.groupby(["scenario", "n_rep"], sort=False):
        z = g["z"].abs()
        rows.append(
            {
                "Scenario": sc,
                "adaptr trials": int(n_rep),
                "Our trials": int(g["n_trials_ours"].iloc[0]),
                "Metrics compared": len(g),
                "Largest |z|": round(float(z.max()), 2),
                "|z| > 2": int((z > 2).sum()),
                "Expected by chance": round(len(g) * P_ABS_Z_ABOVE_2, 1),
            }
        )
    z = ok["z"].abs()
    rows.append(
        {
            "Scenario": "all",
            "adaptr trials": "-",
            "Our trials": "-",
            "Metrics compared": len(ok),
            "Largest |z|": round(float(z.max()), 2),
            "|z| > 2": int((z > 2).sum()),
            "Expected by chance": round(len(ok) * P_ABS_Z_ABOVE_2, 1),
        }
    )
    return pd.DataFrame(rows)


#: adaptr's headline operating characteristics, shown side by side.
HEADLINE_METRICS = (
    "prob_superior",
    "prob_equivalence",
    "prob_max",
    "size_mean",
    "prob_select_arm_Arm B",
    "rmse",
)


def adaptr_headline(crosscheck: pd.DataFrame) -> pd.DataFrame:
    """adaptr's published value against ours for :data:`HEADLINE_METRICS`, with both SEs and z.

    Parameters
    ----------
    crosscheck
        The stored ``crosscheck`` table.

    Returns
    -------
    pandas.DataFrame
        Columns Scenario, adaptr trials, Metric, adaptr, Ours, SE adaptr, SE ours, z.
    """
    h = crosscheck[crosscheck["metric"].isin(HEADLINE_METRICS)]
    return pd.DataFrame(
        {
            "Scenario": h["scenario"],
            "adaptr trials": h["n_rep"].astype(int),
            "Metric": h["metric"],
            "adaptr": h["adaptr"].round(4),
            "Ours": h["ours"].round(4),
            "SE adaptr": h["se_adaptr"].round(4),
            "SE ours": h["se_ours"].round(4),
            "z": h["z"].round(2),
        }
    )


def adaptr_z_chart(crosscheck: pd.DataFrame) -> alt.LayerChart:
    """z-scores of every compared metric, by scenario, with the lines at -2 and 2.

    Parameters
    ----------
    crosscheck
        The stored ``crosscheck`` table.

    Returns
    -------
    altair.LayerChart
        A strip plot of z per scenario.
    """
    ok = crosscheck[
        crosscheck["z"].notna() & ((crosscheck["se_adaptr"] + crosscheck["se_ours"]) > 0)
    ]
    data = pd.DataFrame(
        {
            "Scenario": [f"{s} ({n})" for s, n in zip(ok["scenario"], ok["n_rep"], strict=True)],
            "Metric": ok["metric"],
            "z": ok["z"].round(3),
        }
    )
    strip = (
        alt.Chart(data)
        .mark_tick(thickness=2, size=14)
        .encode(
            x=alt.X(
                "z:Q", title="z = (ours - adaptr) / combined SE", scale=alt.Scale(domain=[-3, 3])
            ),
            y=alt.Y("Scenario:N", title="adaptr source (its number of trials)"),
            color=alt.condition("abs(datum.z) > 2", alt.value("#b2182b"), alt.value("#4393c3")),
            tooltip=["Scenario", "Metric", "z"],
        )
    )
    rules = (
        alt.Chart(pd.DataFrame({"z": [-2.0, 2.0]}))
        .mark_rule(color="grey", strokeDash=[4, 3])
        .encode(x="z:Q")
    )
    return (strip + rules).properties(
        width=520,
        title="adaptr's published operating characteristics against our engine",
        description=(
            "One tick per compared metric and adaptr source, at its z-score; dashed lines at "
            "z = -2 and z = 2; ticks beyond them are red."
        ),
    )


def sbc_table(uniformity: pd.DataFrame) -> pd.DataFrame:
    """The uniformity tests of the SBC ranks with readable columns.

    Parameters
    ----------
    uniformity
        The stored ``uniformity`` table of ``sbc``.

    Returns
    -------
    pandas.DataFrame
        Parameter, simulations, bins, chi-square, degrees of freedom and p-value.
    """
    return pd.DataFrame(
        {
            "Parameter": uniformity["parameter"],
            "Simulations": uniformity["n_sims"].astype(int),
            "Bins": uniformity["n_bins"].astype(int),
            "Chi-square": uniformity["chi2"].round(1),
            "df": uniformity["df"].astype(int),
            "p-value": uniformity["p_value"].round(3),
        }
    )


def rebuild_command(name: str) -> str:
    """The command that recomputes one stored result."""
    return f"palette results rebuild --only {name}"


def manifest_row(name: str, result: StoredResult | None, design: Design, error: str = "") -> dict:
    """One row of the reproducibility table (:func:`reproducibility_table`)."""
    if result is None:
        return {
            "Result": name,
            "Status": f"missing ({error})" if error else "missing",
            "Input hash": "-",
            "Seed": "-",
            "Git revision": "-",
            "JAX / NumPyro": "-",
            "Size": "-",
            "Runtime (s)": "-",
            "Rebuild": rebuild_command(name),
        }
    m = result.manifest
    stored = m.get("design_hash", m.get("scenario_sha256", ""))
    kind = "design" if "design_hash" in m else "scenario file"
    pk = m.get("packages", {})
    runtime = m.get("runtime_s", m.get("wall_s"))
    changed = result.changed or ()
    ignored = [f for f in changed if f in NOT_READ.get(name, {})]
    prose = list(result.prose_changed)
    unread = list(result.unread_changed)
    real = [f for f in changed if f not in ignored and f not in prose and f not in unread]
    if real and not result.stale:  # the calibration leaves out the threshold it calibrates
        notes = [f"{', '.join(real)} changed in what this result leaves out"]
    else:
        notes = [f"{', '.join(real)} changed"] if real else []
    notes += [f"{', '.join(prose)} changed in prose only"] if prose else []
    notes += [f"{', '.join(unread)} changed in entries it does not read"] if unread else []
    notes += [f"{', '.join(ignored)} changed, not read"] if ignored else []
    status = ("stale" if result.stale else "current") + (f" ({'; '.join(notes)})" if notes else "")
    return {
        "Result": name,
        "Status": status,
        "Input hash": f"{kind} {stored[:12]}",
        "Seed": m.get("seed", "-"),
        "Git revision": str(m.get("git_revision", "-"))[:12]
        + ("+dirty" if str(m.get("git_revision", "")).endswith("+dirty") else ""),
        "JAX / NumPyro": f"{pk.get('jax', '?')} / {pk.get('numpyro', '?')}",
        "Size": m.get("size", "-"),
        "Runtime (s)": "-" if runtime is None else round(float(runtime)),
        "Rebuild": rebuild_command(name),
    }


def stale_notice(result: StoredResult) -> str:
    """Markdown that says a result shown is stale and why (empty when it is current): the
    design files changed since it was computed, and the command and time that rebuild it."""
    if not result.stale:
        return ""
    changed = [
        f
        for f in (result.changed or ())
        if f not in NOT_READ.get(result.name, {})
        and f not in result.prose_changed
        and f not in result.unread_changed
    ]
    what = (
        "the design files " + ", ".join(f"`{f}`" for f in changed) + " changed since"
        if changed
        else "the design changed since"
    )
    runtime = result.manifest.get("runtime_s")
    took = f" (it took {float(runtime) / 60:.0f} minutes on 2 cores)" if runtime else ""
    return (
        f"**Stale result.** `{result.name}` was computed under an earlier design: {what}. "
        f"The numbers below are that design's, shown rather than hidden; "
        f"`{rebuild_command(result.name)}` recomputes them{took}."
    )


def reproducibility_table(
    design: Design, names: Sequence[str] = RESULTS, root: Any = None
) -> pd.DataFrame:
    """Every stored result's manifest in one table, with its status against the current design.

    Parameters
    ----------
    design
        The loaded design (its hash decides current or stale).
    names
        The results (default: every one :func:`palette_core.results.store.rebuild` makes).
    root
        The folder of the results (default: ``data/derived`` of the design).

    Returns
    -------
    pandas.DataFrame
        Result, Status (current, stale or missing), Input hash (the design's or, for a result
        computed from a scenario file alone, that file's), Seed, Git revision, JAX / NumPyro
        versions, Size, Runtime and the command that rebuilds it.
    """
    root = derived_root(design) if root is None else root
    rows = []
    for name in names:
        try:
            res = load_result(name, root, design=design, allow_stale=True)
        except Exception as exc:  # noqa: BLE001 - shown in the table, never hidden
            rows.append(manifest_row(name, None, design, type(exc).__name__))
            continue
        rows.append(manifest_row(name, res, design))
    return pd.DataFrame(rows)


def trait_labels(design: Design, arms: Sequence[str]) -> list[str]:
    """The trait label of each arm."""
    return [trait_label(design, design.arm(a).trait) for a in arms]


def arm_names(design: Design, arms: Sequence[str]) -> list[str]:
    """The display name of each arm (``arms.yaml``)."""
    return [design.arm(a).name for a in arms]


def headline(values: Mapping[str, Any]) -> dict[str, Any]:
    """Round the floats of a mapping for prose (3 decimals)."""
    return {k: round(float(v), 3) if isinstance(v, float) else v for k, v in values.items()}


# ----------------------------------------------------------------------------- tipping point
#: Rule labels of the tipping-point tables (decision and outcome).
RULE_NAMES = {"graduation": "Graduation", "futility": "Futility", "harm": "Harm"}
SCENARIO_LABELS = {
    "experimental": "Missing outcomes on the experimental arm shifted",
    "usual_care": "Missing outcomes on usual care shifted",
}


def _rule_label(design: Design, rule: str, outcome: str) -> str:
    short = {"osfd28": "OSFD", "mortality28": "mortality"}.get(outcome, outcome)
    return f"{_quantity_label(design, rule)} on {short}"


def _delta_text(value: float, spec_range: tuple[float, float]) -> str:
    if not np.isfinite(value):
        return f"none in [{spec_range[0]:g}, {spec_range[1]:g}]"
    return f"{value:+.2f} (OR {np.exp(value):.2f})"


def tipping_table(tipping: pd.DataFrame, design: Design, deltas: Sequence[float]) -> pd.DataFrame:
    """The tipping points of the arms evaluable for each rule, as the chapter shows them.

    Parameters
    ----------
    tipping
        The stored ``tipping`` table of ``tipping_point``.
    design
        The loaded design (arm names, rule labels).
    deltas
        The grid of delta (the manifest's), for the range quoted where nothing flips.

    Returns
    -------
    pandas.DataFrame
        Rule, side shifted, arm, missing outcomes (arm / its usual care), probability under
        MAR with its Monte Carlo SE, complete-case probability, decision under MAR, and the
        tipping points below and above 0 (with the odds ratio exp(delta)).
    """
    rng = (float(min(deltas)), float(max(deltas)))
    t = tipping[tipping["evaluable"]]
    return pd.DataFrame(
        {
            "Rule": [
                _rule_label(design, r, o) for r, o in zip(t["rule"], t["outcome"], strict=True)
            ],
            "Shifted": t["scenario"].map(
                {"experimental": "experimental", "usual_care": "usual care"}
            ),
            "Arm": arm_names(design, t["arm"]),
            "Missing (arm / usual care)": [
                f"{a} / {c}" for a, c in zip(t["n_missing"], t["n_missing_control"], strict=True)
            ],
            "Pr under MAR": [
                f"{p:.3f} ± {s:.3f}"
                for p, s in zip(t["probability_mar"], t["mcse_mar"], strict=True)
            ],
            "Complete case": t["complete_case"].round(3),
            "Fires under MAR": np.where(t["fires_mar"], "yes", "no"),
            "Tipping point below 0": [_delta_text(v, rng) for v in t["tipping_below"]],
            "Tipping point above 0": [_delta_text(v, rng) for v in t["tipping_above"]],
        }
    )


def nearest_to_threshold(tipping: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per rule, outcome and side shifted, the ``k`` evaluable arms whose MAR probability is
    nearest the threshold, and every arm with a tipping point: those the figure draws."""
    t = tipping[tipping["evaluable"]].copy()
    t["gap"] = (t["probability_mar"] - t["threshold"]).abs()
    flipped = t["tipping_below"].notna() | t["tipping_above"].notna()
    near = t.sort_values("gap").groupby(["outcome", "rule", "scenario"], sort=False).head(k)
    return pd.concat([t[flipped], near]).drop_duplicates(["outcome", "rule", "scenario", "arm"])


def tipping_chart(
    curves: pd.DataFrame, tipping: pd.DataFrame, design: Design, k: int = 2
) -> alt.FacetChart:
    """Decision probability against delta, one panel per rule and side shifted.

    Parameters
    ----------
    curves, tipping
        The stored ``curves`` and ``tipping`` tables of ``tipping_point``.
    design
        The loaded design.
    k
        The arms drawn per panel: the ``k`` evaluable arms nearest the threshold under MAR and
        every one with a tipping point (:func:`nearest_to_threshold`).

    Returns
    -------
    altair.FacetChart
        Lines per arm, the threshold as a dashed rule, tipping points as labelled dots.
    """
    keys = ["outcome", "rule", "scenario", "arm"]
    sel = nearest_to_threshold(tipping, k)[keys]
    c = curves.merge(sel, on=keys)
    c = c.assign(
        Panel=[
            f"{_rule_label(design, r, o)}; {SCENARIO_LABELS[s].lower()}"
            for r, o, s in zip(c["rule"], c["outcome"], c["scenario"], strict=True)
        ],
        Arm=arm_names(design, c["arm"]),
    )[["Panel", "Arm", "delta", "probability", "threshold"]].round(4)
    tips = []
    for r in tipping.merge(sel, on=keys).itertuples():
        for v in (r.tipping_below, r.tipping_above):
            if np.isfinite(v):
                tips.append(
                    {
                        "Panel": f"{_rule_label(design, r.rule, r.outcome)}; "
                        f"{SCENARIO_LABELS[r.scenario].lower()}",
                        "Arm": design.arm(r.arm).name,
                        "delta": round(float(v), 3),
                        "probability": r.threshold,
                        "threshold": r.threshold,
                        "label": f"tipping point {v:+.2f}",
                    }
                )
    tips_df = pd.DataFrame(
        tips, columns=["Panel", "Arm", "delta", "probability", "threshold", "label"]
    )
    data = pd.concat([c.assign(label=""), tips_df.assign(is_tip=True)], ignore_index=True)
    data["is_tip"] = data["is_tip"].eq(True)
    base = alt.Chart()
    lines = (
        base.transform_filter("!datum.is_tip")
        .mark_line()
        .encode(
            x=alt.X(
                "delta:Q", title="delta (log-odds shift of the imputed outcomes, toward benefit)"
            ),
            y=alt.Y("probability:Q", title="Decision probability", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("Arm:N", title="Arm"),
        )
    )
    threshold = (
        base.transform_filter("!datum.is_tip")
        .transform_aggregate(threshold="mean(threshold)", groupby=["Panel"])
        .mark_rule(color="black", strokeDash=[5, 3])
        .encode(y="threshold:Q")
    )
    dots = (
        base.transform_filter("datum.is_tip")
        .mark_point(shape="diamond", size=80, filled=True, color="#b2182b")
        .encode(x="delta:Q", y="probability:Q")
    )
    labels = (
        base.transform_filter("datum.is_tip")
        .mark_text(align="left", dx=6, dy=-8, fontSize=10, color="#b2182b")
        .encode(x="delta:Q", y="probability:Q", text="label:N")
    )
    return (
        alt.layer(threshold, lines, dots, labels, data=data)
        .properties(width=260, height=170)
        .facet(facet=alt.Facet("Panel:N", title=None), columns=2)
        .properties(
            title="Decision probability under departures from missing at random",
            description=(
                "Line charts of the pooled decision probability of several arms against delta, "
                "the shift of the imputed missing outcomes on the log-odds scale, one panel per "
                "decision rule and side shifted; the dashed line is the rule's threshold and red "
                "diamonds mark tipping points where a decision changes."
            ),
        )
    )


def nuts_check_table(check: pd.DataFrame, design: Design) -> pd.DataFrame:
    """The NUTS check of the refits, as the chapter shows it."""
    return pd.DataFrame(
        {
            "Rule": [
                _rule_label(design, r, o)
                for r, o in zip(check["rule"], check["outcome"], strict=True)
            ],
            "Shifted": check["scenario"].map(
                {"experimental": "experimental", "usual_care": "usual care"}
            ),
            "Arm": arm_names(design, check["arm"]),
            "delta": check["delta"],
            "Where": check["where"],
            "Laplace": check["laplace"].round(4),
            "NUTS": check["nuts"].round(4),
            "NUTS MC SE": check["nuts_mcse"].round(4),
            "Threshold": check["threshold"],
        }
    )


def missing_table(missing: pd.DataFrame, design: Design) -> pd.DataFrame:
    """The stored ``missing`` table (missing outcomes by trait, arm, age group) with labels."""
    ages = {g.id: g.label for g in design.strata.age_groups}
    return pd.DataFrame(
        {
            "Trait": trait_labels(design, missing["arm"]),
            "Arm": arm_names(design, missing["arm"]),
            "Age group": missing["age_group"].map(ages),
            "Missing outcomes": missing["n"].astype(int),
        }
    )
