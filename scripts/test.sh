#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every test
# (unit tests and the integration tests against a real PostgreSQL).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh test
export PGWARD_TEST_PYTHON="$root/target/pyenv/bin/python"

cargo test --all-targets "$@"
