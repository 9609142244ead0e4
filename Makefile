# Mirrors .ci/run. `make test` is the test command; `make dev` runs the whole system.
NEXTEST_PROFILE ?= default
SERVICES = eval "$$(scripts/ensure-services.sh 3>&1 >&2)"

.PHONY: test fmt lint dev up bench-bus clean-test-dbs validate-k8s

# The whole system in one process with demo data; ctrl-c stops it.
dev:
	@$(SERVICES) && cargo build -p switchboard-cli && \
	  SWITCHBOARD_LOG_FORMAT=$${SWITCHBOARD_LOG_FORMAT:-pretty} RUST_LOG=$${RUST_LOG:-warn,switchboard=info} \
	  ./target/debug/switchboard dev --demo

test:
	@$(SERVICES) && cargo nextest run --workspace --locked --profile $(NEXTEST_PROFILE)

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

validate-k8s:
	bash scripts/validate-k8s.sh

up:
	@scripts/ensure-services.sh

bench-bus:
	@$(SERVICES) && cargo run --release -p switchboard-bus --example publish_throughput -- 20000 256

# Drops databases left behind by test runs that were killed.
clean-test-dbs:
	@$(SERVICES) && psql "$$DATABASE_URL" -qtAc "select datname from pg_database where datname like 'sb_test_%'" | \
	  while read -r db; do psql "$$DATABASE_URL" -qc "drop database if exists $$db with (force)"; done
