#!/usr/bin/env bash
# pgbench through pgward, compared with PostgreSQL directly and with pgbouncer.
#
# Sets up everything in a temporary folder (a throwaway cluster, pgward,
# pgbouncer, all on 127.0.0.1) and removes it on exit:
#   1. build pgward (release), initdb, pgbench -i, service role, policies,
#      pgward and pgbouncer (both session pooling)
#   2. pgbench -S for each protocol mode x client count, targets interleaved
#   3. connection set-up rate (pgbench -C, SCRAM on every connection)
#   4. pgward's RSS with many idle clients
#   5. with PROFILE=1: a profile of pgward under a 10-client load (PROFILE_MODE)
#   6. protected: pgbench -S through pgward as a user whose pgbench_accounts rows
#      are limited by a row policy on bid, against direct (and PostgreSQL's own
#      RLS with the same predicate); the plan of the forwarded point query
#
# Environment:
#   PGWARD_BENCH_ONLY=  protected: set-up and step 6 only (no pgbouncer)
#   PROTECTED=1         0: skip step 6
#   PROTECTED_MODE=prepared  protocol mode of step 6
#   PROTECTED_CLIENTS=10     clients of step 6
#   PROTECTED_RLS=1     0: leave out the PostgreSQL-RLS reference target of step 6
#   SCALE=10            pgbench -i scale
#   DURATION=10         seconds per pgbench run
#   REPEAT=1            runs per cell and target; the table shows the median
#   MODES="simple extended prepared"
#   CLIENTS="1 10 50"
#   CONN_CLIENTS=4      clients of the connection-rate run
#   IDLE_CLIENTS=1000   idle clients of the RSS step (0 skips the step)
#   POLICY=grant        grant: bench user with table grants (statements rewritten);
#                       bypass: a BYPASSPOLICY role (statements forwarded as sent)
#   POOL_SIZE=60        pgward's upstream.pool_size and pgbouncer's default_pool_size
#   PROFILE=0           1: profile pgward (perf if usable, else callgrind)
#   PROFILE_MODE=prepared  protocol mode of the profiled run
#   PROFILER=           callgrind: use callgrind even if perf works
#   PROFILE_TXNS=2000   transactions per client of the callgrind run
#   SKIP_BUILD=0        1: use the existing target/release/pgward
#   PG_OPTS=            extra postgres options, e.g. "-c log_statement=all"
#   KEEP_LOGS=DIR       copy the logs (pgbench, pgward, PostgreSQL, pgbouncer) to DIR
#   PG_BINDIR           folder with initdb, postgres, pg_ctl, pgbench, psql
#   PGWARD_TEST_PYTHON  Python with asyncpg or psycopg for the idle clients
#                       (default: target/pyenv, then python3; else psql)
#   HOLD_WITH=psql      hold the idle clients with psql processes, not Python
#
# Runs as a normal user or as root (then PostgreSQL and pgbouncer run as the
# `postgres` OS user through runuser).
set -euo pipefail

started=$SECONDS
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
here="$root/benches/pgbench"

SCALE="${SCALE:-10}"
DURATION="${DURATION:-10}"
REPEAT="${REPEAT:-1}"
MODES="${MODES:-simple extended prepared}"
CLIENTS="${CLIENTS:-1 10 50}"
CONN_CLIENTS="${CONN_CLIENTS:-4}"
IDLE_CLIENTS="${IDLE_CLIENTS:-1000}"
POOL_SIZE="${POOL_SIZE:-60}"
PROFILE="${PROFILE:-0}"
PROFILE_MODE="${PROFILE_MODE:-prepared}"
PROFILE_TXNS="${PROFILE_TXNS:-2000}"
SKIP_BUILD="${SKIP_BUILD:-0}"
POLICY="${POLICY:-grant}"
ONLY="${PGWARD_BENCH_ONLY:-}"
PROTECTED="${PROTECTED:-1}"
PROTECTED_MODE="${PROTECTED_MODE:-prepared}"
PROTECTED_CLIENTS="${PROTECTED_CLIENTS:-10}"
PROTECTED_RLS="${PROTECTED_RLS:-1}"
case "$ONLY" in
  "" | protected) ;;
  *) echo "pgbench.sh: PGWARD_BENCH_ONLY must be empty or protected" >&2 && exit 1 ;;
