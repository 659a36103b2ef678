"""Stored results: rebuild at the small size, manifests, stale-result detection, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from support import TEST_DATA, relaxed_gates

from palette_core.analysis.checking import SBC_RANK_COLUMNS, SbcResult, sbc_uniformity
from palette_core.cli import main
from palette_core.design.loader import load_design
from palette_core.errors import ModelDataError, StaleResultError, StoredResultError
from palette_core.provenance import design_file_hashes, file_sha256
from palette_core.results import store as results

#: the tests' small export (tests/interim/test_analyse.py analyses it too)
TINY_EXPORT = TEST_DATA / "exports" / "tiny_interim"

#: what the small rebuild makes (the worked interim is tested on its own below, the accuracy
#: panel in tests/simulate/test_accuracy.py, the tipping point in tests/results/test_tipping_result.py,
#: the proportional-odds check, which reads a worked interim, below, the simulations in
#: test_simulation_results.py)
# sbc_osfd is the sbc builder on the OSFD model (its NUTS fits are the slow ones): tested below
APART = (
    results.WORKED_INTERIM, "laplace_accuracy", "tipping_point", "po_check", "sbc_osfd",
    results.COVARIATES,
    *results.SIMULATIONS,
)  # fmt: skip
MADE = [n for n in results.RESULTS if n not in APART]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One small rebuild through the CLI (``palette results rebuild --small``) serves every test."""
    out = tmp_path_factory.mktemp("derived")
    # the worked interim analysis is tested at the small size in tests/test_interim.py
    code = main(
        [
            "results",
            "rebuild",
            "--small",
            "--skip",
            ",".join(APART),
            "--out",
            str(out),
            "--seed",
            "3",
        ]
    )
    return out, code


def test_small_rebuild_writes_every_result_with_the_hash_of_its_input(small, design):
    out, code = small
    assert code == 0
    for name in MADE:
        manifest = json.loads((out / name / "manifest.json").read_text())
        if name == "adaptr_crosscheck":  # adaptr's design: its input is the scenario file
            path = design.data_root / "scenarios" / "adaptr_readme.yaml"
            assert manifest["scenario_sha256"] == file_sha256(path)
        else:
            assert manifest["design_hash"] == design.design_hash
        assert manifest["seed"] == 3 and manifest["size"] == "small"
        assert manifest["runtime_s"] >= 0
        for table in manifest["tables"]:
            assert (out / name / table).is_file()


def test_load_result_returns_tables_and_manifest(small, design):
    out, _ = small
    fit = results.load_result("example_fit", out, design=design)
    assert not fit.stale
    assert {"truth", "quantities", "decisions", "diagnostics"} <= set(fit.tables)
    q = fit.tables["quantities"]
    assert set(q["outcome"]) == {"osfd28", "mortality28"}
    assert set(fit.tables["truth"]["arm"]) == set(q["arm"])
    assert fit.manifest["chains"] == results.SIZES["small"]["example"]["num_chains"]
    sbc = results.load_result("sbc", out, design=design)
    assert (sbc.tables["ranks"]["rank"] >= 0).all()


