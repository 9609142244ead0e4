#!/usr/bin/env bash
# Every drill in turn on one separate-process stack; a summary line per drill in target/faults/summary.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
export STACK_BROKER_PROXY=1
rm -f target/faults/summary.jsonl
scripts/stack.sh start
trap 'scripts/stack.sh stop' EXIT
failed=0
for service in ingress session routing sender api bots; do scripts/faults/kill9.sh "$service" || failed=1; done
for drill in rabbitmq-restart postgres-restart broker-block twilio-outage twilio-lost-answers webhook-abuse; do scripts/faults/$drill.sh || failed=1; done
exit "$failed"