esac

DB=bench
BENCH_USER=benchuser
BENCH_PASSWORD=bench
# Step 6: the policy-bound user (pgward) and its direct twin (PostgreSQL RLS).
READER_USER=benchreader
READER_PASSWORD=reader
SERVICE_ROLE=pgward_service

section() { printf '\n==== %s ====\n' "$*"; }
note() { printf '  %s\n' "$*"; }
die() {
  printf 'pgbench.sh: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- tools

find_bindir() {
  local d
  for d in "${PG_BINDIR:-}" "${PGWARD_PG_BINDIR:-}" /usr/lib/postgresql/15/bin; do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pgbench" ]; then
      echo "$d"
      return
    fi
  done
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir)"
    if [ -x "$d/initdb" ] && [ -x "$d/pgbench" ]; then
      echo "$d"
      return
    fi
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pgbench" ]; then
    echo "$d"
    return
  fi
  die "no PostgreSQL binaries found (initdb, pgbench); set PG_BINDIR"
}

bindir="$(find_bindir)"
PGBENCH="$bindir/pgbench"
PSQL="$bindir/psql"
PGBOUNCER="$(command -v pgbouncer || true)"
[ -n "$PGBOUNCER" ] || [ ! -x /usr/sbin/pgbouncer ] || PGBOUNCER=/usr/sbin/pgbouncer
[ -n "$PGBOUNCER" ] || [ "$ONLY" = protected ] || die "pgbouncer not found (scripts/install-deps.sh test installs it)"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) not found"

if [ "$(id -u)" -eq 0 ]; then
  as_root=1
  runuser_bin="$(command -v runuser || true)"
  [ -n "$runuser_bin" ] || die "running as root needs runuser (util-linux)"
  id postgres >/dev/null 2>&1 || die "running as root needs an OS user 'postgres'"
  as_pg() { "$runuser_bin" -u postgres -- "$@"; }
else
  as_root=0
  as_pg() { "$@"; }
fi

# A port on 127.0.0.1 that was free a moment ago.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  local p i
  for i in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    if ! (: </dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "cannot find a free port"
}

# ---------------------------------------------------------------- cleanup

work=""
pg_started=0
pgward_pid=""
bouncer_started=0
holder_pid=""
perf_pid=""
psql_pids=()

