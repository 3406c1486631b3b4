#!/usr/bin/env bash
# Outside cross-check of the indicator engine: generate a district (which counts its
# indicators), export its records to CSV, recompute the indicators with DuckDB from SQL
# definitions, and require every numerator and denominator to be equal (Python venv
# with duckdb made here).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dhp="$root/target/release/dhp"
venv="$root/target/duckdb-venv"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$root/tests/duckdb/requirements.txt"

DHP_LOG=error "$dhp" generate --database "sqlite://$work/district.db" --residents 3000 --seed 5 >/dev/null
echo "== indicator cross-check with DuckDB"
"$venv/bin/python" "$root/tests/duckdb/crosscheck.py" "$work/district.db" "$work/csv"
