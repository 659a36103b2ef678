"""Chapter "Objectives and estimands of the decisions": objectives, one hypothesis per trait and
arm, what each decision leads to, the final analysis, the effect each decision reads and the
children's rule, all generated from ``data/protocol`` and ``data/design``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from palette_core.design.loader import Design
from palette_core.design.protocol import Protocol
from palette_core.errors import RegistryFormatError
from palette_core.registry.record import parse_registry
from palette_core.viz.labels import LABELS, age_label, trait_label

#: how a decision is named in the book's tables
DECISION_LABELS = {
    "graduation": "Graduation (promising)",
    "futility": "Stop for futility",
    "harm": "Stop for harm",
    "cap_reached": "Cap reached, inconclusive",
}
#: how the effect a rule reads is named
EFFECT_LABELS = {
    "adult": "Adults' effect (reference age stratum)",
    "child": "Children's effect (adults' effect plus a shrunken deviation)",
    "age_mix_average": "Average over the trait's age mix",
    "child_no_borrowing": "Children's effect without borrowing from adults",
}


def _outcome_label(design: Design, oid: str) -> str:
    return next(o.label for o in design.outcomes.outcomes if o.id == oid)


def rule_texts(design: Design) -> dict[str, str]:
    """Each decision rule of ``proposed/decisions.yaml`` in words, e.g. ``Pr(OR > 1) > 0.95``."""
    d = design.decisions
    harm_outcomes = " or ".join(_outcome_label(design, o) for o in d.harm.outcomes)
    return {
        "graduation": f"Pr(OR > {d.graduation.or_reference:g}) > {d.graduation.threshold:g} on "
        f"{_outcome_label(design, d.graduation.outcome)}, from {d.graduation.min_complete} "
        "complete outcomes",
        "futility": f"Pr(OR > {d.futility.or_reference:g}) < {d.futility.threshold:g} on "
        f"{_outcome_label(design, d.futility.outcome)}, from {d.futility.min_complete} "
        "complete outcomes",
        "harm": f"Pr(OR < {d.harm.or_reference:g}) > {d.harm.threshold:g} on {harm_outcomes}, "
        f"from {d.harm.min_complete} complete outcomes",
        "cap_reached": f"{d.cap_per_experimental_arm.value} patients allocated",
    }


def hypotheses_table(design: Design, protocol: Protocol) -> pd.DataFrame:
    """One hypothesis per trait and experimental arm, from the objectives' template.

    Parameters
    ----------
    design
        The loaded design (traits, arms, age groups).
    protocol
        The protocol files (``objectives.yaml``).

    Returns
    -------
    pandas.DataFrame
        Columns Trait, Arm, Age groups, Hypothesis.
    """
    rows = []
    for t in design.traits:
        control = next(a for a in design.arms if a.trait == t.id and a.role == "control")
        for a in design.experimental_arms():
            if a.trait != t.id:
                continue
            rows.append(
                {
                    LABELS["trait"]: trait_label(design, t.id),
                    LABELS["arm"]: a.name,
                    LABELS["age_groups"]: age_label(design, design.arm_age_groups(a)),
                    "Hypothesis": protocol.objectives.hypothesis_template.format(
                        trait=t.name, arm=a.name, control=control.name
                    ),
                }
            )
    return pd.DataFrame(rows)


def consequences_table(design: Design, protocol: Protocol) -> pd.DataFrame:
    """Each decision: its rule (from the design) and what follows it (from the protocol)."""
    rules = rule_texts(design)
    return pd.DataFrame(
        [
            {
                "Decision": DECISION_LABELS[c.decision],
                LABELS["rule"]: rules[c.decision],
                "What follows": c.consequence,
            }
            for c in protocol.objectives.consequences
        ]
    )


def decision_estimands_table(design: Design, protocol: Protocol) -> pd.DataFrame:
    """The effect every decision reads, with the population it concerns."""
    est = protocol.decision_estimands
    rules = rule_texts(design)
    rows = [
        {
            "Decision": DECISION_LABELS[k],
            "Effect read": EFFECT_LABELS[est.arm_decisions.effect],
            "Applies to": "The arm, in every age group it admits",
            LABELS["rule"]: rules[k],
        }
        for k in ("graduation", "futility", "harm")
    ]
    cr = est.children_rule
    rows.append(
        {
            "Decision": "Close to children (children's rule)",
            "Effect read": EFFECT_LABELS[cr.effect],
            "Applies to": "The arm's children only; " + ("binding" if cr.binding else "advisory"),
            LABELS["rule"]: rules[cr.rule] + " (counted in children)",
        }
    )
    return pd.DataFrame(rows)


def alternatives_table(protocol: Protocol) -> pd.DataFrame:
    """The estimands considered and not chosen, with the reason."""
    return pd.DataFrame(
        [
            {"Effect": EFFECT_LABELS[a.effect], "Why it is not the rules' estimand": a.why_not}
            for a in protocol.decision_estimands.alternatives
        ]
    )


def age_mix_table(design: Design, cells: pd.DataFrame) -> pd.DataFrame:
    """Complete outcomes per trait and age group in a cell table (the worked interim's).

    Parameters
    ----------
    design
        The loaded design.
    cells
        Cell counts with columns ``trait``, ``age_group``, ``arm`` and ``count``.

    Returns
    -------
    pandas.DataFrame
        Trait, patients per age group, children's share (%), and the number of children in
        the trait's experimental arms.
    """
    groups = [g.id for g in design.strata.age_groups]
    labels = {g.id: g.label for g in design.strata.age_groups}
    control = {a.id for a in design.arms if a.role == "control"}
    rows = []
    for t in design.traits:
        sub = cells[cells["trait"] == t.id]
        n = {g: int(sub.loc[sub["age_group"] == g, "count"].sum()) for g in groups}
        total = sum(n.values())
        child_exp = int(
            sub.loc[(sub["age_group"] == "child") & ~sub["arm"].isin(control), "count"].sum()
        )
        rows.append(
            {
                LABELS["trait"]: trait_label(design, t.id),
                **{labels[g]: n[g] for g in groups},
                "Children (%)": round(100 * n.get("child", 0) / total, 1) if total else None,
                "Children in experimental arms": child_exp,
            }
        )
    return pd.DataFrame(rows)


def registry_quotes(design: Design, quotes: list[str]) -> pd.DataFrame:
    """Quotes of the registry record with the line each starts on (the registry parser's
    :meth:`~palette_core.registry.record.RegistryRecord.find`); a quote not in the record raises
    :class:`~palette_core.errors.RegistryFormatError`."""
    record = parse_registry(design.registry_path)
    rows = []
    for q in quotes:
        lines = record.find(q)
        if not lines:
            raise RegistryFormatError(str(design.registry_path), 0, f"quote not found: {q!r}")
        rows.append({"Registry text": q, "Line": lines[0]})
    return pd.DataFrame(rows)


def objectives_numbers(design: Design, protocol: Protocol, cells: pd.DataFrame) -> dict[str, Any]:
    """Every number the chapter quotes in its prose."""
    mix = age_mix_table(design, cells)
    child_label = next(g.label for g in design.strata.age_groups if g.id == "child")
    top = mix.sort_values("Children (%)", ascending=False).iloc[0]
    total = int(top[[g.label for g in design.strata.age_groups]].sum())
    return {
        "n_hypotheses": len(design.experimental_arms()),
        "n_traits": len(design.traits),
        "enrollment": f"{design.trial.enrollment:,}",
        "completion": design.trial.study_completion.isoformat(),
        "top_child_trait": top[LABELS["trait"]],
        "top_child_n": int(top[child_label]),
        "top_child_total": total,
        "harm_min": design.decisions.harm.min_complete,
    }


__all__ = [
    "DECISION_LABELS",
    "EFFECT_LABELS",
    "age_mix_table",
    "alternatives_table",
    "consequences_table",
    "decision_estimands_table",
    "hypotheses_table",
    "objectives_numbers",
    "registry_quotes",
    "rule_texts",
]
