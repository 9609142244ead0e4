#!/usr/bin/env bash
# Runs Switchboard as separate processes, one per service as Kubernetes runs them, plus the
# Twilio emulator, on this machine's PostgreSQL and RabbitMQ. For benchmarks and fault drills.
#
#   scripts/stack.sh start              migrate, start the emulator and every service, wait until ready
#   scripts/stack.sh stop               SIGTERM everything (and the broker proxy)
#   scripts/stack.sh kill9 SERVICE      kill -9 one service (ingress session routing sender api bots,
#                                       or a second replica: session-2 routing-2 sender-2)
#   scripts/stack.sh restart SERVICE    start it again and wait until it is ready
#   scripts/stack.sh ready SERVICE      wait until it answers /readyz
#   scripts/stack.sh rss                resident memory of each process, MiB
#
# SWITCHBOARD_BIN picks the binary (default target/release/switchboard), STACK_DIR the place for
# logs and pid files (default target/stack). STACK_BROKER_PROXY=1 puts `switchboard fault-proxy`
# between the services and RabbitMQ (5673 → 5672, control on 5674) so the broker can be cut off.
# STACK_REPLICAS=N (default 1) runs N replicas of session, routing and sender (`session-2` …, on
# ports 100·(n−1) above the first's); they divide the queue work, while the other services keep
# calling the first replica's gRPC port. The admin key is SWITCHBOARD_ADMIN_API_KEY (a fixed development key by default). The token key
# below is for this local drill only: production keys come from a Secret.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
DIR=${STACK_DIR:-target/stack}
SERVICES=(session routing sender api bots ingress)
REPLICAS=${STACK_REPLICAS:-1}
EXTRA=()
for n in $(seq 2 "$REPLICAS"); do EXTRA+=("session-$n" "routing-$n" "sender-$n"); done
if ((REPLICAS > 1)); then
    # Replicas share the one local PostgreSQL (max_connections 100): smaller pools each.
    export SWITCHBOARD_SESSION__DB_MAX_CONNECTIONS=${SWITCHBOARD_SESSION__DB_MAX_CONNECTIONS:-8}
    export SWITCHBOARD_ROUTING__DB_MAX_CONNECTIONS=${SWITCHBOARD_ROUTING__DB_MAX_CONNECTIONS:-6}
    export SWITCHBOARD_API__DB_MAX_CONNECTIONS=${SWITCHBOARD_API__DB_MAX_CONNECTIONS:-8}
    export SWITCHBOARD_SENDER__DB_MAX_CONNECTIONS=${SWITCHBOARD_SENDER__DB_MAX_CONNECTIONS:-8}
fi
mkdir -p "$DIR"
# Every process this script starts carries its stack's directory in its environment, so `stop`
# finds them all even when a pid file no longer names one (a failed restart, say).
STACK_MARK=$(cd "$DIR" && pwd)
export SWITCHBOARD_STACK_DIR=$STACK_MARK

export SWITCHBOARD_ADMIN_API_KEY=${SWITCHBOARD_ADMIN_API_KEY:-sb_local_stack_admin_key_0123456789abcdef}
export SWITCHBOARD_SESSION__TOKEN_ACTIVE_KEY=local
export SWITCHBOARD_SESSION__TOKEN_KEYS__LOCAL=${STACK_TOKEN_KEY:-bG9jYWwtc3RhY2stdG9rZW4ta2V5LTMyLWJ5dGVzISE=}
export SWITCHBOARD_SESSION__TWILIO_API_BASE=http://127.0.0.1:8089
export SWITCHBOARD_SESSION__TWILIO_CONTENT_BASE=http://127.0.0.1:8089
export SWITCHBOARD_SENDER__TWILIO_API_BASE=http://127.0.0.1:8089
export RUST_LOG=${RUST_LOG:-warn}
export OTEL_SDK_DISABLED=${OTEL_SDK_DISABLED:-true}
if [[ ${STACK_BROKER_PROXY:-0} == 1 ]]; then
    export AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f
fi

