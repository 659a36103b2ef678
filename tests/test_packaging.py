"""The package installed (not editable) into a clean environment and run outside the checkout.

An installed ``palette_core`` has no ``data/`` of its own: ``palette design check --design PATH``
works from any folder, and without ``--design`` (and without ``$PALETTE_DESIGN``) the command
says so in one typed line and exits 2. The environment is made by uv from ``uv.lock``, offline,
from the cache that ``scripts/_env.sh`` fills (hard links: a few seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import support

from palette_core.design import DESIGN_ENV


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment less anything that would point uv or palette at the checkout."""
    drop = ("UV_", "VIRTUAL_ENV", "PALETTE_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(support.ROOT))
    )
    return {**env, **extra}


def _uv() -> list[str]:
    """uv as scripts/_env.sh finds it: on PATH, else the uv package of python3."""
    path = _clean_env()["PATH"]  # as before scripts/_env.sh put .venv/bin first
    found = shutil.which("uv", path=path)
    if found is not None:
        return [found]
    for python in (shutil.which("python3", path=path), sys.executable):
        if python is None:
            continue
        probe = subprocess.run([python, "-m", "uv", "--version"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return [python, "-m", "uv"]
    pytest.fail("uv not found: scripts/_env.sh installs it (python3 -m pip install uv)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package's sources installed into a new environment; returns its folder."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(support.ROOT / name, src / name)
    shutil.copytree(
        support.ROOT / "palette_core",
        src / "palette_core",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    venv = tmp / "venv"
    done = subprocess.run(
        [
            *_uv(),
            "sync",
            "--locked",
            "--offline",
            "--no-dev",
            "--no-editable",
            "--quiet",
            "--python",
            f"{sys.version_info.major}.{sys.version_info.minor}",
        ],
        cwd=src,
        env=_clean_env(UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON_DOWNLOADS="never"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    shutil.rmtree(src)  # the installed copy must not need its sources
    return venv


def _palette(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "palette"), *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_is_installed_as_a_copy(installed: Path):
    copies = list(installed.glob("lib/python*/site-packages/palette_core/design/loader.py"))
    assert len(copies) == 1
    links = [p for p in installed.glob("lib/python*/site-packages/*.pth") if "palette" in p.name]
    assert links == []  # not an editable install that points back at the checkout


def test_installed_design_check_with_a_design_path_from_elsewhere(installed: Path, tmp_path):
    done = _palette(
        installed, "design", "check", "--design", str(support.DATA / "design"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "faithful" in done.stdout


def test_installed_design_check_without_a_design_is_one_typed_line(installed: Path, tmp_path):
    done = _palette(installed, "design", "check", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "--design PATH" in done.stderr and DESIGN_ENV in done.stderr
