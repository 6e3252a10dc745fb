#!/usr/bin/env bash
# Test peer: busybox-static, the app the local runtime's tests run as host processes and the
# rootfs of the base image the Docker tests `docker import`. Installs it if missing; prints
# no exports. Idempotent.
set -euo pipefail
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  echo "installing busybox-static..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2
fi
