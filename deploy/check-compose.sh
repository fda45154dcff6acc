#!/bin/sh
# Bring up deploy/compose.yaml for real (PostgreSQL, migrate, two replicas, nginx), check it as a trust would,
# and take it down again with its volumes. Run from anywhere; exits non-zero at the first failed check.
#
#   deploy/check-compose.sh                                                # images from Docker Hub
#   PYTHON_IMAGE=local/python:3.11-bookworm deploy/check-compose.sh        # no Docker Hub: local stand-ins
#
# With PYTHON_IMAGE set, wnb is built on that base and compose.local-images.yaml replaces postgres:15 and
# nginx with images built from Debian's packages on it. Builds wnb:latest (the tag compose.yaml uses), and
# needs 127.0.0.1:8000-8002 free (the ports compose.yaml publishes). Takes about a minute with cached images:
# the replicas' health check runs every 30 s, and nginx waits for both replicas to be healthy.
#
# Checks: migrate ran once and exited 0; /health/ready answers 200 through nginx and on each replica; an event
# posted through nginx is accepted, and the same event to each replica is a duplicate; a feed file in the
# shared inbox is ingested by exactly one replica; the audit chain verifies; `wnb db backup` in a replica
# writes a dump that `wnb db restore` loads into a new database and verifies; `stop` ends every service
# with exit 0 (SIGTERM for wnb, SIGINT for the stand-in PostgreSQL, SIGQUIT for nginx).
# Settings (environment): PYTHON_IMAGE, DOCKER, NETWORK (for builds; see check-lib.sh), WAIT_SECONDS (150).
set -eu

CHECK=check-compose
. "$(dirname "$0")/check-lib.sh"
WAIT_SECONDS=${WAIT_SECONDS:-150}
PROJECT=wnbcheck$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wnb-compose-check.XXXXXX")
need_docker

if $DOCKER compose version >/dev/null 2>&1; then
    COMPOSE="$DOCKER compose"
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=docker-compose
else
    fail "neither the compose plugin nor docker-compose is installed"
fi
set -- -f "$REPO/deploy/compose.yaml"
[ -n "${PYTHON_IMAGE:-}" ] && set -- "$@" -f "$REPO/deploy/compose.local-images.yaml"
compose() { $COMPOSE --project-name "$PROJECT" --env-file "$WORK/.env" "$@"; }
FILES="$*"
container() { compose $FILES ps -q "$1"; }

on_failure() {
    [ -n "${STARTED:-}" ] || return 0
    echo "--- compose ps and logs (last 15 lines each) ---"
    compose $FILES ps
    compose $FILES logs --no-color --tail 15
}
cleanup() {
    if [ -n "${STARTED:-}" ]; then
        compose $FILES down --volumes --timeout 20 >/dev/null 2>&1 || say "could not take project $PROJECT down"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for port in 8000 8001 8002; do
    python3 -c "import socket; socket.create_server(('127.0.0.1', $port)).close()" 2>/dev/null \
        || fail "127.0.0.1:$port is in use; compose.yaml publishes 8000-8002"
done

# ---- build ----
started=$(date +%s)
if [ -n "${PYTHON_IMAGE:-}" ]; then
    build_image wnb:latest "$REPO/deploy/Dockerfile" "$REPO" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
    for stand_in in postgres:local/postgres:15 nginx:local/nginx:bookworm; do
        build_image "${stand_in#*:}" "$REPO/deploy/local-images/${stand_in%%:*}.Dockerfile" \
            "$REPO/deploy/local-images" --build-arg "DEBIAN_IMAGE=$PYTHON_IMAGE"
    done
else
    build_image wnb:latest "$REPO/deploy/Dockerfile" "$REPO"
fi
say "ok - built the images in $(($(date +%s) - started)) s"

# ---- up ----
umask 077
{
    echo "WNB_DB_PASSWORD=$(secret)"
    echo "WNB_SESSION_SECRET=$(secret)"
    echo "WNB_WEBHOOK_SECRET=$(secret)"
    echo "WNB_AUDIT_KEY=check:$(secret)"
    [ -z "${PYTHON_IMAGE:-}" ] || echo "WNB_PYTHON_IMAGE=$PYTHON_IMAGE"
} > "$WORK/.env"
STARTED=1
compose $FILES up -d --no-build >/dev/null 2>&1 || fail "compose up failed"
state() { $DOCKER inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(container "$1")"; }
for _ in $(seq "$WAIT_SECONDS"); do
    [ "$(state wnb-1)" = "running healthy" ] && [ "$(state wnb-2)" = "running healthy" ] \
        && [ "$(state lb)" = "running " ] && break
    sleep 1
done
for service in wnb-1 wnb-2; do
    [ "$(state "$service")" = "running healthy" ] || fail "$service is '$(state "$service")' after $WAIT_SECONDS s"
done
[ "$(state lb)" = "running " ] || fail "lb is '$(state lb)' after $WAIT_SECONDS s"
say "ok - db, migrate, wnb-1 and wnb-2 (healthy) and lb up in $(($(date +%s) - started)) s"

migrated=$(compose $FILES logs --no-color migrate)
[ "$($DOCKER inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(container migrate)")" = "exited 0" ] \
    || fail "migrate did not exit 0"
case $migrated in
    *"upgraded from revision none"*) say "ok - migrate made the schema once and exited 0" ;;
    *) fail "migrate did not make the schema: $migrated" ;;
