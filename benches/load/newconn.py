#!/usr/bin/env python3
"""New TLS connections, each with one request: connect, full handshake (optionally presenting a
client certificate), `GET PATH` with `Connection: close`, read the answer (status must be 200),
close. THREADS threads for SECONDS (at most 20); prints the number of connections completed.
Used by mtls.sh instead of `openssl s_time -www`, whose HTTP/1.0 read-until-close stalled
against the gateway. Standard library only; loopback only.

    newconn.py HOST:PORT PATH SECONDS THREADS [CERT KEY]
"""
import socket
import ssl
import sys
import threading
import time

addr, path, seconds, threads = sys.argv[1], sys.argv[2], min(float(sys.argv[3]), 20), int(sys.argv[4])
host, port = addr.rsplit(":", 1)
assert host.startswith("127."), "loopback only"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
if len(sys.argv) > 6:
    ctx.load_cert_chain(sys.argv[5], sys.argv[6])
req = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
done, bad = [0] * threads, [0] * threads
end = time.monotonic() + seconds


def one():
    with socket.create_connection((host, int(port))) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(16384)
            if not chunk:
                return False
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = s.recv(16384)
            if not chunk:
                break
            body += chunk
        return head.startswith(b"HTTP/1.1 200")


def run(i):
    while time.monotonic() < end:
        if one():
            done[i] += 1
        else:
            bad[i] += 1


ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(f"{sum(done)} {sum(bad)}")
