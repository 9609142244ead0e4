#!/usr/bin/env bash
# Sender → emulator throughput with 25 numbers at 80 msg/s each (2,000/s ceiling), next to a
# plain reqwest loop against the same emulator endpoint, in one process and one run. Run twice:
# with the emulator's signed status callbacks (3 per message, as Twilio sends) and without.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/ensure-services.sh 3>&1 >&2)"
export DATABASE_URL AMQP_URL
MESSAGES=${MESSAGES:-20000}
cargo build --release -q -p switchboard-sender --example send_throughput
with=$(target/release/examples/send_throughput "$MESSAGES" | tail -n1)
without=$(BENCH_NO_CALLBACKS=1 target/release/examples/send_throughput "$MESSAGES" | tail -n1)
echo
echo "| run | plain reqwest → emulator | sender → emulator | busiest second of any number (limit 80) |"
echo "|---|---|---|---|"
python3 - "$with" "$without" <<'PY'
import json, sys
for name, raw in (("with status callbacks", sys.argv[1]), ("without status callbacks", sys.argv[2])):
    r = json.loads(raw)
    print(f"| {name} | {r['baseline_rate']:,} msg/s | {r['sender_rate']:,} msg/s | {r['worst_number_second']} |")
PY
