"""Tipping-point analysis: the pure pieces, the design file and a small run on the export."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from palette_core.analysis import tipping as tp
from palette_core.analysis.models import category_log_probs
from palette_core.design.loader import load_design
from palette_core.design.tipping import TIPPING_FILE, load_tipping_spec
from palette_core.errors import DesignSchemaError, OutOfRangeError, UnknownReferenceError


# ----------------------------------------------------------------------------- pure pieces
def test_tipping_points_interpolate_the_crossing_on_each_side():
    d = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    p = np.array([0.80, 0.90, 0.97, 0.98, 0.99])  # graduation at 0.95 fires at 0
    lo, hi = tp.tipping_points(d, p, 0.95, below=False)
    # exact: between -1 (0.90) and 0 (0.97) the line crosses 0.95 at -1 + 5/7
    assert lo == pytest.approx(-1.0 + 5.0 / 7.0)
    assert np.isnan(hi)  # never stops firing on the positive side


def test_tipping_points_for_futility_fire_below_the_threshold():
    d = np.array([-1.0, 0.0, 1.0])
    p = np.array([0.05, 0.12, 0.30])  # futility at 0.10 does not fire at 0
    lo, hi = tp.tipping_points(d, p, 0.10, below=True)
    assert lo == pytest.approx(-(0.12 - 0.10) / (0.12 - 0.05))
    assert np.isnan(hi)


def test_tipping_points_are_nan_without_a_flip():
    d = np.linspace(-3, 3, 7)
    lo, hi = tp.tipping_points(d, np.full(7, 0.5), 0.95, below=False)
    assert np.isnan(lo) and np.isnan(hi)


def test_shifts_move_one_side_only():
    exp = np.array([True, False, True])
    assert np.asarray(tp.shifts(1.5, exp, "experimental")).tolist() == [1.5, 0.0, 1.5]
    assert np.asarray(tp.shifts(1.5, exp, "control")).tolist() == [0.0, 1.5, 0.0]


def test_impute_categories_follow_the_model_distribution_and_are_monotone_in_the_shift():
    cut = jnp.array([[-1.0, 0.0, 1.5]])  # four categories
    n = 20000
    u = jax.random.uniform(jax.random.key(0), (n,))
    eta = jnp.full((n,), 0.3)
    cuts = jnp.broadcast_to(cut, (n, 3))
    cat = np.asarray(tp.impute_categories(eta, cuts, jnp.zeros(n), 1, u))
    p = np.exp(np.asarray(category_log_probs(jnp.array(0.3), cut[0])))
    freq = np.bincount(cat, minlength=4) / n
    assert np.abs(freq - p).max() < 4 * np.sqrt(0.25 / n)
    up = np.asarray(tp.impute_categories(eta, cuts, jnp.full(n, 1.0), 1, u))
    down = np.asarray(tp.impute_categories(eta, cuts, jnp.full(n, 1.0), -1, u))
    assert (up >= cat).all() and (down <= cat).all()  # same uniforms: a monotone shift
    assert up.mean() > cat.mean() > down.mean()


def test_add_imputed_adds_one_patient_per_missing_outcome():
    counts = jnp.zeros((3, 2))
    out = np.asarray(tp.add_imputed(counts, jnp.array([0, 2, 2]), jnp.array([1, 0, 0])))
    assert out.tolist() == [[0, 1], [0, 0], [2, 0]]


def test_pooled_is_the_mean_over_imputations_with_its_standard_error():
    p = np.array([[0.1, 0.9], [0.3, 0.9]])
    mean, se = tp.pooled(p)
    assert mean.tolist() == pytest.approx([0.2, 0.9])
    assert se.tolist() == pytest.approx([np.std([0.1, 0.3], ddof=1) / np.sqrt(2), 0.0])


# ----------------------------------------------------------------------------- design file
def test_the_design_file_loads_with_a_grid_through_zero(design):
    spec = load_tipping_spec(design)
    assert 0.0 in spec.deltas and spec.deltas == tuple(sorted(spec.deltas))
    assert set(spec.outcomes) <= {o.id for o in design.outcomes.outcomes}
    assert {s.shifted for s in spec.scenarios} == {"experimental", "control"}


def test_an_unknown_outcome_is_named(design_copy, edit):
    edit(design_copy, TIPPING_FILE, lambda d: d.update(outcomes=["osfd28", "nope"]))
    with pytest.raises(UnknownReferenceError, match="nope"):
        load_tipping_spec(load_design(design_copy))


def test_a_grid_that_misses_zero_is_refused(design_copy, edit):
    edit(design_copy, TIPPING_FILE, lambda d: d["delta"].update({"from": -0.9, "step": 0.5}))
    with pytest.raises(OutOfRangeError, match="step"):
        load_tipping_spec(load_design(design_copy))


def test_a_scenario_of_unknown_side_names_the_file(design_copy, edit):
    edit(design_copy, TIPPING_FILE, lambda d: d["scenarios"][0].update(shifted="both"))
    with pytest.raises(DesignSchemaError, match="tipping_point.yaml"):
        load_tipping_spec(load_design(design_copy))


def test_a_missing_file_is_a_schema_error(design_copy):
    (design_copy / TIPPING_FILE).unlink()
    with pytest.raises(DesignSchemaError, match="tipping_point.yaml"):
        load_tipping_spec(load_design(design_copy))
