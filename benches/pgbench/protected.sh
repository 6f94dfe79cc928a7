# Step 6 of benches/pgbench.sh, sourced by it (uses its variables and
# functions): pgbench -S as a user whose pgbench_accounts rows are limited by
# a row policy on bid, through pgward and directly.
#
# pgbench -S draws aid uniformly from 1 .. 100000 * scale, where it reads the
# scale as count(*) of pgbench_branches; pgbench -i gives branch b the
# accounts (b - 1) * 100000 + 1 .. b * 100000. The policy admits branches
# 1 .. ceil(SCALE / 2) (a global, so the forwarded SQL carries the list as
# typed literals) and leaves pgbench_branches unpoliced, so pgbench still
# draws from every account: about half of the lookups find their row, the
# other half name an existing account the policy hides and get no row.
#
# Targets, interleaved per repeat:
#   direct      BENCH_USER straight to PostgreSQL, no policy (the baseline)
#   direct-rls  READER_USER straight to PostgreSQL under PostgreSQL's own RLS
#               with the same predicate (what the database achieves itself)
#   pgward      READER_USER through pgward under the pgward policy

protected_step() {
  local visible naccounts policies cfg port targets t k r v mode c j reader_verifier
  mode="$PROTECTED_MODE"
  c="$PROTECTED_CLIENTS"
  j=$((c < 2 ? c : 2))
  visible=$(((SCALE + 1) / 2))
  naccounts=$((SCALE * 100000))

  section "6. protected: pgbench -S -M $mode -c $c under a row policy on bid (branches 1..$visible of $SCALE)," \
    "${DURATION}s per run, repeat $REPEAT (median)"

  reader_verifier="$(scram_verifier "$READER_USER")"
  policies="$work/policies-protected"
  mkdir -p "$policies"
  cat >"$policies/10_protected.sql" <<SQL
-- pgbench.sh step 6: $READER_USER reads the accounts of branches 1..$visible only.
CREATE ROLE branch_reader;
CREATE USER $READER_USER PASSWORD '$reader_verifier' IN ROLE branch_reader;
GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO branch_reader;
CREATE GLOBAL reader_branches FOR ROLE branch_reader REQUIRED
  AS SELECT bid FROM pgbench_branches WHERE bid <= $visible;
CREATE POLICY own_branches ON pgbench_accounts FOR SELECT TO branch_reader
  USING (bid = ANY(@{reader_branches}));
SQL
  if [ "$as_root" = 1 ]; then chown -R postgres: "$policies"; fi

  targets=(direct pgward)
  if [ "$PROTECTED_RLS" = 1 ]; then
    # The same rows for READER_USER from PostgreSQL itself; the other roles
    # keep every row (a policy USING (true) costs them nothing measurable).
    su_psql -d "$DB" <<SQL
ALTER TABLE pgbench_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY bench_everything ON pgbench_accounts TO $SERVICE_ROLE, $BENCH_USER USING (true) WITH CHECK (true);
CREATE POLICY bench_own_branches ON pgbench_accounts FOR SELECT TO $READER_USER
  USING (bid = ANY ('{$(seq -s , 1 "$visible")}'::int4[]));
SQL
    targets=(direct direct-rls pgward)
  fi

  port="$(free_port)"
  cfg="$work/pgward-protected.toml"
  write_pgward_config "$cfg" "$port" "$POOL_SIZE" 1000 "$policies"
  run_user="$READER_USER" run_password="$READER_PASSWORD" \
    start_pgward "$cfg" "$work/logs/pgward-protected.log"
  port_of[pgward]="$port"
  port_of[direct-rls]="$pg_port"
  note "pgward on 127.0.0.1:$port (pid $pgward_pid) with $policies/10_protected.sql; $READER_USER logs in with SCRAM"

  # What the reader sees, through pgward and (with RLS) directly: fail
  # rather than measure a policy that is not applied.
  reader_psql() { # port SQL
    PGPASSWORD="$READER_PASSWORD" "$PSQL" -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" \
      -U "$READER_USER" -d "$DB" -c "$2"
  }
  local expect_rows=$((visible * 100000)) p seen first last
  for p in "$port" $([ "$PROTECTED_RLS" = 1 ] && echo "$pg_port"); do
    seen="$(reader_psql "$p" 'SELECT count(*) FROM pgbench_accounts')" || die "count as $READER_USER failed"
    first="$(reader_psql "$p" 'SELECT count(*) FROM pgbench_accounts WHERE aid = 1')" || die "lookup failed"
    last="$(reader_psql "$p" "SELECT count(*) FROM pgbench_accounts WHERE aid = $naccounts")" || die "lookup failed"
    [ "$seen" = "$expect_rows" ] && [ "$first" = 1 ] && [ "$last" = 0 ] ||
      die "port $p: $READER_USER sees $seen accounts (expected $expect_rows), aid 1: $first row(s), aid $naccounts: $last"
  done
  note "$READER_USER sees $expect_rows of $naccounts accounts (aid 1 visible, aid $naccounts hidden)"

  # The statement pgward forwards for pgbench's lookup, and its plan.
  local point="SELECT abalance FROM pgbench_accounts WHERE aid = 1" plan scan
  printf '\n  pgward explain --user %s "%s":\n' "$READER_USER" "$point"
  "$pgward_bin" explain --config "$cfg" --user "$READER_USER" "$point" 2>>"$work/logs/pgward-explain.log" |
    sed 's/^/    /' || note "pgward explain failed: $(tail -n 5 "$work/logs/pgward-explain.log")"
  plan="$(reader_psql "$port" "EXPLAIN $point")" || die "EXPLAIN through pgward failed"
  printf '\n  EXPLAIN through pgward as %s:\n' "$READER_USER"
  printf '%s\n' "$plan" | sed 's/^/    /'
  if grep -q 'Index' <<<"$plan"; then scan="index scan"; else scan="NO index scan"; fi
  if grep -q 'Seq Scan' <<<"$plan"; then scan+=", sequential scan of pgbench_accounts"; fi
  note "forwarded point query: $scan"
  if [ "$PROTECTED_RLS" = 1 ]; then
    printf '\n  EXPLAIN directly as %s (PostgreSQL RLS):\n' "$READER_USER"
    reader_psql "$pg_port" "EXPLAIN $point" | sed 's/^/    /'
  fi
  echo

  declare -A p_runs=() p_tps=()
  for r in $(seq 1 "$REPEAT"); do
    for k in $(seq 0 $((${#targets[@]} - 1))); do
      t="${targets[$(((k + r - 1) % ${#targets[@]}))]}"
      if [ "$t" = direct ]; then
        v="$(run_pgbench "$t" "protected-$mode-c$c" -S -M "$mode" -c "$c" -j "$j" -T "$DURATION")"
      else
        v="$(run_user="$READER_USER" run_password="$READER_PASSWORD" \
          run_pgbench "$t" "protected-$mode-c$c" -S -M "$mode" -c "$c" -j "$j" -T "$DURATION")"
      fi
      p_runs[$t]+="$v "
      note "run $r: $t $(fmt_tps "$v") TPS"
    done
  done
  echo
  printf '%-11s %-14s %10s %7s\n' target user TPS ratio
  printf '%-11s %-14s %10s %7s\n' ----------- -------------- ---------- -------
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    p_tps[$t]="$(median ${p_runs[$t]})"
  done
  for t in "${targets[@]}"; do
    printf '%-11s %-14s %10s %7s\n' "$t" "$([ "$t" = direct ] && echo "$BENCH_USER" || echo "$READER_USER")" \
      "$(fmt_tps "${p_tps[$t]}")" "$(fmt_ratio "${p_tps[$t]}" "${p_tps[direct]}")"
  done
  echo
  pgward_log_report "$work/logs/pgward-protected.log"
  stop_pgward
}
