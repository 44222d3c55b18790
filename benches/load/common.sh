# shellcheck shell=bash
# Shared by every load bench that starts its own gateway (memory.sh, issuer.sh, second_factor.sh,
# passkey_login.sh, replicas.sh, and features-lib.sh for the feature benches): options, the
# release binary, an embedded issuer's config, a gateway pinned to one CPU and its readiness.
# Sourcing it only defines these and LOAD_HERE / LOAD_REPO / LOAD_BENCH: nothing is built or
# started until a function is called, so a bench that needs none of ../shared/bench still runs
# without it.

LOAD_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOAD_REPO=$(cd "$LOAD_HERE/../.." && pwd)
# shellcheck disable=SC2034  # read by the benches that source this
LOAD_BENCH=${BENCH_DIR:-$LOAD_REPO/../shared/bench}

# parse_opts --NAME=VAR ... -- "$@": sets VAR to VALUE for each `--NAME VALUE` in the
# arguments; any other argument ends the script with status 2.
parse_opts() {
  local -A _var=()
  while [[ $1 != -- ]]; do _var[${1%%=*}]=${1#*=}; shift; done
  shift
  while (($#)); do
    [[ -n ${_var[$1]:-} ]] || { echo "unknown argument $1"; exit 2; }
    printf -v "${_var[$1]}" '%s' "$2"
    shift 2
  done
}

# release_bin: PORTCULLIS_BIN, or else the release binary built now.
release_bin() {
  if [[ -z ${PORTCULLIS_BIN:-} ]]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
    (cd "$LOAD_REPO" && cargo build --release --bin portcullis)
    PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
  fi
}

# issuer_config DIR PUBLIC INTERNAL MANAGEMENT DATABASE REALM_JSON [TOML]: DIR/portcullis.toml
# for one worker thread, no audit log and no route watching, the embedded issuer on DATABASE
# importing REALM_JSON and served at /auth; TOML (more [issuer] keys, then other sections) is
# appended.
issuer_config() {
  local dir=$1
  mkdir -p "$dir/routes"
  cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:$2"
internal = "127.0.0.1:$3"
management = "127.0.0.1:$4"
[runtime]
worker_threads = 1
audit_log = false
[routing]
watch = false
[issuer]
database = "$5"
import = ["$6"]
${7:-}
TOML
  printf '[[route]]\nname = "auth"\nprefix = "/auth"\nupstreams = ["embedded:issuer"]\n' > "$dir/routes/auth.toml"
}

# realm_logins REALM_JSON: "CC_CLIENT CC_SECRET PW_CLIENT PW_SECRET USER:PASSWORD REALM" from a
# Keycloak realm template (its service-account client, its confidential password-grant client,
# its first user), for the loaders; no secret is hard-coded in a bench.
realm_logins() {
  python3 - "$1" <<'PY'
import json, os, re, sys
# ${VAR} / ${VAR:default} as the importers resolve them.
sub = lambda s: re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}", lambda m: os.environ.get(m[1], m[2] if m[2] is not None else m[0]), s)
r = json.loads(sub(open(sys.argv[1]).read()))
cs = r["clients"]
cc = next(c for c in cs if c.get("serviceAccountsEnabled"))
pw = next(c for c in cs if c.get("directAccessGrantsEnabled") and not c.get("publicClient"))
u = r["users"][0]
pwd = next(c["value"] for c in u["credentials"] if c["type"] == "password")
print(cc["clientId"], cc.get("secret", ""), pw["clientId"], pw.get("secret", ""), f'{u["username"]}:{pwd}', r["realm"])
PY
}

# start_pinned DIR CPU LOG: `portcullis run` on DIR/portcullis.toml, pinned to CPU, stdout
# dropped, stderr to LOG. Sets GW to its pid.
start_pinned() {
  (cd "$1" && exec taskset -c "$2" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$3") &
  # shellcheck disable=SC2034  # read by the caller
  GW=$!
}

# wait_ready URL PID LOG TRIES: polls URL each 0.1 s until it answers; when PID exits or TRIES
# polls pass first, prints LOG and ends the script.
wait_ready() {
  local i
  for ((i = 0; i < $4; i++)); do
    curl -sf "$1" >/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "not ready: $1; the gateway's log:" >&2
  cat "$3" >&2
  exit 1
}

# The machine's load when a measurement starts (for the tables).
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
