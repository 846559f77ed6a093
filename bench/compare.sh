#!/usr/bin/env bash
# The ingest benchmark of issue 10, side by side in ONE invocation: the Express endpoint of
# Stripe's guide (bench/express/server.js, which stores nothing) and idverdict (release build)
# on SQLite and PostgreSQL. Every figure is also given as a ratio to Express in the same run.
#
# Server pinned to core 0, load generator to core 1 (taskset). Load: distinct, freshly signed,
# pretty-printed Identity events of 1–3 KB in sessions of 1–3 events
# (crates/idverdict-cli/examples/loadgen.rs), keep-alive, 16 and 64 connections, REPS
# repetitions of SECS seconds each (median, min–max). Then, for idverdict: steady 200 events/s
# (p99), the growth series (64 connections with 0, 1 M and 3 M events already stored on SQLite;
# seeded with bench/lib/seed-sqlite.sh, see there), and the sustained end-to-end rate: 64
# connections for SUSTAIN seconds with the processor running, events acknowledged AND applied
# in that window (from idverdict_events_processed_total), the backlog left at the end and the
# time to work it off. Peak RSS (VmHWM) of every server.
#
#   bench/compare.sh            full run (15 s × 3, growth 1 M / 3 M, 60 s sustained; ~25 min)
#   bench/compare.sh --quick    smoke run (3 s × 3, growth 20 k / 60 k, 10 s sustained; ~3 min)
#   BEFORE_BIN=old/idverdict bench/compare.sh   adds the SQLite series of another build ("before")
#   PHASES="express sqlite" bench/compare.sh     only these parts (express sqlite before postgres
#                                                sustained growth; Express is always needed for
#                                                the ratios)
#
# Raw lines go to stdout as they come; the summary table is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/services.sh

QUICK=false
[ "${1:-}" = "--quick" ] && QUICK=true
if $QUICK; then
  SECS=3; REPS=3; GROWTH="20000 60000"; SUSTAIN=10; STEADY_SECS=5
else
  SECS=15; REPS=3; GROWTH="1000000 3000000"; SUSTAIN=60; STEADY_SECS=15
fi
SECRET=whsec_bench_secret
TOKEN=bench-token-0123456789

command -v node >/dev/null || { echo "node is needed for the Express baseline" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed to seed the growth series (apt-get install -y sqlite3)" >&2; exit 1; }
if [ ! -d bench/express/node_modules ]; then
  (cd bench/express && npm ci --no-audit --no-fund >/dev/null)
fi
cargo build --release -q -p idverdict-cli --bin idverdict --example loadgen
ensure_postgres
BIN=$ROOT/target/release/idverdict
LOADGEN=$ROOT/target/release/examples/loadgen
WORK=$(mktemp -d -p "${BENCH_DIR:-$ROOT/target}")
RESULTS=$WORK/results
PGDB=idv_bench_$$
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB" postgres 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
: >"$RESULTS"
PHASES=${PHASES:-express sqlite before postgres sustained growth}
phase() { [[ " $PHASES " == *" $1 "* ]]; }
NEXT=0   # first event number of the next load run: no session is ever repeated

# Server CPU time (user + system) in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

SERVER_PID=
SERVER_HOOK=
start_idverdict() { # data-dir database-url
  local out="$WORK/serve.$RANDOM.out"
  STRIPE_WEBHOOK_SECRET=$SECRET IDVERDICT_API_TOKEN=$TOKEN IDVERDICT_LISTEN=127.0.0.1:0 \
    IDVERDICT_DATA_DIR="$1" DATABASE_URL="$2" IDVERDICT_LOG=warn IDVERDICT_RECONCILE=off \
    taskset -c 0 "$BIN" serve >"$out" 2>"$out.err" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do grep -q listening "$out" 2>/dev/null && break; sleep 0.1; done
  SERVER_HOOK=$(awk '/listening on/ {print $NF}' "$out")
  [ -n "$SERVER_HOOK" ] || { cat "$out.err" >&2; exit 1; }
  sleep 0.5
}
start_express() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  STRIPE_WEBHOOK_SECRET=$SECRET PORT=$port taskset -c 0 node bench/express/server.js >"$WORK/express.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do grep -q listening "$WORK/express.out" 2>/dev/null && break; sleep 0.1; done
  SERVER_HOOK=http://127.0.0.1:$port/webhook
  sleep 0.5
}
stop_server() {
  echo "$1 rss_peak_kb $(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")" | tee -a "$RESULTS"
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}
# name mode n seconds [metrics-url]: one load run; appends "name key=value…" to the results.
load() {
  local name=$1 mode=$2 n=$3 secs=$4 metrics=${5:-}
  local before after line
  before=$(cpu_ticks "$SERVER_PID")
  line=$(LOADGEN_FIRST=$NEXT LOADGEN_METRICS=$metrics taskset -c 1 "$LOADGEN" "$SERVER_HOOK" "$SECRET" "$mode" "$n" "$secs")
  after=$(cpu_ticks "$SERVER_PID")
  NEXT=$(sed 's/.*next=\([0-9]*\).*/\1/' <<<"$line")
  local acked
  acked=$(sed 's/.*acked=\([0-9]*\).*/\1/' <<<"$line")
  echo "$name $line cpu_us_per_req=$(( (after - before) * TICK_US / (acked > 0 ? acked : 1) ))" | tee -a "$RESULTS"
}
closed_series() { # label
  for c in 16 64; do
    for _ in $(seq 1 "$REPS"); do load "$1/c$c" closed "$c" "$SECS"; done
  done
}
wait_applied() { # metrics-url: seconds until every accepted event is applied (live counters)
  python3 - "$1" <<'PY'
import sys, time, urllib.request
def counter(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
t0 = time.time()
while time.time() - t0 < 900:
    text = urllib.request.urlopen(sys.argv[1]).read().decode()
    if counter(text, "idverdict_events_processed_total") >= counter(text, "idverdict_webhooks_accepted_total"):
        break
    time.sleep(0.2)
print(f"{time.time() - t0:.1f}")
PY
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1048576)}' /proc/meminfo) GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u '+%F %H:%M UTC'); quick=$QUICK secs=$SECS reps=$REPS"
echo "idverdict $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty); node $(node --version); express $(node -p 'require("./bench/express/node_modules/express/package.json").version'), stripe-node $(node -p 'require("./bench/express/node_modules/stripe/package.json").version')"

