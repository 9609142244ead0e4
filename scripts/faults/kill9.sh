#!/usr/bin/env bash
# kill -9 one service under load and start it again: scripts/faults/kill9.sh SERVICE
source "$(dirname "$0")/lib.sh"
SERVICE=${1:?usage: kill9.sh ingress|session|routing|sender|api|bots}
inject() { scripts/stack.sh kill9 "$SERVICE"; scripts/stack.sh restart "$SERVICE"; }
drill "kill9-$SERVICE" inject
