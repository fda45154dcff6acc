# Shared by deploy/check-image.sh and deploy/check-compose.sh (sourced, not run): messages, the docker client,
# building an image, secrets, and posting one event.

REPO=$(cd "$(dirname "$0")/.." && pwd)
NETWORK=${NETWORK:-host}

say() { printf '%s\n' "$CHECK: $*"; }

# Stops at the first failed check; on_failure (set by the script) prints what helps, e.g. container logs.
fail() {
    printf '%s\n' "$CHECK: FAILED: $*" >&2
    on_failure >&2 2>&1 || true
    exit 1
}
on_failure() { :; }

# A client that builds with BuildKit, which reads deploy/Dockerfile.dockerignore (the classic builder sends the
# whole checkout, .venv included): `docker` with the buildx plugin, else a pre-23 client with BuildKit built in
# (Debian 12's docker.io installs one as /usr/bin/docker; a newer client without buildx refuses BuildKit).
# Failing both, `docker` with the classic builder.
find_docker() {
    for candidate in docker /usr/bin/docker; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        major=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
        if "$candidate" buildx version >/dev/null 2>&1 || { [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; }; then
            DOCKER=$candidate
            return
        fi
    done
    DOCKER=docker
    DOCKER_BUILDKIT=0
}

# Sets DOCKER (unless given) and checks that the daemon answers and curl is there.
need_docker() {
    [ -n "${DOCKER:-}" ] || find_docker
    $DOCKER info >/dev/null 2>&1 || fail "the docker daemon does not answer ($DOCKER info)"
    command -v curl >/dev/null || fail "curl is needed"
}

# build_image TAG DOCKERFILE CONTEXT [BUILD-ARG...]: RUN steps on NETWORK (host: works on a daemon without a
# bridge, and reaches what the host reaches).
build_image() {
    tag=$1 dockerfile=$2 context=$3
    shift 3
    set -- --network "$NETWORK" -f "$dockerfile" -t "$tag" "$@"
    DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1} $DOCKER build -q "$@" "$context" >/dev/null \
        || fail "$tag did not build ($DOCKER build $* $context)"
}

secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }

# post_event URL KEY: the first event of the sample PAS feed, as a clinic system sends it; prints the answer.
post_event() {
    curl -s -X POST -H "X-API-Key: $2" -H 'Content-Type: application/json' \
        --data "$(head -n 1 "$REPO/fixtures/feed-1-pas-2026-03.ndjson")" "$1/v1/attendance-events"
}

# expect_status ANSWER STATUS WHAT: ANSWER (one item's JSON result) carries "status":"STATUS".
expect_status() {
    case $1 in *"\"status\":\"$2\""*) ;; *) fail "$3: $1" ;; esac
}
