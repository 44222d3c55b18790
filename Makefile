# portcullis: `make run` (dev gateway + demo upstream) and `make test` (every test).
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/portcullis-target
export CARGO_TARGET_DIR
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug/portcullis
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/portcullis
ECHO_ADDR ?= 127.0.0.1:18080

.PHONY: run test deps test-deps build release lint fmt bench bench-gate check clean-data

## Install what the build needs when it is missing: cmake (Pingora's zlib-ng), OpenSSL's
## headers and pkg-config (webauthn-rs's `openssl` crate).
deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }
	@missing=""; command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	pkg-config --exists openssl 2>/dev/null || missing="$$missing libssl-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (the build needs them)"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null; then \
	    sudo apt-get update -qq; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing:$$missing and this is not root: install them (apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

build: deps
	$(CARGO) build --bin portcullis

release: deps
	$(CARGO) build --release --bin portcullis

## The dev issuer's admin of the `master` realm, whose tokens open the admin API on the
## management listener (created on the first start only; Keycloak's KC_BOOTSTRAP_ADMIN_*).
BOOTSTRAP_ADMIN_USERNAME ?= admin
BOOTSTRAP_ADMIN_PASSWORD ?= admin

## Dev gateway on https://localhost:8443 with the echo upstream on $(ECHO_ADDR).
run: build
	@$(BIN) check --config portcullis.toml
	@$(BIN) echo --listen $(ECHO_ADDR) & echo_pid=$$!; \
	  trap 'kill $$echo_pid 2>/dev/null' EXIT INT TERM; \
	  PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME='$(BOOTSTRAP_ADMIN_USERNAME)' \
	  PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD='$(BOOTSTRAP_ADMIN_PASSWORD)' \
	  $(BIN) run --config portcullis.toml

## pingora-core's own tests that need the internet, a particular network layout, or files its
## crates.io release leaves out (vendor/pingora-core/PORTCULLIS.md, "Its own tests").
PINGORA_CORE_SKIP := \
	--skip connectors::http::tests::test_connect_h1 \
	--skip connectors::http::tests::test_connect_h2 \
	--skip connectors::http::tests::test_connect_h2_fallback_h1_reuse \
	--skip connectors::http::tests::test_connect_prefer_h1 \
	--skip connectors::http::tests::test_custom_client_custom_upstream \
	--skip connectors::http::tests::test_custom_client_non_custom_upstream \
	--skip connectors::http::v1::tests::test_connect \
	--skip connectors::http::v1::tests::test_connect_tls \
	--skip connectors::http::v1::tests::test_reuse_rejects_fd_mismatch \
	--skip connectors::http::v2::tests::test_connect_h1 \
	--skip connectors::http::v2::tests::test_connect_h1_plaintext \
	--skip connectors::http::v2::tests::test_connect_h2 \
	--skip connectors::http::v2::tests::test_h2_multiple_stream \
	--skip connectors::http::v2::tests::test_h2_reuse_rejects_fd_mismatch \
	--skip connectors::http::v2::tests::test_h2_single_stream \
	--skip connectors::l4::tests::test_conn_error_addr_not_avail \
	--skip connectors::l4::tests::test_conn_error_other \
	--skip connectors::l4::tests::test_conn_timeout \
	--skip connectors::l4::tests::test_custom_connect \
	--skip connectors::l4::tests::test_tweak_hook \
	--skip connectors::tests::test_conn_timeout \
	--skip connectors::tests::test_conn_timeout_with_offload \
	--skip connectors::tests::test_connect \
	--skip connectors::tests::test_connect_tls \
	--skip connectors::tests::test_connect_with_offload_timing \
	--skip connectors::tests::test_do_connect_with_total_timeout \
	--skip connectors::tests::test_do_connect_without_total_timeout \
	--skip connectors::tests::test_tls_connect_timeout_supersedes_total \
	--skip listeners::test::test_listen_tls \
	--skip listeners::test::test_listen_tls_with_offload \
	--skip listeners::tls::rustls::tests::test_from_server_config_handshake \
	--skip protocols::tls::rustls::server::tests::test_handshake_complete_callback

CLIPPY_FLAGS := -D warnings

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --features bench-baseline -- $(CLIPPY_FLAGS)
	$(CARGO) clippy -p portcullis-gateway --no-default-features --all-targets -- $(CLIPPY_FLAGS)
	$(CARGO) clippy -p portcullis --no-default-features --features small-rss -- $(CLIPPY_FLAGS)
	python3 tools/arch.py

## Every test: the workspace's; the gateway built without the embedded issuer (the sidecar
## build, which refuses issuer config); the vendored pingora-core's own tests that need no
## internet (PINGORA_CORE_SKIP).

## What the integration tests drive, installed when missing: Debian's chromium + chromedriver
## (real-browser tests), nginx (forward auth), kubectl (kustomize), promtool (alert rules),
## valgrind (the release build's text order, tests/it/text_order.rs); the
## Python venv of tests/interop/requirements.txt and the npm packages of tests/interop.
VENV ?= $(HOME)/.cache/portcullis-venv
TEST_APT := chromium:chromium chromedriver:chromium-driver nginx:nginx kubectl:kubernetes-client promtool:prometheus \
  redis-server:redis-server valgrind:valgrind
test-deps: deps
	@missing=""; for pair in $(TEST_APT); do \
	  command -v $${pair%%:*} >/dev/null || [ -x /usr/sbin/$${pair%%:*} ] || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ($$SUDO apt-get update -qq || true) && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@if ! cmp -s tests/interop/requirements.txt $(VENV)/.portcullis-requirements; then \
	  echo "setting up the test venv at $(VENV)"; \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r tests/interop/requirements.txt && \
	  cp tests/interop/requirements.txt $(VENV)/.portcullis-requirements; \
	fi
	@if ! cmp -s tests/interop/package-lock.json tests/interop/node_modules/.portcullis-lock; then \
	  echo "installing tests/interop's npm packages"; \
	  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error && \
	   cp package-lock.json node_modules/.portcullis-lock); \
	fi