stop_pid() { # pid [seconds]: TERM, wait, then KILL
  local pid="$1" wait_s="${2:-10}" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 $((wait_s * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_pgward() {
  stop_pid "$pgward_pid" 15
  pgward_pid=""
}

stop_bouncer() {
  local pid
  if [ "$bouncer_started" = 1 ] && [ -f "$work/pgbouncer/pgbouncer.pid" ]; then
    pid="$(cat "$work/pgbouncer/pgbouncer.pid" 2>/dev/null || true)"
    if [ -n "$pid" ]; then
      # Not our child (it daemonised, as another user when root): poll.
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  bouncer_started=0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$perf_pid" ]; then stop_pid "$perf_pid" 5; fi
  if [ -n "$holder_pid" ]; then
    [ -z "$work" ] || touch "$work/release" 2>/dev/null
    stop_pid "$holder_pid" 5
  fi
  local p
  for p in "${psql_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${psql_pids[@]}"; do wait "$p" 2>/dev/null; done
  stop_pgward
  stop_bouncer
  if [ "$pg_started" = 1 ]; then
    as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate -w -t 30 stop >/dev/null 2>&1
  fi
  if [ -n "${KEEP_LOGS:-}" ] && [ -n "$work" ] && [ -d "$work" ]; then
    mkdir -p "$KEEP_LOGS" && cp -r "$work/logs" "$work/postgres.log" "$work/pgbouncer/pgbouncer.log" "$KEEP_LOGS/" 2>/dev/null
    printf 'logs kept in %s\n' "$KEEP_LOGS" >&2
  fi
  if [ -n "$work" ] && [ -d "$work" ]; then
    cd /
    rm -rf "$work"
  fi
  if [ "$rc" -ne 0 ]; then
    printf '\npgbench.sh: failed (exit %s) after %ss\n' "$rc" "$((SECONDS - started))" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- 1. setup

section "1. set-up"

if [ "$SKIP_BUILD" != 1 ]; then
  note "cargo build --release"
  (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
fi
pgward_bin="$root/target/release/pgward"
[ -x "$pgward_bin" ] || die "$pgward_bin is missing"

work="$(mktemp -d "${TMPDIR:-/tmp}/pgward-bench.XXXXXX")"
chmod 755 "$work"
mkdir -p "$work/logs" "$work/policies" "$work/pgbouncer" "$work/cpu"
cd "$work"

# File descriptors: 2 per proxied client (client + upstream socket).
want_fds=$((IDLE_CLIENTS * 2 + 1000))
[ "$want_fds" -ge 4096 ] || want_fds=4096
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

pg_port="$(free_port)"
max_conn=$((IDLE_CLIENTS + 100))
[ "$max_conn" -ge 1100 ] || max_conn=1100
# The superuser's connections go over the unix socket (trust); TCP needs SCRAM.
if [ "$as_root" = 1 ]; then chown -R postgres: "$work"; fi
as_pg "$bindir/initdb" -D "$work/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --encoding=UTF8 --no-locale --no-sync --no-instructions >"$work/logs/initdb.log" 2>&1 ||
  die "initdb failed: $(tail -n 20 "$work/logs/initdb.log")"
pg_opts="-c listen_addresses=127.0.0.1 -p $pg_port -k $work -c max_connections=$max_conn"
pg_opts+=" -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
pg_opts+=" -c logging_collector=off -c log_line_prefix=%m ${PG_OPTS:-}"
pg_started=1
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/postgres.log" -o "$pg_opts" -w -t 60 start \
  >"$work/logs/pg_ctl.log" 2>&1 || die "PostgreSQL did not start: $(tail -n 20 "$work/postgres.log")"
note "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (max_connections=$max_conn)"

su_psql() { # as the superuser over the unix socket
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$pg_port" -U postgres "$@"
}
su_psql -d postgres -c "CREATE DATABASE $DB"
note "pgbench -i -s $SCALE"
"$PGBENCH" -i -s "$SCALE" -q -h "$work" -p "$pg_port" -U postgres "$DB" >"$work/logs/pgbench-init.log" 2>&1 ||
  die "pgbench -i failed: $(tail -n 20 "$work/logs/pgbench-init.log")"

service_password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# The service role is what pgward connects as; benchuser is the same login for
# direct runs and pgbouncer (pgbouncer authenticates clients with its SCRAM
# verifier and logs in upstream with it).
su_psql -d "$DB" <<SQL
CREATE ROLE $SERVICE_ROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$service_password';
CREATE ROLE $BENCH_USER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$BENCH_PASSWORD';
CREATE ROLE $READER_USER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$READER_PASSWORD';
GRANT USAGE ON SCHEMA public TO $SERVICE_ROLE, $BENCH_USER, $READER_USER;
GRANT SELECT, INSERT, UPDATE, DELETE
  ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history
  TO $SERVICE_ROLE, $BENCH_USER;
GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO $READER_USER;
SQL
scram_verifier() { # role
  local v
  v="$(su_psql -d postgres -At -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$1'")"
  case "$v" in SCRAM-SHA-256\$*) ;; *) die "unexpected verifier for $1" ;; esac
  echo "$v"
}
verifier="$(scram_verifier "$BENCH_USER")"

# pgward: the same user, with the same SCRAM verifier as in PostgreSQL.
# POLICY=grant: a policy-bound user with table grants (every statement is
# secured, printed and verified); POLICY=bypass: a BYPASSPOLICY role
# (statements forwarded as sent).
case "$POLICY" in
  grant)
    {
      echo "CREATE ROLE bench;"
      echo "CREATE USER $BENCH_USER PASSWORD '$verifier' IN ROLE bench;"
      for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
        echo "GRANT SELECT, INSERT, UPDATE, DELETE ON $t TO bench;"
      done
    } >"$work/policies/10_bench.sql"
    ;;
  bypass)
    {
      echo "CREATE ROLE bench BYPASSPOLICY;"
      echo "CREATE USER $BENCH_USER PASSWORD '$verifier' IN ROLE bench;"
    } >"$work/policies/10_bench.sql"
    ;;
  *) die "POLICY must be grant or bypass" ;;
