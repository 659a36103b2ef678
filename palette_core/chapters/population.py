"""Chapter "Population and treatable traits": eligibility, the worked examples, trait status and
overlap in the synthetic cohort, and accrual under each multi-trait policy.

:func:`load_worked_examples` is the one function here that reads a file.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from palette_core.design.loader import Design
from palette_core.screening.eligibility import load_sofa_reference
from palette_core.screening.patients import PatientValidation, read_patients
from palette_core.viz.labels import LABELS, load_labels

#: The invented patients of the worked examples, relative to the data folder.
WORKED_EXAMPLES = ("examples", "worked_examples.csv")


def load_worked_examples(design: Design) -> PatientValidation:
    """Read and validate ``data/examples/worked_examples.csv`` (the folder next to the design).

    Parameters
    ----------
    design
        The loaded design; its folder's parent is the data folder.

    Returns
    -------
    PatientValidation
        The validated records (:func:`palette_core.screening.patients.read_patients`).

    Raises
    ------
    PatientFileError
        The file is missing.
    """
    return read_patients(design.data_root.joinpath(*WORKED_EXAMPLES), design)


def eligibility_parameters(design: Design) -> dict[str, object]:
    """The numbers the eligibility prose quotes, read from the design and the SOFA reference.

    Parameters
    ----------
    design
        The loaded design (age groups).

    Returns
    -------
    dict
        Glue name -> value: age limits, the SOFA rise and baseline of Sepsis-3, the Phoenix minimum.
    """
    groups = {g.id: g for g in design.strata.age_groups}
    definitions = load_sofa_reference(design).sepsis_definitions
    return {
        "adult_min_age": f"{groups['adult'].min_age_years.value:g}",
        "min_cga": f"{groups['child'].min_corrected_gestational_age_weeks.value:g}",
        "sofa_rise": definitions.sepsis3.min_sofa_increase,
        "sofa_baseline": definitions.sepsis3.baseline_sofa_when_missing,
        "phoenix_min": definitions.phoenix.min_score,
    }


def eligibility_flow_chart(flow: pd.DataFrame) -> alt.Chart:
    """Screening step by step: patients who pass each step, fail it, or cannot be assessed at it.

    Parameters
    ----------
    flow
        The table of :func:`palette_core.screening.eligibility.eligibility_flow`.

    Returns
    -------
    altair.Chart
        One stacked bar per step (passes, fails, indeterminate).
    """
    long = flow.melt(
        id_vars=["label", "order"],
        value_vars=["n", "n_failed", "n_indeterminate"],
        var_name="outcome",
        value_name="patients",
    )
    long["outcome"] = long["outcome"].map(
        {"n": "passes", "n_failed": "fails", "n_indeterminate": "indeterminate"}
    )
    order = list(flow.sort_values("order")["label"])
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=280)),
            x=alt.X("patients:Q", title="Patients reaching the step", stack="zero"),
            color=alt.Color(
                "outcome:N",
                title="At this step",
                scale=alt.Scale(
                    domain=["passes", "fails", "indeterminate"],
                    range=["#2166ac", "#b2182b", "#f4a582"],
                ),
            ),
            order=alt.Order("outcome_rank:Q"),
            tooltip=["label", "outcome", "patients"],
        )
        .transform_calculate(
            outcome_rank="indexof(['passes', 'fails', 'indeterminate'], datum.outcome)"
        )
        .properties(width=420, height=alt.Step(28), title="Eligibility assessment, step by step")
    )


def _trait_names(value: object, names: dict[str, str]) -> str:
    if not isinstance(value, str) or value == "":
        return "-"
    return ", ".join(names.get(x, x) for x in value.split(";") if x)


def worked_examples_tables(
    result: pd.DataFrame, design: Design
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables: eligibility with its reasons, and traits with the trait randomised in.

    Parameters
    ----------
    result
        Classified patients (:func:`palette_core.screening.classify.classify_patients`).
    design
        The loaded design (trait names).

    Returns
    -------
    tuple of pandas.DataFrame
        The eligibility table and the traits table, one row per patient each.
    """
    names = {t.id: t.short_name or t.name for t in design.traits}
    eligibility = pd.DataFrame(
        {
            "Patient": result["patient_id"],
            "Age group": result["age_group"],
            "Eligibility": result["eligible"],
            "Reasons": result["eligibility_reasons"],
        }
    )
    traits = pd.DataFrame(
        {
            "Patient": result["patient_id"],
            "Positive traits": result["positive_traits"].map(lambda v: _trait_names(v, names)),
            "Indeterminate traits": result["indeterminate_traits"].map(
                lambda v: _trait_names(v, names)
            ),
            "Randomised in": result["assigned_trait"].map(
                lambda x: names.get(x, "-") if isinstance(x, str) else "-"
            ),
            "How": result["assignment_rule"],
        }
    )
    return eligibility, traits


def _positive_matrix(classified: pd.DataFrame, design: Design) -> pd.DataFrame:
    return pd.DataFrame(
        {t.id: (classified[f"trait_{t.id}"] == "positive").to_numpy() for t in design.traits},
        index=classified.index,
    )


