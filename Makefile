# Eddy's entry points. `make test` is what CI runs (.ci/run).
.PHONY: install test typecheck cycles check demo bench clean

NODE := node --import tsx

install: node_modules/.package-lock.json
	./scripts/ensure-nats-server.sh

# npm ci rewrites node_modules/.package-lock.json, so this runs only when package-lock.json is
# newer or node_modules is missing.
node_modules/.package-lock.json: package-lock.json
	npm ci
	@touch $@

# Unquoted glob: the shell expands it (a quoted glob fails on Node 20). Test files live directly in test/.
test: install
	$(NODE) --test --test-reporter=spec test/*.test.ts

typecheck:
	npm run typecheck

cycles:
	npm run cycles

check: typecheck cycles test

demo: install
	$(NODE) cli/main.ts demo

bench: install
	./scripts/ensure-redis-server.sh
	$(NODE) bench/run.ts

clean:
	rm -rf data
