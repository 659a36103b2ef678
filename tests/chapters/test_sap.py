"""The chapter "SAP versions and sign-off": revision history from git, with its fallback."""

from __future__ import annotations

import subprocess

import support

from palette_core.chapters import sap

BOOK = support.ROOT / "book"


def test_revision_history_lists_design_commits_and_falls_back_outside_git(design, tmp_path):
    history = sap.revision_history(design.data_root)
    assert list(history.columns) == list(sap.HISTORY_COLUMNS)
    try:
        subprocess.run(["git", "-C", str(design.data_root), "rev-parse"], check=True,
                       capture_output=True)  # fmt: skip
        assert len(history) > 0
    except (OSError, subprocess.CalledProcessError):
        assert history.empty
    assert sap.revision_history(tmp_path).empty


def test_sign_off_names_roles_and_no_people(design, protocol):
    table = sap.sign_off_table(protocol, design.trial.sponsor)
    assert (table["Name"] == "").all() and len(table) == len(protocol.sap.sign_off)
