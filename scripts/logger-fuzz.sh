#!/usr/bin/env bash
# Builds and briefly runs the logger's cargo-fuzz targets (parse_line, split_lines).
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain.
# Usage: scripts/logger-fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/../logger/fuzz"
secs="${1:-60}"
cargo +nightly fuzz build
for target in parse_line split_lines; do
    cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -max_len=65536
done
