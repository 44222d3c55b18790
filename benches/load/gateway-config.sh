# shellcheck shell=bash
# The gateway's bench configuration, shared by gateway.sh (load beside the peers) and
# callgrind.sh (instructions per request): a jwt route /api (the haproxy-jwt token, RBAC on
# /admins) and a public route /public, upstream the bench origin on 127.0.0.1:18000, the
# bench's RS256 key as a JWKS in DIR/jwks (the caller serves it on 127.0.0.1:18591).
# Heredocs inside stay unindented.
#
# write_gateway_config DIR PORT TLS(0|1) BENCH_WORK BENCH_DIR
write_gateway_config() {
local dir=$1 port=$2 tls=$3 work=$4 bench=$5
mkdir -p "$dir/routes" "$dir/policies" "$dir/jwks"

# The bench's RS256 public key as a JWKS, served on loopback like a real issuer's.
python3 - "$work/jwt/pub.pem" "$bench/mint_token.py" > "$dir/jwks/jwks.json" <<'PY'
import base64, json, re, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
key = load_pem_public_key(open(sys.argv[1], "rb").read()).public_numbers()
kid = re.search(r'^KID\s*=\s*"([^"]+)"', open(sys.argv[2]).read(), re.M).group(1)
b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64(key.n), "e": b64(key.e)}]}))
PY

cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:$port"
management = "127.0.0.1:18590"
[runtime]
worker_threads = 1
audit_log = ${PORTCULLIS_BENCH_AUDIT:-true}
[routing]
watch = false
[[trust]]
issuer = "${BENCH_JWT_ISS:-https://idp.bench.local/realms/bench}"
jwks_uri = "http://127.0.0.1:18591/jwks.json"
audiences = ["${BENCH_JWT_AUD:-bench-gateway}"]
algorithms = ["RS256"]
TOML
if [[ $tls == 1 ]]; then
  printf '[tls]\ncert = "%s"\nkey = "%s"\nself_signed_if_missing = false\n' \
    "$work/tls/server.crt" "$work/tls/server.key" >> "$dir/portcullis.toml"
fi
cat > "$dir/routes/bench.toml" <<TOML
[[route]]
name = "bench-jwt"
prefix = "/api"
upstreams = ["http://127.0.0.1:18000"]
auth = "jwt"
[[route]]
name = "bench-public"
prefix = "/public"
strip_prefix = true
upstreams = ["http://127.0.0.1:18000"]
TOML
cat > "$dir/policies/bench.toml" <<TOML
[groups]
"${BENCH_ADMIN_GROUP:-/admins}" = ["admin"]
[roles.admin]
permissions = ["bench:*"]
[[allow]]
route = "bench-jwt"
methods = ["*"]
permission = "bench:*"
TOML
}
