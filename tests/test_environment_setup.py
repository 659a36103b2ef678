"""scripts/_env.sh works where uv is not on PATH and `python3` is the project's venv.

That is how a fresh machine runs nested set-ups: scripts/_env.sh installs uv as a Python
package (``python3 -m uv``), and tests/site runs scripts/build-book with .venv/bin first on
PATH, where ``python3`` has neither uv nor pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import ROOT

VENV_BIN = ROOT / ".venv" / "bin"
REPORT = 'printf "%s\\n%s\\n" "$UV" "$(command -v python3)"'


def path_without_uv() -> str:
    """This process's PATH without the project's venv and without any directory holding uv."""
    kept = [
        d
        for d in os.environ["PATH"].split(os.pathsep)
        if d and Path(d) != VENV_BIN and not os.access(Path(d) / "uv", os.X_OK)
    ]
    return os.pathsep.join(kept)


def run_setup(script: str, path: str) -> list[str]:
    """Run ``script`` with bash from the repository root with this PATH and no UV set."""
    env = {k: v for k, v in os.environ.items() if k != "UV"} | {"PATH": path}
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def no_uv() -> str:
    path = path_without_uv()
    assert shutil.which("uv", path=path) is None
    return path


def _check(lines: list[str]) -> None:
    uv, python3 = lines[-2:]
    assert Path(uv).is_absolute() and os.access(uv, os.X_OK), uv
    assert Path(python3) == VENV_BIN / "python3"


def test_setup_succeeds_inside_the_venv_without_uv_on_path(no_uv: str) -> None:
    """An activated venv, or a nested command that did not inherit UV."""
    path = os.pathsep.join([str(VENV_BIN), no_uv])
    assert Path(shutil.which("python3", path=path) or "") == VENV_BIN / "python3"
    _check(run_setup(f"set -euo pipefail; source scripts/_env.sh; {REPORT}", path))


def test_setup_skips_another_virtual_environment_on_path(no_uv: str, tmp_path: Path) -> None:
    """Another project's venv before the machine's python3: its python3 has no uv nor pip."""
    other = tmp_path / "other-venv"
    (other / "bin").mkdir(parents=True)
    (other / "pyvenv.cfg").write_text("home = /nowhere\n")
    python3 = other / "bin" / "python3"  # a venv's python: no uv module, no pip
    python3.write_text(f'#!/bin/sh\nexec "{VENV_BIN / "python3"}" "$@"\n')
    python3.chmod(0o755)
    path = os.pathsep.join([str(other / "bin"), no_uv])
    _check(run_setup(f"set -euo pipefail; source scripts/_env.sh; {REPORT}", path))


def test_a_nested_setup_reuses_the_uv_the_outer_one_resolved(no_uv: str) -> None:
    """What tests/site does: scripts/build-book run from a shell that sourced _env.sh."""
    inner = f"set -euo pipefail; source scripts/_env.sh; {REPORT}"
    outer = f"set -euo pipefail; source scripts/_env.sh; echo \"$UV\"; bash -c '{inner}'"
    lines = run_setup(outer, no_uv)
    _check(lines)
    assert lines[0] == lines[-2]
