"""Chapter "Statistical model and priors": the priors, the sensitivity analyses, the prior
predictive summary, the forest plot of the stored example fit, the children-only harm check
and the simulation-based calibration ranks. The stored results are read by the chapter with
:func:`palette_core.results.store.load_result`; nothing here reads a file."""

from __future__ import annotations

import altair as alt
import pandas as pd

from palette_core.analysis.sensitivity import analysis_options, sensitivity_analyses
from palette_core.design.loader import Design
from palette_core.viz.forest import forest_plot
from palette_core.viz.labels import LABELS

#: How each prior of ``proposed/priors.yaml`` is named in the table, in order.
PRIOR_LABELS = {
    "arm_log_or": "Arm log odds ratio (no shared effect)",
    "shared_effect_mean": "Mean log OR of a shared-effect group",
    "between_trait_sd": "Between-trait SD of a shared effect (tau)",
    "child_deviation_sd": "SD of the children's deviation (sigma_ped)",
    "era_step_sd": "Step SD of the calendar-era random walk",
    "trait_shift": "Trait location shift",
    "cutpoints": "Cut-points of each age stratum",
}


def priors_table(design: Design) -> pd.DataFrame:
    """Every prior of the joint model, from ``data/design/proposed/priors.yaml`` (all proposed).

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Parameter, Prior, Sensitivity (the other scales tried) and Rationale.
    """
    pr = design.priors
    rows = []
    for name, label in PRIOR_LABELS.items():
        p = getattr(pr, name)
        if p.distribution == "normal":
            dist = f"Normal({p.loc:g}, {p.scale:g}²)"
        elif p.distribution == "half_normal":
            dist = f"HalfNormal({p.scale:g})"
        else:
            dist = f"induced Dirichlet({p.concentration:g})"
        sens = ", ".join(f"{x:g}" for x in getattr(p, "sensitivity_scales", ())) or "-"
        if getattr(p, "sensitivity_no_borrowing", False):
            sens += "; no borrowing"
        rows.append(
            {
                "Parameter": label,
                "Prior": dist,
                "Sensitivity": sens,
                LABELS["rationale"]: " ".join(p.rationale.split()),
            }
        )
    return pd.DataFrame(rows)


def sensitivity_table(design: Design) -> pd.DataFrame:
    """The sensitivity analyses a look runs (``interim_analysis.yaml``), with what each changes.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Analysis and What changes, one row per analysis in the design's order.
    """
    ia = design.interim_analysis.sensitivity
    what = {
        "no_borrowing": (
            "Every arm has its own Normal prior (arm_log_or) in every age stratum: no borrowing "
            "between traits and none from adults to children; gives the children-only effect."
        ),
        "per_trait_eras": "One calendar-era random walk per trait instead of one shared walk.",
        "exnex": " ".join(design.priors.exnex.rationale.split()),
        "concurrent_controls": " ".join(ia.concurrent_controls.rationale.split()),
    }
    rows = []
    for name in sensitivity_analyses(design):
        opts = analysis_options(design, name)
        if "prior_scales" in opts:
            ((prior, value),) = opts["prior_scales"].items()
            base = getattr(design.priors, prior).scale
            text = f"Prior scale of {prior} set to {value:g} (primary: {base:g})."
        else:
            text = what[name]
        rows.append({"Analysis": name, "What changes": text})
    return pd.DataFrame(rows)


def prior_predictive_table(df: pd.DataFrame) -> pd.DataFrame:
    """Prior predictive summary pooled over traits, one row per outcome, age group and quantity.

    Parameters
    ----------
    df
        The stored ``prior_predictive`` table
        (:func:`palette_core.analysis.checking.prior_predictive`).

    Returns
    -------
    pandas.DataFrame
        The rows with ``trait == "all"``: mean and quantiles, rounded to 3 decimals.
    """
    pooled = df[df["trait"] == "all"]
    cols = ["outcome", "age_group", "quantity", "mean", "q025", "q50", "q975"]
    return pooled[cols].round(3).reset_index(drop=True)


