"""palette_core: the design of PALETTE and everything computed from it, step by step.

PALETTE (NCT06381661) is a perpetual, Bayesian, adaptive basket platform trial in sepsis for
children and adults. The trial design lives in ``data/design`` and is read, once, by
:func:`load_design`; the sub-packages follow the flow from there: ``registry`` (the
cross-check against the registry record), ``screening``, ``randomisation``, ``analysis``,
``exports``, ``viz``, ``interim``, ``results`` and, for the book only, ``chapters``.
"""

from palette_core.design import Design, load_design
from palette_core.errors import DesignError, PaletteError

__version__ = "0.1.0"

__all__ = ["Design", "DesignError", "PaletteError", "load_design", "__version__"]
