# The two quick-start commands: `make run` (install and start a local cluster) and `make test`.
# The bench* targets record into loadtest/results/ (--record); other load runs write to .parley/results/.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run run-cassandra test install install-test lint bench bench-efficiency bench-foundation bench-store bench-scale bench-leader-kill bench-workers bench-regions bench-live loadtest-smoke capacity clean

run: install  # options for parley up: make run ARGS="--nodes 3 --api-port 8180"
	$(BIN)/parley up $(ARGS)

run-cassandra: install  # the same cluster with history in a local Cassandra 5.0 (needs Java 17 and Maven)
	$(BIN)/parley up --store cassandra $(ARGS)

test: install-test
	ops/test-deps.sh $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/python ops/typecheck.py
	$(BIN)/pytest
	@echo "== the protocol and integration tests again, on a 3-server JetStream cluster (R3 stream and buckets)"
	PARLEY_TEST_NATS_SERVERS=3 $(BIN)/pytest $(CLUSTER_TESTS)

CLUSTER_TESTS := tests/integration/test_dm.py tests/integration/test_sync.py tests/integration/test_groups.py

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lint: install-test
	$(BIN)/ruff check .

bench: install-test  # the standard set: raw capacity figures + a short Foundation run -> loadtest/results/capacity.jsonl
	$(BIN)/python -m parley.loadtest.standard --record

bench-efficiency: install-test  # Parley beside a bare aiohttp relay, same generator, same pinning (~5 min) -> loadtest/results/efficiency.jsonl
	$(BIN)/python -m parley.loadtest.efficiency --record

bench-foundation: install-test  # the full cross-node DM benchmark alone -> loadtest/results/bench.jsonl
	$(BIN)/python -m parley.loadtest.bench --record

loadtest-smoke: install-test  # Locust, 10 users for 10 s against a local cluster it starts; HTML report
	$(BIN)/python -m parley.loadtest.run smoke

capacity: install-test  # the 50M-DAU cluster size from the latest measured figures; rewrites the docs' tables
	$(BIN)/python -m parley.loadtest.model
	$(BIN)/python -m parley.loadtest.docs

bench-leader-kill: install-test  # kill -9 the stream leader of a 3-server cluster under traffic -> loadtest/results/leader_kill.jsonl
	$(BIN)/python -m parley.loadtest.leader_kill --record

bench-store: install-test
	$(BIN)/python -m parley.loadtest.store_bench --record

bench-scale: install-test  # JetStream msg/s and nats-server CPU per message, K=1,2,4 shard streams x R1/R3, the presence worker's CPU per heartbeat entry and the pusher's per message and push -> loadtest/results/scale.jsonl
	$(BIN)/python -m parley.loadtest.scale --record
	$(BIN)/python -m parley.loadtest.presence_cost --record
	$(BIN)/python -m parley.loadtest.push_cost --record

bench-workers: install-test  # archive rate with 1 vs 2 archivers, presence entries/s per worker -> loadtest/results/workers.jsonl
	$(BIN)/python -m parley.loadtest.workers_bench --record

bench-regions: install-test  # send->delivery and send->ack p50/p99, a DM within a region and across eu/us homed on either side, 0 and 40 ms one-way gateway delay -> loadtest/results/regions.jsonl
	$(BIN)/python -m parley.loadtest.regions --record

bench-live: install-test  # one live room, 10,000 viewers over 2 nodes, stepped send rates (~10 min) -> loadtest/results/live.jsonl
	$(BIN)/python -m parley.loadtest.live_bench --record

clean:
	rm -rf .parley
