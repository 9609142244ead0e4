#!/usr/bin/env bash
# Schemathesis against /api/v1/openapi.json with an admin, a supervisor and an agent key: no 5xx,
# every status documented, every response in the schema, invalid input refused.
#   scripts/api-fuzz.sh [SECONDS_PER_ROLE]      (a running system: `switchboard dev` or scripts/stack.sh start)
# Phases: examples, coverage, fuzzing and the stateful phase (links between operations). SEED
# fixes the generation (e.g. SEED=4242) so a finding can be reproduced.
# SWITCHBOARD_API_KEY is the admin key; SWITCHBOARD_API_URL the API (default http://127.0.0.1:8088).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-120}
SEED_ARGS=()
[[ -n ${SEED:-} ]] && SEED_ARGS=(--seed "$SEED")
API=${SWITCHBOARD_API_URL:-http://127.0.0.1:8088}
ADMIN=${SWITCHBOARD_API_KEY:?set SWITCHBOARD_API_KEY to an admin key}
VENV=target/schemathesis-venv
[[ -x $VENV/bin/schemathesis ]] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'schemathesis>=4.3,<5'; }
post() { curl -fsS -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "$2" "$API/api/v1$1"; }
run=$(date +%s)
agent=$(post /agents "{\"name\":\"fuzz agent $run\",\"definition\":{\"capacity_units\":10}}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
AGENT_KEY=$(post /api-keys "{\"name\":\"fuzz agent $run\",\"role\":\"agent\",\"agent_id\":\"$agent\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
SUPERVISOR_KEY=$(post /api-keys "{\"name\":\"fuzz supervisor $run\",\"role\":\"supervisor\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
mkdir -p target/api-fuzz
failed=0
for role in admin supervisor agent; do
    case $role in admin) key=$ADMIN ;; supervisor) key=$SUPERVISOR_KEY ;; agent) key=$AGENT_KEY ;; esac
    echo "== $role ($SECS s)"
    # ignored_auth and positive_data_acceptance assume every generated request may succeed for
    # every key; roles refuse some by design (403), and cross-role access has its own e2e test.
    if ! "$VENV/bin/schemathesis" run "$API/api/v1/openapi.json" -H "Authorization: Bearer $key" \
        --checks all --exclude-checks ignored_auth,positive_data_acceptance \
        --phases examples,coverage,fuzzing,stateful --max-time "$SECS" -w 2 --warnings off "${SEED_ARGS[@]}" \
        >"target/api-fuzz/$role.txt" 2>&1; then
        failed=1
    fi
    sed -n '/SUMMARY/,$p' "target/api-fuzz/$role.txt" | grep -E '❌|✅|generated|passed|failures' || true
done
exit "$failed"
