#!/usr/bin/env bash
# Cut every service's connection to RabbitMQ and refuse new ones for 10 s (through fault-proxy).
source "$(dirname "$0")/lib.sh"
inject() { curl -fsS -X POST "http://127.0.0.1:5674/block?secs=${BLOCK_SECS:-10}" >/dev/null; sleep "${BLOCK_SECS:-10}"; }
drill broker-block inject
