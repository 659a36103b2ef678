"""Adult sepsis subphenotypes of Seymour et al. (JAMA 2019): alpha, beta, gamma, delta.

A patient is assigned to the nearest of four centroids, found in the SENECA derivation cohort,
in a space of 29 standardised variables: each variable is transformed (natural log for the
skewed ones, ``log(101 - SaO2)`` for oxygen saturation), standardised with the derivation mean
and SD, and the class with the smallest squared Euclidean distance wins. The constants are data
(``data/reference/seymour2019.yaml``, with their citation); this module is our implementation.

Two deliberate differences from the authors' R script (pitt-healthsciences/SENECA):

* **No imputation.** The script fills missing values with missRanger before assigning. Here a
  patient with any variable missing has no computed class: the result is ``<NA>`` and the
  reason names the missing fields, so that the caller can fall back to a site-recorded class or
  report "indeterminate".
* **All 29 variables enter the distance**, as in the paper. The script sums the columns
  ``2:n.features+1`` of its distance tables, which R reads as ``(2:29) + 1 = 3:30`` and so
  leaves out the first variable, age. ``exclude=reference.script_omits`` reproduces the script
  (that is how the mock-data agreement test matches its distances to 1e-13).

A value for which the transform is undefined (``log(0)``: bands, bilirubin, creatinine, lactate
or platelets of 0 are within the record's ranges) gives no computed class either, with the
reason; nothing is floored or guessed.

Examples
--------
>>> from palette_core import load_design
>>> ref = load_seymour_reference(load_design())
>>> ref.classes
('alpha', 'beta', 'gamma', 'delta')
>>> len(ref.variables)
29
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from palette_core.design.loader import Design, data_file
from palette_core.errors import DesignSchemaError
from palette_core.yamlio import read_yaml

#: The Seymour 2019 constants, relative to the data root (:attr:`Design.data_root`).
REFERENCE_FILE = "reference/seymour2019.yaml"
TRANSFORMS = ("none", "log", "log_101_minus")

#: Output columns of :func:`assign_seymour` besides the distances.
CLASS_COLUMN = "seymour_computed"
REASON_COLUMN = "seymour_reason"
UNUSABLE_COLUMN = "seymour_unusable"


@dataclass(frozen=True)
class SeymourVariable:
    """One of the 29 variables: where it comes from in the record and how it is standardised."""

    seneca: str
    field: str
    unit: str
    transform: str
    mean: float
    sd: float
    codes: Mapping[str, float] | None = None


@dataclass(frozen=True)
class SeymourReference:
    """The constants of the assignment, read from ``data/reference/seymour2019.yaml``."""

    path: Path
    citation: str
    doi: str
    numbers_from: str
    classes: tuple[str, ...]
    variables: tuple[SeymourVariable, ...]
    centroids: np.ndarray = field(repr=False)  # classes x variables, z units, read-only
    script_omits: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The patient-record fields the assignment needs, in the reference's order."""
        return tuple(v.field for v in self.variables)

    def field_of(self, name: str) -> str:
        """Our record field for a variable given by its SENECA name or its field name."""
        for v in self.variables:
            if name in (v.seneca, v.field):
                return v.field
        raise KeyError(f"{name!r} is not a Seymour 2019 variable")


def load_seymour_reference(source: Design | str | Path) -> SeymourReference:
    """Read and check the Seymour 2019 constants (cached per path).

    Parameters
    ----------
    source
        The design (the file is :data:`REFERENCE_FILE` under its data root) or the file's path.

    Raises
    ------
    DesignSchemaError
        The file is malformed: a missing key, an unknown transform, an SD that is not positive,
        or a centroid that does not list every class.
    """
    return _load(data_file(source, REFERENCE_FILE))


