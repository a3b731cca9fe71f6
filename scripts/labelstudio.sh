#!/usr/bin/env bash
# Label Studio for the review queue, as a real local service in its own virtual environment.
#
#   scripts/labelstudio.sh install   create the venv (label-studio==1.23.2) and a migrated template data dir
#   scripts/labelstudio.sh up        install if needed, start headless on 127.0.0.1, wait until healthy
#   scripts/labelstudio.sh down      SIGTERM the server started by `up` and wait for it to exit
#   scripts/labelstudio.sh status    say whether it is running and healthy (exit 0 when it is)
#
# Every command is idempotent: `up` when already up and healthy is a no-op.
# Configuration (environment, dev defaults):
#   TRIAGE_LS_VENV      venv path                   (.venv-labelstudio)
#   TRIAGE_LS_DATA      data directory              (.triage/labelstudio)
#   TRIAGE_LABELSTUDIO__URL  where Label Studio runs (http://127.0.0.1:8089): the one address setting, read
#                       by this script (host and port to bind) and by the app (where to send tasks)
#   TRIAGE_LS_USER      admin user e-mail           (admin@example.com)
#   TRIAGE_LS_PASSWORD  admin password              (triage-dev-password)
#   TRIAGE_LS_TOKEN     admin API token (legacy)    (TRIAGE_LABELSTUDIO__API_TOKEN, else dev-token)
#   TRIAGE_LS_PYTHON    interpreter for the venv    (python3.11, else python3)
#   TRIAGE_LS_TIMEOUT   seconds to wait for health  (180)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LS_VERSION="1.23.2"
VENV="${TRIAGE_LS_VENV:-.venv-labelstudio}"
DATA="${TRIAGE_LS_DATA:-.triage/labelstudio}"
LS_URL="${TRIAGE_LABELSTUDIO__URL:-http://127.0.0.1:8089}"
if [[ ! "$LS_URL" =~ ^http://([^/:]+):([0-9]+)/?$ ]]; then
    echo "[labelstudio] TRIAGE_LABELSTUDIO__URL=$LS_URL: expected http://HOST:PORT (a local address to bind)" >&2
    exit 2
fi
HOST="${BASH_REMATCH[1]}"
PORT="${BASH_REMATCH[2]}"
if [[ -n "${TRIAGE_LS_PORT:-}" && "${TRIAGE_LS_PORT}" != "$PORT" ]]; then
    echo "[labelstudio] TRIAGE_LS_PORT is no longer read: set TRIAGE_LABELSTUDIO__URL=http://$HOST:${TRIAGE_LS_PORT}" >&2
    exit 2
fi
USER_EMAIL="${TRIAGE_LS_USER:-admin@example.com}"
PASSWORD="${TRIAGE_LS_PASSWORD:-triage-dev-password}"
TOKEN="${TRIAGE_LS_TOKEN:-${TRIAGE_LABELSTUDIO__API_TOKEN:-dev-token}}"
TIMEOUT="${TRIAGE_LS_TIMEOUT:-180}"
PY="${TRIAGE_LS_PYTHON:-$(command -v python3.11 || command -v python3)}"

mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
VENV_ABS="$(mkdir -p "$(dirname "$VENV")" && cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")"
PIDFILE="$DATA/labelstudio.pid"
LOG="$DATA/labelstudio.log"
# A migrated, empty data dir kept beside the venv: copying it skips the 30-45 s of first-start migrations.
TEMPLATE="$VENV_ABS/template-data"

log() { echo "[labelstudio] $*" >&2; }

ls_env() {
    export LABEL_STUDIO_BASE_DATA_DIR="$1"
    export LABEL_STUDIO_SENTRY_DSN="" LABEL_STUDIO_FRONTEND_SENTRY_DSN="" SENTRY_DSN=""
    export LABEL_STUDIO_COLLECT_ANALYTICS=false LABEL_STUDIO_LATEST_VERSION_CHECK=false
    # Local-only service: webhooks and the ML backend live on 127.0.0.1 too.
    export LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false
    export LABEL_STUDIO_ML_BLOCK_LOCAL_IP=false
    export LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true
    export DJANGO_DB=sqlite
    # The admin is created by `start` (never by the template), so the org is born with legacy tokens on.
    unset LABEL_STUDIO_USERNAME LABEL_STUDIO_PASSWORD LABEL_STUDIO_USER_TOKEN
}

installed() {
    [[ -x "$VENV_ABS/bin/label-studio" ]] && "$VENV_ABS/bin/python" - "$LS_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("label-studio") == sys.argv[1] else 1)
EOF
}

cmd_install() {
    if installed; then
        log "label-studio $LS_VERSION already in $VENV"
    else
        local t0=$SECONDS
        log "creating $VENV with label-studio==$LS_VERSION (about 70 s, 1 GB)"
        "$PY" -m venv "$VENV_ABS"
        if ! "$VENV_ABS/bin/python" -m pip install --disable-pip-version-check \
            "label-studio==$LS_VERSION" >"$VENV_ABS/pip-install.log" 2>&1; then
            log "pip install failed; last lines of $VENV_ABS/pip-install.log:"
            grep -v "^WARNING: Location" "$VENV_ABS/pip-install.log" | tail -n 20 >&2
            return 1
        fi
        rm -rf "$TEMPLATE"
        log "installed in $((SECONDS - t0)) s"
    fi
    if [[ ! -f "$TEMPLATE/label_studio.sqlite3" ]]; then
        local t0=$SECONDS
        log "migrating a template data dir (once, 30-45 s)"
        rm -rf "$TEMPLATE.tmp" && mkdir -p "$TEMPLATE.tmp"
        (
            ls_env "$TEMPLATE.tmp"
            "$VENV_ABS/bin/label-studio" init -q --data-dir "$TEMPLATE.tmp" --no-browser \
                >"$VENV_ABS/template-init.log" 2>&1
        ) || { log "template init failed; see $VENV_ABS/template-init.log"; rm -rf "$TEMPLATE.tmp"; return 0; }
        if [[ -f "$TEMPLATE.tmp/label_studio.sqlite3" ]]; then
            mv "$TEMPLATE.tmp" "$TEMPLATE"
            log "template ready in $((SECONDS - t0)) s"
        else
            log "template init left no database; starting from scratch each time"
            rm -rf "$TEMPLATE.tmp"
        fi
    fi
}

running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
    return 1
}