def forest_chart(
    summary: pd.DataFrame, title: str, design: Design, truth: pd.DataFrame | None = None
) -> alt.FacetChart:
    """:func:`~palette_core.viz.forest.forest_plot` of a stored quantities table.

    Parameters
    ----------
    summary
        Rows of :func:`palette_core.analysis.quantities.summarise` (one per outcome and arm).
    title
        The chart's title.
    design
        The loaded design (trait, arm and outcome labels).
    truth
        The true odds ratios (columns ``arm``, ``true_or``) if known, drawn as diamonds.

    Returns
    -------
    altair.FacetChart
        One panel per outcome.
    """
    df = summary.copy()
    traits = {t.id: t.short_name or t.name for t in design.traits}
    arms = {a.id: a.short_name or a.name for a in design.arms}
    outcomes = {o.id: o.label for o in design.outcomes.outcomes}
    df["trait_name"] = df["trait"].map(traits)
    df["label"] = df["trait_name"] + ": " + df["arm"].map(arms)
    df["outcome_label"] = df["outcome"].map(outcomes)
    if truth is None:
        df["true_or"] = float("nan")
    else:
        df = df.merge(truth[["arm", "true_or"]], on="arm", how="left")
    return forest_plot(df, title)


def children_harm_table(quantities: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Children-only effects without borrowing: Pr(harm) and the OR per arm and outcome.

    Parameters
    ----------
    quantities
        A quantities table; the rows with ``analysis == "no_borrowing"`` and
        ``population == "child"`` are used.
    design
        The loaded design. Arms not open to children are left out (their children-only
        effect is the prior).

    Returns
    -------
    pandas.DataFrame
        Outcome, trait, arm, Pr(OR < harm reference) and the OR with its 95 % interval.
    """
    q = quantities[
        (quantities["analysis"] == "no_borrowing") & (quantities["population"] == "child")
    ]
    child_arms = {a.id for a in design.experimental_arms() if "child" in design.arm_age_groups(a)}
    q = q[q["arm"].isin(child_arms)]
    label = {o.id: o.label for o in design.outcomes.outcomes}
    ref = design.decisions.harm.or_reference
    out = pd.DataFrame(
        {
            "Outcome": q["outcome"].map(label),
            "Trait": q["trait"],
            "Arm": q["arm"],
            f"Pr(OR < {ref:g})": q["pr_harm"].round(3),
            "OR (95 % interval)": [
                f"{m:.2f} ({lo:.2f} to {hi:.2f})"
                for m, lo, hi in zip(q["or_median"], q["or_low"], q["or_high"], strict=True)
            ],
        }
    )
    return out.reset_index(drop=True)


def sbc_chart(ranks: pd.DataFrame, uniformity: pd.DataFrame) -> alt.FacetChart:
    """Histogram of simulation-based calibration ranks, one panel per parameter, in the bins of
    the uniformity test (so the figure and its table agree).

    Parameters
    ----------
    ranks
        The stored ``ranks`` table of :func:`palette_core.analysis.checking.sbc` (columns
        ``parameter``, ``rank``, ``n_ranks``).
    uniformity
        The stored ``uniformity`` table (columns ``parameter``, ``n_bins``): the bins of each
        parameter's chi-square test.

    Returns
    -------
    altair.FacetChart
        One histogram per parameter.
    """
    n_ranks = int(ranks["n_ranks"].iloc[0])
    bins = ranks["parameter"].map(
        dict(zip(uniformity["parameter"], uniformity["n_bins"], strict=True))
    )
    df = ranks.assign(bin=(ranks["rank"] * bins // (n_ranks + 1)).astype(int) + 1)
    counts = df.groupby(["parameter", "bin"]).size().reset_index(name="simulations")
    return (
        alt.Chart(counts)
        .mark_bar(color="#2166ac")
        .encode(
            x=alt.X(
                "bin:O",
                title="Bin of the rank of the true value",
                axis=alt.Axis(labelOverlap=True, labelAngle=0),
            ),
            y=alt.Y("simulations:Q", title="Simulations"),
            tooltip=["parameter", "bin", "simulations"],
        )
        .properties(width=180, height=140)
        .facet(facet=alt.Facet("parameter:N", title=None), columns=3)
        .properties(title="Simulation-based calibration ranks")
    )