@lru_cache(maxsize=8)
def _load(path: Path) -> SeymourReference:
    label = path.name
    raw = read_yaml(path, label)

    def need(mapping: Any, key: str, entry: str | None, where: str | None = None) -> Any:
        if not isinstance(mapping, dict) or key not in mapping:
            raise DesignSchemaError(label, entry, where or key, f"required key {key!r} missing")
        return mapping[key]

    source = need(raw, "source", None)
    classes = tuple(str(c) for c in need(raw, "classes", None))
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DesignSchemaError(label, None, "classes", "need at least two distinct classes")
    variables: list[SeymourVariable] = []
    centroids: list[list[float]] = []
    for i, v in enumerate(need(raw, "variables", None)):
        entry = str(v.get("seneca", f"[{i}]")) if isinstance(v, dict) else f"[{i}]"
        transform = need(v, "transform", entry)
        if transform not in TRANSFORMS:
            raise DesignSchemaError(
                label, entry, "transform", f"{transform!r} is not one of {TRANSFORMS}"
            )
        sd = float(need(v, "sd", entry))
        if not sd > 0:
            raise DesignSchemaError(label, entry, "sd", f"must be > 0, got {sd}")
        centroid = need(v, "centroid", entry)
        if not isinstance(centroid, dict) or set(centroid) != set(classes):
            raise DesignSchemaError(
                label, entry, "centroid", f"must give exactly the classes {list(classes)}"
            )
        codes = v.get("codes")
        variables.append(
            SeymourVariable(
                seneca=str(need(v, "seneca", entry)),
                field=str(need(v, "field", entry)),
                unit=str(need(v, "unit", entry)),
                transform=transform,
                mean=float(need(v, "mean", entry)),
                sd=sd,
                codes=MappingProxyType({str(k): float(c) for k, c in codes.items()})
                if codes
                else None,
            )
        )
        centroids.append([float(centroid[c]) for c in classes])
    fields = [v.field for v in variables]
    if len(set(fields)) != len(fields):
        raise DesignSchemaError(label, None, "variables", "a record field is used twice")
    matrix = np.array(centroids, dtype=float).T.copy()
    matrix.setflags(write=False)
    omits = tuple(str(x) for x in raw.get("script_distance_omits", ()))
    known = {v.seneca for v in variables}
    for name in omits:
        if name not in known:
            raise DesignSchemaError(
                label, None, "script_distance_omits", f"{name!r} is not a variable"
            )
    return SeymourReference(
        path=path,
        citation=" ".join(str(need(source, "citation", "source")).split()),
        doi=str(need(source, "doi", "source")),
        numbers_from=" ".join(str(need(source, "numbers_from", "source")).split()),
        classes=classes,
        variables=tuple(variables),
        centroids=matrix,
        script_omits=omits,
    )


# ----------------------------------------------------------------------------- computation
def _numeric(patients: pd.DataFrame, var: SeymourVariable) -> np.ndarray:
    """The variable as float64 with NaN for missing (an absent column is all missing)."""
    n = len(patients)
    if var.field not in patients.columns:
        return np.full(n, np.nan)
    col = patients[var.field]
    if var.codes is not None and not pd.api.types.is_numeric_dtype(col):
        # a category (e.g. sex: male/female) becomes its code; an unknown label is missing
        return col.astype("object").map(dict(var.codes)).to_numpy(dtype=float)
    numbers = pd.to_numeric(col, errors="coerce").astype("Float64")
    return numbers.to_numpy(dtype=float, na_value=np.nan)


