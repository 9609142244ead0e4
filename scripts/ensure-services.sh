#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on 127.0.0.1 (used by .ci/run, `make test`, `make dev`),
# that Chromium and chromedriver are installed for the desk's browser tests, and that
# twilio-python is in target/twilio-venv for the signature cross-check, with moto's S3 server.
# Docker compose where a Docker engine runs; otherwise Debian's packages, installed if missing
# and started if stopped. Prints the DATABASE_URL and AMQP_URL to use, as `export` lines, on fd 3
# when fd 3 is open (callers: `eval "$(scripts/ensure-services.sh 3>&1 >&2)"`).
set -euo pipefail

PG_URL_TRUST="postgres://postgres@127.0.0.1:5432/postgres"
PG_URL_PASSWORD="postgres://postgres:postgres@127.0.0.1:5432/postgres"
AMQP="amqp://guest:guest@127.0.0.1:5672/%2f"

log() { echo "ensure-services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 1
  done
  log "$name did not open port $port within 120 s"; return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

docker_usable() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

if ! port_open 5432 || ! port_open 5672; then
  if docker_usable && [ -f docker-compose.yml ]; then
    log "starting postgres and rabbitmq with docker compose"
    docker compose up -d postgres rabbitmq >&2
  fi
fi

# PostgreSQL
if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
wait_port 5432 PostgreSQL
command -v psql >/dev/null 2>&1 || apt_install postgresql-client
DATABASE_URL=${DATABASE_URL:-}
if [ -z "$DATABASE_URL" ]; then
  if psql "$PG_URL_TRUST" -qtAc 'select 1' >/dev/null 2>&1; then
    DATABASE_URL=$PG_URL_TRUST
  else
    if ! psql "$PG_URL_PASSWORD" -qtAc 'select 1' >/dev/null 2>&1; then
      # A fresh Debian install asks for a password on TCP: give the local superuser one.
      log "setting a password for the local postgres user (host auth needs one)"
      as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    fi
    DATABASE_URL=$PG_URL_PASSWORD
  fi
fi
psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null

# RabbitMQ
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
fi
wait_port 5672 RabbitMQ
AMQP_URL=${AMQP_URL:-$AMQP}

# Headless Chromium and its WebDriver, for the desk's browser tests.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi

# twilio-python, the independent check of shared-key webhook signatures (a PyPI package, in a
# venv under target/).
twilio_venv="$(dirname "$0")/../target/twilio-venv"
if [ ! -x "$twilio_venv/bin/python" ] || ! "$twilio_venv/bin/python" -c 'import twilio' 2>/dev/null; then
  log "installing twilio-python into target/twilio-venv"
  python3 -m venv "$twilio_venv"
  "$twilio_venv/bin/pip" install --quiet --disable-pip-version-check "twilio==9.13.0"
fi
# moto's S3 server, for the test that keeps agents' files in S3-compatible storage.
if [ ! -x "$twilio_venv/bin/moto_server" ]; then
  log "installing moto's S3 server into target/twilio-venv"
  "$twilio_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.6"
fi

log "PostgreSQL and RabbitMQ are up"
if { true >&3; } 2>/dev/null; then
  printf 'export DATABASE_URL=%q\nexport AMQP_URL=%q\n' "$DATABASE_URL" "$AMQP_URL" >&3
fi
