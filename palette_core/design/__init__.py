"""The trial design as data: one module per domain (schema and cross-file checks), the loader.

``load_design(PATH)`` reads a design folder once and returns a frozen, validated
:class:`Design`; every later step of the flow trusts it. The domains, in the order the loader
checks them: :mod:`~palette_core.design.common` (schema base, units, references),
:mod:`~palette_core.design.trial` (registry facts and findings),
:mod:`~palette_core.design.traits`, :mod:`~palette_core.design.arms` (with substances and
shared-effect groups), :mod:`~palette_core.design.dosing_weight`,
:mod:`~palette_core.design.eligibility`,
:mod:`~palette_core.design.records` (patient record and export contract),
:mod:`~palette_core.design.strata`, :mod:`~palette_core.design.outcomes` (with estimands),
:mod:`~palette_core.design.analysis` (priors, decisions, looks, interim analysis),
:mod:`~palette_core.design.allocation` (with the multi-trait policy) and
:mod:`~palette_core.design.lifecycle`. :mod:`~palette_core.design.locate` finds the design
folder when none is named.
"""

from palette_core.design.loader import (
    DESIGN_FILES,
    Design,
    data_file,
    design_hash,
    load_design,
    modified_design,
)
from palette_core.design.locate import DESIGN_ENV, default_design_dir

__all__ = [
    "DESIGN_ENV",
    "DESIGN_FILES",
    "Design",
    "data_file",
    "default_design_dir",
    "design_hash",
    "load_design",
    "modified_design",
]
