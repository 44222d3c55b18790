#!/usr/bin/env bash
# Replicas on one PostgreSQL (issue 20 item 7): statements and round trips per grant, the
# PostgreSQL CPU per grant, and one replica against three at the same load (the issuer's CPU
# per grant). Needs the local PostgreSQL (127.0.0.1:5432, trust) and read access to its log
# (for the statement counts). See replicas.py for the method; results in benches/README.md.
#
# usage: benches/load/replicas.sh [-n GRANTS] [--duration S] [--concurrency N]
#   PORTCULLIS_BIN=path   use this binary instead of building target/release
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
if [[ -z ${PORTCULLIS_BIN:-} ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
  (cd "$repo" && cargo build --release --bin portcullis)
  PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
fi
exec python3 "$here/replicas.py" --bin "$PORTCULLIS_BIN" --bench-py "$bench/issuer_bench.py" "$@"
