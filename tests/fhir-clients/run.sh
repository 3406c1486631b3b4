#!/usr/bin/env bash
# Outside-code check of the FHIR API: start a real server over a generated district and
# drive it with fhirpy and the fhir.resources R4B models (Python venv made here). Runs on
# SQLite, and on PostgreSQL too when DHP_TEST_POSTGRES_URL names a server (a throwaway
# database is created there and dropped after).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dhp="$root/target/release/dhp"
venv="$root/target/fhir-venv"
work="$(mktemp -d)"
server=""
pg_db=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  if [ -n "$pg_db" ]; then
    psql "$DHP_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$root/tests/fhir-clients/requirements.txt"

# Generate a district into $1, serve it, and run the client test against it.
check_backend() {
  local url="$1" log="$work/serve-$2.out"
  DHP_LOG=error "$dhp" generate --database "$url" --residents 2000 --seed 3 >/dev/null
  DHP_LOG=error DHP_EXPORT_DIR="$work/export-$2" "$dhp" serve --database "$url" --listen 127.0.0.1:0 >"$log" &
  server=$!
  for _ in $(seq 1 100); do grep -q "serving http" "$log" 2>/dev/null && break; sleep 0.1; done
  local base
  base="$(grep -o 'http://[0-9.:]*' "$log" | head -1)"
  [ -n "$base" ] || { echo "server did not start ($2)"; exit 1; }
  echo "== FHIR client test on $2"
  "$venv/bin/python" "$root/tests/fhir-clients/test_server.py" "$base"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}

check_backend "sqlite://$work/d.db" sqlite
if [ -n "${DHP_TEST_POSTGRES_URL:-}" ]; then
  pg_db="dhp_fhir_clients_$$"
  psql "$DHP_TEST_POSTGRES_URL" -q -c "CREATE DATABASE $pg_db" >/dev/null
  check_backend "${DHP_TEST_POSTGRES_URL%/*}/$pg_db" postgres
fi
