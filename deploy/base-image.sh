#!/usr/bin/env bash
# Builds the Python 3.11 base image from Debian's own packages (debootstrap), for machines where no image registry
# can be reached (`FROM python:3.11-slim-bookworm` cannot be pulled there). A user with a registry never needs this:
# the Dockerfiles' default PYTHON_IMAGE is the official image.
#   deploy/base-image.sh [IMAGE]          # default localhost/python:3.11-bookworm; ENGINE=podman|docker
# Bookworm's python3 is 3.11.2. The host's CA bundle goes into the image (pip inside builds passes the same
# intercepting TLS proxy as the host), and the host's pip find-links / extra indexes are written into the image's
# pip.conf, so that a build run with those folders mounted (deploy.mk's BUILD_FLAGS) installs local wheels.
# Idempotent: an existing image is kept (FORCE=1 rebuilds).
set -euo pipefail
IMAGE=${1:-localhost/python:3.11-bookworm}
ENGINE=${ENGINE:-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${FORCE:-0}" != 1 ] && $ENGINE image exists "$IMAGE" 2>/dev/null; then
    echo "$IMAGE exists (FORCE=1 rebuilds)"; exit 0
fi
rootfs=$(mktemp -d /var/tmp/crossmodal-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$MIRROR" >/dev/null
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-venv python-is-python3 passwd >/dev/null
chroot "$rootfs" apt-get clean
rm -f "$rootfs/etc/resolv.conf"
# What a slim image leaves out: package lists, docs, man pages, locales but C.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/cache/apt/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C*' -exec rm -rf {} +
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
{
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n'
    links=$(pip config get global.find-links 2>/dev/null || true)
    indexes=$(pip config get global.extra-index-url 2>/dev/null || true)
    [ -n "$links" ] && printf 'find-links = %s\n' "$links"
    [ -n "$indexes" ] && printf 'extra-index-url = %s\n' "$indexes"
    true
} > "$rootfs/etc/pip.conf"
tar -C "$rootfs" -c . | $ENGINE import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "built $IMAGE"
