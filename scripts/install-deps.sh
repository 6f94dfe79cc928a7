#!/usr/bin/env bash
# Installs what pgward's build and tests need and a fresh machine lacks.
# Idempotent: installs only what is missing.
#   scripts/install-deps.sh build   what building pgward needs
#   scripts/install-deps.sh test    that, plus the clients the tests drive
set -euo pipefail
what="${1:-test}"
root="$(cd "$(dirname "$0")/.." && pwd)"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_missing=()
if command -v dpkg >/dev/null 2>&1; then
  need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || apt_missing+=("$1"); }
  # libpg_query's build (bindgen) needs libclang and a C compiler.
  need_pkg clang
  need_pkg libclang-dev
  need_pkg protobuf-compiler
  if [ "$what" = "test" ]; then
    command -v psql >/dev/null 2>&1 || need_pkg postgresql-client-15
    # Clients and tools the tests and benchmarks drive.
    need_pkg pgbouncer
    need_pkg default-jdk-headless
    need_pkg libpostgresql-jdbc-java
    # A real LDAP directory for the LDAP identity tests (started by the test itself).
    need_pkg slapd
    need_pkg ldap-utils
  fi
  if [ "${#apt_missing[@]}" -gt 0 ]; then
    echo "== installing Debian packages: ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq </dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" </dev/null
  fi
else
  echo "no dpkg: assuming clang, libclang, psql, pgbouncer, a JDK and the PostgreSQL JDBC driver are installed"
fi

if [ "$what" = "test" ]; then
  # Python clients, in a project-local virtualenv.
  venv="$root/target/pyenv"
  if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$root/target"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c 'import psycopg, asyncpg' >/dev/null 2>&1; then
    echo "== installing Python clients (psycopg, asyncpg)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'psycopg[binary]==3.*' 'asyncpg==0.*'
  fi
  # node-postgres, in a project-local folder.
  if command -v npm >/dev/null 2>&1 && [ -f "$root/tests/clients/node/package.json" ] \
    && [ ! -d "$root/tests/clients/node/node_modules/pg" ]; then
    echo "== installing node-postgres"
    (cd "$root/tests/clients/node" && npm install --silent --no-audit --no-fund)
  fi
fi
