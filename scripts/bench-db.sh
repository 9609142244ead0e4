# Sourced by the benchmarks: a PostgreSQL cluster of their own (15/bench on port 5433,
# pg_stat_statements loaded, 300 connections), so the cluster the tests use is left alone.
#   bench_db_fresh NAME    drops and creates database NAME in it (with pg_stat_statements)
# Sets BENCH_PG (its URL without a database) and BENCH_PG_VERSION.
BENCH_PG_PORT=5433
BENCH_PG_VERSION=$(ls /etc/postgresql | sort -n | tail -n1)
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx bench; then
    pg_createcluster "$BENCH_PG_VERSION" bench -p "$BENCH_PG_PORT" -- --auth=trust >/dev/null
    cat >>"/etc/postgresql/$BENCH_PG_VERSION/bench/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
max_connections = 300
CONF
fi
pg_ctlcluster --skip-systemctl-redirect "$BENCH_PG_VERSION" bench start 2>/dev/null || true
for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p "$BENCH_PG_PORT" && break; sleep 0.1; done
BENCH_PG="postgres://postgres@127.0.0.1:$BENCH_PG_PORT"

bench_db_fresh() {
    psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1"
    psql "$BENCH_PG/$1" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
}