def test_load_result_refuses_a_stale_result(small, design, tmp_path):
    out, _ = small
    folder = tmp_path / "sbc"
    folder.mkdir()
    for f in (out / "sbc").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["design_files"]["traits.yaml"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleResultError, match="rebuild"):
        results.load_result("sbc", tmp_path, design=design)
    flagged = results.load_result("sbc", tmp_path, design=design, allow_stale=True)
    assert flagged.stale and flagged.changed == ("traits.yaml",)
    # a manifest without the files' hashes is judged by the design hash
    del manifest["design_files"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert not results.load_result("sbc", tmp_path, design=design).stale
    manifest["design_hash"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    flagged = results.load_result("sbc", tmp_path, design=design, allow_stale=True)
    assert flagged.stale and flagged.changed is None


def test_a_change_to_a_design_file_a_result_does_not_read_keeps_it_current(small, design, tmp_path):
    out, _ = small
    folder = tmp_path / "sbc"
    folder.mkdir()
    for f in (out / "sbc").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["design_files"]) == set(design_file_hashes(design.root))
    ignored = sorted(results.NOT_READ["sbc"])
    for name in ignored:
        manifest["design_files"][name] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    kept = results.load_result("sbc", tmp_path, design=design)
    assert not kept.stale and list(kept.changed) == ignored
    # a design file the result did not know (added since) makes it stale
    del manifest["design_files"]["arms.yaml"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert results.load_result("sbc", tmp_path, design=design, allow_stale=True).stale


def test_backfilled_design_files_are_those_of_the_git_revision_or_nothing(design, tmp_path):
    """A manifest written before the files were hashed one by one gets them from git, only
    when they hash to its design hash."""
    repo = tmp_path / "repo"
    shutil.copytree(design.root, repo / "data" / "design")
    shutil.copytree(design.data_root / "registry", repo / "data" / "registry")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "design"], check=True)
    revision = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    copy = load_design(repo / "data" / "design")
    folder = repo / "data" / "derived" / "old"
    folder.mkdir(parents=True)
    old = {"design_hash": copy.design_hash, "git_revision": revision + "+dirty", "tables": []}
    (folder / "manifest.json").write_text(json.dumps(old))
    assert results.backfill_design_files("old", design=copy)
    written = json.loads((folder / "manifest.json").read_text())
    assert written["design_files"] == design_file_hashes(copy.root)
    # an edit to the prose of a design file does not make a result stale; any other edit does
    outcomes = copy.root / "proposed" / "outcomes.yaml"
    text = outcomes.read_text(encoding="utf-8")
    outcomes.write_text(text.replace("rationale: >-\n", "rationale: >-\n      Reworded.\n", 1))
    assert results.prose_only_change(copy, written, "proposed/outcomes.yaml")
    outcomes.write_text(text.replace("death_value: -1", "death_value: -2", 1))
    assert not results.prose_only_change(copy, written, "proposed/outcomes.yaml")
    outcomes.write_text(text)
    # an edit confined to entries a result does not read (the severity fields of the export
    # contract, NOT_READ_ENTRIES) keeps it current; the same edit elsewhere does not
    contract = copy.root / "export_contract.yaml"
    text = contract.read_text(encoding="utf-8")
    entries = results.NOT_READ_ENTRIES[results.WORKED_INTERIM]["export_contract.yaml"]
    assert set(entries) == {("fields", "sofa_score"), ("fields", "phoenix_score")}
    contract.write_text(text.replace("range: [0, 24]", "range: [0, 25]", 1))
    assert results.prose_only_change(copy, written, "export_contract.yaml", entries)
    assert not results.prose_only_change(copy, written, "export_contract.yaml")
    assert results.COVARIATES not in results.NOT_READ_ENTRIES  # it reads them
    contract.write_text(text.replace("range: [0.4, 350]", "range: [0.4, 351]", 1))
    assert not results.prose_only_change(copy, written, "export_contract.yaml", entries)
    contract.write_text(text)
    # a design hash the revision's files do not give: nothing is written
    (folder / "manifest.json").write_text(json.dumps({**old, "design_hash": "0" * 64}))
    assert not results.backfill_design_files("old", design=copy)
    assert "design_files" not in json.loads((folder / "manifest.json").read_text())


def test_load_result_names_a_missing_result(tmp_path, design):
    with pytest.raises(StoredResultError, match="no stored result"):
        results.load_result("sbc", tmp_path, design=design)


def test_cli_rebuild_small_wrote_into_the_directory(small):
    out, code = small
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(MADE)


@pytest.fixture(scope="module")
def worked(design, tmp_path_factory):
    """The worked-interim rebuild of the tests' tiny export (gates relaxed): the wiring of the
    rebuild and of the proportional-odds check that reads it; ``palette analyse`` itself is
    tested in tests/interim/test_analyse.py."""
    root = tmp_path_factory.mktemp("worked")
    with relaxed_gates():
        results.rebuild_worked_interim(
            design, root / results.WORKED_INTERIM, "small", 4, export=TINY_EXPORT
        )
    return root


def test_worked_interim_rebuild_writes_analysis_and_both_reports(worked, design):
    from palette_core.interim.analyse import load_analysis

    out = worked / results.WORKED_INTERIM
    analysis = load_analysis(out, design=design, allow_stale=False)
    assert analysis.manifest["design_hash"] == design.design_hash
    assert analysis.manifest["seed"] == 4
    arms = analysis.table("arms")
    name = arms.loc[arms["role"] == "experimental", "name"].iloc[0]
    closed = (out / "closed_report.html").read_text()
    assert name in closed and "<svg" in closed
    assert name not in (out / "open_report.html").read_text()


