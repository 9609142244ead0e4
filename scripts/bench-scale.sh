#!/usr/bin/env bash
# Scale-out on one machine: the highest rate the pipeline sustains with N = 1, 2 and 4 replicas
# of the queue-working services (session, routing, sender), each replica held to the same CPU
# quota by a cgroup, so the machine's two cores are not what limits it.
#
#   scripts/bench-scale.sh [QUOTA] [RATES] [REPLICAS] [DURATION] [AGENTS]
#     QUOTA     CPUs per replica (default 0.2)
#     RATES     the open-loop rates tried, in order, msg/s (default "10 20 40 60 80 120 160")
#     REPLICAS  default "1 2 4"
#     DURATION  seconds per rate (default 20); AGENTS simulated agents (default 20)
#
# For each N it starts `scripts/stack.sh` with STACK_REPLICAS=N on a fresh database of its own
# PostgreSQL cluster (15/bench, port 5433; the tests' cluster is left alone), puts every replica
# in its own cgroup (cpu.cfs_quota_us = QUOTA × cpu.cfs_period_us) and the services that do not
# run as replicas yet (ingress, api, bots) in one cgroup each with N × QUOTA, then drives
# `switchboard loadgen` at each rate until one is not sustained. Sustained: every accepted
# webhook stored, none lost or duplicated, no webhook skipped, and inbound→offered p99 under 1 s.
# It prints, per N, the highest sustained rate and the scale-out efficiency rate(N) / (N ×
# rate(1)), and, at the highest sustained rate, CPU-milliseconds per inbound message of each
# process group (cpuacct), PostgreSQL and RabbitMQ, beside the raw cost of one confirmed publish
# and one commit measured in the same run (loadgen --baseline). Root only (cgroups). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
QUOTA=${1:-0.2}
RATES=${2:-"10 20 40 60 80 120 160"}
REPLICAS=${3:-"1 2 4"}
DURATION=${4:-20}
AGENTS=${5:-20}
OUT=${OUT_DIR:-target/bench-scale}
mkdir -p "$OUT"
[[ $(id -u) == 0 ]] || { echo "cgroups need root" >&2; exit 2; }
CPU_CG=/sys/fs/cgroup/cpu
ACCT_CG=/sys/fs/cgroup/cpuacct
[[ -w $CPU_CG && -w $ACCT_CG ]] || { echo "needs the cgroup v1 cpu and cpuacct hierarchies" >&2; exit 2; }

eval "$(scripts/ensure-services.sh 3>&1 >&2)"
export AMQP_URL
source scripts/bench-db.sh
cargo build --release -q --locked -p switchboard-cli
BIN=target/release/switchboard
export SWITCHBOARD_BIN=$BIN STACK_DIR=$OUT/stack
export SWITCHBOARD_ADMIN_API_KEY=sb_bench_scale_admin_key_0123456789abcdefgh
export SWITCHBOARD_API_KEY=$SWITCHBOARD_ADMIN_API_KEY
# Replicas share one PostgreSQL: small pools each (the bench cluster allows 300 connections).
export SWITCHBOARD_SESSION__DB_MAX_CONNECTIONS=6 SWITCHBOARD_ROUTING__DB_MAX_CONNECTIONS=5
export SWITCHBOARD_SENDER__DB_MAX_CONNECTIONS=5 SWITCHBOARD_API__DB_MAX_CONNECTIONS=10

PERIOD=100000
cleanup() {
    scripts/stack.sh stop >/dev/null 2>&1 || true
    for d in "$CPU_CG"/switchboard-bench/* "$ACCT_CG"/switchboard-bench/*; do [[ -d $d ]] && rmdir "$d" 2>/dev/null; done
    rmdir "$CPU_CG/switchboard-bench" "$ACCT_CG/switchboard-bench" 2>/dev/null || true
}
trap cleanup EXIT

# Puts process $2 in cgroup $1 with $3 CPUs.
confine() {
    local name=$1 pid=$2 cpus=$3
    mkdir -p "$CPU_CG/switchboard-bench/$name" "$ACCT_CG/switchboard-bench/$name"
    echo "$PERIOD" >"$CPU_CG/switchboard-bench/$name/cpu.cfs_period_us"
    echo "$(awk "BEGIN { printf \"%d\", $cpus * $PERIOD }")" >"$CPU_CG/switchboard-bench/$name/cpu.cfs_quota_us"
    for task in /proc/"$pid"/task/*; do
        echo "${task##*/}" >"$CPU_CG/switchboard-bench/$name/tasks"
        echo "${task##*/}" >"$ACCT_CG/switchboard-bench/$name/tasks"
    done
    # Threads started later join their parent's cgroup.
    echo "$pid" >"$CPU_CG/switchboard-bench/$name/cgroup.procs"
    echo "$pid" >"$ACCT_CG/switchboard-bench/$name/cgroup.procs"
}

# "name ns" for each confined group, then PostgreSQL and RabbitMQ (ticks → ns).
cpu_snapshot() {
    local d
    for d in "$ACCT_CG"/switchboard-bench/*/; do
        d=${d%/}
        echo "${d##*/} $(cat "$d/cpuacct.usage")"
    done
    local hz postmaster beam
    hz=$(getconf CLK_TCK)
    postmaster=$(head -n1 "/var/lib/postgresql/$BENCH_PG_VERSION/bench/postmaster.pid")
    beam=$(pgrep -f beam.smp | head -n1)
    for pair in "postgresql $postmaster" "rabbitmq $beam"; do
        set -- $pair
        local total=0 pid
        for pid in "$2" $(pgrep -P "$2" 2>/dev/null || true); do
            [[ -r /proc/$pid/stat ]] && total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat")))
        done
        echo "$1 $((total * 1000000000 / hz))"
    done
}

