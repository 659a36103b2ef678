# Shared set-up for scripts/build-book and scripts/test: sourced, not executed.
# Creates .venv from uv.lock (idempotent) and sets the environment every command needs.
# Needs only python3.11 + pip; everything else comes from the package registries.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# uv: the one on PATH, else the uv Python package of python3 (installed for this user
# with pip if missing; --break-system-packages only where python3 is a distribution's).
if command -v uv >/dev/null 2>&1; then
    uv=(uv)
else
    if ! python3 -m uv --version >/dev/null 2>&1; then
        python3 -m pip install --quiet --user uv 2>/dev/null ||
            python3 -m pip install --quiet --user --break-system-packages uv
    fi
    uv=(python3 -m uv)
fi

# Never download a managed Python (offline); use the python3.11 on PATH.
export UV_PYTHON_DOWNLOADS=never
export UV_PYTHON="${UV_PYTHON:-python3.11}"
command -v "$UV_PYTHON" >/dev/null 2>&1 || UV_PYTHON=python3

# Exactly the versions in uv.lock, all groups; fails if uv.lock is out of date with
# pyproject.toml (run `uv lock` after changing dependencies).
"${uv[@]}" sync --locked --all-groups --quiet

export PATH="$ROOT/.venv/bin:$PATH"

# Deterministic CPU-only JAX with a persistent compilation cache shared by build, tests and nbval.
export JAX_PLATFORMS=cpu
export JAX_COMPILATION_CACHE_DIR="$ROOT/.cache/jax"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
mkdir -p "$JAX_COMPILATION_CACHE_DIR"

# Reproducible str hashing in notebooks and tests; silence the debugger's frozen-modules
# warning that ipykernel prints to every notebook's stderr.
export PYTHONHASHSEED=0
export PYDEVD_DISABLE_FILE_VALIDATION=1
