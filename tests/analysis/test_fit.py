"""Compile-once NUTS fits: no recompilation, ArviZ output, convergence gates, borrowing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import TINY_NUTS

from palette_core.analysis import models as m
from palette_core.analysis.diagnostics import FitResult, az, gate
from palette_core.analysis.fit import Fitter
from palette_core.design import load_design
from palette_core.errors import ConvergenceError, ModelDataError

N_ERAS = 1
PRIORS = m.model_priors(load_design())


def _cells(design, rates: dict[str, float], n: dict[str, int], seed: int) -> pd.DataFrame:
    """Binary counts on the full grid: death probability per arm id (default 0.3)."""
    rng = np.random.default_rng(seed)
    g = m.cell_grid(design, N_ERAS)[["trait", "age_group", "arm", "era"]].copy()
    g["patients"] = [n.get(a, 20) for a in g["arm"]]
    g["events"] = rng.binomial(g["patients"], [rates.get(a, 0.3) for a in g["arm"]])
    return g


@pytest.fixture(scope="module")
def spec(design):
    return m.model_spec(design, "mortality28", N_ERAS)


@pytest.fixture(scope="module")
def fitter(spec):
    return Fitter(spec, **TINY_NUTS)


@pytest.fixture(scope="module")
def first_fit(design, spec, fitter) -> FitResult:
    return fitter.fit(m.model_data(design, _cells(design, {}, {}, 0), spec), PRIORS, seed=1)


def test_second_fit_with_same_shapes_does_not_recompile(design, spec, fitter, first_fit):
    assert fitter.n_traces == 1
    data = m.model_data(design, _cells(design, {"hypo_gcsf": 0.1}, {}, 1), spec)
    second = fitter.fit(data, PRIORS, seed=2)
    assert fitter.n_traces == 1
    assert fitter._one._cache_size() == 1
    a = first_fit.idata.posterior["log_or"].values
    b = second.idata.posterior["log_or"].values
    assert a.shape == b.shape and not np.allclose(a, b)


def test_same_seed_same_draws(design, spec, fitter, first_fit):
    again = fitter.fit(m.model_data(design, _cells(design, {}, {}, 0), spec), PRIORS, seed=1)
    np.testing.assert_array_equal(
        again.idata.posterior["log_or"].values, first_fit.idata.posterior["log_or"].values
    )


def test_inference_data_has_named_dims(spec, first_fit):
    post = first_fit.idata.posterior
    assert post["log_or"].dims == ("chain", "draw", "arm")
    assert list(post["arm"].values) == list(spec.arms)
    assert post["arm_trait"].sel(arm="mals_anakinra").item() == "mals"
    assert post["trait_shift"].dims == ("chain", "draw", "trait")
    assert post.sizes["chain"] == TINY_NUTS["num_chains"]
    assert post.sizes["draw"] == TINY_NUTS["num_samples"]
    assert "diverging" in first_fit.idata.sample_stats


def test_gates_flag_a_too_short_run(first_fit):
    draws = TINY_NUTS["num_chains"] * TINY_NUTS["num_samples"]
    assert draws < 400  # so the ESS gate (400) must fail
    assert not first_fit.gates_passed
    assert any("ESS" in f for f in first_fit.failures)
    with pytest.raises(ConvergenceError) as err:
        first_fit.require_gates()
    assert err.value.failures == first_fit.failures
    tiny = gate(first_fit.idata.isel(draw=slice(0, 3)))
    assert not tiny.gates_passed and "too few" in tiny.failures[-1]


def _synthetic_idata(shift: float = 0.0, diverging: int = 0):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2000, 3))
    x[0] += shift
    div = np.zeros((4, 2000), dtype=bool)
    div[1, :diverging] = True
    return az.from_dict(
        posterior={"log_or": x}, sample_stats={"diverging": div}, dims={"log_or": ["arm"]}
    )


def test_gates_pass_well_mixed_draws_and_fail_each_diagnostic():
    assert gate(_synthetic_idata()).require_gates().gates_passed
    shifted = gate(_synthetic_idata(shift=0.5))
    assert not shifted.gates_passed and any("R-hat" in f for f in shifted.failures)
    div = gate(_synthetic_idata(diverging=2))
    assert div.failures == ("2 divergent transitions (max 0)",)


def test_fitter_rejects_bad_sizes(spec):
    with pytest.raises(ModelDataError, match="num_chains"):
        Fitter(spec, num_chains=0)


def test_borrowing_moves_sparse_trait_towards_the_other_trait(design, spec, fitter):
    """Anakinra works in hyperinflammation (lots of data); MALS has few patients on it."""
    rates = {"hinf_anakinra": 0.12, "mals_anakinra": 0.3}
    n = {"hinf_anakinra": 150, "hinf_usual_care": 150, "mals_anakinra": 6, "mals_usual_care": 6}
    cells = _cells(design, rates, n, 3)
    on = fitter.fit(m.model_data(design, cells, spec), PRIORS, seed=3)
    spec_off = m.model_spec(design, "mortality28", N_ERAS, borrowing="none")
    off = Fitter(spec_off, **TINY_NUTS).fit(m.model_data(design, cells, spec_off), PRIORS, seed=3)

    def mean(fit, arm):
        return float(fit.idata.posterior["log_or"].sel(arm=arm).mean())

    strong = mean(on, "hinf_anakinra")
    assert strong > 0.5  # the large trait shows the benefit
    assert mean(on, "mals_anakinra") > mean(off, "mals_anakinra") + 0.2
    assert abs(mean(on, "mals_anakinra") - strong) < abs(mean(off, "mals_anakinra") - strong)
