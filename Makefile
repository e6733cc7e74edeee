# Eddy's entry points. `make test` is what CI runs (.ci/run): the type check, the import-cycle
# check, the .proto lint, then every test.
.PHONY: install ui screenshots test soak typecheck cycles lint-protos check demo bench clean

NODE := node --import tsx

install: node_modules/.package-lock.json
	./scripts/ensure-nats-server.sh

# npm ci rewrites node_modules/.package-lock.json, so this runs only when package-lock.json is
# newer or node_modules is missing.
node_modules/.package-lock.json: package-lock.json
	npm ci
	@touch $@

# The dashboard's page (ui/src) bundled by esbuild into ui/dist, which the coordinator serves.
ui: node_modules/.package-lock.json
	$(NODE) ui/build.ts

# Runs the dashboard's browser test and keeps its screenshots in docs/dashboard (shown in the README).
screenshots: install ui
	./scripts/ensure-chromium.sh
	EDDY_DASHBOARD_SCREENSHOTS=docs/dashboard $(NODE) --test --test-reporter=spec test/e2e/dashboard-browser.test.ts

# Tests by kind: test/unit (in process, against real NATS and RocksDB where they need them),
# test/e2e (Eddy as processes: a coordinator and workers), test/fault (processes killed, stopped or
# cut off on purpose). Unquoted globs: the shell expands them (a quoted glob fails on Node 20).
# Debian's chromium is installed (when missing) for the dashboard's browser test, Debian's
# python3-grpcio, protobuf-compiler and protobuf-compiler-grpc for the Python client's test.
# One test file at a time by default (node's default on 2 cores): with two at a time the suite
# takes ~12.5 minutes instead of ~16, but the compose test then saw a recovery during scaling
# under the load. `make test TEST_CONCURRENCY=2` for speed.
TESTS := test/unit/*.test.ts test/e2e/*.test.ts test/fault/*.test.ts
TEST_CONCURRENCY ?= 1
test: install ui typecheck cycles lint-protos
	./scripts/ensure-chromium.sh
	./scripts/ensure-python-grpc.sh
	$(NODE) --test --test-reporter=spec --test-concurrency=$(TEST_CONCURRENCY) $(TESTS)

# The fault tests at release size (more events, more kills; EDDY_SOAK in test/kit/soak.ts):
# about 40 minutes on 2 cores (the windows fault test at 1,000,000 events is ~24 of them). Not part of `make test`.
SOAK_TESTS := test/fault/exactly-once.test.ts test/fault/coordinator-restart.test.ts test/fault/coordinator-failover.test.ts test/fault/nats-cluster.test.ts test/fault/nats-restart.test.ts test/fault/checkpoint-faults.test.ts test/fault/rescale.test.ts test/fault/windows-faults.test.ts
soak: install
	EDDY_SOAK=1 $(NODE) --test --test-reporter=spec $(SOAK_TESTS)

typecheck: node_modules/.package-lock.json
	npm run typecheck

cycles: node_modules/.package-lock.json
	npm run cycles

# The public .proto files against buf-style rules (comments, names, packages): scripts/lint-protos.ts.
lint-protos: node_modules/.package-lock.json
	npm run lint:protos

# The same as `make test`, under the name other projects use.
check: test

demo: install ui
	$(NODE) cli/main.ts demo

bench: install
	./scripts/ensure-redis-server.sh
	$(NODE) bench/run.ts

clean:
	rm -rf data
