# chatplatform operations. `make run` to start, `make test` to test (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)

.PHONY: run setup serve test test-langchain bench bench-gate bench-litellm loadtest loadtest-websockets lint audit check-deploy

## First-time setup, migrate, demo data, then serve on $HOST:$PORT (default 127.0.0.1:8000).
run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_data
	$(BIN)/python manage.py prepare_models
	$(BIN)/python manage.py serve

## Idempotent install into .venv (re-runs only when requirements.txt changes).
setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	# torch first, pinned: any other release would pull a multi-GB CUDA build.
	$(BIN)/pip install "$$(grep -E '^torch==' requirements.txt)"
	$(BIN)/pip install -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## Migrate, then run the ASGI server in the foreground (workers: WEB_CONCURRENCY, 1 without REDIS_URL).
serve: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py serve

## The whole test suite.
test: setup
	$(BIN)/python -m pytest

## LangChain's standard chat-model suite (ChatOpenAI) against our /v1, from its own venv.
LC_VENV  := tests/langchain/.venv
LC_STAMP := $(LC_VENV)/.installed-$(shell cat requirements-langchain.txt | cksum | cut -d' ' -f1)

$(LC_STAMP): requirements-langchain.txt
	test -x $(LC_VENV)/bin/python || $(PYTHON) -m venv $(LC_VENV)
	$(LC_VENV)/bin/pip install -q -r requirements-langchain.txt
	rm -f $(LC_VENV)/.installed-*
	touch $(LC_STAMP)

test-langchain: setup $(LC_STAMP)
	$(BIN)/python tests/langchain/run.py

## Benchmarks against a mock upstream, with the LiteLLM proxy measured beside us in the same run.
bench: setup bench-litellm
	$(BIN)/python bench/run.py

## CI's short benchmark: fails when server CPU per request regresses over 1.5x bench/gate.json
## (embedded mode; the figure is a ratio to the mock upstream's CPU in the same run).
bench-gate: setup
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python bench/gate.py

## LiteLLM in a virtualenv of its own inside bench/ (a benchmark-only dependency).
bench-litellm: bench/.litellm/.installed

bench/.litellm/.installed: bench/requirements-litellm.txt
	test -x bench/.litellm/bin/python || $(PYTHON) -m venv bench/.litellm
	bench/.litellm/bin/pip install -r bench/requirements-litellm.txt
	touch $@

## Open-loop load test of persisted chat (bench/loadtest.py: 300 req/s for 120 s, then every message checked in
## the database) on the production setup: PostgreSQL and Redis, two workers. LOADTEST_ARGS="--rate 30 --duration 15".
loadtest: setup
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; *) \
	  echo "make loadtest measures the production setup: set DATABASE_URL to a PostgreSQL database and REDIS_URL," >&2; \
	  echo "e.g. DATABASE_URL=postgres://chat:chat@127.0.0.1:5432/chat REDIS_URL=redis://127.0.0.1:6379/0 make loadtest" >&2; \
	  exit 2;; esac
	@test -n "$$REDIS_URL" || { echo "make loadtest needs REDIS_URL (Redis) as well as DATABASE_URL" >&2; exit 2; }
	$(BIN)/python bench/loadtest.py $(LOADTEST_ARGS)

## 1,000 idle authenticated WebSocket connections held, server memory and descriptors per connection
## (bench/websockets_idle.py; DATABASE_URL/REDIS_URL when set). WEBSOCKETS_ARGS="--connections 200".
loadtest-websockets: setup
	$(BIN)/python bench/websockets_idle.py $(WEBSOCKETS_ARGS)

lint: setup
	$(BIN)/ruff check .

## Security lint of our own code (bandit; medium or high severity fails).
audit: setup
	$(BIN)/bandit -q -c pyproject.toml -r . -ll
