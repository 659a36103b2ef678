"""adaptr's binomial trial on the engine: its rules on hand-made cases, its posterior arithmetic,
agreement with a NumPy transcription of adaptr, and a small run of the published cross-check."""

from __future__ import annotations

import json
from pathlib import Path

import adaptr_reference as ref
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from palette_core.simulate import adaptr, engine

#: the settings of test_engine.py's tiny file, so that both modules share one compilation
SETTINGS = """\
design: adaptr_binomial
settings:
  arms: [A, B, C]
  n_looks: 4
  max_n: 200
  max_batch: 60
  grid_points: 65
scenarios:
"""
CHUNK = 8


def _scenarios(tmp_path: Path, body: str) -> engine.ScenarioSet:
    path = tmp_path / "rules.yaml"
    path.write_text(SETTINGS + body)
    return engine.load_scenarios(path)


def _run(scenarios: engine.ScenarioSet, n: int = 8, seed: int = 3) -> engine.SimulationResult:
    return engine.run_scenarios(
        scenarios,
        n,
        seed,
        chunk_size=CHUNK,
        scheduler=engine.IN_PROCESS,
        keep_looks=True,
        progress=False,
    )


# ----------------------------------------------------------------------------- allocation
_reallocate = jax.jit(adaptr.reallocate)


def test_allocation_with_minimum_and_softening_sums_to_one_and_matches_adaptr():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = 3
        active = rng.random(k) < 0.8
        if active.sum() < 2:
            active[:2] = True
        pb = np.where(active, rng.dirichlet(np.full(k, 0.3)), 0.0)
        pb = np.where(active, pb / pb[active].sum(), 0.0)
        mins = np.where(rng.random(k) < 0.7, rng.uniform(0.0, 0.3, k), np.nan)
        soften = float(rng.choice([0.5, 0.7, 1.0]))
        got = np.asarray(
            _reallocate(
                jnp.asarray(pb, jnp.float32),
                jnp.asarray(active),
                jnp.asarray(np.nan_to_num(mins), jnp.float32),
                jnp.float32(soften),
            )
        )
        want = ref.reallocate_probs(pb[active], mins[active], soften)
        np.testing.assert_allclose(got[active], want, atol=2e-6)
        assert abs(got.sum() - 1.0) < 2e-6
        assert (got[~active] == 0).all()
        floor = np.nan_to_num(mins)[active]
        assert (got[active] >= floor - 2e-6).all()


def test_allocation_hand_cases():
    def alloc(pb, active, mins, soften):
        return np.asarray(
            _reallocate(
                jnp.asarray(pb, jnp.float32),
                jnp.asarray(active),
                jnp.asarray(mins, jnp.float32),
                jnp.float32(soften),
            )
        )

    # one arm best for sure: the others get their minimum, the best arm the rest
    np.testing.assert_allclose(
        alloc([1, 0, 0], [1, 1, 1], [0.15] * 3, 0.5), [0.7, 0.15, 0.15], atol=1e-6
    )
    # softening without minimum: square roots, rescaled (0.8 : 0.6)
    np.testing.assert_allclose(
        alloc([0.64, 0.36, 0], [1, 1, 0], [0] * 3, 0.5), [0.8 / 1.4, 0.6 / 1.4, 0], atol=1e-6
    )
    # a clamped arm's minimum is taken first, the others share the rest by softened Pr(best)
    got = alloc([0.81, 0.18, 0.01], [1, 1, 1], [0.15] * 3, 0.5)
    rest = np.sqrt([0.81, 0.18])
    np.testing.assert_allclose(got, [*(0.85 * rest / rest.sum()), 0.15], atol=1e-6)


# ----------------------------------------------------------------------------- posterior
CASES = [
    ([26, 21, 31], [76, 81, 71], [1, 1, 1]),
    ([301, 201, 121], [901, 801, 301], [1, 1, 1]),
    ([1, 3, 40], [10, 12, 90], [1, 1, 1]),
    ([251, 351, 81], [1001, 1051, 221], [1, 0, 1]),
]


def _reference(a, b, active, d):
    idx = [i for i in range(len(a)) if active[i]]
    best, equiv = [], 0.0
    for i in idx:
        others = [j for j in idx if j != i]
        mode = a[i] / (a[i] + b[i])

        def f_best(x, i=i, others=others):
            return stats.beta.pdf(x, a[i], b[i]) * np.prod(
                [stats.beta.sf(x, a[j], b[j]) for j in others]
            )

        def f_equiv(x, i=i, others=others):
            inside = [
                stats.beta.cdf(min(x + d, 1.0), a[j], b[j]) - stats.beta.cdf(x, a[j], b[j])
                for j in others
            ]
            return stats.beta.pdf(x, a[i], b[i]) * np.prod(inside)

        best.append(integrate.quad(f_best, 0, 1, points=[mode], limit=500, epsabs=1e-12)[0])
        equiv += integrate.quad(f_equiv, 0, 1, points=[mode], limit=500, epsabs=1e-12)[0]
    return np.array(best), equiv


