#!/bin/sh
# Build wnb's image and check it for real against a PostgreSQL server: a fresh database, the container on the
# host's network, then what a trust relies on. Run from anywhere; exits non-zero at the first failed check.
#
#   deploy/check-image.sh                                                  # base: python:3.11-slim
#   PYTHON_IMAGE=local/python:3.11-bookworm deploy/check-image.sh          # base from deploy/local-base.sh
#
# Checks, in order: the image builds; `wnb serve` runs as a non-root user; the image's HEALTHCHECK command
# reports healthy; /health/ready answers 200; serve migrated the new database to the newest revision; a posted
# event is accepted and the same event again is a duplicate; the audit chain verifies; SIGTERM stops the
# server cleanly (exit 0, no SIGKILL) within STOP_SECONDS.
#
# Settings (environment): IMAGE (wnb:check), PYTHON_IMAGE (the Dockerfile's default), PGHOST (127.0.0.1),
# PGPORT (5432), PGUSER (postgres; must be able to create databases, with no password or one in PGPASSWORD),
# PORT (a free one), STOP_SECONDS (20), NETWORK (host: the builder's RUN steps and the container use the
# host's network, so a daemon without a bridge works and PostgreSQL on the host's loopback is reachable),
# DOCKER (a client that builds with BuildKit; found by itself when unset, see check-lib.sh).
set -eu

CHECK=check-image
. "$(dirname "$0")/check-lib.sh"
IMAGE=${IMAGE:-wnb:check}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
STOP_SECONDS=${STOP_SECONDS:-20}
NAME=wnb-check-$$
DATABASE=wnb_check_$$
on_failure() {
    [ -n "${STARTED:-}" ] || return 0
    echo "--- container log (last 40 lines) ---"
    $DOCKER logs --tail 40 "$NAME"
}
need_docker

# Runs a client command inside the image (psql, createdb, wnb) on the chosen network, as the image's user.
in_image() {
    program=$1
    shift
    $DOCKER run --rm --network "$NETWORK" -e PGHOST="$PGHOST" -e PGPORT="$PGPORT" -e PGUSER="$PGUSER" \
        -e PGPASSWORD="${PGPASSWORD:-}" --entrypoint "$program" "$IMAGE" "$@"
}

cleanup() {
    $DOCKER rm -f "$NAME" >/dev/null 2>&1 || true
    if [ -n "${CREATED:-}" ]; then
        in_image dropdb --if-exists "$DATABASE" >/dev/null 2>&1 || say "could not drop database $DATABASE"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- build ----
started=$(date +%s)
set --
[ -n "${PYTHON_IMAGE:-}" ] && set -- --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
build_image "$IMAGE" "$REPO/deploy/Dockerfile" "$REPO" "$@"
say "ok - built $IMAGE from ${PYTHON_IMAGE:-the default base} in $(($(date +%s) - started)) s"

# ---- run against a fresh database ----
in_image createdb "$DATABASE" || fail "could not create database $DATABASE on $PGHOST:$PGPORT as $PGUSER"
CREATED=1
PORT=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
URL="postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$DATABASE"
# Production mode with real secrets, listening on loopback only; the health check polls every 2 s instead of
# 30 s (same command, the image's own start period and retries) so the check does not wait half a minute.
$DOCKER run -d --name "$NAME" --network "$NETWORK" --health-interval 2s \
    -e WNB_DATABASE_URL="$URL" -e PGPASSWORD="${PGPASSWORD:-}" -e WNB_MODE=production \
    -e WNB_SESSION_SECRET="$(secret)" -e WNB_WEBHOOK_SECRET="$(secret)" -e WNB_AUDIT_KEY="check:$(secret)" \
    -e WNB_HOST=127.0.0.1 -e WNB_PORT="$PORT" "$IMAGE" >/dev/null || fail "the container did not start"
STARTED=1

uid=$($DOCKER exec "$NAME" sh -c 'grep ^Uid: /proc/1/status' | awk '{print $2}')
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "wnb serve (PID 1) runs as uid '${uid}', not a non-root user"
say "ok - wnb serve runs as uid $uid ($($DOCKER exec "$NAME" id -un))"

health=starting
for _ in $(seq 90); do
    health=$($DOCKER inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$NAME")
    running=$($DOCKER inspect -f '{{.State.Running}}' "$NAME")
    [ "$health" = healthy ] || [ "$health" = unhealthy ] || [ "$running" = false ] && break
    sleep 1
done
[ "$running" = true ] || fail "the container exited"
[ "$health" = healthy ] || fail "HEALTHCHECK reports '$health'"
say "ok - HEALTHCHECK reports healthy"

status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/ready")
[ "$status" = 200 ] || fail "/health/ready answered $status"
say "ok - /health/ready answers 200"

revision=$($DOCKER exec "$NAME" wnb db upgrade) || fail "wnb db upgrade failed"
case $revision in
    *"already at revision"*) say "ok - serve migrated the new database: $revision" ;;
    *) fail "serve had not migrated the database: $revision" ;;
esac

key=$($DOCKER exec "$NAME" wnb keys create --role clinic-system --name image-check --source pas | tail -n 1)
expect_status "$(post_event "http://127.0.0.1:$PORT" "$key")" accepted "the event was not accepted"
expect_status "$(post_event "http://127.0.0.1:$PORT" "$key")" duplicate "the same event again was not a duplicate"
say "ok - a posted event is accepted, and the same event again is a duplicate"
$DOCKER exec "$NAME" wnb audit verify >/dev/null || fail "wnb audit verify failed"
say "ok - wnb audit verify passes"

$DOCKER kill --signal TERM "$NAME" >/dev/null
code=$(timeout "$STOP_SECONDS" $DOCKER wait "$NAME") || fail "wnb serve did not stop within $STOP_SECONDS s of SIGTERM"
[ "$code" = 0 ] || fail "wnb serve exited $code on SIGTERM"
$DOCKER logs "$NAME" 2>&1 | grep -q "Application shutdown complete" || fail "no clean shutdown in the log"
say "ok - SIGTERM stops wnb serve cleanly (exit 0)"
say "image $IMAGE passed every check in $(($(date +%s) - started)) s"