esac
write_pgward_config() { # file port pool_size max_connections [policies folder]
  cat >"$1" <<TOML
[server]
listen = "127.0.0.1:$2"
tls = "disable"
max_connections = $4

[upstream]
url = "postgres://$SERVICE_ROLE:$service_password@127.0.0.1:$pg_port/$DB"
tls = "disable"
pool_size = $3

[policies]
paths = ["${5:-$work/policies}/*.sql"]

[auth]
secret = "pgbench-$service_password"
TOML
}

# Starts pgward in the background with config $1, log $2; sets pgward_pid.
# $3: a command prefix (profiler) or empty. Ready once run_user (default
# BENCH_USER) can run a query through it.
start_pgward() {
  local cfg="$1" log="$2" port
  shift 2
  stop_pgward # one instance at a time
  port="$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$cfg")"
  NO_COLOR=1 PGWARD_LOG="${PGWARD_LOG:-info}" "$@" "$pgward_bin" serve --config "$cfg" >"$log" 2>&1 &
  pgward_pid=$!
  local i
  for i in $(seq 1 300); do
    if ! kill -0 "$pgward_pid" 2>/dev/null; then
      wait "$pgward_pid" 2>/dev/null || true
      pgward_pid=""
      die "pgward exited at start: $(tail -n 20 "$log")"
    fi
    if PGPASSWORD="${run_password:-$BENCH_PASSWORD}" "$PSQL" -X -At -h 127.0.0.1 -p "$port" \
      -U "${run_user:-$BENCH_USER}" -d "$DB" -c 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  die "pgward did not accept connections within 60s: $(tail -n 20 "$log")"
}

# ---------------------------------------------------------------- pgbench

# run_pgbench TARGET LABEL ARGS... -> prints the TPS (or ERR); keeps the output.
# As run_user / run_password when set (default BENCH_USER).
run_pgbench() {
  local target="$1" label="$2" out rc tps failed pid ticks0="" ticks1="" txns
  shift 2
  out="$(mktemp "$work/logs/$target-$label.XXXXXX")"
  pid="$(proxy_pid "$target")"
  [ -z "$pid" ] || ticks0="$(cpu_ticks "$pid")"
  rc=0
  PGPASSWORD="${run_password:-$BENCH_PASSWORD}" timeout --kill-after=10 $((DURATION * 3 + 120)) \
    "$PGBENCH" -n -h 127.0.0.1 -p "${port_of[$target]}" -U "${run_user:-$BENCH_USER}" "$@" "$DB" >"$out" 2>&1 || rc=$?
  [ -z "$pid" ] || ticks1="$(cpu_ticks "$pid")"
  tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -n 1)"
  failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -n 1)"
  txns="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out" | head -n 1)"
  # The proxy's CPU time (user + system, all threads) per transaction.
  if [ -n "$ticks0" ] && [ -n "$ticks1" ] && [ "${txns:-0}" -gt 0 ]; then
    awk -v d=$((ticks1 - ticks0)) -v n="$txns" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f\n", d * 1e6 / hz / n}' \
      >>"$work/cpu/$target-$label"
  fi
  if [ "$rc" -ne 0 ] || [ -z "$tps" ] || { [ -n "$failed" ] && [ "$failed" != 0 ]; }; then
    {
      printf '  ! %s %s: pgbench exit %s, failed transactions %s; last lines:\n' "$target" "$label" "$rc" "${failed:-?}"
      grep -v '^progress' "$out" | tail -n 8 | sed 's/^/      /'
    } >&2
    echo ERR
    return 0
  fi
  echo "$tps"
}

CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
# The proxy process behind a target (none for direct).
proxy_pid() {
  case "$1" in
    pgward) echo "${pgward_pid:-}" ;;
    pgbouncer) cat "$work/pgbouncer/pgbouncer.pid" 2>/dev/null || true ;;
  esac
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || true; }
# Median CPU microseconds per transaction of TARGET in runs labelled LABEL.
cpu_of() {
  local f="$work/cpu/$1-$2"
  if [ -s "$f" ]; then
    # shellcheck disable=SC2046
    median $(cat "$f") | awk '{ if ($1 == "ERR") print "-"; else printf "%.1f", $1 }'
  else
    echo "-"
  fi
}