def test_a_changed_scenario_file_makes_the_adaptr_crosscheck_stale(small, design, tmp_path):
    out, _ = small
    manifest = json.loads((out / "adaptr_crosscheck" / "manifest.json").read_text())
    assert not results.load_result("adaptr_crosscheck", out, design=design).stale
    manifest["scenario_sha256"] = "0" * 64
    folder = tmp_path / "adaptr_crosscheck"
    folder.mkdir()
    for f in (out / "adaptr_crosscheck").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleResultError):
        results.load_result("adaptr_crosscheck", tmp_path, design=design)


def test_rebuild_refuses_an_unknown_result_name(design, tmp_path):
    with pytest.raises(ModelDataError, match="unknown result"):
        results.rebuild(design, tmp_path, "small", only=["nope"])


def test_rebuilding_a_result_with_its_manifests_seed_gives_identical_tables(
    small, design, tmp_path
):
    """Reproducibility from the manifest: the seed it records rebuilds the same tables."""
    out, _ = small
    manifest = json.loads((out / "sbc" / "manifest.json").read_text())
    again = results.rebuild(design, tmp_path, manifest["size"], manifest["seed"], only=["sbc"])[
        "sbc"
    ]
    for table in manifest["tables"]:
        assert (again / table).read_bytes() == (out / "sbc" / table).read_bytes(), table


def test_po_check_reads_the_worked_interim_beside_it(worked, design):
    results.rebuild_po_check(design, worked / "po_check", "small", 4)
    po = results.load_result("po_check", worked, design=design)
    table = po.tables["po_check"]
    assert table["ppp"].between(0, 1).all()
    assert po.manifest["replicates"] == results.SIZES["small"]["po_replicates"]


def test_covariate_sensitivity_sets_the_adjusted_analysis_beside_the_stored_primary(worked, design):
    out = worked / results.COVARIATES
    results.rebuild_covariate_sensitivity(design, out, "small", 4, export=TINY_EXPORT)
    cov = results.load_result(results.COVARIATES, worked, design=design)
    arms = [a.id for a in design.experimental_arms()]
    probs, decisions = cov.tables["probabilities"], cov.tables["decisions"]
    assert len(probs) == 2 * len(arms) and list(decisions["arm"]) == arms
    stored = json.loads((worked / results.WORKED_INTERIM / "manifest.json").read_text())
    q = pd.read_csv(worked / results.WORKED_INTERIM / "quantities.csv")
    q = q[(q["analysis"] == "primary") & (q["population"] == "all")]
    merged = probs.merge(q, on=["outcome", "arm"])
    assert np.allclose(merged["pr_benefit_primary"], merged["pr_benefit"])  # the stored primary
    assert cov.manifest["n_eras"] == stored["n_eras"]
    assert cov.manifest["run"] == results.INTERIM_SIZES["small"]["sensitivity"]
    assert set(cov.tables["effects"]["outcome"]) == set(stored["outcomes"])
    assert cov.manifest["export"] == str(TINY_EXPORT)


def test_po_check_without_a_worked_interim_is_refused(design, tmp_path):
    with pytest.raises(StoredResultError, match="worked_interim"):
        results.rebuild_po_check(design, tmp_path / "po_check", "small", 4)


def test_the_osfd_sbc_is_the_sbc_builder_on_the_primary_model(design, tmp_path, monkeypatch):
    seen = {}

    def fake_sbc(design, spec, n_sims, fitter, seed, **kwargs):
        seen.update(outcome=spec.outcome, n_sims=n_sims, seed=seed, **kwargs)
        ranks = pd.DataFrame(
            [(0, "between_trait_sd", 0.1, 3, 10, 0.2, 0)], columns=list(SBC_RANK_COLUMNS)
        )
        return SbcResult(ranks, sbc_uniformity(ranks))

    monkeypatch.setattr(results.checking, "sbc", fake_sbc)
    results.BUILDERS["sbc_osfd"](design, tmp_path / "sbc_osfd", "small", 3)
    assert seen["outcome"] == "osfd28" and seen["seed"] == 3 and seen["batch"] == 1
    assert seen["n_sims"] == results.SIZES["small"]["sbc_sims"]
    stored = results.load_result("sbc_osfd", tmp_path, design=design)
    assert stored.manifest["outcome"] == "osfd28" and stored.manifest["result"] == "sbc_osfd"
    assert stored.manifest["devices"] and len(stored.tables["ranks"]) == 1
