#!/usr/bin/env bash
# Ingest benchmark: distinct, freshly signed identity events driven at `idverdict serve`,
# SQLite and PostgreSQL side by side in one run. The server is pinned to core 0 and the load
# generator to core 1 (taskset), as in the issue's setup. Reports acknowledged events/s,
# p50/p99 latency and RSS (idle and peak).
#
#   bench/ingest.sh [SECONDS]        (default 10 s per scenario)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/services.sh
SECONDS_PER_RUN=${1:-10}
SECRET=whsec_bench_secret
cargo build --release -q -p idverdict-cli --bin idverdict --example loadgen
ensure_postgres
BIN=$ROOT/target/release/idverdict
LOADGEN=$ROOT/target/release/examples/loadgen
WORK=$(mktemp -d -p "${BENCH_DIR:-$ROOT/target}")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

rss_kb() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }

run_backend() {
  local name=$1 url=$2
  local out="$WORK/$name.out"
  STRIPE_WEBHOOK_SECRET=$SECRET IDVERDICT_API_TOKEN=bench-token-0123456789 IDVERDICT_LISTEN=127.0.0.1:0 \
    IDVERDICT_DATA_DIR="$WORK/$name" DATABASE_URL="$url" IDVERDICT_LOG=warn \
    taskset -c 0 "$BIN" serve >"$out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 1 100); do grep -q listening "$out" 2>/dev/null && break; sleep 0.1; done
  local hook
  hook=$(awk '/listening on/ {print $NF}' "$out")
  sleep 1
  local idle
  idle=$(rss_kb "$pid" VmRSS)
  local closed rate rate_after
  # Steady first, on a fresh instance; then the burst; then steady again while the processor
  # works off the burst's backlog (acknowledgements compete with it for the one writer).
  rate=$(taskset -c 1 "$LOADGEN" "$hook" "$SECRET" rate 200 "$SECONDS_PER_RUN")
  closed=$(taskset -c 1 "$LOADGEN" "$hook" "$SECRET" closed 64 "$SECONDS_PER_RUN")
  rate_after=$(taskset -c 1 "$LOADGEN" "$hook" "$SECRET" rate 200 "$SECONDS_PER_RUN")
  local peak
  peak=$(rss_kb "$pid" VmHWM)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  echo "$name | steady 200/s:   $rate"
  echo "$name | 64 connections: $closed"
  echo "$name | 200/s + backlog: $rate_after"
  echo "$name | RSS idle ${idle} kB, peak ${peak} kB"
}

# The floor under every durable acknowledgement: one fdatasync on the disk the data lives on,
# measured in the same run (p50/p99 of 400 syncs of a 4 KiB append).
fsync_probe() {
  python3 - "$WORK" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT)
lat = []
for _ in range(400):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter(); os.fdatasync(fd); lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.002)
lat.sort()
print("disk | fdatasync p50_ms=%.2f p99_ms=%.2f" % (lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))
os.close(fd); os.unlink(path)
PY
}

PGDB=idv_bench_$$
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" postgres
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1048576)}' /proc/meminfo) GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
fsync_probe
run_backend sqlite "sqlite://$WORK/sqlite/idverdict.db"
run_backend postgres "postgres://postgres@127.0.0.1:5432/$PGDB"
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $PGDB" postgres
