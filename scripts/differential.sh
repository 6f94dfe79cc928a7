#!/usr/bin/env bash
# A longer differential run against PostgreSQL's native row-level security
# (tests/integration/differential.rs): a random seed and more queries than the
# CI run's fixed seed and 5,000. A mismatch prints the seed, the query and
# both answers; rerun it with PGWARD_DIFF_SEED=<seed>.
#
#   scripts/differential.sh                 # random seed, 50,000 queries
#   PGWARD_DIFF_QUERIES=200000 scripts/differential.sh
#   PGWARD_DIFF_SEED=1234 scripts/differential.sh
#   PGWARD_DIFF_SHOW=20 scripts/differential.sh   # also print the first 20 queries
set -euo pipefail
cd "$(dirname "$0")/.."

seed="${PGWARD_DIFF_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
queries="${PGWARD_DIFF_QUERIES:-50000}"
echo "differential run: PGWARD_DIFF_SEED=$seed PGWARD_DIFF_QUERIES=$queries" >&2

PGWARD_DIFF_SEED="$seed" PGWARD_DIFF_QUERIES="$queries" \
    cargo test --test integration differential:: -- --nocapture --test-threads 1