@pytest.mark.parametrize(("a", "b", "active"), CASES)
def test_grid_probabilities_match_adaptive_quadrature(a, b, active):
    a, b, act = np.array(a, float), np.array(b, float), np.array(active, bool)
    g = adaptr.beta_grid(
        jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), jnp.asarray(act), 257, 10.0
    )
    best = np.asarray(adaptr.grid_prob_best(g, jnp.asarray(act)))
    equiv = float(adaptr.grid_prob_all_equivalent(g, jnp.asarray(act), jnp.float32(0.05)))
    want_best, want_equiv = _reference(a, b, act, 0.05)
    np.testing.assert_allclose(best[act], want_best, atol=1e-5)
    assert (best[~act] == 0).all()
    assert abs(equiv - want_equiv) < 1e-5
    median = np.asarray(
        adaptr.grid_median(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 257, 10.0)
    )
    np.testing.assert_allclose(median, stats.beta.median(a, b), atol=2e-5)


def test_grid_draws_are_beta_draws_and_agree_with_the_integrals():
    a = jnp.asarray([26.0, 21.0, 31.0])
    b = jnp.asarray([76.0, 81.0, 71.0])
    draws = np.asarray(adaptr.grid_draws(jax.random.key(1), a, b, 200_000, 257, 10.0))
    for j in range(3):
        ks = stats.kstest(draws[:, j], stats.beta(float(a[j]), float(b[j])).cdf)
        assert ks.statistic < 0.006  # the 1% critical value for 200,000 draws is 0.0036
    active = jnp.ones(3, bool)
    g = adaptr.beta_grid(a, b, active, 257, 10.0)
    exact = np.asarray(adaptr.grid_prob_best(g, active))
    drawn = np.asarray(adaptr.draws_prob_best(jnp.asarray(draws), active))
    se = np.sqrt(exact * (1 - exact) / len(draws))
    assert (np.abs(drawn - exact) < 4 * se).all()
    p_eq = float(adaptr.grid_prob_all_equivalent(g, active, jnp.float32(0.05)))
    d_eq = float(adaptr.draws_prob_all_equivalent(jnp.asarray(draws), active, jnp.float32(0.05)))
    assert abs(d_eq - p_eq) < 4 * np.sqrt(p_eq * (1 - p_eq) / len(draws))


# ----------------------------------------------------------------------------- rules, trial by trial
def test_a_superior_arm_stops_the_trial(tmp_path):
    s = _scenarios(
        tmp_path,
        """\
  - name: one_better
    true_ys: [0.02, 0.7, 0.7]
    data_looks: [50, 100, 150, 200]
""",
    )
    r = _run(s)
    t = r.trials
    assert (t["final_status"] == "superiority").all()
    assert (t["status[A]"] == "superior").all()
    assert (t["looks"] == 1).all() and (t["final_n"] == 50).all()
    assert (t["status[B]"] == "inferior").all() and (t["status[C]"] == "inferior").all()
    assert (t["status_look[A]"] == 50).all() and (t["status_prob[A]"] > 0.99).all()
    assert len(r.looks) == len(t)  # later looks were masked, not conducted


def test_equivalence_stops_the_trial_with_every_active_arm(tmp_path):
    s = _scenarios(
        tmp_path,
        """\
  - name: alike
    true_ys: [0.3, 0.3, 0.3]
    data_looks: [50, 100, 150, 200]
    inferiority: 0.0001
    superiority: 0.9999
    equivalence_prob: 0.5
    equivalence_diff: 0.6
""",
    )
    t = _run(s).trials
    assert (t["final_status"] == "equivalence").all()
    assert (t["looks"] == 1).all()
    for arm in "ABC":
        assert (t[f"status[{arm}]"] == "equivalence").all()
        assert (t[f"status_look[{arm}]"] == 50).all()


def test_an_inferior_arm_is_dropped_and_gets_no_more_patients(tmp_path):
    s = _scenarios(
        tmp_path,
        """\
  - name: one_worse
    true_ys: [0.3, 0.3, 0.95]
    min_probs: [0.2, 0.2, 0.2]
    data_looks: [50, 100, 150, 200]
    inferiority: 0.05
    superiority: 0.9999
    soften_power: 0.5
""",
    )
    r = _run(s)
    t, looks = r.trials, r.looks
    assert (t["status[C]"] == "inferior").all() and (t["status_look[C]"] == 50).all()
    assert (t["status_prob[C]"] < 0.05).all()
    assert (t["final_status"] == "max").all() and (t["looks"] == 4).all()
    first = looks[looks["look"] == 0].set_index("trial")
    later = looks[looks["look"] > 0]
    assert (later["probs_best[C]"].isna()).all()  # not analysed once dropped
    nxt = looks[looks["look"] < 3]
    assert (nxt["alloc_next[C]"] == 0).all()
    # allocation: the minimum for each active arm, summing to 1
    cols = ["alloc_next[A]", "alloc_next[B]", "alloc_next[C]"]
    assert np.allclose(nxt[cols].sum(axis=1), 1.0, atol=1e-6)
    assert (nxt[["alloc_next[A]", "alloc_next[B]"]] >= 0.2 - 1e-6).all().all()
    # its patients are those randomised before it was dropped
    assert (t.set_index("trial")["ns_all[C]"] == first["n[C]"]).all()
    assert (t["ns[C]"] == t["ns_all[C]"]).all()