# ---------------------------------------------------------------- Express, the baseline
if phase express; then
start_express
load warmup closed 16 2 >/dev/null
load express/steady rate 200 "$STEADY_SECS"
closed_series express
stop_server express
fi

# ---------------------------------------------------------------- idverdict on SQLite (fresh)
if phase sqlite; then
start_idverdict "$WORK/sqlite" "sqlite://$WORK/sqlite/idverdict.db"
load warmup closed 16 2 >/dev/null
sleep 2   # the processor applies the warm-up's events
load sqlite/steady rate 200 "$STEADY_SECS"
closed_series sqlite
stop_server sqlite
rm -rf "$WORK/sqlite"
fi

# ---------------------------------------------------------------- an earlier build (before/after)
# BEFORE_BIN=path/to/idverdict: the same SQLite series for another build, in the same run.
if [ -n "${BEFORE_BIN:-}" ] && phase before; then
  MAIN_BIN=$BIN; BIN=$BEFORE_BIN
  start_idverdict "$WORK/before" "sqlite://$WORK/before/idverdict.db"
  load warmup closed 16 2 >/dev/null
  sleep 2
  load before/steady rate 200 "$STEADY_SECS"
  closed_series before
  stop_server before
  rm -rf "$WORK/before"
  BIN=$MAIN_BIN
fi

# ---------------------------------------------------------------- idverdict on PostgreSQL (fresh)
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" postgres
PGURL="postgres://postgres@127.0.0.1:5432/$PGDB"
if phase postgres; then
start_idverdict "$WORK/pg" "$PGURL"
load warmup closed 16 2 >/dev/null
sleep 2
load postgres/steady rate 200 "$STEADY_SECS"
closed_series postgres
stop_server postgres
fi

# ---------------------------------------------------------------- sustained end to end
for backend in sqlite postgres; do
  phase sustained || break
  if [ $backend = sqlite ]; then url="sqlite://$WORK/sus-sqlite/idverdict.db"; else
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $PGDB" -c "CREATE DATABASE $PGDB" postgres
    url=$PGURL
  fi
  start_idverdict "$WORK/sus-$backend" "$url"
  metrics=${SERVER_HOOK%/webhook}/metrics
  load "$backend/sustained" closed 64 "$SUSTAIN" "$metrics"
  echo "$backend/drain seconds=$(wait_applied "$metrics")" | tee -a "$RESULTS"
  stop_server "$backend/sustained"
  rm -rf "$WORK/sus-$backend"
done

# ---------------------------------------------------------------- growth (SQLite)
DB=$WORK/growth/idverdict.db
phase growth && {
start_idverdict "$WORK/growth" "sqlite://$DB"   # creates and migrates the file
stop_server growth/create >/dev/null
seeded=0
for target in $GROWTH; do
  t0=$SECONDS
  bench/lib/seed-sqlite.sh "$DB" $((target - seeded)) "$seeded" >/dev/null
  echo "growth/$target seeded_in_seconds=$((SECONDS - t0)) file_mb=$(($(stat -c %s "$DB") / 1048576))" | tee -a "$RESULTS"
  seeded=$target
  start_idverdict "$WORK/growth" "sqlite://$DB"
  load warmup closed 16 2 >/dev/null
  for _ in $(seq 1 "$REPS"); do load "growth/$target/c64" closed 64 "$SECS"; done
  stop_server "growth/$target"
done
}

