#!/usr/bin/env python3
"""CPU per password grant with and without a TOTP second factor (issue 17's performance check).

    second_factor.py --token-url URL --client C --secret S --users N --password P --pid PID
                     --seconds S [--concurrency K]

Users `pw{i}` have a password only; users `otp{i}` have the same password and a TOTP
credential whose secret is `otp-secret-{i}` (raw, HmacSHA1, 6 digits, period 1 s, as the realm
second_factor.sh writes declares). A code is single use per time step, so a user is taken
again only in a later second. Prints, per kind, grants, the issuer process's CPU µs per grant
(utime+stime from /proc/PID/stat) and the ratio. Standard library only; loopback only.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import struct
import threading
import time
import urllib.parse

CLK = os.sysconf("SC_CLK_TCK")


def cpu_us(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) * 1_000_000 // CLK


def totp(secret: bytes, step: int) -> str:
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return f"{code % 1_000_000:06d}"


class Users:
    """Hands out users round robin; with TOTP, never one whose code this second is spent."""

    def __init__(self, prefix, n, otp):
        self.names = [f"{prefix}{i}" for i in range(n)]
        self.last = {name: -1 for name in self.names}
        self.otp = otp
        self.i = 0
        self.lock = threading.Lock()

    def take(self):
        while True:
            with self.lock:
                now = int(time.time())
                for _ in range(len(self.names)):
                    name = self.names[self.i]
                    self.i = (self.i + 1) % len(self.names)
                    if not self.otp or self.last[name] < now:
                        self.last[name] = now
                        return name, now
            time.sleep(0.01)


def run(args, kind):
    u = urllib.parse.urlsplit(args.token_url)
    assert u.hostname in ("127.0.0.1", "localhost"), "loopback only"
    users = Users("otp" if kind == "otp" else "pw", args.users, kind == "otp")
    done = [0]
    failed = []
    stop = time.time() + args.seconds

    def worker():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        while time.time() < stop and not failed:
            name, now = users.take()
            form = {"grant_type": "password", "client_id": args.client,
                    "client_secret": args.secret, "username": name, "password": args.password}
            if kind == "otp":
                i = int(name[3:])
                form["totp"] = totp(f"otp-secret-{i}".encode(), now)
            c.request("POST", u.path, urllib.parse.urlencode(form),
                      {"Content-Type": "application/x-www-form-urlencoded"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                failed.append(f"{kind} {name}: {r.status} {body[:200]!r}")
                return
            with users.lock:
                done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    t0 = cpu_us(args.pid)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = cpu_us(args.pid) - t0
    if failed:
        raise SystemExit(failed[0])
    return done[0], spent / max(done[0], 1)


def main():
    p = argparse.ArgumentParser()
    for a in ("--token-url", "--client", "--secret", "--password"):
        p.add_argument(a, required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    # The second factor is really asked: without the code, an otp user's grant is refused.
    u = urllib.parse.urlsplit(args.token_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    c.request("POST", u.path, urllib.parse.urlencode({
        "grant_type": "password", "client_id": args.client, "client_secret": args.secret,
        "username": "otp0", "password": args.password}),
        {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    body = r.read()
    if r.status == 200:
        raise SystemExit(f"otp0 got a token without its code: {body[:200]!r}")
    rows = []
    for r in range(args.rounds):
        n_pw, pw = run(args, "pw")
        n_otp, otp = run(args, "otp")
        rows.append({"round": r + 1, "password": round(pw), "password_totp": round(otp),
                     "grants": [n_pw, n_otp], "ratio": round(otp / pw, 3)})
        print(json.dumps(rows[-1]), flush=True)
    ratios = sorted(row["ratio"] for row in rows)
    print(json.dumps({"median_ratio": ratios[len(ratios) // 2]}))


if __name__ == "__main__":
    main()
