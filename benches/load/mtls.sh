#!/usr/bin/env bash
# Client certificates on the public listener (issue 19), beside HAProxy with
# `verify required ca-file` (haproxy-mtls.cfg.in) and both without client auth:
#   1. new connections: newconn.py (a full TLS 1.3 handshake presenting a client certificate,
#      one request with Connection: close, close), 4 threads on the client CPU;
#      the server's CPU µs per connection from /proc/PID/stat over the window.
#   2. keep-alive requests on an mTLS connection: wrk cannot present a client certificate, so
#      wrk → socat (on the client CPU, one forked socat per connection holding one TLS
#      connection with the client certificate) → server, in ../shared/bench/run.sh; every
#      target, with or without client auth, goes through the same socat path.
# Gateways: M (client_auth = "required", routes /public and /svc with auth = "mtls") and
# P (the same certificate, no client CA, route /public); one worker thread each, pinned
# beside the peers. Server certificate: the bench's RSA-2048; clients: ECDSA P-256 with a
# SPIFFE URI SAN, signed by a P-256 CA.
#
# usage: benches/load/mtls.sh [--new-seconds S] [--rounds N] [--only-new|--only-ka] [run.sh options...]
set -euo pipefail
source "$(dirname "$0")/features-lib.sh"
new_s=8; rounds=3; do_new=1; do_ka=1; args=()
while (($#)); do
  case $1 in
    --new-seconds) new_s=$2; shift 2 ;;
    --rounds) rounds=$2; args+=(--rounds "$2"); shift 2 ;;
    --only-new) do_ka=0; shift ;;
    --only-ka) do_new=0; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
pki=$FEAT_DIR/pki; mkdir -p "$pki"
spiffe=spiffe://cluster.local/ns/bench/sa/load
(
  cd "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout ca.key -out ca.crt \
    -subj "/CN=bench clients CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj "/CN=load"
  printf 'subjectAltName=URI:%s\nextendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$spiffe" > ext
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out client.crt
) >/dev/null 2>&1 || die "PKI generation failed"

write_gw() {  # write_gw DIR PORT MGMT mtls|plain
  local dir=$1 port=$2 mgmt=$3 mode=$4
  mkdir -p "$dir/routes" "$dir/policies"
  cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:$port"
management = "127.0.0.1:$mgmt"
[runtime]
worker_threads = 1
audit_log = false
[tls]
cert = "$WORK/tls/server.crt"
key = "$WORK/tls/server.key"
self_signed_if_missing = false
TOML
  [[ $mode == mtls ]] && printf 'client_ca = "%s"\nclient_auth = "required"\n' "$pki/ca.crt" >> "$dir/portcullis.toml"
  printf '[routing]\nwatch = false\n' >> "$dir/portcullis.toml"
  cat > "$dir/routes/bench.toml" <<TOML
[[route]]
name = "public"
prefix = "/public"
strip_prefix = true
upstreams = ["http://127.0.0.1:$ORIGIN_PORT"]
TOML
  [[ $mode == mtls ]] || return 0
  cat >> "$dir/routes/bench.toml" <<TOML
[[route]]
name = "svc"
prefix = "/svc"
strip_prefix = true
upstreams = ["http://127.0.0.1:$ORIGIN_PORT"]
auth = "mtls"
TOML
  cat > "$dir/policies/bench.toml" <<TOML
[principals]
"spiffe://cluster.local/ns/bench/*" = ["svc"]
[roles.svc]
permissions = ["bench:*"]
[[allow]]
route = "svc"
methods = ["*"]
permission = "bench:*"
TOML
}
write_gw "$FEAT_DIR/gw-mtls" 28643 28690 mtls
write_gw "$FEAT_DIR/gw-tls" 28644 28691 plain
start_gateway portcullis-mtls "$FEAT_DIR/gw-mtls" 28690
start_gateway portcullis-tls "$FEAT_DIR/gw-tls" 28691
start_hap() {  # start_hap NAME PORT VERIFY
  render "$FEAT_HERE/haproxy-mtls.cfg.in" "$WORK/conf/$1.cfg" "PORT=$2" "VERIFY=$3"
  # shellcheck disable=SC2046
  $(pin_server) haproxy -db -f "$WORK/conf/$1.cfg" >>"$WORK/logs/$1.log" 2>&1 &
  STARTED_PIDS+=("$!"); SVC_PID[$1]=$!
  wait_port "$2" "$!" "$1"
}
start_hap haproxy-mtls 28645 "ca-file $pki/ca.crt verify required"
start_hap haproxy-tls 28646 ""
declare -A PID_OF=([portcullis-mtls]=${GW_PID[portcullis-mtls]} [portcullis-mtls-route]=${GW_PID[portcullis-mtls]}
  [portcullis-tls]=${GW_PID[portcullis-tls]} [haproxy-mtls]=${SVC_PID[haproxy-mtls]} [haproxy-tls]=${SVC_PID[haproxy-tls]})