# ---------------------------------------------------------------- summary
python3 - "$RESULTS" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, *rest = line.split()
    kv = dict(x.split("=", 1) for x in rest if "=" in x)
    if len(rest) == 2 and rest[0] == "rss_peak_kb":
        kv = {"rss_peak_kb": rest[1]}
    runs.setdefault(name, []).append(kv)
def vals(name, key):
    return [float(r[key]) for r in runs.get(name, []) if key in r]
def med(name, key):
    v = vals(name, key)
    return (statistics.median(v), min(v), max(v)) if v else None
def fmt(m, unit="", digits=0):
    if m is None: return "—"
    f = f"{{:,.{digits}f}}"
    return f"{f.format(m[0])}{unit} ({f.format(m[1])}–{f.format(m[2])})" if m[1] != m[2] else f"{f.format(m[0])}{unit}"
base = {c: med(f"express/c{c}", "events_per_sec") for c in (16, 64)}
print("\n## Summary (median, min–max of the repetitions; ratio = median / Express median at the same connections)\n")
print("| server | connections | req/s | ratio | p99 ms | server CPU µs/req |")
print("|---|---|---|---|---|---|")
labels = ["express", "before", "sqlite", "postgres"] if "before/c64" in runs else ["express", "sqlite", "postgres"]
for label in labels:
    for c in (16, 64):
        n = f"{label}/c{c}"
        m = med(n, "events_per_sec")
        ratio = f"{m[0] / base[c][0]:.2f}×" if m and base[c] else "—"
        print(f"| {label} | {c} | {fmt(m)} | {ratio} | {fmt(med(n, 'p99_ms'), digits=1)} | {fmt(med(n, 'cpu_us_per_req'))} |")
print("\n| server | steady 200 events/s: p50 ms | p99 ms | max ms | peak RSS MiB |")
print("|---|---|---|---|---|")
for label in labels:
    n = f"{label}/steady"
    rss = vals(label, "rss_peak_kb")
    print(f"| {label} | {fmt(med(n, 'p50_ms'), digits=2)} | {fmt(med(n, 'p99_ms'), digits=2)} | {fmt(med(n, 'max_ms'), digits=2)} | {rss[0] / 1024:.1f} |" if rss else f"| {label} | — | — | — | — |")
print("\n| growth (SQLite, 64 connections) | req/s | of fresh | ratio to Express | p99 ms | peak RSS MiB |")
print("|---|---|---|---|---|---|")
fresh = med("sqlite/c64", "events_per_sec")
print(f"| 0 (fresh) | {fmt(fresh)} | 100 % | {fresh[0] / base[64][0]:.2f}× | {fmt(med('sqlite/c64', 'p99_ms'), digits=1)} | |")
for name in sorted({n.split('/')[1] for n in runs if n.startswith('growth/') and n.endswith('/c64')}, key=int):
    m = med(f"growth/{name}/c64", "events_per_sec")
    rss = vals(f"growth/{name}", "rss_peak_kb")
    seed = runs.get(f"growth/{name}", [{}])[0]
    print(f"| {int(name):,} stored (seeded in {seed.get('seeded_in_seconds', '?')} s, {seed.get('file_mb', '?')} MB) | {fmt(m)} | {100 * m[0] / fresh[0]:.0f} % | {m[0] / base[64][0]:.2f}× | {fmt(med(f'growth/{name}/c64', 'p99_ms'), digits=1)} | {rss[0] / 1024:.1f} |")
print("\n| sustained, 64 connections | acked/s | applied/s during the window | backlog at the end | all applied after | end to end (acked / time until all applied) | ratio to Express | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|")
for label in ("sqlite", "postgres"):
    r = runs.get(f"{label}/sustained", [{}])
    s = next((x for x in r if "acked" in x), {})
    rss = next((x["rss_peak_kb"] for x in r if "rss_peak_kb" in x), None)
    d = runs.get(f"{label}/drain", [{}])[0].get("seconds", "?")
    if s:
        acked = float(s["acked"]); window = float(s["seconds"])
        e2e = acked / (window + float(d))
        print(f"| {label} | {float(s['events_per_sec']):,.0f} | {float(s.get('applied_per_sec', 0)):,.0f} | {float(s.get('backlog_at_end', 0)):,.0f} events | {window:.0f} + {float(d):.1f} s | {e2e:,.0f} events/s | {e2e / base[64][0]:.2f}× | {int(rss) / 1024:.1f} |")
PY
