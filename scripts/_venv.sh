# Shared by scripts/demo and scripts/test: make .venv (if missing) and install gitxact into it.
# Needs only python3 (3.11+) and git on the machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GITXACT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
ensure_installed() {
  local extras="$1" stamp="$VENV/.gitxact-installed-$1" full="$VENV/.gitxact-installed-[test]"
  # An install with the test extras serves the plain one too (scripts/test, then scripts/demo).
  if [ -f "$full" ] && [ ! "$ROOT/pyproject.toml" -nt "$full" ]; then
    return 0
  fi
  # Reinstall when the project's metadata changed since the last install.
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    # compat: the editable install is one path in a .pth file. The default (an import hook)
    # costs every interpreter start 50 M instructions, more than the start itself: it
    # would inflate "S", the bare start-up the benchmark counts in, and hide what gitxact costs.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      --config-settings editable_mode=compat -e "$ROOT$extras"
    touch "$stamp"
  fi
}