median() {
  printf '%s\n' "$@" | { grep -v '^ERR$' || true; } | sort -g |
    awk '{a[NR]=$1} END {if (NR==0) print "ERR"; else if (NR%2) print a[(NR+1)/2]; else printf "%.6f\n", (a[NR/2]+a[NR/2+1])/2}'
}

fmt_tps() { # value
  if [ "$1" = ERR ]; then echo ERR; else printf '%.0f' "$1"; fi
}
fmt_ratio() { # value base
  if [ "$1" = ERR ] || [ "$2" = ERR ]; then echo "-"; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; fi
}

# ---------------------------------------------------------------- pgward's log

pgward_log_report() { # log
  local log="$1" n
  n="$(grep -cE ' (WARN|ERROR) ' "$log" || true)"
  if [ "${n:-0}" -gt 0 ]; then
    note "pgward logged $n warnings/errors; the most frequent:"
    { grep -E ' (WARN|ERROR) ' "$log" | sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' | sort | uniq -c | sort -rn |
      head -n 8 | cut -c 1-220 | sed 's/^/    /'; } || true
  else
    note "pgward logged no warnings or errors"
  fi
}

# ---------------------------------------------------------------- targets

declare -A port_of=([direct]="$pg_port")

# shellcheck source=benches/pgbench/protected.sh
. "$here/protected.sh"
# PGWARD_BENCH_ONLY=protected: no pgbouncer, no steps 2-5.
if [ "$ONLY" = protected ]; then
  protected_step
  section "done in $((SECONDS - started))s"
  exit 0
fi

pgward_port="$(free_port)"
write_pgward_config "$work/pgward.toml" "$pgward_port" "$POOL_SIZE" 1000
start_pgward "$work/pgward.toml" "$work/logs/pgward.log"
note "pgward on 127.0.0.1:$pgward_port (pid $pgward_pid, upstream.pool_size=$POOL_SIZE, tls disabled, POLICY=$POLICY)"

# pgbouncer
bouncer_port="$(free_port)"
printf '"%s" "%s"\n' "$BENCH_USER" "$verifier" >"$work/pgbouncer/userlist.txt"
cat >"$work/pgbouncer/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=$pg_port dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $work/pgbouncer/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = $POOL_SIZE
logfile = $work/pgbouncer/pgbouncer.log
pidfile = $work/pgbouncer/pgbouncer.pid
INI
chmod 600 "$work/pgbouncer/userlist.txt"
if [ "$as_root" = 1 ]; then chown -R postgres: "$work/pgbouncer"; fi
bouncer_started=1
as_pg "$PGBOUNCER" -d -q "$work/pgbouncer/pgbouncer.ini" >"$work/logs/pgbouncer-start.log" 2>&1 ||
  die "pgbouncer did not start: $(cat "$work/logs/pgbouncer-start.log" "$work/pgbouncer/pgbouncer.log" 2>/dev/null | tail -n 20)"
for _ in $(seq 1 100); do
  if PGPASSWORD="$BENCH_PASSWORD" "$PSQL" -X -At -h 127.0.0.1 -p "$bouncer_port" -U "$BENCH_USER" -d "$DB" \
    -c 'SELECT 1' >/dev/null 2>&1; then
    break
  fi
  sleep 0.1
done
PGPASSWORD="$BENCH_PASSWORD" "$PSQL" -X -At -h 127.0.0.1 -p "$bouncer_port" -U "$BENCH_USER" -d "$DB" \
  -c 'SELECT 1' >/dev/null || die "cannot connect through pgbouncer: $(tail -n 20 "$work/pgbouncer/pgbouncer.log")"
note "pgbouncer $("$PGBOUNCER" --version | head -n 1 | awk '{print $2}') on 127.0.0.1:$bouncer_port" \
  "(pool_mode=session, default_pool_size=$POOL_SIZE, auth_type=scram-sha-256 with the user's SCRAM verifier)"