def trait_status_table(classified: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Per trait: how many patients are positive, negative, indeterminate or not applicable.

    Parameters
    ----------
    classified
        Classified patients.
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        One row per trait with the four counts and the percentage positive among applicable.
    """
    statuses = ["positive", "negative", "indeterminate", "not applicable"]
    rows = []
    for t in design.traits:
        counts = classified[f"trait_{t.id}"].value_counts()
        row = {LABELS["trait"]: t.name}
        row.update({s_: int(counts.get(s_, 0)) for s_ in statuses})
        applicable = row["positive"] + row["negative"] + row["indeterminate"]
        row["% positive among applicable"] = (
            round(100 * row["positive"] / applicable, 1) if applicable else float("nan")
        )
        rows.append(row)
    return pd.DataFrame(rows)


def trait_overlap_table(classified: pd.DataFrame, design: Design, top: int = 12) -> pd.DataFrame:
    """The most frequent combinations of positive traits (an UpSet-style intersection table).

    Parameters
    ----------
    classified
        Classified patients.
    design
        The loaded design.
    top
        How many combinations to keep, most frequent first.

    Returns
    -------
    pandas.DataFrame
        Combination (names), traits (ids), number of traits, patients and % of the cohort.
    """
    pos = _positive_matrix(classified, design)
    names = {t.id: t.short_name or t.name for t in design.traits}
    keys = pos.apply(lambda r: tuple(tid for tid in pos.columns if r[tid]), axis=1)
    counts = keys.value_counts()
    counts = counts[[len(k) > 0 for k in counts.index]].head(top)
    return pd.DataFrame(
        {
            "combination": [" + ".join(names[t] for t in k) for k in counts.index],
            "traits": list(counts.index),
            "n_traits": [len(k) for k in counts.index],
            "patients": counts.to_numpy(),
            "% of cohort": (100 * counts.to_numpy() / len(classified)).round(1),
        }
    )


def upset_chart(classified: pd.DataFrame, design: Design, top: int = 12) -> alt.VConcatChart:
    """UpSet-style figure: patients per combination of positive traits (bars) and its members (dots).

    Parameters
    ----------
    classified
        Classified patients.
    design
        The loaded design.
    top
        How many combinations to show.

    Returns
    -------
    altair.VConcatChart
        Bars above a membership matrix.
    """
    table = trait_overlap_table(classified, design, top)
    order = list(table["combination"])
    bars = (
        alt.Chart(table)
        .mark_bar(color="#2166ac")
        .encode(
            x=alt.X("combination:N", sort=order, axis=None),
            y=alt.Y("patients:Q", title="Patients"),
            tooltip=["combination", "patients", "% of cohort"],
        )
        .properties(width=alt.Step(40), height=180)
    )
    labels = bars.mark_text(dy=-6, fontSize=10).encode(text="patients:Q")
    names = [t.short_name or t.name for t in design.traits]
    dots = pd.DataFrame(
        [
            {
                "combination": row.combination,
                "trait": t.short_name or t.name,
                "member": t.id in row.traits,
            }
            for row in table.itertuples()
            for t in design.traits
        ]
    )
    matrix = (
        alt.Chart(dots)
        .mark_circle(size=110)
        .encode(
            x=alt.X("combination:N", sort=order, axis=None),
            y=alt.Y("trait:N", sort=names, title=None, axis=alt.Axis(labelLimit=200)),
            color=alt.condition(alt.datum.member, alt.value("#222222"), alt.value("#e0e0e0")),
        )
        .properties(width=alt.Step(40))
    )
    return alt.vconcat(bars + labels, matrix, spacing=4).properties(
        title=f"Combinations of positive traits ({len(classified):,} synthetic patients; {top} most frequent)"
    )


def policy_accrual_table(by_policy: dict[str, pd.DataFrame], design: Design) -> pd.DataFrame:
    """Patients randomised in each trait under each multi-trait policy (long format).

    Parameters
    ----------
    by_policy
        Policy name -> the cohort classified under that policy.
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns ``policy``, ``trait``, ``positive`` and ``randomised in trait``.
    """
    rows = []
    for policy, result in by_policy.items():
        for t in design.traits:
            rows.append(
                {
                    "policy": policy,
                    "trait": t.short_name or t.name,
                    "positive": int((result[f"trait_{t.id}"] == "positive").sum()),
                    "randomised in trait": int((result["assigned_trait"] == t.id).sum()),
                }
            )
    return pd.DataFrame(rows)


def policy_comparison_table(table: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Patients randomised in each trait, one column per multi-trait policy (wide format).

    Parameters
    ----------
    table
        The table of :func:`policy_accrual_table`.
    design
        The loaded design (trait order).

    Returns
    -------
    pandas.DataFrame
        Column Trait, then one column per policy named by its id (``default``, ``sensitivity``:
        the label table names them when the table is shown), in the order of ``table``.
    """
    order = [t.short_name or t.name for t in design.traits]
    policies = list(dict.fromkeys(table["policy"]))
    wide = table.pivot(index="trait", columns="policy", values="randomised in trait")
    wide = wide.reindex(index=order, columns=policies)
    out = pd.DataFrame({LABELS["trait"]: wide.index})
    for policy in policies:
        out[policy] = wide[policy].to_numpy()
    return out


def policy_accrual_chart(table: pd.DataFrame, design: Design) -> alt.Chart:
    """Accrual per trait under each multi-trait policy, grouped bars.

    Parameters
    ----------
    table
        The table of :func:`policy_accrual_table`.
    design
        The loaded design (trait order).

    Returns
    -------
    altair.Chart
        One bar per trait and policy.
    """
    order = [t.short_name or t.name for t in design.traits]
    names = load_labels(design)
    table = table.assign(policy=[str(names(p)) for p in table["policy"]])
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            y=alt.Y("trait:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
            yOffset=alt.YOffset("policy:N"),
            x=alt.X(
                "randomised in trait:Q",
                title="Patients randomised in the trait",
                axis=alt.Axis(tickCount=5, labelOverlap=True),
            ),
            color=alt.Color(
                "policy:N",
                title="Multi-trait policy",
                scale=alt.Scale(range=["#2166ac", "#ef8a62"]),
                legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=320),
            ),
            tooltip=["policy", "trait", "positive", "randomised in trait"],
        )
        .properties(
            width=460, height=alt.Step(14), title="Accrual per trait under each multi-trait policy"
        )
    )
