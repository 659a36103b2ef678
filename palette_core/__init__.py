"""palette_core: the trial design, registry fidelity, doses and book reports of PALETTE.

PALETTE (NCT06381661) is a perpetual, Bayesian, adaptive basket platform trial in sepsis for
children and adults. The trial design lives in ``data/design`` and is read, once, by
:func:`load_design`.
"""

from palette_core.design import Design, load_design
from palette_core.errors import DesignError, PaletteError

__version__ = "0.1.0"

__all__ = ["Design", "DesignError", "PaletteError", "load_design", "__version__"]
