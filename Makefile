# The project's vocabulary: run, test, lint, proto/generate, bench.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install run dev test test-python test-typescript lint proto openapi generate \
	generate-typescript check-generated check-install dist breaking bench bench-smoke clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP)

## run: start the service on SQLite (./webhook-grpc.db): gRPC at 127.0.0.1:50051, REST at 127.0.0.1:8080
run: $(STAMP)
	$(BIN)/webhook-grpc serve $(ARGS)

## dev: the development profile (serve --dev): http:// and loopback endpoints allowed, never in production
dev: $(STAMP)
	$(BIN)/webhook-grpc serve --dev $(ARGS)

## test: the whole test suite (PostgreSQL tests skip when it is unreachable, unless CI=true)
test: test-python test-typescript

test-python: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check src tests scripts clients/python bench
	$(BIN)/ruff format --check src tests scripts clients/python bench
	$(BIN)/mypy
	npx buf lint

## proto: regenerate the Python code from proto/ (committed; CI fails when stale)
proto: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

## openapi: regenerate the REST API's OpenAPI document from the protos (committed; CI fails when stale)
openapi: proto
	$(BIN)/python scripts/gen_openapi.py

## generate: regenerate all generated code (server, Python client, TypeScript client, OpenAPI)
generate: proto openapi generate-typescript

GENERATED := src/webhook_grpc/_gen clients/python/src/webhook_grpc_client/_gen \
	clients/typescript/src/gen src/webhook_grpc/api/rest/openapi.json

check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		git status --porcelain -- $(GENERATED); \
		echo "Generated code is stale: run 'make generate' and commit the result."; exit 1; \
	fi

## dist: the server's and the Python client's wheels and sdists, and the TypeScript client's npm
## tarball, in dist/ (what would be published)
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m build --outdir dist clients/python
	cd clients/typescript && npm pack --silent --pack-destination ../../dist

## check-install: install each artifact of dist/ into a fresh environment and smoke-test it
check-install: dist
	PYTHON=$(PYTHON) bash scripts/check_install.sh

## bench: the benchmark suite on PostgreSQL, under 10 minutes (BENCH_ARGS="--only delivery")
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## bench-smoke: every scenario for a moment, checking only that each produces its figures (CI)
bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

## breaking: buf breaking against the previous commit (BUF_AGAINST overrides)
BUF_AGAINST ?= .git\#ref=HEAD~1
breaking: $(NODE_STAMP)
	@if git cat-file -e HEAD~1:proto 2>/dev/null; then npx buf breaking --against '$(BUF_AGAINST)'; \
	else echo "buf breaking: no earlier protos to compare with"; fi

# TypeScript client (clients/typescript): its npm dependencies (protoc-gen-es among them) are
# installed with `npm ci` when the lock file is newer than the last install.
## generate-typescript: regenerate clients/typescript/src/gen with buf and protoc-gen-es
generate-typescript: $(NODE_STAMP)
	@cd clients/typescript && if [ ! package-lock.json -ot node_modules/.installed ]; then \
		npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; fi
	cd clients/typescript && ../../node_modules/.bin/buf generate

## test-typescript: build the TypeScript client and test it against a real server
test-typescript: $(STAMP)
	@cd clients/typescript && if [ ! package-lock.json -ot node_modules/.installed ]; then \
		npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; fi
	cd clients/typescript && npm run --silent build && \
		WEBHOOK_GRPC_PYTHON="$${WEBHOOK_GRPC_PYTHON:-$(abspath $(BIN))/python}" npm test

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
