# The single entry point. `make run` brings the system up; `make test` runs every test.
.PHONY: run test lint fmt bench stores migrate deploy-check

run:            ## all four services (and the simulator) against local Postgres and Redis
	scripts/dev

test:           ## unit + integration tests against the real stores, then deployment checks
	scripts/test

lint:           ## formatting and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench:          ## performance figures (see README.md, Benchmarks)
	cargo run --release -p bench -- all

stores:         ## start PostgreSQL and Redis if they are not running
	bash -c 'source scripts/lib.sh && ensure_stores'

migrate:        ## apply migrations to DATABASE_URL
	cargo run -p kloyst-admin -- migrate

deploy-check:   ## compose config, nginx -t, nginx routing on loopback
	scripts/check-deploy.sh --routing --start-services
