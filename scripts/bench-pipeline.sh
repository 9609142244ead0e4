#!/usr/bin/env bash
# The whole pipeline's cost per inbound message, all-in-one: CPU of every process (switchboard
# dev, the load generator, PostgreSQL, RabbitMQ), PostgreSQL transactions and statements (from
# pg_stat_statements), next to the raw cost of one confirmed publish and one commit measured in
# the same run (loadgen --baseline).
#
#   scripts/bench-pipeline.sh [RATE] [DURATION] [AGENTS]      (default 100 msg/s, 20 s, 10 agents)
#
# It runs its own PostgreSQL cluster (15/bench on port 5433, pg_stat_statements loaded) so the
# shared cluster the tests use is left alone, and a fresh database in it for every run. It uses
# the machine's RabbitMQ. Release build. BENCH_PG_PARAMS is appended to the services' database
# URL (e.g. "?sslmode=disable": sqlx's default "prefer" negotiates TLS with Debian's cluster,
# loopback included).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100}
DURATION=${2:-20}
AGENTS=${3:-10}
eval "$(scripts/ensure-services.sh 3>&1 >&2)"
export AMQP_URL
source scripts/bench-db.sh
VERSION=$BENCH_PG_VERSION
PG=$BENCH_PG
bench_db_fresh sb_pipeline
export DATABASE_URL="$PG/sb_pipeline${BENCH_PG_PARAMS:-}"

# Built without DATABASE_URL, as an ordinary build is: under the run's URL the workspace was
# seen to rebuild (sqlx's macros take that variable from the environment).
env -u DATABASE_URL cargo build --release -q --locked -p switchboard-cli
BIN=target/release/switchboard
OUT=${OUT_DIR:-target/bench-pipeline}
mkdir -p "$OUT"
export SWITCHBOARD_ADMIN_API_KEY=sb_bench_pipeline_admin_key_0123456789abcdef
export SWITCHBOARD_API_KEY=$SWITCHBOARD_ADMIN_API_KEY
export RUST_LOG=${RUST_LOG:-warn} OTEL_SDK_DISABLED=true
"$BIN" dev --env-file "$OUT/dev.env" >"$OUT/dev.log" 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null || true; wait $DEV 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -sf http://127.0.0.1:8080/readyz >/dev/null && break; sleep 0.1; done

# The raw costs first, on an idle system (a token load: loadgen always sends something).
"$BIN" loadgen --rate 1 --duration 1 --agents 0 --baseline --out "$OUT/baseline.json" >"$OUT/baseline.log" 2>&1

postmaster=$(head -n1 "/var/lib/postgresql/$VERSION/bench/postmaster.pid")
beam=$(pgrep -f beam.smp | head -n1)
# CPU ticks of a process and its children (PostgreSQL backends are children of the postmaster).
ticks() {
    local total=0 pid t
    for pid in "$@" $(pgrep -P "$1" 2>/dev/null || true); do
        # A process may exit between listing and reading: it then counts nothing.
        t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || true)
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
xacts() { psql "$PG/sb_pipeline" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'sb_pipeline'"; }

psql "$PG/sb_pipeline" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
pg0=$(ticks "$postmaster"); mq0=$(ticks "$beam"); dev0=$(ticks "$DEV"); x0=$(xacts)
"$BIN" loadgen --rate "$RATE" --duration "$DURATION" --agents "$AGENTS" --out "$OUT/run.json" >"$OUT/run.log" 2>&1 &
LOAD=$!
# The generator's own CPU, read just before it exits.
load_ticks=0
while kill -0 "$LOAD" 2>/dev/null; do
    t=$(ticks "$LOAD"); [[ $t -gt 0 ]] && load_ticks=$t
    sleep 0.5
done
wait "$LOAD" || true
pg1=$(ticks "$postmaster"); mq1=$(ticks "$beam"); dev1=$(ticks "$DEV"); x1=$(xacts)
statements=$(psql "$PG/sb_pipeline" -Atc "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'sb_pipeline'")
lockwait=$(psql "$PG/sb_pipeline" -Atc "SELECT coalesce(sum(calls), 0) || ' calls, mean ' || coalesce(round((sum(total_exec_time) / nullif(sum(calls), 0))::numeric, 3), 0) || ' ms, max ' || coalesce(round(max(max_exec_time)::numeric, 1), 0) || ' ms' FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'sb_pipeline' AND (query LIKE '%routing.cycle%' OR query LIKE '%FROM routing.agent_state%FOR UPDATE%')")
psql "$PG/sb_pipeline" -Atc "SELECT calls, round(total_exec_time::numeric, 1), left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'sb_pipeline' ORDER BY calls DESC LIMIT 15" >"$OUT/top-statements.txt"

python3 - "$OUT" "$(getconf CLK_TCK)" "$((pg1 - pg0))" "$((mq1 - mq0))" "$((dev1 - dev0))" "$load_ticks" "$((x1 - x0))" "$statements" <<'PY'
import json, sys
out, hz, pg, mq, dev, load, xacts, statements = sys.argv[1], *map(int, sys.argv[2:])
run = json.load(open(f"{out}/run.json"))
base = json.load(open(f"{out}/baseline.json"))["baseline"]
n = run["check"]["inbound_stored"] or 1
ms = lambda ticks: ticks * 1000 / hz
total = ms(pg + mq + dev + load)
raw = 1000 / base["rabbitmq_confirmed_publishes_per_s"] + 1000 / base["postgres_commits_per_s"]
c = run["check"]
print(f"inbound stored: {n}, lost {c['inbound_lost']}, duplicated {c['inbound_duplicated']}; "
      f"replies {c['replies_sent_to_twilio']}, lost {c['replies_lost']}, duplicated {c['replies_duplicated']}")
print(f"webhook ack p50/p99: {run['ack_latency']['p50_ms']:.2f} / {run['ack_latency']['p99_ms']:.2f} ms; "
      f"inbound→stored p99 {c['inbound_to_stored']['p99_ms']:.1f} ms; "
      f"inbound→offered p50/p99 {c['inbound_to_offered']['p50_ms']:.1f} / {c['inbound_to_offered']['p99_ms']:.1f} ms")
print()
print("| process | CPU-s | CPU ms per inbound message |")
print("|---|---|---|")
for name, t in [("PostgreSQL", pg), ("RabbitMQ", mq), ("switchboard dev", dev), ("switchboard loadgen", load)]:
    print(f"| {name} | {ms(t) / 1000:.1f} | {ms(t) / n:.2f} |")
print(f"| **all** | {total / 1000:.1f} | **{total / n:.2f}** |")
print()
print(f"PostgreSQL: {xacts} transactions ({xacts / n:.1f} per inbound message), "
      f"{statements} statements ({statements / n:.1f} per inbound message)")
print(f"raw: {base['rabbitmq_confirmed_publishes_per_s']:.0f} confirmed publishes/s, "
      f"{base['postgres_commits_per_s']:.0f} commits/s: one publish + one commit = {raw:.3f} ms; "
      f"CPU per inbound message = {total / n / raw:.1f}× that")
PY
echo "routing locks (the cycle lock and agent_state FOR UPDATE): $lockwait"
echo "top statements by calls: $OUT/top-statements.txt"
