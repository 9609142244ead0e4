#!/usr/bin/env bash
# Ingress benchmark: a bare axum handler, then the real ingress (verify + confirmed publish),
# each pinned to CPU 0 with the load generator pinned to CPU 1, then raw lapin confirmed
# publishes of 1 KiB (the broker ceiling), all in one run. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/ensure-services.sh 3>&1 >&2)"
export DATABASE_URL AMQP_URL
SECS=${SECS:-10}
cargo build --release -q -p switchboard-ingress --example webhook_bench -p switchboard-bus --example publish_throughput
B=target/release/examples/webhook_bench

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

measure() { # name mode port
  taskset -c 0 "$B" "$2" "127.0.0.1:$3" & local pid=$!
  wait_port "$3"
  taskset -c 1 "$B" load "127.0.0.1:$3" 8 2 > /dev/null            # warm-up
  local max; max=$(taskset -c 1 "$B" load "127.0.0.1:$3" 64 "$SECS")
  local fixed; fixed=$(taskset -c 1 "$B" load "127.0.0.1:$3" 32 "$SECS" 1000)
  kill -TERM "$pid"; wait "$pid" || true
  echo "$1|$max|$fixed"
}

bare=$(measure "bare axum" serve-bare 18080)
ingress=$(measure "ingress" serve-ingress 18081)
raw=$(target/release/examples/publish_throughput 20000 256 | grep '^| mean')

echo
echo "| server (CPU 0) | max req/s (64 conns) | p50 / p99 at max | p50 / p99 at 1,000 req/s | non-2xx |"
echo "|---|---|---|---|---|"
for row in "$bare" "$ingress"; do
  IFS='|' read -r name max fixed <<<"$row"
  python3 - "$name" "$max" "$fixed" <<'PY'
import json, sys
name, m, f = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
bad = (m["answered"] - m["ok"]) + (f["answered"] - f["ok"]) + m["failed"] + f["failed"]
print(f"| {name} | {m['rate']:,.0f} | {m['p50_ms']:.2f} / {m['p99_ms']:.2f} ms | {f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms | {bad} |")
PY
done
echo
echo "raw lapin confirmed publishes, 1 KiB, 256 outstanding (raw | bus | ratio): $raw"
