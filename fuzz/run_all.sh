#!/bin/sh
# Runs each target for $SECS seconds, one after the other, on one core
# (libFuzzer's -jobs=1 writes the run's own log to fuzz-0.log).
cd "$(dirname "$0")"
SECS=${SECS:-600}
mkdir -p logs
for t in ${TARGETS:-wire_frontend startup_scram policy_parser rewriter}; do
  date -u +"start $t %H:%M:%S"
  nice -n 19 cargo +nightly fuzz run -O -a -s none "$t" -- \
    -jobs=1 -workers=1 -max_total_time="$SECS" -rss_limit_mb=4096 -print_final_stats=1 \
    > "logs/$t.log" 2>&1
  echo "exit $t $?"
  mv fuzz-0.log "logs/$t.fuzz.log"
  date -u +"end $t %H:%M:%S"
done