test: test-deps lint
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test -p portcullis-gateway --no-default-features --no-fail-fast
	$(CARGO) test --manifest-path vendor/pingora-core/Cargo.toml --lib --features rustls,connection_filter \
	  --no-fail-fast -- \
	  --exact $(PINGORA_CORE_SKIP)

check: build
	$(BIN) check --config portcullis.toml

bench: release
	$(CARGO) bench

## The criterion regression gate (benches/gate.sh): `make bench-gate GATE=save` on the commit
## to compare with, then `make bench-gate` fails, naming the bench, when one's mean is slower by
## more than GATE_THRESHOLD (0.10) with its whole 95 % interval above; prints the figures table.
GATE ?= compare
GATE_BASELINE ?= gate
bench-gate: deps
	benches/gate.sh $(GATE) $(GATE_BASELINE)

fmt:
	$(CARGO) fmt --all

## Fuzzing (fuzz/README.md): cargo-fuzz drives libFuzzer, which needs nightly compiler flags;
## RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Built without a sanitizer (`-s none`):
## the targets are safe Rust, where the findings are panics and broken properties, and
## uninstrumented builds run about twice as many inputs. `make fuzz` runs every target for
## FUZZ_SECONDS, one after another, pinned to CPU FUZZ_CPU; new inputs go to fuzz/corpus/
## (ignored by git), crashes to fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_CPU ?= 0
FUZZ_TARGET_DIR ?= $(HOME)/.cache/portcullis-fuzz
FUZZ_TARGETS = $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
FUZZ_ENV = CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) RUSTC_BOOTSTRAP=1

.PHONY: fuzz fuzz-build fuzz-deps

fuzz-deps:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz-build: deps fuzz-deps
	cd fuzz && $(FUZZ_ENV) $(CARGO) fuzz build -s none

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p fuzz/corpus/$$t; \
	  (cd fuzz && $(FUZZ_ENV) taskset -c $(FUZZ_CPU) $(CARGO) fuzz run -s none $$t \
	    corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1); \
	done

## The workspace's shape (ARCHITECTURE.md): crate arrows, no file import cycles, sizes.
.PHONY: arch
arch:
	python3 tools/arch.py
