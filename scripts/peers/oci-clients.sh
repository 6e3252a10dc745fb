#!/usr/bin/env bash
# Test peers: the OCI clients the registry tests drive (skopeo, buildah, podman) and the
# Docker CLI (the engine itself is provided by the machine). Installs what is missing;
# prints no exports. Idempotent.
set -euo pipefail
need=()
for tool in skopeo buildah podman curl; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
