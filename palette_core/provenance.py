"""Provenance of every result: design hash, seed, package versions and git revision.

A result file (a table of operating characteristics, stored posterior draws, a report) carries
a manifest so that anyone can tell which design, code and environment produced it, and rerun
it. MCMC output is bit-identical only on the same CPU and JAX build, so the manifest also
records the platform.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from palette_core.design.loader import Design, data_file

#: packages whose versions decide the numbers in this book
KEY_PACKAGES = (
    "palette-core",
    "jax",
    "jaxlib",
    "numpyro",
    "numpy",
    "pandas",
    "pydantic",
    "pyyaml",
    "altair",
    "vl-convert-python",
    "arviz",
    "jupyter-book",
    "myst-nb",
    "nbval",
)


def package_versions(packages: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package, or ``"not installed"``."""
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision(data_root: Path, outputs: str = "derived") -> str:
    """The commit of the checkout that holds ``data_root``, with ``+dirty`` if tracked files
    changed; ``"unknown"`` outside git.

    Stored results (``outputs`` under the data root, ``data/derived``) are outputs, not inputs:
    rewriting them does not make the revision dirty, so a rebuild that writes several results
    records the same clean revision.
    """
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=data_root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            # every tracked file of the work tree (:/), less the outputs (relative to data_root)
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", f":!{outputs}"],
            cwd=data_root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference_hash(root: Path) -> str:
    """SHA-256 over the published constants of a reference folder (``data/reference``: SOFA
    cut-offs, Seymour centroids)."""
    h = hashlib.sha256()
    for p in sorted(x for x in Path(root).rglob("*") if x.is_file()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def design_file_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file of a design folder, by path relative to it: the files
    :func:`palette_core.design.loader.design_hash` hashes together, one by one, so that a stale
    result can say which design files changed since it was computed."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return {p.relative_to(root).as_posix(): file_sha256(p) for p in files}


def changed_design_files(stored: dict[str, str], current: dict[str, str]) -> list[str]:
    """The design files added, removed or changed between two :func:`design_file_hashes`."""
    return sorted(f for f in set(stored) | set(current) if stored.get(f) != current.get(f))


def build_manifest(design: Design, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """The manifest of a result computed from ``design`` with ``seed``: the design's hash and
    each of its files' (``design_files``), the registry's and references' hashes, the seed,
    the git revision, Python, the platform and the package versions."""
    return {
        "trial": design.trial.registry_id,
        "design_hash": design.design_hash,
        "design_files": design_file_hashes(design.root),
        "registry_sha256": file_sha256(design.registry_path),
        "reference_sha256": reference_hash(data_file(design, "reference")),
        "seed": seed,
        "git_revision": git_revision(design.data_root),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": package_versions(),
        **extra,
    }
