#!/usr/bin/env bash
# Twilio accepts the next 50 sends but their answers break off (the emulator's LoseResponse
# fault): the sender cannot know the outcome, looks each one up in the Messages list before any
# resend, and every reply still reaches "Twilio" exactly once.
source "$(dirname "$0")/lib.sh"
inject() {
    curl -fsS -X POST -H 'content-type: application/json' \
        -d "{\"kind\":\"lose_response\",\"count\":${LOST:-50}}" http://127.0.0.1:8089/emulator/faults >/dev/null
}
drill twilio-lost-answers inject
