#!/usr/bin/env bash
# The one test command (`make test`, and so `.ci/run`): lint, types, then every test; non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TRIAGE_VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

"$BIN/ruff" check triage training serving triage_cli tests benchmarks
"$BIN/mypy"
# Label Studio lives in its own venv; installing it here keeps the integration tests' first start short.
if [ -f scripts/labelstudio.sh ]; then
  bash scripts/labelstudio.sh install
fi
"$BIN/pytest" -q -p no:cacheprovider --durations=15 "$@"
