# Eddy's entry points. `make test` is what CI runs (.ci/run).
.PHONY: install ui screenshots test soak typecheck cycles check demo bench clean

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
	EDDY_DASHBOARD_SCREENSHOTS=docs/dashboard $(NODE) --test --test-reporter=spec test/dashboard-browser.test.ts

# Unquoted glob: the shell expands it (a quoted glob fails on Node 20). Test files live directly in test/.
# Debian's chromium is installed (when missing) for the dashboard's browser test.
test: install ui
	./scripts/ensure-chromium.sh
	$(NODE) --test --test-reporter=spec test/*.test.ts

# The fault tests at release size (more events, more kills; EDDY_SOAK in test/kit/soak.ts):
# about 15 minutes on 2 cores. Not part of `make test`, which must stay under 10 minutes.
SOAK_TESTS := test/exactly-once.test.ts test/coordinator-restart.test.ts test/checkpoint-faults.test.ts test/rescale.test.ts test/windows-faults.test.ts
soak: install
	EDDY_SOAK=1 $(NODE) --test --test-reporter=spec $(SOAK_TESTS)

typecheck:
	npm run typecheck

cycles:
	npm run cycles

check: typecheck cycles test

demo: install ui
	$(NODE) cli/main.ts demo

bench: install
	./scripts/ensure-redis-server.sh
	$(NODE) bench/run.ts

clean:
	rm -rf data
