# Two entry points: `make serve` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles from source: a portable build (no -march=native).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1
APT_PACKAGES := espeak-ng sox redis-server chromium

.PHONY: install system-deps js serve test lint check bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, CPU build, pinned: nothing may pull a CUDA build.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[llm,audio,diarization,dev]"
	# resemblyzer's own requirements pull the source webrtcvad: install it bare.
	$(BIN)/pip install -q --no-deps resemblyzer==0.1.4
	touch $@

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

js:
	@if [ -f clients/js/package.json ]; then cd clients/js && npm ci --no-audit --no-fund && npm run build; fi

serve: install js
	$(BIN)/parley serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install system-deps js lint
	$(BIN)/pytest
	@if [ -f clients/js/package.json ]; then cd clients/js && npm test; fi

clean:
	rm -rf $(VENV) clients/js/node_modules clients/js/dist clients/js/build-test server/static/index.html server/static/demo.js server/static/demo.css
