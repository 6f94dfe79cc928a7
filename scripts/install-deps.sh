#!/usr/bin/env bash
# Installs what pgward's build and tests need and a fresh machine lacks.
# Idempotent: installs only what is missing. Usage: scripts/install-deps.sh [build|test]
set -euo pipefail
what="${1:-test}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_missing=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || apt_missing+=("$1"); }

# Build: nothing beyond the Rust toolchain and a C compiler yet.
if [ "$what" = "test" ]; then
  command -v psql >/dev/null 2>&1 || need_pkg postgresql-client-15
fi

if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
fi

if [ "$what" = "test" ]; then
  # Python clients for the client-compatibility tests, in a project-local venv.
  root="$(cd "$(dirname "$0")/.." && pwd)"
  venv="$root/target/pyenv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c 'import psycopg, asyncpg' >/dev/null 2>&1; then
    echo "== installing Python clients (psycopg, asyncpg)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'psycopg[binary]==3.*' 'asyncpg==0.*'
  fi
fi
