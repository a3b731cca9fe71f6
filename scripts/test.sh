#!/usr/bin/env bash
# The one test command (`make test`, and so `.ci/run`): lint, types, then every test; non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TRIAGE_VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

"$BIN/ruff" check triage training serving triage_cli tests benchmarks
"$BIN/mypy"
# System packages the integration tests drive: Debian's chromium (labelling view and report, through Playwright;
# no browser download) and a PostgreSQL server (decision log). One apt-get for whatever is missing; the tests also
# install them themselves, so a partial run works too. Needs root and apt (CI); elsewhere the tests say what is missing.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Label Studio lives in its own venv; installing it here keeps the integration tests' first start short.
if [ -f scripts/labelstudio.sh ]; then
  bash scripts/labelstudio.sh install
fi
"$BIN/pytest" -q -p no:cacheprovider --durations=15 "$@"
