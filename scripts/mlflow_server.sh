#!/usr/bin/env bash
# A team MLflow tracking server: SQLite backend, local artifact store (proxied), one worker, loopback only.
# Then: export MLFLOW_TRACKING_URI=http://127.0.0.1:${PORT}
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${TRIAGE_MLFLOW_SERVER_DIR:-.triage/mlflow-server}
PORT=${TRIAGE_MLFLOW_SERVER_PORT:-5055}
BIN=${TRIAGE_VENV:-.venv}/bin
mkdir -p "$DIR/artifacts"
DIR=$(cd "$DIR" && pwd)
exec "$BIN/mlflow" server \
  --backend-store-uri "sqlite:///$DIR/mlflow.db" \
  --artifacts-destination "$DIR/artifacts" \
  --host 127.0.0.1 --port "$PORT" --workers 1
