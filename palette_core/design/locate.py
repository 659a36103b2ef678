"""Where the design folder is when none is named.

In order: the folder named by the environment variable :data:`DESIGN_ENV`; else, when this
package runs from a source checkout of the project (an editable install, or ``python -m``
from the checkout), the checkout's ``data/design``; else nothing, and
:class:`~palette_core.errors.DesignNotFoundError` says how to name one. An installed package
never guesses a folder of its own: the design is data, passed in.
"""

from __future__ import annotations

import os
from pathlib import Path

from palette_core.errors import DesignNotFoundError

#: The environment variable naming the design folder when none is passed.
DESIGN_ENV = "PALETTE_DESIGN"


def checkout_design_dir() -> Path | None:
    """``data/design`` of the source checkout this package runs from, or None when installed.

    A checkout is recognised by the project file ``pyproject.toml`` beside the package folder
    and a ``data/design/trial.yaml`` there; an installed copy (in ``site-packages``) has neither.
    """
    checkout = Path(__file__).resolve().parents[2]
    design = checkout / "data" / "design"
    if (checkout / "pyproject.toml").is_file() and (design / "trial.yaml").is_file():
        return design
    return None


def default_design_dir() -> Path:
    """The design folder to use when none is named (see the module docstring).

    Raises
    ------
    DesignNotFoundError
        :data:`DESIGN_ENV` is not set and the package does not run from a source checkout.
    """
    named = os.environ.get(DESIGN_ENV, "").strip()
    if named:
        return Path(named)
    checkout = checkout_design_dir()
    if checkout is not None:
        return checkout
    raise DesignNotFoundError(
        f"no design folder given: pass --design PATH (load_design(PATH) in Python) or set "
        f"{DESIGN_ENV}=PATH; this palette_core is not in a source checkout, so it has no "
        "data/design of its own"
    )


def default_data_root() -> Path:
    """The folder of the data beside the default design folder (its parent): ``scenarios/``,
    ``derived/``, ``reference/`` ... of :func:`default_design_dir`."""
    return default_design_dir().parent


def display_path(path: Path) -> str:
    """``path`` relative to the source checkout when it lies inside it (as manifests show
    files), else the path as given."""
    design = checkout_design_dir()
    if design is not None:
        try:
            return Path(path).resolve().relative_to(design.parents[1]).as_posix()
        except ValueError:
            pass
    return str(path)


__all__ = [
    "DESIGN_ENV",
    "checkout_design_dir",
    "default_data_root",
    "default_design_dir",
    "display_path",
]