# A second replica `svc-N` listens 100·(N−1) above the first.
offset() { [[ $1 == *-[0-9]* ]] && echo $(((${1##*-} - 1) * 100)) || echo 0; }

grpc_port() {
    local base
    case ${1%-[0-9]*} in
        session) base=50051 ;; routing) base=50052 ;; ingress) base=50055 ;; *) echo ""; return ;;
    esac
    echo $((base + $(offset "$1")))
}

# Pids of every process of this stack.
stack_pids() {
    local f pid
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}; pid=${pid%/environ}
        [[ $pid == "$$" ]] && continue
        if { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "SWITCHBOARD_STACK_DIR=$STACK_MARK"; then
            # Only our binary's processes, not shells or curl started from a drill.
            local exe
            exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
            [[ ${exe% (deleted)} == "$(readlink -f "$BIN")" ]] && echo "$pid"
        fi
    done
}

port_free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until pid $2 of service $1 is gone and its ports are free (a restart started before
# that failed with "Address already in use").
wait_gone() {
    local svc=$1 pid=$2 port
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "$svc (pid $pid) did not exit" >&2; return 1; fi
    for port in $(health_port "$svc") $(grpc_port "$svc"); do
        for _ in $(seq 300); do port_free "$port" && break; sleep 0.1; done
        port_free "$port" || { echo "$svc: port $port still in use" >&2; return 1; }
    done
}

health_port() {
    local base
    case ${1%-[0-9]*} in
        ingress) base=8080 ;; session) base=8081 ;; sender) base=8082 ;; routing) base=8083 ;;
        bots) base=8085 ;; api) base=8088 ;; emulator) base=8089 ;; *) echo "unknown service $1" >&2; exit 2 ;;
    esac
    echo $((base + $(offset "$1")))
}

ready() {
    local port path=/readyz
    port=$(health_port "$1")
    [[ $1 == emulator ]] && path=/emulator/messages
    for _ in $(seq 600); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port$path"; then return 0; fi
        if ! kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; then
            echo "$1 exited; its log:" >&2; tail -20 "$DIR/$1.log" >&2; exit 1
        fi
        sleep 0.1
    done
    echo "$1 not ready after 60 s" >&2
    exit 1
}

start_one() {
    local svc=$1 kind=${1%-[0-9]*}
    if [[ $svc == emulator ]]; then
        "$BIN" twilio-emulator >>"$DIR/$svc.log" 2>&1 &
    elif [[ $svc != "$kind" ]]; then
        # Another replica: its own listening ports, everything else as the first.
        local upper=${kind^^}
        local settings=("SWITCHBOARD_${upper}__HTTP_LISTEN=0.0.0.0:$(health_port "$svc")")
        if [[ -n $(grpc_port "$svc") ]]; then
            settings+=("SWITCHBOARD_${upper}__GRPC_LISTEN=0.0.0.0:$(grpc_port "$svc")")
        fi
        env "${settings[@]}" "$BIN" serve "$kind" >>"$DIR/$svc.log" 2>&1 &
    else
        "$BIN" serve "$svc" >>"$DIR/$svc.log" 2>&1 &
    fi
    echo $! >"$DIR/$svc.pid"
    ready "$svc"
}

case ${1:-} in
    start)
        if [[ ${STACK_BROKER_PROXY:-0} == 1 ]]; then
            "$BIN" fault-proxy --listen 127.0.0.1:5673 --upstream 127.0.0.1:5672 --control 127.0.0.1:5674 >>"$DIR/proxy.log" 2>&1 &
            echo $! >"$DIR/proxy.pid"
            for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/5673) 2>/dev/null && break; sleep 0.1; done
        fi
        "$BIN" migrate >>"$DIR/migrate.log" 2>&1
        start_one emulator
        for svc in "${SERVICES[@]}" "${EXTRA[@]}"; do start_one "$svc"; done
        echo "stack running: API http://127.0.0.1:8088 (admin key in SWITCHBOARD_ADMIN_API_KEY), emulator http://127.0.0.1:8089"
        ;;
    stop)
        pids=$(stack_pids)
        [[ -n $pids ]] && kill $pids 2>/dev/null || true
        for pid in $pids; do
            for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        done
        rm -f "$DIR"/*.pid
        left=$(stack_pids)
        if [[ -n $left ]]; then echo "still running: $left" >&2; exit 1; fi
        ;;
    kill9)
        pid=$(cat "$DIR/$2.pid")
        kill -9 "$pid"
        wait_gone "$2" "$pid"
        ;;
    restart)
        if [[ -f $DIR/$2.pid ]] && kill -0 "$(cat "$DIR/$2.pid")" 2>/dev/null; then
            echo "$2 is still running (pid $(cat "$DIR/$2.pid"))" >&2; exit 1
        fi
        for port in $(health_port "$2") $(grpc_port "$2"); do
            for _ in $(seq 300); do port_free "$port" && break; sleep 0.1; done
        done
        start_one "$2"
        ;;
    ready) ready "$2" ;;
    rss)
        for svc in "${SERVICES[@]}" "${EXTRA[@]}" emulator; do
            [[ -f $DIR/$svc.pid ]] && printf '%-9s %6.1f MiB\n' "$svc" "$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$(cat "$DIR/$svc.pid")/status")"
        done
        ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
esac
