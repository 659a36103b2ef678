"""The ``palette`` command line: ``palette design check`` and its exit statuses."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import support

from palette_core.cli import _parser, main
from palette_core.design import DESIGN_ENV, locate

FINDING_IDS = [f"RF-{i:02d}" for i in range(1, 26)]
PALETTE = Path(sys.executable).parent / "palette"


def _arm(data, ident):
    return next(a for a in data["arms"] if a["id"] == ident)


def _duplicate_arm_id(data):
    _arm(data, "hinf_anakinra")["id"] = "hinf_baricitinib"


def test_design_check_passes_and_prints_every_finding(capsys):
    assert main(["design", "check"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "valid" in out and "faithful" in out
    assert "6 traits, 24 arms (6 usual care, 18 experimental), 2 shared-effect groups" in out
    for finding_id in FINDING_IDS:
        assert f"\n{finding_id} [" in out, finding_id
    assert "blocks dose: cort_hc_fc (adult, child)" in out


def test_design_check_json_is_machine_readable(capsys):
    assert main(["design", "check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fidelity_ok"] is True
    assert report["problems"] == []
    assert [f["id"] for f in report["findings"]] == FINDING_IDS
    assert report["summary"]["arms"] == 24
    assert len(report["design_hash"]) == 64


def test_invalid_design_exits_2_naming_file_entry_field(design_copy, edit, capsys):
    edit(design_copy, "arms.yaml", _duplicate_arm_id)
    assert main(["design", "check", "--design", str(design_copy)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "arms.yaml" in err
    assert "'hinf_baricitinib'" in err
    assert "field 'id'" in err
    assert "duplicate id" in err


def test_unfaithful_design_exits_1_and_prints_the_problem(design_copy, edit, capsys):
    edit(
        design_copy,
        "arms.yaml",
        lambda d: _arm(d, "hfib_sivelestat")["registry"].update(text="0.2 mg/kg/h for 5 days"),
    )
    assert main(["design", "check", "--design", str(design_copy)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEMS" in out
    assert "mismatch [arm-text] hfib_sivelestat" in out
    # the findings are still listed, so the reader sees the whole picture
    assert all(f"\n{finding_id} [" in out for finding_id in FINDING_IDS)


def test_unfaithful_design_json_says_so(design_copy, edit, capsys):
    edit(
        design_copy,
        "arms.yaml",
        lambda d: _arm(d, "hfib_sivelestat")["registry"].update(text="0.2 mg/kg/h for 5 days"),
    )
    assert main(["design", "check", "--json", "--design", str(design_copy)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["fidelity_ok"] is False
    assert any("arm-text" in p for p in report["problems"])


def test_help_mentions_the_design_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "design" in capsys.readouterr().out


def test_design_check_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["design", "check", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--json" in out and "--design" in out


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: palette" in capsys.readouterr().err


def test_installed_console_script_checks_the_design():
    assert PALETTE.is_file(), f"console script not installed at {PALETTE}"
    done = subprocess.run(
        [str(PALETTE), "design", "check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "faithful" in done.stdout


def test_installed_console_script_reports_an_unreadable_file_without_a_traceback(design_copy):
    path = design_copy / "units.yaml"
    path.write_bytes(path.read_bytes() + b"\n# caf\xe9\n")
    done = subprocess.run(
        [str(PALETTE), "design", "check", "--design", str(design_copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "units.yaml" in done.stderr and "not UTF-8" in done.stderr


def _unimplemented_hook(data):
    data["hooks"]["new_signature"] = {
        "label": "A new omics signature",
        "classes": ["positive", "negative"],
        "kind": "algorithm",
        "note": "declared in data, not yet implemented",
    }


def test_design_check_refuses_a_hook_without_implementation(design_copy, edit, capsys):
    """The design loads (hooks are data); the check that screening can run them fails."""
    edit(design_copy, "traits.yaml", _unimplemented_hook)
    assert main(["design", "check", "--design", str(design_copy)]) == 2
    err = capsys.readouterr().err
    assert "hook not implemented" in err and "'new_signature'" in err


def test_classify_refuses_a_hook_without_implementation(design_copy, edit, tmp_path, capsys):
    edit(design_copy, "traits.yaml", _unimplemented_hook)
    patients = support.DATA / "examples" / "worked_examples.csv"
    args = ["classify", str(patients), "--seed", "1", "--out", str(tmp_path / "out.csv")]
    assert main([*args, "--design", str(design_copy)]) == 2
    assert "hook not implemented" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_the_environment_variable_names_the_design_to_check(design_copy, edit, monkeypatch, capsys):
    edit(design_copy, "arms.yaml", _duplicate_arm_id)
    monkeypatch.setenv(DESIGN_ENV, str(design_copy))
    assert main(["design", "check"]) == 2
    assert "duplicate id" in capsys.readouterr().err


def test_no_design_to_find_is_one_typed_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.delenv(DESIGN_ENV, raising=False)
    monkeypatch.setattr(locate, "checkout_design_dir", lambda: None)
    assert main(["design", "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "--design PATH" in err and DESIGN_ENV in err


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (sub)command of the parser, depth first: ``(("design", "check"), parser)``."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


COMMANDS = [path for path, _ in _commands(_parser()) if path]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_a_working_help(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert f"usage: palette {' '.join(path)}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "commands"),
    [
        (
            "--design",
            {"design check", "classify", "randomise", "analyse", "log replay", "results rebuild"},
        ),
        ("--json", {"design check", "log verify"}),
        ("--quiet", {"analyse", "simulate"}),
        ("--secret-file", {"randomise", "log replay"}),
        (
            "--restricted-log",
            {"randomise", "log verify", "log replay", "log recover", "log head"},
        ),
    ],
)
def test_shared_options_are_declared_once(flag, commands):
    """Each command that takes the option holds the one declaration (the same argparse action)."""
    found = {
        " ".join(path): action
        for path, parser in _commands(_parser())
        for action in parser._actions
        if flag in action.option_strings
    }
    assert set(found) == commands
    assert len({id(action) for action in found.values()}) == 1


def test_a_missing_required_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["classify", "patients.csv"])
    assert info.value.code == 2
    assert "--seed" in capsys.readouterr().err


def test_design_check_validates_the_tipping_point_file(design_copy, edit, capsys):
    edit(design_copy, "proposed/tipping_point.yaml", lambda d: d.update(outcomes=["nope"]))
    assert main(["design", "check", "--design", str(design_copy)]) == 2
    err = capsys.readouterr().err
    assert "tipping_point.yaml" in err and "nope" in err