healthy() {
    curl -fsS --max-time 2 "http://$HOST:$PORT/health" 2>/dev/null | grep -q '"UP"'
}

port_busy() {
    "$VENV_ABS/bin/python" - "$HOST" "$PORT" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
# Like a server would: connections left in TIME_WAIT by the previous run do not make the port busy.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
EOF
}

# True when the process `pid` (or one of its children) is the one listening on $PORT.
owns_port() {
    local pid="$1" p
    for p in "$pid" $(pgrep -P "$pid" 2>/dev/null || true); do
        if [[ -d /proc/$p/fd ]] && ls -l /proc/"$p"/fd 2>/dev/null | grep -q socket; then
            local inodes
            inodes="$(ls -l /proc/"$p"/fd 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p')"
            local hexport
            hexport="$(printf '%04X' "$PORT")"
            local inode
            for inode in $inodes; do
                if awk -v port=":$hexport" -v ino="$inode" \
                    '$2 ~ port"$" && $4 == "0A" && $10 == ino {found=1} END {exit !found}' \
                    /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
                    return 0
                fi
            done
        fi
    done
    return 1
}

cmd_up() {
    if pid="$(running_pid)"; then
        if healthy; then
            log "already up (pid $pid) on http://$HOST:$PORT"
            return 0
        fi
        log "pid $pid is running but not healthy yet; waiting"
    else
        cmd_install
        if port_busy; then
            log "port $PORT on $HOST is already taken by another process; set TRIAGE_LABELSTUDIO__URL"
            return 1
        fi
        if [[ ! -f "$DATA/label_studio.sqlite3" && -f "$TEMPLATE/label_studio.sqlite3" ]]; then
            cp -a "$TEMPLATE/." "$DATA/"
            log "data dir seeded from the migrated template"
        fi
        local t0=$SECONDS
        (
            ls_env "$DATA"
            cd "$DATA"
            exec setsid "$VENV_ABS/bin/label-studio" start --no-browser \
                --internal-host "$HOST" --host "http://$HOST:$PORT" --port "$PORT" --data-dir "$DATA" \
                --username "$USER_EMAIL" --password "$PASSWORD" --user-token "$TOKEN" \
                --enable-legacy-api-token </dev/null >>"$LOG" 2>&1
        ) &
        pid=$!
        echo "$pid" >"$PIDFILE"
        log "starting (pid $pid), log in $LOG"
        START_T0=$t0
    fi
    local deadline=$((SECONDS + TIMEOUT))
    until healthy; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "Label Studio exited during start-up; last lines of $LOG:"
            tail -n 30 "$LOG" >&2 || true
            rm -f "$PIDFILE"
            return 1
        fi
        if ((SECONDS > deadline)); then
            log "not healthy after $TIMEOUT s; see $LOG"
            return 1
        fi
        sleep 0.5
    done
    if ! owns_port "$pid"; then
        log "something else answers on port $PORT (Label Studio may have moved to $((PORT + 1))); stopping it"
        cmd_down
        return 1
    fi
    log "up on http://$HOST:$PORT (pid $pid) after $((SECONDS - ${START_T0:-$SECONDS})) s"
}

cmd_down() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        rm -f "$PIDFILE"
        return 0
    fi
    # setsid made the server its own process group: signal the whole group (only our server's).
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            log "pid $pid ignored SIGTERM for 30 s; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDFILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    if pid="$(running_pid)" && healthy; then
        echo "up pid=$pid url=http://$HOST:$PORT data=$DATA"
        return 0
    fi
    echo "down url=http://$HOST:$PORT data=$DATA"
    return 1
}

case "${1:-}" in
install) cmd_install ;;
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
    echo "usage: $0 {install|up|down|status}" >&2
    exit 2
    ;;
esac
