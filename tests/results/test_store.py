"""Stored results: rebuild at the small size, manifests, stale-result detection, CLI."""

from __future__ import annotations

import json

import pytest

from palette_core.cli import main
from palette_core.errors import ModelDataError, StaleResultError, StoredResultError
from palette_core.provenance import file_sha256
from palette_core.results import store as results

#: what the small rebuild makes (the worked interim is tested on its own below, the accuracy
#: panel in tests/simulate/test_accuracy.py, the simulations in test_simulation_results.py)
APART = (results.WORKED_INTERIM, "laplace_accuracy", *results.SIMULATIONS)
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
    manifest["design_hash"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleResultError, match="rebuild"):
        results.load_result("sbc", tmp_path, design=design)
    flagged = results.load_result("sbc", tmp_path, design=design, allow_stale=True)
    assert flagged.stale


def test_load_result_names_a_missing_result(tmp_path, design):
    with pytest.raises(StoredResultError, match="no stored result"):
        results.load_result("sbc", tmp_path, design=design)


def test_cli_rebuild_small_wrote_into_the_directory(small):
    out, code = small
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(MADE)


def test_worked_interim_rebuild_writes_analysis_and_both_reports(tmp_path, design):
    out = tmp_path / results.WORKED_INTERIM
    results.rebuild_worked_interim(design, out, "small", 4)
    from palette_core.interim.analyse import load_analysis

    analysis = load_analysis(out, design=design, allow_stale=False)
    assert analysis.manifest["design_hash"] == design.design_hash
    assert analysis.manifest["seed"] == 4
    name = analysis.table("arms").set_index("arm").at["hinf_baricitinib", "name"]
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
