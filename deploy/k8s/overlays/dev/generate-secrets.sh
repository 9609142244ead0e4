#!/usr/bin/env bash
# Generates the development overlay's secrets, fresh and random, into secrets/ next to this
# script (git-ignored): nothing usable is committed. Run it once before `kubectl apply -k`;
# it keeps existing files (delete secrets/ to make new ones).
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
rand() { head -c "$1" /dev/urandom | base64 | tr -d '\n/+=' | head -c "$2"; }
write() {
    local file="$dir/$1.env"
    [[ -e $file ]] && return 0
    umask 077
    cat >"$file"
}
pg_super=$(rand 48 32)
rabbit=$(rand 48 32)
amqp="amqp://switchboard:${rabbit}@rabbitmq:5672/%2f"
declare -A pw
for s in session routing sender ingress api; do pw[$s]=$(rand 48 32); done
write postgres <<<"POSTGRES_PASSWORD=$pg_super"
write rabbitmq <<<"RABBITMQ_DEFAULT_PASS=$rabbit"
printf 'DATABASE_URL=postgres://postgres:%s@postgres:5432/postgres\nAMQP_ADMIN_URL=%s\n' "$pg_super" "$amqp" | write migrate
{
    echo "PGPASSWORD=$pg_super"
    for s in session routing sender ingress api; do echo "LOGIN_PASSWORD_${s^^}=${pw[$s]}"; done
} | write db-logins
{
    echo "DATABASE_URL=postgres://session_app:${pw[session]}@postgres:5432/postgres"
    echo "AMQP_URL=$amqp"
    echo "SWITCHBOARD_SESSION__TOKEN_KEYS__K1=$(head -c 32 /dev/urandom | base64)"
    echo "SWITCHBOARD_SESSION__TOKEN_ACTIVE_KEY=k1"
} | write session
for s in routing sender ingress; do
    printf 'DATABASE_URL=postgres://%s_app:%s@postgres:5432/postgres\nAMQP_URL=%s\n' "$s" "${pw[$s]}" "$amqp" | write "$s"
done
{
    echo "DATABASE_URL=postgres://api_app:${pw[api]}@postgres:5432/postgres"
    echo "AMQP_URL=$amqp"
    echo "SWITCHBOARD_ADMIN_API_KEY=sb_$(rand 64 40)"
} | write api
write bots <<<"AMQP_URL=$amqp"
echo "development secrets in $dir (the admin API key is in api.env)"
