"""Chapter "Data monitoring committee charter": membership by role, sessions, who sees what, the
sponsor firewall, and what the allocation ratios of response-adaptive allocation reveal."""

from __future__ import annotations

from typing import Any

import altair as alt
import jax.numpy as jnp
import numpy as np
import pandas as pd

from palette_core.design.loader import Design
from palette_core.design.protocol import Protocol
from palette_core.randomisation.allocation import (
    allocation_params,
    allocation_probabilities,
)
from palette_core.randomisation.leakage import implied_pr_best, observer_estimates
from palette_core.viz.labels import LABELS, trait_label

#: Pr(best) among the open experimental arms of the example trait, one row per example
LEAKAGE_EXAMPLES = ((0.25, 0.25, 0.25, 0.25), (0.55, 0.25, 0.15, 0.05), (0.85, 0.1, 0.04, 0.01))
#: patients of the example trait whose allocation an observer counts in one period
OBSERVED_COUNTS = (10, 30, 100, 300)
#: simulated periods per observed count, and the seed
OBSERVER_PERIODS, OBSERVER_SEED = 4000, 20261203


def members_table(protocol: Protocol) -> pd.DataFrame:
    """DMC membership by role (no names: the sponsor appoints the members)."""
    return pd.DataFrame(
        [
            {"Role": m.role, "Voting": "yes" if m.voting else "no", "Why": m.note}
            for m in protocol.dmc.members
        ]
    )


def sessions_table(protocol: Protocol) -> pd.DataFrame:
    """Open and closed sessions: who attends and what they see."""
    return pd.DataFrame(
        [
            {"Session": s.label, "Attendees": s.attendees, "Sees": s.sees}
            for s in protocol.dmc.sessions
        ]
    )


def access_table(protocol: Protocol) -> pd.DataFrame:
    """Who sees comparative results, allocation probabilities and the randomisation secret."""
    yn = {True: "yes", False: "no"}
    return pd.DataFrame(
        [
            {
                "Who": a.who,
                "Comparative results": yn[a.comparative_results],
                "Allocation probabilities": yn[a.allocation_probabilities],
                "Randomisation secret": yn[a.randomisation_secret],
            }
            for a in protocol.dmc.access
        ]
    )


def example_trait(design: Design) -> str:
    """The trait with the most experimental arms (the example of the leakage analysis)."""
    return max(design.traits, key=lambda t: len(design.experimental_arms(t.id))).id


def inversion_table(design: Design) -> pd.DataFrame:
    """For each example Pr(best), the allocation the rule gives and the Pr(best) implied back.

    The example trait's experimental arms are all open, past burn-in (adaptive phase); the
    allocation is the trial's own :func:`allocation_probabilities`, the inversion
    :func:`~palette_core.randomisation.leakage.implied_pr_best`.
    """
    trait = example_trait(design)
    arms = design.experimental_arms(trait)
    params = allocation_params(design)
    mask = jnp.ones(len(arms), dtype=bool)
    rows = []
    for k, pr in enumerate(LEAKAGE_EXAMPLES, start=1):
        pr_a = jnp.asarray(pr[: len(arms)], dtype=jnp.float32)
        probs = allocation_probabilities(pr_a, mask, jnp.full(len(arms) + 1, 10**6), params)
        implied, at_floor = implied_pr_best(probs, mask, params)
        for i, a in enumerate(arms):
            rows.append(
                {
                    "Example": k,
                    LABELS["arm"]: a.name,
                    "Pr(best)": round(float(pr_a[i]), 3),
                    "Allocation probability": round(float(probs[1 + i]), 3),
                    "Pr(best) implied by the allocation": round(float(implied[i]), 3),
                    "At the floor": "yes" if bool(at_floor[i]) else "no",
                }
            )
    return pd.DataFrame(rows)


def observer_table(design: Design) -> pd.DataFrame:
    """An observer who counts allocations in one period: its estimate of Pr(best), the leader.

    For the second example of :data:`LEAKAGE_EXAMPLES` and each count of
    :data:`OBSERVED_COUNTS`: the median and 90 % range of the estimate of each arm's Pr(best),
    and how often the observer names the leading arm correctly.
    """
    trait = example_trait(design)
    arms = design.experimental_arms(trait)
    params = allocation_params(design)
    pr = jnp.asarray(LEAKAGE_EXAMPLES[1][: len(arms)], dtype=jnp.float32)
    mask = jnp.ones(len(arms), dtype=bool)
    parts = []
    for n in OBSERVED_COUNTS:
        est = observer_estimates(pr, mask, params, n, OBSERVER_PERIODS, OBSERVER_SEED)
        parts.append(est.assign(n_seen=n, arm=[arms[i].name for i in est["arm_index"]]))
    return pd.concat(parts, ignore_index=True)


def observer_chart(table: pd.DataFrame) -> alt.Chart:
    """The observer's estimate (median, 90 % range) of each arm's Pr(best) by count observed."""
    base = alt.Chart(table).encode(
        x=alt.X("n_seen:O", title="Allocations observed in one period"),
        color=alt.Color("arm:N", title=LABELS["arm"], legend=alt.Legend(orient="bottom")),
        xOffset="arm:N",
    )
    bars = base.mark_rule(strokeWidth=3).encode(
        y=alt.Y("estimate_q05:Q", title="Estimated Pr(best)", scale=alt.Scale(domain=[0, 1])),
        y2="estimate_q95:Q",
    )
    points = base.mark_point(filled=True, size=40).encode(
        y="estimate_median:Q", tooltip=["arm", "n_seen", "pr_best", "estimate_median"]
    )
    truth = base.mark_tick(color="black", thickness=1, size=14).encode(y="pr_best:Q")
    return (bars + points + truth).properties(width=380, height=220)


def dmc_numbers(design: Design, protocol: Protocol, observer: pd.DataFrame) -> dict[str, Any]:
    """Every number the chapter quotes in its prose."""
    params = allocation_params(design)
    lead = observer.groupby("n_seen")["pr_identifies_leader"].first()
    return {
        "n_members": len(protocol.dmc.members),
        "n_voting": sum(m.voting for m in protocol.dmc.members),
        "example_trait": trait_label(design, example_trait(design)),
        "damping": f"{params.damping_power:g}",
        "inverse_power": f"{1 / params.damping_power:g}",
        "floor": f"{params.floor_per_open_arm:g}",
        "lead_small": f"{100 * lead.iloc[0]:.0f}",
        "lead_small_n": int(lead.index[0]),
        "lead_large": f"{100 * lead.iloc[-1]:.0f}",
        "lead_large_n": int(lead.index[-1]),
        "observer_periods": f"{OBSERVER_PERIODS:,}",
    }


def max_inversion_error(table: pd.DataFrame) -> float:
    """Largest |implied - true| Pr(best) in the examples where no arm is at the floor (there the
    inversion is exact; the hidden check of the chapter)."""
    free = table.groupby("Example")["At the floor"].transform(lambda x: (x == "no").all())
    t = table[free]
    return float(np.max(np.abs(t["Pr(best)"] - t["Pr(best) implied by the allocation"])))


__all__ = [
    "LEAKAGE_EXAMPLES",
    "OBSERVED_COUNTS",
    "access_table",
    "dmc_numbers",
    "example_trait",
    "inversion_table",
    "max_inversion_error",
    "members_table",
    "observer_chart",
    "observer_table",
    "sessions_table",
]
