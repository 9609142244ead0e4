#!/usr/bin/env bash
# Session inbound throughput (1 and 2 replicas) next to Postgres's raw single-row commit rate
# (pgbench, 8 connections) measured in the same run. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/ensure-services.sh 3>&1 >&2)"
export DATABASE_URL AMQP_URL
MESSAGES=${MESSAGES:-20000}
CUSTOMERS=${CUSTOMERS:-2000}
cargo build --release -q -p switchboard-session --example inbound_throughput

db=sb_bench_pgbench
psql "$DATABASE_URL" -qc "drop database if exists $db" -qc "create database $db"
base=${DATABASE_URL%/*}
psql "$base/$db" -qc "create table t (id bigserial primary key, v double precision, at timestamptz default now())"
echo 'INSERT INTO t (v) VALUES (random());' > /tmp/sb_single.sql
echo 'INSERT INTO t (v) SELECT random() FROM generate_series(1, 10);' > /tmp/sb_batch.sql
single=$(pgbench -n -c 8 -j 2 -T 10 -f /tmp/sb_single.sql "$base/$db" 2>/dev/null | awk '/^tps/ {print int($3)}')
batch=$(pgbench -n -c 8 -j 2 -T 10 -f /tmp/sb_batch.sql "$base/$db" 2>/dev/null | awk '/^tps/ {print int($3)}')
psql "$DATABASE_URL" -qc "drop database $db"

one=$(target/release/examples/inbound_throughput "$MESSAGES" "$CUSTOMERS" 1 | tail -n1)
two=$(target/release/examples/inbound_throughput "$MESSAGES" "$CUSTOMERS" 2 | tail -n1)
echo
echo "| measurement | rate |"
echo "|---|---|"
echo "| pgbench: single-row INSERT transactions, 8 connections | $single tx/s |"
echo "| pgbench: 10-row INSERT transactions, 8 connections | $batch tx/s ($((batch * 10)) rows/s) |"
python3 - "$one" "$two" <<'PY'
import json, sys
for raw in sys.argv[1:]:
    r = json.loads(raw)
    print(f"| session, {r['replicas']} replica(s): {r['messages']:,} inbound messages from {r['customers']:,} customers | {r['rate']:,} msg/s ({r['seconds']} s) |")
PY
