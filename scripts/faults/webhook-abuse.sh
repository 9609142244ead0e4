#!/usr/bin/env bash
# 1,000 bad webhooks/s (forged, replayed, oversized, malformed, unknown channel) beside good traffic.
source "$(dirname "$0")/lib.sh"
ensure_stack
echo "== webhook-abuse: $RATE good msg/s and ${ABUSE_RATE:-1000} bad/s for $DURATION s"
"$BIN" loadgen --api-key "$SWITCHBOARD_ADMIN_API_KEY" --rate "$RATE" --duration "$DURATION" --agents "$AGENTS" \
    --abuse-rate "${ABUSE_RATE:-1000}" --out "$OUT/webhook-abuse.json" | tee "$OUT/webhook-abuse.log"
