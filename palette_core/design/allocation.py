"""Who goes where: ``proposed/allocation.yaml`` and ``proposed/multi_trait_policy.yaml``.

The multi-trait policy picks the one trait a patient positive for several is randomised in
(default: at random with fixed weights; sensitivity: a priority order) and lists incompatible
trait pairs. The allocation rule then draws the arm within that trait: equal allocation during
burn-in, response-adaptive (Pr(best), damped, with a floor) once enough experimental arms are
open. All *proposed*.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from palette_core.design.common import Frozen, Proposed
from palette_core.design.trial import ArmsPerTrait
from palette_core.errors import ConflictingArgumentsError, OutOfRangeError, UnknownReferenceError


# ----------------------------------------------------------------------------- allocation
class AllocationFile(Frozen):
    status: Proposed
    burn_in_min_complete_per_arm: int
    rar_min_open_experimental: int
    rar_quantity: Literal["pr_best"]
    damping_power: float
    floor_per_open_arm: float
    control_share: Literal["max_equal_or_largest"]
    rationale: str


def check_allocation(al: AllocationFile, bounds: ArmsPerTrait) -> None:
    """proposed/allocation.yaml: a usable burn-in, damping and a floor that the arms can share."""
    f = "proposed/allocation.yaml"
    if al.burn_in_min_complete_per_arm < 0:
        raise OutOfRangeError(f, None, "burn_in_min_complete_per_arm", "must be >= 0")
    if al.rar_min_open_experimental < 2:
        raise OutOfRangeError(
            f, None, "rar_min_open_experimental", "Pr(best) needs at least 2 experimental arms"
        )
    if not 0 < al.damping_power <= 1:
        raise OutOfRangeError(
            f, None, "damping_power", f"must be in (0, 1], got {al.damping_power}"
        )
    max_arms = bounds.experimental_max + 1
    if not 0 <= al.floor_per_open_arm < 1 or al.floor_per_open_arm * max_arms > 1:
        raise OutOfRangeError(
            f,
            None,
            "floor_per_open_arm",
            f"floor {al.floor_per_open_arm} x {max_arms} arms must not exceed 1",
        )


# ----------------------------------------------------------------------------- multi-trait policy
class RandomPolicy(Frozen):
    kind: Literal["random_weighted"]
    weights: dict[str, float]
    rationale: str


class PriorityPolicy(Frozen):
    kind: Literal["priority"]
    order: tuple[str, ...]
    rationale: str


class IncompatiblePair(Frozen):
    traits: tuple[str, str]
    rationale: str


class MultiTraitFile(Frozen):
    status: Proposed
    default: RandomPolicy
    sensitivity: PriorityPolicy
    incompatible_pairs: tuple[IncompatiblePair, ...] = ()


def check_multi_trait_policy(mt: MultiTraitFile, trait_ids: Collection[str]) -> None:
    """proposed/multi_trait_policy.yaml: a positive weight and one priority rank per trait;
    incompatible pairs of two different known traits."""
    f = "proposed/multi_trait_policy.yaml"
    ids = set(trait_ids)
    for tid, w in mt.default.weights.items():
        if tid not in ids:
            raise UnknownReferenceError(
                f, "default", f"weights.{tid}", f"trait {tid!r} is not in traits.yaml"
            )
        if not w > 0:
            raise OutOfRangeError(f, "default", f"weights.{tid}", f"weights must be > 0, got {w}")
    missing = ids - set(mt.default.weights)
    if missing:
        raise ConflictingArgumentsError(
            f, "default", "weights", f"no weight for trait(s) {sorted(missing)}"
        )
    if sorted(mt.sensitivity.order) != sorted(ids):
        raise ConflictingArgumentsError(
            f, "sensitivity", "order", "the priority order must list every trait exactly once"
        )
    for i, pair in enumerate(mt.incompatible_pairs):
        for tid in pair.traits:
            if tid not in ids:
                raise UnknownReferenceError(
                    f, f"[{i}]", "traits", f"trait {tid!r} is not in traits.yaml"
                )
        if pair.traits[0] == pair.traits[1]:
            raise ConflictingArgumentsError(
                f, f"[{i}]", "traits", "a trait cannot be incompatible with itself"
            )


__all__ = [
    "AllocationFile",
    "IncompatiblePair",
    "MultiTraitFile",
    "PriorityPolicy",
    "RandomPolicy",
    "check_allocation",
    "check_multi_trait_policy",
]