note "all targets: user $BENCH_USER, SCRAM-SHA-256, no TLS, TCP to 127.0.0.1"

port_of[pgward]="$pgward_port"
port_of[pgbouncer]="$bouncer_port"
TARGETS=(direct pgward pgbouncer)

# ---------------------------------------------------------------- 2. select-only

section "2. pgbench -S (select-only), ${DURATION}s per run, scale $SCALE, repeat $REPEAT (median)"
declare -A tps_of=() runs=()
for mode in $MODES; do
  for c in $CLIENTS; do
    j=$((c < 2 ? c : 2))
    runs=()
    for r in $(seq 1 "$REPEAT"); do
      # Rotate the order per repeat so that drift does not favour a target.
      for k in 0 1 2; do
        t="${TARGETS[$(((k + r - 1) % 3))]}"
        v="$(run_pgbench "$t" "$mode-c$c" -S -M "$mode" -c "$c" -j "$j" -T "$DURATION")"
        runs[$t]+="$v "
      done
    done
    for t in "${TARGETS[@]}"; do
      # shellcheck disable=SC2086
      tps_of[$mode:$c:$t]="$(median ${runs[$t]})"
    done
    printf '  %-9s c=%-3s direct %8s  pgward %8s  pgbouncer %8s\n' "$mode" "$c" \
      "$(fmt_tps "${tps_of[$mode:$c:direct]}")" "$(fmt_tps "${tps_of[$mode:$c:pgward]}")" \
      "$(fmt_tps "${tps_of[$mode:$c:pgbouncer]}")"
  done
done

echo
note "CPU: the proxy process's CPU time (user + system, every thread) per transaction, in microseconds"
printf '%-9s %7s %12s %20s %20s %11s %11s\n' mode clients "direct TPS" "pgward TPS (ratio)" "pgbouncer TPS (ratio)" \
  "pgward CPU" "pgbouncer CPU"
printf '%-9s %7s %12s %20s %20s %11s %11s\n' --------- ------- ------------ -------------------- -------------------- \
  ----------- -----------
for mode in $MODES; do
  for c in $CLIENTS; do
    d="${tps_of[$mode:$c:direct]}"
    w="${tps_of[$mode:$c:pgward]}"
    b="${tps_of[$mode:$c:pgbouncer]}"
    printf '%-9s %7s %12s %20s %20s %11s %11s\n' "$mode" "$c" "$(fmt_tps "$d")" \
      "$(fmt_tps "$w") ($(fmt_ratio "$w" "$d"))" "$(fmt_tps "$b") ($(fmt_ratio "$b" "$d"))" \
      "$(cpu_of pgward "$mode-c$c")" "$(cpu_of pgbouncer "$mode-c$c")"
  done
done

# ---------------------------------------------------------------- 3. connection rate

section "3. connection set-up rate: pgbench -C -S -c $CONN_CLIENTS, ${DURATION}s (SCRAM on every connection)"
cj=$((CONN_CLIENTS < 2 ? CONN_CLIENTS : 2))
declare -A conn_runs=() conn_of=()
for r in $(seq 1 "$REPEAT"); do
  for k in 0 1 2; do
    t="${TARGETS[$(((k + r - 1) % 3))]}"
    v="$(run_pgbench "$t" "connect" -C -S -M simple -c "$CONN_CLIENTS" -j "$cj" -T "$DURATION")"
    conn_runs[$t]+="$v "
  done
done
note "pgward and pgbouncer keep upstream connections pooled: a new client costs them a SCRAM exchange,"
note "direct PostgreSQL a SCRAM exchange and a new backend process."
printf '%-10s %14s %7s\n' target "connections/s" ratio
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  v="$(median ${conn_runs[$t]})"
  conn_of[$t]="$v"
done
for t in "${TARGETS[@]}"; do
  printf '%-10s %14s %7s\n' "$t" "$(fmt_tps "${conn_of[$t]}")" "$(fmt_ratio "${conn_of[$t]}" "${conn_of[direct]}")"
done

echo
pgward_log_report "$work/logs/pgward.log"

