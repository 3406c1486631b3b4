#!/usr/bin/env bash
# Outside-code check of the FHIR API: start a real server over a generated district and
# drive it with fhirpy and the fhir.resources R4B models (Python venv made here).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dhp="$root/target/release/dhp"
venv="$root/target/fhir-venv"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$root/tests/fhir-clients/requirements.txt"

DHP_LOG=error "$dhp" generate --database "sqlite://$work/d.db" --residents 2000 --seed 3 >/dev/null
DHP_LOG=error "$dhp" serve --database "sqlite://$work/d.db" --listen 127.0.0.1:0 >"$work/serve.out" &
server=$!
for _ in $(seq 1 50); do grep -q "serving http" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
base="$(grep -o 'http://[0-9.:]*' "$work/serve.out" | head -1)"
[ -n "$base" ] || { echo "server did not start"; exit 1; }
"$venv/bin/python" "$root/tests/fhir-clients/test_server.py" "$base"
