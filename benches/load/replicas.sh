#!/usr/bin/env bash
# Replicas on one PostgreSQL (issue 20 item 7): statements and round trips per grant, the
# PostgreSQL CPU per grant, and one replica against three at the same load (the issuer's CPU
# per grant). Needs the local PostgreSQL (127.0.0.1:5432, trust) and read access to its log
# (for the statement counts). See replicas.py for the method; results in benches/README.md.
#
# usage: benches/load/replicas.sh [-n GRANTS] [--duration S] [--concurrency N]
#   PORTCULLIS_BIN=path   use this binary instead of building target/release
set -euo pipefail
# shellcheck source=benches/load/common.sh
source "$(dirname "$0")/common.sh"
release_bin
exec python3 "$LOAD_HERE/replicas.py" --bin "$PORTCULLIS_BIN" --bench-py "$LOAD_BENCH/issuer_bench.py" "$@"
