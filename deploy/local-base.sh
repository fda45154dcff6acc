#!/bin/sh
# Build a stand-in for python:3.11-slim from Debian's own packages, for machines that cannot reach Docker Hub.
#
#   sudo deploy/local-base.sh                       # makes the image local/python:3.11-bookworm
#   docker build -f deploy/Dockerfile --build-arg PYTHON_IMAGE=local/python:3.11-bookworm -t wnb .
#
# Needs root, debootstrap and a docker daemon; reaches only the Debian mirror (MIRROR, default deb.debian.org).
# The result is laid out like the official image where the Dockerfile relies on it: `python` and `pip` in
# /usr/local/bin (a virtual environment made there over Debian's python3.11, so pip never touches Debian's
# packages), C headers for building durable-rules, groupadd/useradd, apt. Certificate authorities the host
# trusts locally (/usr/local/share/ca-certificates, e.g. a TLS-inspecting proxy's) are trusted inside too,
# and pip is told to use the system's bundle, so `pip wheel` in the build stage can reach PyPI from here.
# Takes about 1-2 minutes and 330 MB of disk; the image is about 200 MB.
set -eu

IMAGE=${IMAGE:-local/python:3.11-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=${SUITE:-bookworm}

[ "$(id -u)" = 0 ] || { echo "local-base.sh: debootstrap needs root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "local-base.sh: apt-get install debootstrap" >&2; exit 2; }

ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/wnb-base.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT

debootstrap --variant=minbase \
    --include=python3.11,python3.11-venv,python3-venv,libpython3.11-dev,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR"

# debootstrap installs from SUITE alone: add its updates and security suites (as the official images carry),
# bring everything up to date, and let the builds' `apt-get install` see them too.
cat > "$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
chroot "$ROOTFS" apt-get update -q
DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" apt-get upgrade -y -q
: > "$ROOTFS/etc/resolv.conf"  # docker provides the container's own

# Locally trusted authorities, then the bundle that pip and Python's ssl read.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
fi
chroot "$ROOTFS" update-ca-certificates --fresh >/dev/null
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$ROOTFS/etc/pip.conf"

# python, python3, pip in /usr/local/bin as in the official image; Debian's python3.11 underneath.
chroot "$ROOTFS" python3.11 -m venv /usr/local
chroot "$ROOTFS" /usr/local/bin/python -c "import sys, sysconfig; assert sys.prefix == '/usr/local'; print(sysconfig.get_paths()['include'])" \
    | xargs -I{} test -f "$ROOTFS{}/Python.h"

# What debootstrap leaves behind that an image does not need.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $SUITE from $MIRROR with python3.11 (deploy/local-base.sh)" \
    - "$IMAGE"
docker run --rm "$IMAGE" python -c "import ssl, sys, venv; print('$IMAGE:', sys.version.split()[0])"
