#!/usr/bin/env bash
# Restart PostgreSQL (fast mode: every connection is cut) under load.
source "$(dirname "$0")/lib.sh"
inject() { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main restart; }
drill postgres-restart inject