# ---------------------------------------------------------------- 4. RSS

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
upstream_backends() {
  su_psql -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$SERVICE_ROLE'" 2>/dev/null || echo "?"
}

pick_python() {
  local py
  for py in "${PGWARD_TEST_PYTHON:-}" "$root/target/pyenv/bin/python" "$(command -v python3 || true)"; do
    if [ -n "$py" ] && [ -x "$py" ] &&
      "$py" -c 'import importlib.util as u, sys; sys.exit(0 if (u.find_spec("asyncpg") or u.find_spec("psycopg")) else 1)' 2>/dev/null; then
      echo "$py"
      return
    fi
  done
}

if [ "$IDLE_CLIENTS" -gt 0 ]; then
  section "4. pgward RSS with $IDLE_CLIENTS idle clients"
  # The benchmark instances hold pooled upstream connections; make room.
  stop_pgward
  stop_bouncer
  rss_port="$(free_port)"
  write_pgward_config "$work/pgward-rss.toml" "$rss_port" "$IDLE_CLIENTS" $((IDLE_CLIENTS + 100))
  start_pgward "$work/pgward-rss.toml" "$work/logs/pgward-rss.log"
  sleep 1
  rss_before="$(rss_kb "$pgward_pid")"
  note "pgward (pid $pgward_pid, upstream.pool_size=$IDLE_CLIENTS, open files limit $(ulimit -n))"
  note "RSS before: $((rss_before / 1024)) MiB ($rss_before kB), after start-up (the readiness probe connected once)"

  python=""
  [ "${HOLD_WITH:-}" = psql ] || python="$(pick_python)"
  opened=0
  if [ -n "$python" ]; then
    note "opening $IDLE_CLIENTS connections from one process: $python $here/hold_connections.py"
    rm -f "$work/ready" "$work/release"
    "$python" "$here/hold_connections.py" 127.0.0.1 "$rss_port" "$BENCH_USER" "$BENCH_PASSWORD" "$DB" \
      "$IDLE_CLIENTS" "$work/ready" "$work/release" >"$work/logs/holder.log" 2>&1 &
    holder_pid=$!
    t0=$SECONDS
    while [ ! -f "$work/ready" ] && kill -0 "$holder_pid" 2>/dev/null && [ $((SECONDS - t0)) -lt 600 ]; do
      sleep 0.5
    done
    [ -f "$work/ready" ] || die "the connection holder gave up: $(tail -n 20 "$work/logs/holder.log")"
    read -r opened failed first_error <"$work/ready"
    note "opened $opened, failed $failed in $((SECONDS - t0))s${first_error:+ (first error / driver: $first_error)}"
  else
    # Each psql connects, then waits on the FIFO; closing our end (the only
    # writer) ends them all.
    note "$IDLE_CLIENTS psql processes waiting on a FIFO (HOLD_WITH=psql, or no Python with asyncpg/psycopg)"
    mkfifo "$work/hold.fifo"
    exec 9<>"$work/hold.fifo"
    t0=$SECONDS
    for _ in $(seq 1 "$IDLE_CLIENTS"); do
      PGPASSWORD="$BENCH_PASSWORD" "$PSQL" -X -q -h 127.0.0.1 -p "$rss_port" -U "$BENCH_USER" -d "$DB" \
        <"$work/hold.fifo" >/dev/null 2>>"$work/logs/psql-hold.log" 9>&- &
      psql_pids+=($!)
    done
    # Each psql is connected once pgward holds an upstream connection for it.
    while [ $((SECONDS - t0)) -lt 300 ]; do
      n="$(upstream_backends)"
      [ "$n" != "?" ] && [ "$n" -ge "$IDLE_CLIENTS" ] && break
      alive=0
      for p in "${psql_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
      [ "$alive" -gt 0 ] || break
      sleep 1
    done
    opened="$(upstream_backends)"
    note "upstream sessions: $opened after $((SECONDS - t0))s"
  fi
  sleep 1
  rss_with="$(rss_kb "$pgward_pid")"
  note "upstream backends of $SERVICE_ROLE: $(upstream_backends)"
  note "RSS with $opened idle clients: $((rss_with / 1024)) MiB ($rss_with kB)"
  if [ "${opened:-0}" -gt 0 ] 2>/dev/null; then
    note "per client: $(((rss_with - rss_before) / opened)) kB"
  fi

  if [ -n "$holder_pid" ]; then
    touch "$work/release"
    wait "$holder_pid" 2>/dev/null || true
    holder_pid=""
  else
    exec 9>&-
    for p in "${psql_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    psql_pids=()
  fi
  sleep 2
  note "RSS after they left: $(($(rss_kb "$pgward_pid") / 1024)) MiB (peak $(($(hwm_kb "$pgward_pid") / 1024)) MiB;" \
    "pooled idle upstream connections: $(upstream_backends))"
  pgward_log_report "$work/logs/pgward-rss.log"
  stop_pgward
