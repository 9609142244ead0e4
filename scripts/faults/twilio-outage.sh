#!/usr/bin/env bash
# Twilio's Messages API answers 500 to every request for 30 s (the emulator's Outage fault):
# replies are parked on the delay tiers and each reaches "Twilio" exactly once when it ends.
source "$(dirname "$0")/lib.sh"
inject() {
    curl -fsS -X POST -H 'content-type: application/json' \
        -d "{\"kind\":\"outage\",\"status\":500,\"code\":20500,\"secs\":${OUTAGE_SECS:-30}}" \
        http://127.0.0.1:8089/emulator/faults >/dev/null
    sleep "${OUTAGE_SECS:-30}"
}
drill twilio-outage inject
