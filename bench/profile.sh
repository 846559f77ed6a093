#!/usr/bin/env bash
# Where the server's time goes under the 64-connection load: `perf record` (Debian's
# linux-perf; `apt-get install -y linux-perf`) on `idverdict serve` (SQLite, pinned to core 0)
# while the load generator (core 1) drives 64 keep-alive connections, then the flat profile
# (self time per symbol) and the time per thread (the tokio workers vs SQLite's driver thread).
#
#   bench/profile.sh [SECONDS] [DATABASE]   (default 15 s, sqlite; DATABASE=postgres for PG)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-15}
DBKIND=${2:-sqlite}
SECRET=whsec_bench_secret
command -v perf >/dev/null || { echo "perf is needed: apt-get install -y linux-perf" >&2; exit 1; }
cargo build --release -q -p idverdict-cli --bin idverdict --example loadgen
WORK=$(mktemp -d -p "${BENCH_DIR:-$ROOT/target}")
PGDB=idv_profile_$$
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB" postgres 2>/dev/null || true; rm -rf "$WORK"' EXIT
if [ "$DBKIND" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" postgres
  URL="postgres://postgres@127.0.0.1:5432/$PGDB"
else
  URL="sqlite://$WORK/idverdict.db"
fi
STRIPE_WEBHOOK_SECRET=$SECRET IDVERDICT_API_TOKEN=bench-token-0123456789 IDVERDICT_LISTEN=127.0.0.1:0 \
  IDVERDICT_DATA_DIR="$WORK" DATABASE_URL="$URL" IDVERDICT_LOG=warn IDVERDICT_RECONCILE=off \
  taskset -c 0 "${IDVERDICT_BIN:-$ROOT/target/release/idverdict}" serve >"$WORK/out" 2>/dev/null &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
hook=$(awk '/listening on/ {print $NF}' "$WORK/out")
taskset -c 1 "$ROOT/target/release/examples/loadgen" "$hook" "$SECRET" closed 16 2 >/dev/null
perf record -q -F 999 -g -p "$pid" -o "$WORK/perf.data" -- sleep "$SECS" 2>/dev/null &
perfpid=$!
taskset -c 1 "$ROOT/target/release/examples/loadgen" "$hook" "$SECRET" closed 64 "$SECS"
wait $perfpid || true
echo "--- time per thread"
perf report -i "$WORK/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
echo "--- self time per symbol (top 45)"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 || true
echo "--- self time by area"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | python3 bench/lib/perf-areas.py
[ -n "${KEEP_PROFILE:-}" ] && cp "$WORK/perf.data" "$KEEP_PROFILE"
