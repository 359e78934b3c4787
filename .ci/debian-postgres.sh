#!/usr/bin/env bash
# Run the `db`-marked tests against a throwaway Debian PostgreSQL.
#
# The embedded pgserver is what the rest of the suite uses; this run proves the
# same code works on a stock distribution PostgreSQL reached over TCP with
# password (scram) auth, as an external production database would be.
#
# No Debian service machinery (pg_ctlcluster, systemd) is used: a cluster is
# created with initdb in a temporary directory, started on a free port on
# 127.0.0.1, and always stopped and deleted on exit.
#
# Usage: bash .ci/debian-postgres.sh [pytest args]   (default: -m db)
# UZO_TEST_VENV names the virtualenv whose pytest runs (default: .venv); the run on
# the highest supported Python uses it to run the whole suite here, since the
# embedded pgserver has no wheel for that Python.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
START=$(date +%s.%N)
elapsed() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}s')" "$1"; }
log() { echo "[debian-postgres] $*"; }

# --- 1. Debian's postgresql, installed only when missing -------------------------
# The newest installed server's bin directory, or nothing.
pg_bin_dir() {
    { compgen -G '/usr/lib/postgresql/*/bin/initdb' || true; } | sort -V | tail -n 1 | xargs -r dirname
}
if [[ -z "$(pg_bin_dir)" ]] || ! command -v pg_ctlcluster >/dev/null; then
    T0=$(date +%s.%N)
    log "installing Debian's postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    log "installed in $(elapsed "$T0")"
else
    log "postgresql already installed: $(pg_bin_dir)"
fi
PGBIN=$(pg_bin_dir)

# Run a PostgreSQL server binary as the unprivileged `postgres` user when we are
# root (CI is); PostgreSQL refuses to run as root.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && exec runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# --- 2. A throwaway cluster -------------------------------------------------------
WORK=$(mktemp -d /tmp/uzo-pg.XXXXXX)   # short path: the unix socket lives here
DATA="$WORK/data"
PGPID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Stop the postmaster by its pid file, whatever happened to our child process.
    if [[ -f "$DATA/postmaster.pid" ]]; then
        as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m fast -w -t 30 >/dev/null 2>&1 \
            || { [[ -n "$PGPID" ]] && kill -KILL "$PGPID" 2>/dev/null; } || true
        log "server stopped"
    fi
    if [[ -n "$PGPID" ]]; then
        wait "$PGPID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$WORK"
fi
chmod 700 "$WORK"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
SUPERUSER_PW=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
printf '%s\n' "$SUPERUSER_PW" >"$WORK/pwfile"
if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$WORK/pwfile"; fi

T0=$(date +%s.%N)
as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$WORK/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync --no-instructions >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log"; exit 1; }
rm -f "$WORK/pwfile"
log "initdb in $(elapsed "$T0")"

# Durability is pointless for a cluster deleted at exit: turn it off for speed.
T0=$(date +%s.%N)
PGARGS=(-D "$DATA" -c listen_addresses=127.0.0.1 -c port="$PORT" -c unix_socket_directories="$WORK"
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off)
# Started directly (not through a shell function) so that $! is our own child.
if [[ $(id -u) -eq 0 ]]; then
    (cd / && exec runuser -u postgres -- "$PGBIN/postgres" "${PGARGS[@]}") >"$WORK/postgres.log" 2>&1 &
else
    "$PGBIN/postgres" "${PGARGS[@]}" >"$WORK/postgres.log" 2>&1 &
fi
PGPID=$!

for _ in $(seq 1 150); do
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        break
    fi
    if ! kill -0 "$PGPID" 2>/dev/null; then
        log "postgres exited during start-up:"
        cat "$WORK/postgres.log"
        exit 1
    fi
    sleep 0.2
done
"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || { cat "$WORK/postgres.log"; exit 1; }
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$PORT in $(elapsed "$T0")"

# --- 3. The UZO owner role and database -------------------------------------------
# CREATEDB: `uzo tenant provision` creates dedicated tenants' databases with the owner
psql_super() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres "$@"; }
psql_super -d postgres \
    -c "CREATE ROLE uzo_owner LOGIN CREATEROLE CREATEDB PASSWORD 'owner-pw'" \
    -c "CREATE DATABASE uzo OWNER uzo_owner" \
    -c "CREATE DATABASE prefect OWNER uzo_owner" \
    -c "CREATE DATABASE uzo_spare OWNER uzo_owner"

export UZO_DATABASE_URL="postgresql://uzo_owner:owner-pw@127.0.0.1:$PORT/uzo"
export UZO_DATABASE_APP_PASSWORD="app-pw"
# for tests that migrate, downgrade or serve a database of their own (the CLI tests),
# and for the connector tests' target server where pgserver is not installed
export UZO_TEST_SPARE_DATABASE_URL="postgresql://uzo_owner:owner-pw@127.0.0.1:$PORT/uzo_spare"
export UZO_TEST_POSTGRES_SOCKET_DIR="$WORK"
export UZO_TEST_POSTGRES_PORT="$PORT"

# The owner logs in over TCP with its password (scram), as the tests will.
WHO=$(PGPASSWORD=owner-pw "$PGBIN/psql" -X -tA -h 127.0.0.1 -p "$PORT" -U uzo_owner -d uzo \
    -c "SELECT current_user || '@' || current_database()")
log "connected over TCP as $WHO (setup $(elapsed "$START") in total)"

# --- 4. The database tests ----------------------------------------------------------
VENV=${UZO_TEST_VENV:-.venv}
if [[ $# -eq 0 ]]; then set -- -m db; fi
log "running: $VENV/bin/pytest $* ($("$VENV/bin/python" -V))"
"$VENV/bin/pytest" -p no:cacheprovider "$@"
