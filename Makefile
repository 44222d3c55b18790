# portcullis: `make run` (dev gateway + demo upstream) and `make test` (every test).
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/portcullis-target
export CARGO_TARGET_DIR
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug/portcullis
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/portcullis
ECHO_ADDR ?= 127.0.0.1:18080

.PHONY: run test deps build release lint fmt bench check clean-data

## Install what the build needs (cmake for Pingora's zlib-ng) when it is missing.
deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }
	@if ! command -v cmake >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing cmake (needed by Pingora's zlib-ng)"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null; \
	  elif command -v sudo >/dev/null; then \
	    sudo apt-get update -qq; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake; \
	  else \
	    echo "cmake is missing and this is not root: install cmake (e.g. apt-get install cmake)"; exit 1; \
	  fi; \
	fi

build: deps
	$(CARGO) build --bin portcullis

release: deps
	$(CARGO) build --release --bin portcullis

## Dev gateway on https://localhost:8443 with the echo upstream on $(ECHO_ADDR).
run: build
	@$(BIN) check --config portcullis.toml
	@$(BIN) echo --listen $(ECHO_ADDR) & echo_pid=$$!; \
	  trap 'kill $$echo_pid 2>/dev/null' EXIT INT TERM; \
	  $(BIN) run --config portcullis.toml

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features bench-baseline -- -D warnings

test: deps lint
	$(CARGO) test --all-targets --no-fail-fast

check: build
	$(BIN) check --config portcullis.toml

bench: release
	$(CARGO) bench

fmt:
	$(CARGO) fmt --all