def _transform(x: np.ndarray, transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Transformed values and the mask of values where the transform is undefined."""
    if transform == "none":
        return x, np.zeros(x.shape, dtype=bool)
    arg = x if transform == "log" else 101.0 - x
    undefined = arg <= 0  # NaN compares False: missing stays missing, not undefined
    out = np.full(x.shape, np.nan)
    ok = arg > 0
    out[ok] = np.log(arg[ok])
    return out, undefined


def standardise(
    patients: pd.DataFrame, ref: SeymourReference
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z-scores of the 29 variables (rows x variables), with masks of missing and undefined values.

    A missing value and a value whose transform is undefined both give NaN in ``z``.
    """
    n, p = len(patients), len(ref.variables)
    z = np.empty((n, p))
    missing = np.empty((n, p), dtype=bool)
    undefined = np.empty((n, p), dtype=bool)
    for j, var in enumerate(ref.variables):
        x = _numeric(patients, var)
        t, undefined[:, j] = _transform(x, var.transform)
        missing[:, j] = np.isnan(x)
        z[:, j] = (t - var.mean) / var.sd
    return z, missing, undefined


def _weights(ref: SeymourReference, exclude: Iterable[str]) -> np.ndarray:
    drop = {ref.field_of(name) for name in exclude}
    return np.array([v.field not in drop for v in ref.variables], dtype=bool)


def seymour_distances(
    patients: pd.DataFrame,
    ref: SeymourReference,
    *,
    exclude: Iterable[str] = (),
) -> pd.DataFrame:
    """Euclidean distance of each patient to each centroid (``dist_alpha`` ...), in z units.

    NaN where a variable that enters the distance is missing or its transform is undefined.
    ``exclude`` names variables (SENECA name or record field) left out of the distance;
    ``exclude=ref.script_omits`` reproduces the authors' script.
    """
    z, _, _ = standardise(patients, ref)
    return _distance_frame(z, ref, _weights(ref, exclude), patients.index)


def _distance_frame(
    z: np.ndarray, ref: SeymourReference, use: np.ndarray, index: pd.Index
) -> pd.DataFrame:
    zu, cu = z[:, use], ref.centroids[:, use]
    d2 = ((zu[:, None, :] - cu[None, :, :]) ** 2).sum(axis=2)  # NaN propagates
    return pd.DataFrame(np.sqrt(d2), index=index, columns=[f"dist_{c}" for c in ref.classes])


def assign_seymour(
    patients: pd.DataFrame,
    ref: SeymourReference,
    *,
    exclude: Iterable[str] = (),
) -> pd.DataFrame:
    """The nearest-centroid subphenotype of each patient, or ``<NA>`` with the reason.

    Returns
    -------
    DataFrame
        Same index as ``patients``: ``seymour_computed`` (a class or ``<NA>``),
        ``seymour_reason`` (text), ``seymour_unusable`` (the fields missing or with an undefined
        transform, comma-separated, "" when none) and the distances ``dist_<class>``.

    Examples
    --------
    >>> import pandas as pd
    >>> from palette_core import load_design
    >>> ref = load_seymour_reference(load_design())
    >>> out = assign_seymour(pd.DataFrame({"age_years": [70.0]}), ref)
    >>> out["seymour_computed"].isna().item()
    True
    >>> out["seymour_reason"].item()[:44]
    'not computable: 28 of 29 variables missing ('
    """
    use = _weights(ref, exclude)
    z, missing, undefined = standardise(patients, ref)
    dist = _distance_frame(z, ref, use, patients.index)
    d = dist.to_numpy()
    n = len(patients)
    complete = ~np.isnan(d).any(axis=1)
    classes = np.asarray(ref.classes, dtype=object)
    nearest = np.where(complete, np.argmin(np.where(complete[:, None], d, 0.0), axis=1), 0)
    dmin = d[np.arange(n), nearest] if n else np.empty(0)
    tie = complete & ((d == dmin[:, None]).sum(axis=1) > 1)
    assigned = complete & ~tie

    cls = pd.Series(pd.NA, index=patients.index, dtype="string")
    cls[assigned] = classes[nearest[assigned]]
    reason = np.full(n, "", dtype=object)
    fields = np.asarray(ref.fields, dtype=object)
    n_used = int(use.sum())
    # reasons, built column by column (a loop over variables, never over patients)
    miss_txt = np.full(n, "", dtype=object)
    undef_txt = np.full(n, "", dtype=object)
    unusable = np.full(n, "", dtype=object)
    for j in np.nonzero(use)[0]:
        for mask, txt, label in (
            (missing[:, j], miss_txt, str(fields[j])),
            (undefined[:, j], undef_txt, f"{fields[j]} (log undefined at this value)"),
            (missing[:, j] | undefined[:, j], unusable, str(fields[j])),
        ):
            txt[mask & (txt != "")] += ", "
            txt[mask] += label
    n_missing = (missing & use).sum(axis=1)
    has_missing = n_missing > 0
    has_undef = (undefined & use).sum(axis=1) > 0
    if has_missing.any():
        reason[has_missing] = (
            "not computable: "
            + n_missing[has_missing].astype(str).astype(object)
            + f" of {n_used} variables missing ("
            + miss_txt[has_missing]
            + ")"
        )
    only_undef = has_undef & ~has_missing
    reason[only_undef] = "not computable: " + undef_txt[only_undef]
    both = has_undef & has_missing
    reason[both] = reason[both] + "; " + undef_txt[both]
    if assigned.any() or tie.any():
        shown = np.round(d, 2).astype(str).astype(object)  # "nan" where not computable
        listing = np.full(n, "", dtype=object)
        for k, c in enumerate(ref.classes):
            listing = listing + ("" if k == 0 else ", ") + f"{c} " + shown[:, k]
        scope = f"{n_used} variables" + (
            f", without {', '.join(fields[~use])}" if (~use).any() else ""
        )
        reason[assigned] = (
            "nearest centroid "
            + classes[nearest[assigned]]
            + f" ({scope}; distances "
            + listing[assigned]
            + ")"
        )
        reason[tie] = "not computable: equidistant from two centroids (" + listing[tie] + ")"
    out = pd.DataFrame({CLASS_COLUMN: cls}, index=patients.index)
    out[REASON_COLUMN] = pd.array(reason, dtype="string")
    out[UNUSABLE_COLUMN] = pd.array(unusable, dtype="string")
    return pd.concat([out, dist], axis=1)


__all__ = [
    "CLASS_COLUMN",
    "REASON_COLUMN",
    "UNUSABLE_COLUMN",
    "REFERENCE_FILE",
    "SeymourReference",
    "SeymourVariable",
    "assign_seymour",
    "load_seymour_reference",
    "seymour_distances",
    "standardise",
]
