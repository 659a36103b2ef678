"""Recover the values that the SENECA script imputed in its mock data set.

Every row of ``SENECA - Mock Dataset.csv`` has missing values, and the script imputes them
(missRanger with predictive mean matching, ``pmm.k = 5``) before it computes the distances in
``SENECA - Mock Data - Phenotype Assignments.csv``. Predictive mean matching fills a gap with a
value observed in another row of the same column, so the imputed values are among a short list
of candidates. For each row this script searches all combinations of candidates for the row's
missing variables (a meet-in-the-middle search) and keeps those whose four squared distances
(without age, as in the script) equal the published ones within 1e-8.

Every row has exactly one such combination. The result is ``recovered_imputations.csv`` (one
line per imputed cell), which the agreement test fills in before comparing distances and classes.

Run from the repository root: ``.venv/bin/python tests/data/seneca/recover_imputations.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from palette_core.screening.seymour import load_seymour_reference, standardise

HERE = Path(__file__).resolve().parent
#: the repository's constants (the script is run from a checkout)
REFERENCE = HERE.parents[2] / "data" / "reference" / "seymour2019.yaml"
TOL = 1e-8


def mock_as_record(mock: pd.DataFrame) -> pd.DataFrame:
    """The mock data under PALETTE's field names (sex 1/0 becomes male/female)."""
    ref = load_seymour_reference(REFERENCE)
    out = pd.DataFrame(index=mock.index)
    for v in ref.variables:
        col = mock[v.seneca]
        if v.codes is not None:
            back = {code: name for name, code in v.codes.items()}
            col = col.map(back).astype("string")
        out[v.field] = col
    return out


def _enumerate(blocks: list[np.ndarray], target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sums, idx = np.zeros((1, target.size)), np.zeros((1, 0), dtype=int)
    for block in blocks:
        s = (sums[:, None, :] + block[None]).reshape(-1, target.size)
        i = np.concatenate(
            [np.repeat(idx, len(block), 0), np.tile(np.arange(len(block)), len(idx))[:, None]], 1
        )
        keep = (s <= target + TOL).all(axis=1)  # contributions are >= 0: prune overshoots
        sums, idx = s[keep], i[keep]
    return sums, idx


def recover(mock: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    ref = load_seymour_reference(REFERENCE)
    use = np.array([v.seneca not in ref.script_omits for v in ref.variables])
    record = mock_as_record(mock)
    z, missing, _ = standardise(record, ref)
    target_all = published[[f"dist.{c}" for c in ref.classes]].to_numpy() ** 2
    observed = np.nansum(
        np.where(use, (z[:, None, :] - ref.centroids[None]) ** 2, 0.0), axis=2
    )  # rows x classes, observed variables only
    rows = []
    for i in range(len(mock)):
        miss = [j for j in np.nonzero(missing[i])[0] if use[j]]
        cands, blocks = [], []
        for j in miss:
            v = ref.variables[j]
            values = np.unique(mock[v.seneca].dropna().to_numpy(float))
            probe = pd.DataFrame({v.field: values})
            zj = standardise(probe, ref)[0][:, j]
            cands.append(values)
            blocks.append((zj[:, None] - ref.centroids[:, j][None]) ** 2)
        target = target_all[i] - observed[i]
        half = len(blocks) // 2
        sa, ia = _enumerate(blocks[:half], target)
        sb, ib = _enumerate(blocks[half:], target)
        order = np.argsort(sb[:, 0])
        sb, ib = sb[order], ib[order]
        need = target[0] - sa[:, 0]
        lo = np.searchsorted(sb[:, 0], need - TOL)
        hi = np.searchsorted(sb[:, 0], need + TOL)
        found = [
            np.concatenate([ia[a], ib[b]])
            for a in np.nonzero(hi > lo)[0]
            for b in range(lo[a], hi[a])
            if np.abs(sa[a] + sb[b] - target).max() < TOL
        ]
        if len(found) != 1:
            raise RuntimeError(f"row {mock.id[i]}: {len(found)} candidate imputations")
        for k, j in enumerate(miss):
            rows.append(
                {
                    "id": int(mock.id[i]),
                    "variable": ref.variables[j].seneca,
                    "value": cands[k][found[0][k]],
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    mock = pd.read_csv(HERE / "SENECA - Mock Dataset.csv")
    published = pd.read_csv(HERE / "SENECA - Mock Data - Phenotype Assignments.csv")
    out = recover(mock, published)
    out.to_csv(HERE / "recovered_imputations.csv", index=False)
    print(f"{len(out)} imputed cells in {out['id'].nunique()} rows")


if __name__ == "__main__":
    main()