declare -A ADDR=([portcullis-mtls]=127.0.0.1:28643 [portcullis-mtls-route]=127.0.0.1:28643
  [portcullis-tls]=127.0.0.1:28644 [haproxy-mtls]=127.0.0.1:28645 [haproxy-tls]=127.0.0.1:28646)
declare -A URLPATH=([portcullis-mtls]=/public/api/admin/ping [portcullis-mtls-route]=/svc/api/admin/ping
  [portcullis-tls]=/public/api/admin/ping [haproxy-mtls]=/api/admin/ping [haproxy-tls]=/api/admin/ping)
declare -A CERT=([portcullis-mtls]=1 [portcullis-mtls-route]=1 [portcullis-tls]=0 [haproxy-mtls]=1 [haproxy-tls]=0)
NAMES=(haproxy-mtls portcullis-mtls portcullis-mtls-route haproxy-tls portcullis-tls)
cert_args() { ((CERT[$1])) && echo "$pki/client.crt $pki/client.key" || true; }

if ((do_new)); then
  start_origin
  for n in "${NAMES[@]}"; do  # preflight: 200 with the certificate, and no answer without it
    curl_cert=(); ((CERT[$n])) && curl_cert=(--cert "$pki/client.crt" --key "$pki/client.key")
    code=$(curl -sk -o /dev/null -w '%{http_code}' "${curl_cert[@]}" "https://${ADDR[$n]}${URLPATH[$n]}" || true)
    [[ $code == 200 ]] || curl -skv "${curl_cert[@]}" "https://${ADDR[$n]}${URLPATH[$n]}" >&2 || true
    [[ $code == 200 ]] || { cat "$FEAT_DIR"/gw-*/stderr.log >&2; die "preflight $n: HTTP $code"; }
    if ((CERT[$n])); then
      code=$(curl -sk -o /dev/null -w '%{http_code}' "https://${ADDR[$n]}${URLPATH[$n]}" || true)
      [[ $code == 000 ]] || die "$n answered HTTP $code without a client certificate"
    fi
  done
  log "new connections: newconn.py, 4 threads, ${new_s}s per target, $rounds rounds; load $(loadavg)"
  declare -A CONNS=() CPU=()
  for ((r = 1; r <= rounds; r++)); do
    for n in "${NAMES[@]}"; do
      c0=$(cpu_us "${PID_OF[$n]}")
      # shellcheck disable=SC2046
      read -r got bad < <(timeout $((new_s + 20)) $(pin_client) python3 "$FEAT_HERE/newconn.py" "${ADDR[$n]}" \
        "${URLPATH[$n]}" "$new_s" 4 $(cert_args "$n"))
      c1=$(cpu_us "${PID_OF[$n]}")
      ((got > 0 && bad == 0)) || die "newconn $n: $got good, $bad bad"
      CONNS[$n]=$(( ${CONNS[$n]:-0} + got )); CPU[$n]=$(( ${CPU[$n]:-0} + c1 - c0 ))
      log "round $r $n: $got connections, $(( (c1 - c0) / got )) us/conn"
    done
  done
  echo "# new TLS 1.3 connection + one request (newconn.py, 4 threads), $rounds x ${new_s}s; load $(loadavg)"
  printf '%-24s %8s %10s %12s\n' target conns "conn/s" "us/conn"
  for n in "${NAMES[@]}"; do
    awk -v n="$n" -v c="${CONNS[$n]}" -v t=$((rounds * new_s)) -v u="${CPU[$n]}" \
      'BEGIN { printf "%-24s %8d %10.0f %12.0f\n", n, c, c / t, u / c }'
  done
  kill "${SVC_PID[origin]}"; wait "${SVC_PID[origin]}" 2>/dev/null || true
fi

if ((do_ka)); then
  extra=(); port=28711
  for n in "${NAMES[@]}"; do
    tls_opts="verify=0"
    ((CERT[$n])) && tls_opts+=",cert=$pki/client.crt,key=$pki/client.key"
    # shellcheck disable=SC2046
    $(pin_client) socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=256,nodelay" "OPENSSL:${ADDR[$n]},nodelay,$tls_opts" &
    STARTED_PIDS+=("$!")
    extra+=(--extra-noauth "$n-ka=http://127.0.0.1:$port${URLPATH[$n]}" --extra-pid "$n-ka=${PID_OF[$n]}")
    port=$((port + 1))
  done
  sleep 0.5
  log "keep-alive through socat; load $(loadavg)"
  only=$(printf '%s-ka,' "${NAMES[@]}")
  "$FEAT_BENCH/run.sh" --only "${only%,}" "${extra[@]}" "${args[@]}"
fi
