#!/usr/bin/env bash
# Outcome benchmark: `verified` events at a steady rate against `idverdict serve` on SQLite,
# with a healthy callback receiver (inside the load generator). Reports the end-to-end latency
# from the webhook's acknowledgement to the app's callback receipt (p50/p99), then the
# reactions/s sustained in a closed-loop burst. The server is pinned to core 0, the generator
# and receiver to core 1 (taskset), as in bench/ingest.sh.
#
#   bench/outcomes.sh [RATE] [SECONDS] [BURST] [CONNECTIONS]   (default 500 20 10000 64)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=${1:-500}
SECONDS_PER_RUN=${2:-20}
BURST=${3:-10000}
CONNECTIONS=${4:-64}
SECRET=whsec_bench_secret
CALLBACK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
cargo build --release -q -p idverdict-cli --bin idverdict --example outcomes_loadgen
BIN=$ROOT/target/release/idverdict
LOADGEN=$ROOT/target/release/examples/outcomes_loadgen
WORK=$(mktemp -d -p "${BENCH_DIR:-$ROOT/target}")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

RECEIVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out="$WORK/serve.out"
STRIPE_WEBHOOK_SECRET=$SECRET IDVERDICT_API_TOKEN=bench-token-0123456789 IDVERDICT_LISTEN=127.0.0.1:0 \
  IDVERDICT_DATA_DIR="$WORK/sqlite" DATABASE_URL="sqlite://$WORK/sqlite/idverdict.db" IDVERDICT_LOG=warn \
  IDVERDICT_CALLBACK_URLS="http://127.0.0.1:$RECEIVER_PORT/callbacks" IDVERDICT_CALLBACK_SECRETS=$CALLBACK_SECRET \
  IDVERDICT_ALLOW_PRIVATE_TARGETS=true \
  taskset -c 0 "$BIN" serve >"$out" 2>/dev/null &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$out" 2>/dev/null && break; sleep 0.1; done
hook=$(awk '/listening on/ {print $NF}' "$out")
sleep 1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
taskset -c 1 "$LOADGEN" "$hook" "$SECRET" "127.0.0.1:$RECEIVER_PORT" "$RATE" "$SECONDS_PER_RUN" "$BURST" "$CONNECTIONS" \
  | sed 's/^/sqlite | /'
echo "sqlite | peak RSS $(awk '/^VmHWM:/ {print $2}' /proc/$pid/status) kB"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
