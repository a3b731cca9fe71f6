#!/usr/bin/env bash
# Create the project's virtual environment from nothing (only python3.11 needed); a no-op when it is current.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${TRIAGE_VENV:-.venv}
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

stamp="$VENV/.installed-$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

echo "bootstrap: creating $VENV with $($PYTHON --version)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned: pip takes the CPU wheel; an open requirement would pull a multi-GB CUDA build.
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet -e ".[dev,ray]"
"$VENV/bin/pip" check
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "bootstrap: ready ($VENV)"