esac

for port in 8000 8001 8002; do
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready")
    [ "$status" = 200 ] || fail "/health/ready on 127.0.0.1:$port answered $status"
done
say "ok - /health/ready answers 200 through nginx (8000) and on each replica (8001, 8002)"

key=$(compose $FILES exec -T wnb-1 wnb keys create --role clinic-system --name compose-check --source pas | tail -n 1)
expect_status "$(post_event http://127.0.0.1:8000 "$key")" accepted "the event posted through nginx was not accepted"
for port in 8001 8002; do
    expect_status "$(post_event "http://127.0.0.1:$port" "$key")" duplicate "the same event to :$port was not a duplicate"
done
say "ok - an event through nginx is accepted; the same event to either replica is a duplicate"

# The inbox poll runs every minute on each replica; a file is claimed by renaming, so one replica takes it.
compose $FILES exec -T wnb-2 sh -c 'cat > inbox/.check.part && mv inbox/.check.part inbox/check.ndjson' \
    < "$REPO/fixtures/feed-1-pas-2026-03.ndjson"
for _ in $(seq 90); do
    compose $FILES exec -T wnb-1 sh -c 'ls inbox/processed | grep -q check.ndjson' && break
    sleep 1
done
takers=$(compose $FILES logs --no-color wnb-1 wnb-2 | grep '"inbox_file_processed"' | grep -c '"check.ndjson"' || true)
[ "$takers" = 1 ] || fail "the inbox file was processed $takers times, not once"
say "ok - a feed file in the shared inbox is ingested by exactly one replica"

compose $FILES exec -T wnb-2 wnb audit verify >/dev/null || fail "wnb audit verify failed"
say "ok - wnb audit verify passes"

compose $FILES exec -T wnb-1 wnb db backup /var/lib/wnb/backups/check.dump >/dev/null || fail "wnb db backup failed"
compose $FILES exec -T db createdb -U wnb wnb_restored || fail "could not create the database to restore into"
password=$(sed -n 's/^WNB_DB_PASSWORD=//p' "$WORK/.env")
restored=$(compose $FILES exec -T -e "WNB_DATABASE_URL=postgresql+psycopg://wnb:$password@db:5432/wnb_restored" \
    wnb-2 wnb db restore /var/lib/wnb/backups/check.dump) || fail "wnb db restore failed: $restored"
case $restored in
    *"audit log intact"*) say "ok - a backup taken in wnb-1 restores into a new database and verifies" ;;
    *) fail "the restored copy did not verify: $restored" ;;
esac

compose $FILES stop --timeout 20 >/dev/null 2>&1 || fail "compose stop failed"
for service in db wnb-1 wnb-2 lb; do
    code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$(container "$service")")
    [ "$code" = 0 ] || fail "$service exited $code when stopped"
done
say "ok - stop ends db, wnb-1, wnb-2 and lb with exit 0"
say "compose.yaml passed every check in $(($(date +%s) - started)) s"
