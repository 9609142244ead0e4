# Shared by the fault drills: a load at RATE msg/s for DURATION s, a fault injected FAULT_AT s
# in, then loadgen's own check (nothing lost, nothing duplicated) and the recovery time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
RATE=${RATE:-500}
DURATION=${DURATION:-60}
FAULT_AT=${FAULT_AT:-20}
AGENTS=${AGENTS:-20}
OUT=${FAULTS_OUT:-target/faults}
export STACK_BROKER_PROXY=1
export SWITCHBOARD_ADMIN_API_KEY=${SWITCHBOARD_ADMIN_API_KEY:-sb_local_stack_admin_key_0123456789abcdef}
mkdir -p "$OUT"

ensure_stack() {
    if ! curl -fsS -o /dev/null http://127.0.0.1:8088/readyz 2>/dev/null; then
        scripts/stack.sh start
    fi
}

# drill NAME FUNCTION: runs the load, calls FUNCTION at FAULT_AT s, checks and reports.
drill() {
    local name=$1 inject=$2
    ensure_stack
    echo "== $name: $RATE msg/s for $DURATION s, fault at $FAULT_AT s"
    "$BIN" loadgen --api-key "$SWITCHBOARD_ADMIN_API_KEY" --rate "$RATE" --duration "$DURATION" \
        --agents "$AGENTS" --settle 180 --out "$OUT/$name.json" >"$OUT/$name.log" 2>&1 &
    local load=$!
    sleep "$FAULT_AT"
    local t0
    t0=$(date +%s.%N)
    echo "$t0" >"$OUT/$name.fault_at"
    if ! "$inject"; then
        echo "   the fault could not be injected; stopping the load" >&2
        kill "$load" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
        # Said in the summary too, so a drill that tested nothing does not read as a pass.
        echo "{\"drill\": \"$name\", \"ok\": false, \"injected\": false}" | tee -a "$OUT/summary.jsonl"
        return 1
    fi
    echo "   fault injected and service back in $(echo "$(date +%s.%N) - $t0" | bc) s"
    local rc=0
    wait "$load" || rc=$?
    grep -v '^\s*$' "$OUT/$name.log" | tail -8 | sed 's/^/   /'
    python3 scripts/faults/recovery.py "$OUT/$name.json" "$t0" "$name" | tee -a "$OUT/summary.jsonl"
    return "$rc"
}