fi

# ---------------------------------------------------------------- 5. profile

perf_usable() {
  command -v perf >/dev/null 2>&1 || return 1
  perf stat -e instructions true >/dev/null 2>&1 || return 1
  # In VMs without a PMU the hardware event is "not supported" yet perf
  # succeeds; the software clock is still good for sampling.
  perf record -q -e cpu-clock -o "$work/perf-probe.data" -- true >/dev/null 2>&1 || return 1
  rm -f "$work/perf-probe.data"
}

# Fills pgward's pool (each new upstream connection costs a SCRAM exchange),
# so that the profile shows the steady state.
warm_up() {
  local v
  v="$(run_pgbench profiled "warm-up" -S -M "$PROFILE_MODE" -c 10 -j 2 -t 20)"
  [ "$v" != ERR ] || note "warm-up run failed"
}

if [ "$PROFILE" = 1 ]; then
  section "5. profile: pgbench -S -M $PROFILE_MODE -c 10 against pgward"
  prof_port="$(free_port)"
  write_pgward_config "$work/pgward-prof.toml" "$prof_port" "$POOL_SIZE" 1000
  port_of[profiled]="$prof_port"
  if [ "${PROFILER:-}" != callgrind ] && perf_usable; then
    start_pgward "$work/pgward-prof.toml" "$work/logs/pgward-prof.log"
    warm_up
    note "perf record -g -e cpu-clock on pgward pid $pgward_pid for ${DURATION}s"
    perf record -q -g -e cpu-clock -F 999 -p "$pgward_pid" -o "$work/perf.data" -- sleep $((DURATION + 1)) \
      >"$work/logs/perf.log" 2>&1 &
    perf_pid=$!
    v="$(run_pgbench profiled "profile" -S -M "$PROFILE_MODE" -c 10 -j 2 -T "$DURATION")"
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
    note "tps under perf: $(fmt_tps "$v")"
    top_symbols() {
      { perf report -i "$work/perf.data" --stdio --no-children -g none --percent-limit 0.3 \
        -F overhead,sym "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c 1-150 | head -n 30; } || true
    }
    printf '\n  top functions, all (kernel [k] and user [.]):\n'
    top_symbols
    printf '\n  top functions in the pgward binary (%% of all samples):\n'
    top_symbols --dsos "$(basename "$pgward_bin")"
  elif command -v valgrind >/dev/null 2>&1; then
    note "perf not usable: valgrind --tool=callgrind, $PROFILE_TXNS transactions per client"
    start_pgward "$work/pgward-prof.toml" "$work/logs/pgward-prof.log" \
      valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out"
    warm_up
    callgrind_control -i on "$pgward_pid" >/dev/null 2>&1 || note "callgrind_control -i on failed: no profile"
    v="$(run_pgbench profiled "profile" -S -M "$PROFILE_MODE" -c 10 -j 2 -t "$PROFILE_TXNS")"
    note "tps under callgrind: $(fmt_tps "$v")"
    stop_pid "$pgward_pid" 60
    pgward_pid=""
    echo
    { callgrind_annotate --auto=no "$work/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {p = 1} p' |
      cut -c 1-200 | head -n 40; } || true
  else
    note "neither perf nor valgrind is usable: no profile"
  fi
  stop_pgward
fi

# ---------------------------------------------------------------- 6. protected

if [ "$PROTECTED" = 1 ]; then
  protected_step
fi

section "done in $((SECONDS - started))s"
