# Shared set-up for scripts/build-book and scripts/test: sourced, not executed.
# Creates .venv from uv.lock (idempotent) and sets the environment every command needs.
# Needs only python3.11 + pip; everything else comes from the package registries.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The set-up runs with this project's .venv/bin left out of PATH, so that `python3` and
# `python3.11` are the machine's, also in nested calls: tests/site runs scripts/build-book with
# .venv/bin first on PATH, where `python3` is the venv's, which has neither uv nor pip.
machine_path=""
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
    [ "$dir" = "$ROOT/.venv/bin" ] || machine_path="${machine_path:+$machine_path:}$dir"
done
unset path_dirs dir

# uv, resolved once to an absolute path and exported as UV (the variable `uv run` sets) for
# nested calls to reuse: the uv on PATH, else the uv Python package of the first python3 on
# PATH outside any virtual environment (installed for this user with pip if missing;
# --break-system-packages only where python3 is a distribution's).
if [ -z "${UV:-}" ] || [ ! -x "$UV" ]; then
    if ! UV="$(PATH="$machine_path" command -v uv)"; then
        python=""
        IFS=: read -ra path_dirs <<<"$machine_path"
        for dir in "${path_dirs[@]}"; do
            if [ -x "$dir/python3" ] && [ ! -f "$dir/../pyvenv.cfg" ]; then
                python="$dir/python3"
                break
            fi
        done
        unset path_dirs dir
        [ -n "$python" ] || { echo "_env.sh: no python3 on PATH outside a virtual environment" >&2; return 1; }
        if ! "$python" -m uv --version >/dev/null 2>&1; then
            "$python" -m pip install --quiet --user uv 2>/dev/null ||
                "$python" -m pip install --quiet --user --break-system-packages uv
        fi
        UV="$("$python" -c 'import uv; print(uv.find_uv_bin())')"
        unset python
    fi
fi
export UV

# Never download a managed Python (offline); use the python3.11 on PATH.
export UV_PYTHON_DOWNLOADS=never
export UV_PYTHON="${UV_PYTHON:-python3.11}"
PATH="$machine_path" command -v "$UV_PYTHON" >/dev/null 2>&1 || UV_PYTHON=python3

# Exactly the versions in uv.lock, all groups; fails if uv.lock is out of date with
# pyproject.toml (run `uv lock` after changing dependencies).
PATH="$machine_path" "$UV" sync --locked --all-groups --quiet

export PATH="$ROOT/.venv/bin:$machine_path"
unset machine_path

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
