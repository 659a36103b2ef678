"""The trial design as data: file schemas, the loader and the cross-file validation.

``load_design()`` reads ``data/design`` once and returns a frozen, validated
:class:`Design`; every later step of the flow trusts it.
"""

from palette_core.design.loader import (
    DEFAULT_DESIGN_DIR,
    REPO_ROOT,
    Design,
    design_hash,
    load_design,
    modified_design,
)

__all__ = [
    "DEFAULT_DESIGN_DIR",
    "REPO_ROOT",
    "Design",
    "design_hash",
    "load_design",
    "modified_design",
]
