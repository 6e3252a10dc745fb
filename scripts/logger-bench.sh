#!/usr/bin/env bash
# Runs the logger benchmarks (ship, search, follow, index), each printed against a same-run
# baseline. Usage: scripts/logger-bench.sh [MiB of generated logs, default 256]
# Uses ripgrep (`rg`) as the search baseline when installed. Not part of the pass/fail suite.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGGER_BENCH_MIB="${1:-256}" exec cargo bench -p workflow-cli --bench logger_pipeline
