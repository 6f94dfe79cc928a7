#!/usr/bin/env bash
# Runs pgward on its embedded default: a throwaway PostgreSQL with the demo
# policies, served on 127.0.0.1:6432 until Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh build
exec cargo run --release --quiet -- demo --policies "$root/policies/demo" "$@"
