#!/usr/bin/env bash
# Run gilcheck's conformance programs (tests/conformance/*.py) through two Python
# interleaving explorers from PyPI, frontrun and interleave-test, and write
# bench/COMPETITORS.md with the measured table.
#
#   bench/competitors.sh                      # 2 threads x 2 iterations, 60 s per (program, tool)
#   THREADS=2 ITERATIONS=1 TIMEOUT=30 bench/competitors.sh
#   PYTHON_VERSION=3.13.0 bench/competitors.sh  # pick the pyenv CPython (default: newest 3.12, else 3.13)
#
# Only PyPI is used (pip install frontrun interleave-test); a package that cannot be
# installed is reported and the other one still runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv"
threads="${THREADS:-2}"
iterations="${ITERATIONS:-2}"
timeout="${TIMEOUT:-60}"

# --- a CPython from pyenv (interleave-test needs >= 3.12: it is built on sys.monitoring) ---
pick_python() {
    local v
    if [[ -n "${PYTHON_VERSION:-}" ]]; then echo "$PYTHON_VERSION"; return; fi
    for minor in 3.12 3.13; do
        v="$(pyenv versions --bare | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)"
        if [[ -n "$v" ]]; then echo "$v"; return; fi
    done
    echo "no CPython 3.12 or 3.13 under pyenv (pyenv versions --bare)" >&2
    return 1
}

pyver="$(pick_python)"
if [[ -x "$venv/bin/python" ]] && [[ "$("$venv/bin/python" -c 'import platform; print(platform.python_version())')" != "$pyver" ]]; then
    echo "== $venv is not CPython $pyver; recreating it"
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "== creating $venv with CPython $pyver (pyenv)"
    PYENV_VERSION="$pyver" python3 -m venv "$venv"
fi
[[ -f "$here/.gitignore" ]] || printf '.venv/\n__pycache__/\n' > "$here/.gitignore"

# --- install each tool from PyPI; a failure is reported, not fatal ---
for pkg in frontrun interleave-test; do
    echo "== pip install $pkg (PyPI)"
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pkg"; then
        echo "!! could not install '$pkg' from PyPI; its column will say 'not installed'" >&2
    fi
done
"$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -Ei '^(frontrun|interleave-test) ' || true

# --- run every conformance program through every installed tool ---
echo "== exploring tests/conformance/*.py at $threads thread(s) x $iterations iteration(s), ${timeout}s per (program, tool)"
cd "$root"
"$venv/bin/python" "$here/competitors.py" all \
    --programs "$root/tests/conformance" \
    --threads "$threads" --iterations "$iterations" --timeout "$timeout" \
    --notes "$here/COMPETITORS.template.md" --out "$here/COMPETITORS.md"