: >"$OUT/summary.tsv"
for n in $REPLICAS; do
    bench_db_fresh sb_scale
    export DATABASE_URL="$BENCH_PG/sb_scale"
    STACK_REPLICAS=$n scripts/stack.sh start >"$OUT/stack-$n.log" 2>&1
    for f in "$STACK_DIR"/*.pid; do
        svc=$(basename "$f" .pid)
        case ${svc%-[0-9]*} in
            session | routing | sender) confine "$svc" "$(cat "$f")" "$QUOTA" ;;
            ingress | api | bots) confine "$svc" "$(cat "$f")" "$(awk "BEGIN { print $n * $QUOTA }")" ;;
        esac
    done
    # What the stack costs doing nothing (polls, heartbeats), over IDLE_SECS.
    cpu_snapshot >"$OUT/idle-$n.before"
    sleep "${IDLE_SECS:-30}"
    cpu_snapshot >"$OUT/idle-$n.after"
    "$BIN" loadgen --rate 1 --duration 1 --agents 0 --baseline --out "$OUT/baseline-$n.json" >"$OUT/baseline-$n.log" 2>&1
    best=0
    for rate in $RATES; do
        cpu_snapshot >"$OUT/cpu-$n-$rate.before"
        "$BIN" loadgen --rate "$rate" --duration "$DURATION" --agents "$AGENTS" --settle 60 \
            --out "$OUT/run-$n-$rate.json" >"$OUT/run-$n-$rate.log" 2>&1 || true
        cpu_snapshot >"$OUT/cpu-$n-$rate.after"
        verdict=$(python3 - "$OUT/run-$n-$rate.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("no-report"); sys.exit()
c = r["check"]
why = []
if c["inbound_lost"] or c["inbound_duplicated"]: why.append(f"lost {c['inbound_lost']} dup {c['inbound_duplicated']}")
if r["skipped"]: why.append(f"skipped {r['skipped']}")
if c["inbound_to_offered"]["p99_ms"] >= 1000: why.append(f"offered p99 {c['inbound_to_offered']['p99_ms']:.0f} ms")
print("ok" if not why else "; ".join(why))
PY
)
        echo "N=$n rate=$rate: $verdict"
        if [[ $verdict != ok ]]; then break; fi
        best=$rate
    done
    printf '%s\t%s\n' "$n" "$best" >>"$OUT/summary.tsv"
    scripts/stack.sh stop >/dev/null
    for d in "$CPU_CG"/switchboard-bench/* "$ACCT_CG"/switchboard-bench/*; do [[ -d $d ]] && rmdir "$d" 2>/dev/null || true; done
done

python3 - "$OUT" "$QUOTA" <<'PY'
import json, sys
out, quota = sys.argv[1], float(sys.argv[2])
rows = [l.split("\t") for l in open(f"{out}/summary.tsv").read().split("\n") if l]
best = {int(n): int(r) for n, r in rows}
one = best.get(1) or 0
print(f"Per replica: {quota} CPU (cgroup cpu.cfs_quota_us); ingress, api and bots get N x {quota}.")
print()
print("| replicas (N) | highest sustained rate, msg/s | efficiency rate(N) / (N x rate(1)) |")
print("|---|---|---|")
for n in sorted(best):
    eff = best[n] / (n * one) if one else 0
    print(f"| {n} | {best[n]} | {eff:.2f} |")
def load(path):
    return {k: int(v) for k, v in (l.split() for l in open(path) if l.strip())}
print()
print("Idle (nothing sent), CPU-ms per second:")
for n in sorted(best):
    before, after = load(f"{out}/idle-{n}.before"), load(f"{out}/idle-{n}.after")
    secs = float(__import__("os").environ.get("IDLE_SECS", "30"))
    pg = (after["postgresql"] - before["postgresql"]) / 1e6 / secs
    mq = (after["rabbitmq"] - before["rabbitmq"]) / 1e6 / secs
    sb = sum(after[k] - before.get(k, after[k]) for k in after if k not in ("postgresql", "rabbitmq")) / 1e6 / secs
    print(f"  N={n}: PostgreSQL {pg:.1f}, RabbitMQ {mq:.1f}, services {sb:.1f}")
for n in sorted(best):
    if not best[n]:
        continue
    run = json.load(open(f"{out}/run-{n}-{best[n]}.json"))
    stored = run["check"]["inbound_stored"] or 1
    before, after = load(f"{out}/cpu-{n}-{best[n]}.before"), load(f"{out}/cpu-{n}-{best[n]}.after")
    groups = {}
    for name in after:
        kind = name.split("-")[0]
        groups[kind] = groups.get(kind, 0) + after[name] - before.get(name, after[name])
    base = json.load(open(f"{out}/baseline-{n}.json"))["baseline"]
    raw = 1000 / base["rabbitmq_confirmed_publishes_per_s"] + 1000 / base["postgres_commits_per_s"]
    total = sum(groups.values()) / 1e6 / stored
    c = run["check"]
    print()
    print(f"N={n} at {best[n]} msg/s: {stored} stored, offered p50/p99 {c['inbound_to_offered']['p50_ms']:.0f} / "
          f"{c['inbound_to_offered']['p99_ms']:.0f} ms, ack p99 {run['ack_latency']['p99_ms']:.1f} ms")
    print("| process | CPU ms per inbound message |")
    print("|---|---|")
    for kind in sorted(groups):
        print(f"| {kind} | {groups[kind] / 1e6 / stored:.2f} |")
    print(f"| **all** | **{total:.2f}** |")
    print(f"raw: one confirmed publish + one commit = {raw:.3f} ms; an inbound message costs {total / raw:.0f}x that")
PY
