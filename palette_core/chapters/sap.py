"""Chapter "SAP versions and sign-off": the plan's version and date (``data/protocol/sap.yaml``),
its revision history from the git history of the design and protocol data, and the sign-off
page by role (no names)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd

from palette_core.design.protocol import Protocol

#: the folders, relative to the data root, whose git history is the plan's revision history
HISTORY_PATHS = ("design", "protocol")
#: the columns of :func:`revision_history`
HISTORY_COLUMNS = ("Date", "Revision", "Change")


def revision_history(data_root: Path, paths: tuple[str, ...] = HISTORY_PATHS) -> pd.DataFrame:
    """Every commit that changed the design or protocol data, newest first, from ``git log``.

    Parameters
    ----------
    data_root
        The data folder (its git repository is used).
    paths
        Folders under ``data_root`` whose history counts.

    Returns
    -------
    pandas.DataFrame
        Columns Date (commit date, UTC), Revision (short hash) and Change (the commit's subject).
        Empty, with the same columns, where there is no history (not a git checkout, git not
        installed, or a shallow clone without these commits): the chapter then says so.
    """
    cmd = ["git", "log", "--date=short", "--format=%cd%x09%h%x09%s", "--", *paths]
    try:
        out = subprocess.run(
            cmd, cwd=data_root, capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    rows = [line.split("\t", 2) for line in out.splitlines() if line.count("\t") >= 2]
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def version_table(protocol: Protocol, registry_id: str) -> pd.DataFrame:
    """Version, date and status of the plan, and the registry version it follows."""
    s = protocol.sap
    return pd.DataFrame(
        [
            {"Item": "Statistical analysis plan version", "Value": s.version},
            {"Item": "Date", "Value": s.date.isoformat()},
            {"Item": "Status", "Value": s.status},
            {
                "Item": "Registry record followed",
                "Value": f"{registry_id}, last updated {s.registry_version_date.isoformat()}",
            },
        ]
    )


def sign_off_table(protocol: Protocol, sponsor: str) -> pd.DataFrame:
    """The sign-off page: one row per role, with empty name, signature and date fields."""
    return pd.DataFrame(
        [
            {
                "Role": s.role + (f" ({sponsor})" if s.role.startswith("Sponsor") else ""),
                "Responsibility": s.responsibility,
                "Name": "",
                "Signature": "",
                "Date": "",
            }
            for s in protocol.sap.sign_off
        ]
    )


__all__ = ["HISTORY_PATHS", "revision_history", "sign_off_table", "version_table"]
