#!/usr/bin/env bash
# Stop RabbitMQ under load and start it again.
source "$(dirname "$0")/lib.sh"
inject() {
    rabbitmqctl shutdown >/dev/null
    rabbitmq-server -detached
    # await_startup needs a node that answers: wait for the Erlang node first.
    for _ in $(seq 240); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 0.25; done
    rabbitmqctl await_startup >/dev/null
}
drill rabbitmq-restart inject
