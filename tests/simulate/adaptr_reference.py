"""A plain NumPy transcription of adaptr's ``run_trial()`` without a common control (test oracle).

Written loop by loop from adaptr's R source (``R/run_trial.R``, ``R/prob_funs.R``,
``R/get_ys_and_draws.R``), with posterior draws as adaptr takes them (``n_draws`` Beta draws per
arm and analysis, redrawn after arms are dropped). It shares no code with
``palette_core.simulate.adaptr``, so agreement in distribution checks the JAX program's rules
(randomisation, lag, inferiority loop, superiority, equivalence, reallocation, estimates).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def reallocate_probs(probs_best, min_probs, soften_power):
    """adaptr's ``reallocate_probs()`` with minimum probabilities only (NaN = no minimum)."""
    probs_best = np.asarray(probs_best, float)
    min_probs = np.asarray(min_probs, float)
    if np.all(np.isnan(min_probs)):
        p = probs_best**soften_power
        return p / p.sum()
    eps = np.sqrt(np.finfo(float).eps)
    final = np.full(len(probs_best), np.nan)
    while abs(np.nansum(final) - 1) > eps:
        total_remaining = 1 - np.nansum(final)
        remaining = np.isnan(final)
        remaining_sum = probs_best[remaining].sum()
        if remaining_sum > 0:
            factor = probs_best / remaining_sum
        else:
            factor = np.full(len(probs_best), 1 / remaining.sum())
        tmp = np.where(remaining, total_remaining * factor, final)
        if soften_power < 1:
            x = tmp[remaining] ** soften_power
            tmp[remaining] = total_remaining * x / x.sum()
        low = ~np.isnan(min_probs) & remaining & (tmp < min_probs)
        tmp[low] = min_probs[low]
        final[low] = min_probs[low]
        if abs(tmp.sum() - 1) <= eps:
            final = tmp
        if not np.isnan(final).any() and abs(final.sum() - 1) > eps:
            final = final / final.sum()
    return final


def run_trial(spec: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One trial; ``spec`` holds setup_trial_binom()'s arguments (lists, scalars)."""
    true_ys = np.asarray(spec["true_ys"], float)
    k = len(true_ys)
    data_looks = list(spec["data_looks"])
    rand_looks = list(spec.get("randomised_at_looks") or data_looks)
    n_draws = spec.get("n_draws", 5000)
    min_probs = np.array([np.nan if m is None else m for m in spec["min_probs"]], float)
    status = ["active"] * k
    status_look = [None] * k
    alloc = np.full(k, 1 / k)
    allocs = np.empty(0, int)
    ys = np.empty(0, int)
    ns = np.zeros(k, int)
    sum_ys = np.zeros(k, int)
    final_status = "max"
    probs_best = {}
    total_n = 0
    followed_n = 0

    def draws(active):
        m = np.full((n_draws, k), np.inf)
        for a in active:
            sel = allocs[:followed_n] == a
            e = ys[:followed_n][sel].sum()
            m[:, a] = rng.beta(1 + e, 1 + sel.sum() - e, n_draws)
        return m

    def best(m, active):
        winners = np.argmin(m, axis=1)
        return {a: np.mean(winners == a) for a in active}

    for look in range(len(data_looks)):
        aai = [a for a in range(k) if status[a] == "active"]
        n_new = rand_looks[look] - total_n
        if n_new > 0:
            p = alloc[aai] / alloc[aai].sum()
            new = rng.choice(aai, size=n_new, p=p)
            allocs = np.concatenate([allocs, new])
            ys = np.concatenate([ys, (rng.random(n_new) < true_ys[new]).astype(int)])
        followed_n = data_looks[look]
        total_n = rand_looks[look]
        for a in aai:
            ns[a] = np.sum(allocs[:followed_n] == a)
            sum_ys[a] = ys[:followed_n][allocs[:followed_n] == a].sum()
        m = draws(aai)
        probs_best = best(m, aai)
        stop = False
        while any(v < spec["inferiority"] for v in probs_best.values()):
            for a, v in list(probs_best.items()):
                if v < spec["inferiority"]:
                    status[a], status_look[a] = "inferior", followed_n
                    aai.remove(a)
            m = draws(aai)
            probs_best = best(m, aai)
        top = max(probs_best, key=lambda a: (probs_best[a], -a))
        if probs_best[top] > spec["superiority"]:
            status[top], status_look[top] = "superior", followed_n
            final_status, stop = "superiority", True
        elif spec.get("equivalence_prob") is not None:
            sub = m[:, aai]
            if (
                np.mean(sub.max(axis=1) - sub.min(axis=1) < spec["equivalence_diff"])
                > spec["equivalence_prob"]
            ):
                for a in aai:
                    status[a], status_look[a] = "equivalence", followed_n
                final_status, stop = "equivalence", True
        if stop:
            break
        new_alloc = reallocate_probs(
            np.array([probs_best[a] for a in aai]), min_probs[aai], spec["soften_power"]
        )
        alloc = np.zeros(k)
        alloc[aai] = new_alloc
    ns_all = np.array([np.sum(allocs[:total_n] == a) for a in range(k)])
    sum_ys_all = np.array([ys[:total_n][allocs[:total_n] == a].sum() for a in range(k)])
    est = np.array(
        [np.median(rng.beta(1 + sum_ys[a], 1 + ns[a] - sum_ys[a], n_draws)) for a in range(k)]
    )
    est_all = np.array(
        [
            np.median(rng.beta(1 + sum_ys_all[a], 1 + ns_all[a] - sum_ys_all[a], n_draws))
            for a in range(k)
        ]
    )
    pbl = np.array([probs_best.get(a, np.nan) for a in range(k)])
    return {
        "final_status": final_status,
        "final_n": total_n,
        "followed_n": followed_n,
        "status": status,
        "status_look": [-1 if s is None else s for s in status_look],
        "probs_best_last": pbl,
        "sum_ys_all": sum_ys_all,
        "est": est,
        "est_all": est_all,
    }


def run_trials_frame(spec: dict[str, Any], arms, n: int, seed: int):
    """``n`` trials as a DataFrame with the engine's column names (for the metrics code)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        r = run_trial(spec, rng)
        row = {
            "final_status": r["final_status"],
            "final_n": r["final_n"],
            "followed_n": r["followed_n"],
        }
        for j, a in enumerate(arms):
            row[f"status[{a}]"] = r["status"][j]
            row[f"status_look[{a}]"] = r["status_look"][j]
            row[f"probs_best_last[{a}]"] = r["probs_best_last"][j]
            row[f"sum_ys_all[{a}]"] = r["sum_ys_all"][j]
            row[f"est[{a}]"] = r["est"][j]
            row[f"est_all[{a}]"] = r["est_all"][j]
        rows.append(row)
    return pd.DataFrame(rows)
