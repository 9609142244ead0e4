#!/usr/bin/env bash
# Stop RabbitMQ under load and start it again.
source "$(dirname "$0")/lib.sh"
inject() {
    rabbitmqctl shutdown >/dev/null
    rabbitmq-server -detached
    rabbitmqctl await_startup >/dev/null
}
drill rabbitmq-restart inject
