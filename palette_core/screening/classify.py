"""Screening end to end: validate, assess eligibility, classify traits, assign the trait.

:func:`classify_patients` is what ``palette classify FILE`` and the book call. It keeps every
input row: a row with an invalid value is reported (``record_status = "invalid"`` with the row's
problems) and is not classified, rather than being dropped or guessed; the output has exactly
as many rows as the input, in the same order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

import numpy as np
import pandas as pd

from palette_core.design.loader import Design
from palette_core.screening.eligibility import assess_eligibility
from palette_core.screening.patients import ROW_ERRORS, ROW_STATUS, PatientValidation
from palette_core.screening.traits import assign_trait, classify_traits

Policy = Literal["default", "sensitivity"]


def classify_patients(
    validation: PatientValidation,
    design: Design,
    seed: int,
    policy: Policy = "default",
    open_traits: Mapping[str, Collection[str]] | None = None,
) -> pd.DataFrame:
    """Eligibility, traits and the assigned trait for every row of a validated table.

    Parameters
    ----------
    validation
        The result of :func:`palette_core.screening.patients.validate_patients` or ``read_patients``.
    design
        The trial design.
    seed
        Seed of the multi-trait draw; the draw for a patient depends only on (seed, patient id).
    policy
        ``"default"`` (random among positive traits) or ``"sensitivity"`` (priority order).
    open_traits
        ``None`` (screening only: every trait counts as open), or per age group the trait ids
        that can randomise a patient of that group now
        (:func:`palette_core.randomisation.randomise.open_traits_now`): the multi-trait
        policy then chooses among the positive traits that are open to the patient.
    """
    frame = validation.frame
    valid = validation.valid.to_numpy()
    out = pd.DataFrame(index=frame.index)
    out["row"] = np.arange(1, len(frame) + 1)
    out["patient_id"] = frame["patient_id"]
    out[ROW_STATUS] = np.where(valid, "valid", "invalid")
    out[ROW_ERRORS] = validation.row_errors()
    ok = frame[valid]
    ids = list(design.trait_ids)
    if len(ok):
        elig = assess_eligibility(ok, design)
        traits = classify_traits(ok, design, elig["age_group"])
        mask = None
        if open_traits is not None:
            groups = elig["age_group"].astype("object").to_numpy()
            mask = np.array(
                [
                    [t in open_traits.get(str(g), ()) if isinstance(g, str) else True for t in ids]
                    for g in groups
                ],
                dtype=bool,
            ).reshape(len(groups), len(ids))
        assigned = assign_trait(
            traits,
            design,
            seed=seed,
            policy=policy,
            patient_ids=ok["patient_id"],
            open_traits=mask,
        )
        # only eligible patients are randomised in a trait; others keep their trait findings
        not_eligible = elig["eligible"] != "eligible"
        assigned.loc[not_eligible, "assigned_trait"] = pd.NA
        assigned.loc[not_eligible, "assignment_rule"] = "not randomised: " + elig.loc[
            not_eligible, "eligible"
        ].astype(str)
        block = pd.concat([elig, traits, assigned], axis=1)
        out = out.join(block)
    return out


def classification_summary(result: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Counts for the CLI and the book: records, eligibility, and positive/assigned per trait."""
    rows = [
        ("records", len(result)),
        ("invalid records", int((result[ROW_STATUS] == "invalid").sum())),
    ]
    if "eligible" in result:
        for status in ("eligible", "ineligible", "indeterminate"):
            rows.append((f"{status}", int((result["eligible"] == status).sum())))
        for t in design.traits:
            col = f"trait_{t.id}"
            rows.append((f"{t.id}: positive", int((result[col] == "positive").sum())))
            rows.append((f"{t.id}: assigned", int((result["assigned_trait"] == t.id).sum())))
    return pd.DataFrame(rows, columns=["count of", "n"])