def test_follow_up_lag_randomises_ahead_of_the_data(tmp_path):
    s = _scenarios(
        tmp_path,
        """\
  - name: lag
    true_ys: [0.3, 0.3, 0.3]
    data_looks: [40, 80, 120, 160]
    randomised_at_looks: [60, 100, 140, 160]
""",
    )
    r = _run(s, n=16)
    t, looks = r.trials, r.looks
    by_look = dict(zip([40, 80, 120, 160], [60, 100, 140, 160], strict=True))
    assert (t["final_n"] == t["followed_n"].map(by_look)).all()
    ns_all = t[["ns_all[A]", "ns_all[B]", "ns_all[C]"]].sum(axis=1)
    assert (ns_all == t["final_n"]).all()
    n = looks[["n[A]", "n[B]", "n[C]"]].sum(axis=1)
    assert (n == looks["followed_n"]).all()  # each analysis uses the patients with data only


# ----------------------------------------------------------------------------- the README design
README_CHUNK = 250


def _readme_metrics(trials, sc, strategy="best"):
    arms = ("Arm A", "Arm B", "Arm C")
    return adaptr.trial_outcomes(trials, arms, sc.true_ys, strategy, None, adaptr._is_lag(sc))


def test_the_engine_agrees_with_a_numpy_transcription_of_adaptr():
    scenarios = engine.load_scenarios(adaptr.scenario_path())
    sc = scenarios.scenario("readme").model
    ours = engine.run_scenarios(
        scenarios,
        1000,
        11,
        chunk_size=README_CHUNK,
        scheduler=engine.IN_PROCESS,
        names=["readme"],
        progress=False,
    ).trials
    spec = {
        "true_ys": sc.true_ys,
        "min_probs": sc.min_probs,
        "data_looks": adaptr._looks(sc.data_looks),
        "inferiority": sc.inferiority,
        "superiority": sc.superiority,
        "equivalence_prob": sc.equivalence_prob,
        "equivalence_diff": sc.equivalence_diff,
        "soften_power": sc.soften_power,
        "n_draws": 2000,
    }
    theirs = ref.run_trials_frame(spec, ("Arm A", "Arm B", "Arm C"), 250, seed=12)
    a, b = _readme_metrics(ours, sc), _readme_metrics(theirs, sc)
    pa, pb = adaptr.performance(a), adaptr.performance(b)
    rng = np.random.default_rng(0)
    se_a = adaptr.resampled_sd(a, len(a.size), 100, rng)
    se_b = adaptr.resampled_sd(b, len(b.size), 100, rng)
    for m in (
        "size_mean",
        "prob_superior",
        "prob_equivalence",
        "prob_max",
        "prob_select_arm_Arm B",
        "rmse",
    ):
        z = abs(pa[m] - pb[m]) / np.hypot(se_a[m], se_b[m])
        assert z < 4, (m, pa[m], pb[m], z)


def test_small_crosscheck_agrees_with_adaptrs_published_numbers(tmp_path):
    table = adaptr.adaptr_crosscheck(
        200,
        20260601,
        tmp_path,
        chunk_size=README_CHUNK,
        scheduler=engine.IN_PROCESS,
        progress=False,
        keep_trials=True,
    )
    assert set(table["scenario"]) == {
        s.name for s in engine.load_scenarios(adaptr.scenario_path()).scenarios
    }
    assert (table["n_trials_ours"] == 200).all()
    assert not table["metric"].isin(adaptr.NOT_COMPARED).any()
    # every published number has a finite z, except adaptr's NA (idp in a null scenario)
    missing = table["adaptr"].isna()
    assert table.loc[~missing, "z"].notna().all()
    assert set(table.loc[missing, "metric"]) <= {"idp"}
    # the main metrics of the 1000-trial publications agree within 4 combined MC SEs
    main = table[
        (table["n_rep"] == 1000)
        & table["metric"].isin(
            ["size_mean", "prob_superior", "prob_equivalence", "prob_max", "prob_select_arm_Arm B"]
        )
    ]
    assert len(main) == 4 * 5
    assert (main["z"] < 4).all(), main.sort_values("z").tail(3).to_string()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["crosscheck.csv", "manifest.json", "performance.csv", "trials.parquet"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["result"] == "adaptr_crosscheck" and manifest["n_trials"] == 200
    assert manifest["tables"][:2] == ["crosscheck.csv", "performance.csv"]
