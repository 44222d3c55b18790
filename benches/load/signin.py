#!/usr/bin/env python3
"""Browser sign-in at the gateway, driven like tests/it/session.rs does (standard library only).

    signin.py cookie   --base https://localhost:PORT --start /app/x --user U --password P
        prints the session's Cookie header value (one sign-in).
    signin.py loop     --base ... --start ... --user U --password P --pid PID --seconds S
        signs in again and again (a fresh cookie jar each time) for S seconds, then prints
        sign-ins, the gateway's CPU µs per sign-in (from /proc/PID/stat) and p50 in ms.
    signin.py password --token-url URL --client C --secret S --user U --password P --pid PID --seconds S
        the same loop with the password grant (one POST to the token endpoint).

Every hop is checked; a wrong status aborts with the hop's answer. Loopback only.
"""
import argparse
import html
import http.client
import os
import re
import ssl
import sys
import time
import urllib.parse

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
CLK = os.sysconf("SC_CLK_TCK")


def cpu_us(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) * 1_000_000 // CLK


class Browser:
    """One cookie jar and one keep-alive connection per origin."""

    def __init__(self):
        self.jar = {}
        self.conns = {}

    def conn(self, u):
        key = (u.scheme, u.netloc)
        if key not in self.conns:
            host, port = u.hostname, u.port
            assert host in ("localhost", "127.0.0.1"), "loopback only"
            c = (http.client.HTTPSConnection(host, port, context=CTX, timeout=20)
                 if u.scheme == "https" else http.client.HTTPConnection(host, port, timeout=20))
            self.conns[key] = c
        return self.conns[key]

    def req(self, method, url, body=None, headers=None):
        u = urllib.parse.urlsplit(url)
        h = {"accept": "text/html"}
        if self.jar:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if body is not None:
            h["content-type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        c = self.conn(u)
        path = u.path + ("?" + u.query if u.query else "")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                pair, _, attrs = v.partition(";")
                name, _, val = pair.partition("=")
                if re.search(r"max-age=0\b", attrs, re.I):
                    self.jar.pop(name.strip(), None)
                else:
                    self.jar[name.strip()] = val.strip()
        return r.status, r.getheader("location"), data

    def close(self):
        for c in self.conns.values():
            c.close()


def expect(what, status, want, data):
    if status not in want:
        sys.exit(f"{what}: HTTP {status}: {data[:300]!r}")


def sign_in(base, start, user, password):
    """One sign-in; returns the browser holding the session cookie."""
    b = Browser()
    url = urllib.parse.urljoin(base, start)
    s, loc, d = b.req("GET", url)
    expect("navigation without a session", s, (302,), d)
    url = urllib.parse.urljoin(url, loc)
    s, loc, d = b.req("GET", url)
    for _ in range(4):
        if s not in (301, 302, 303):
            break
        url = urllib.parse.urljoin(url, loc)
        s, loc, d = b.req("GET", url)
    expect("login page", s, (200,), d)
    # The first form is the password's (a realm with passkeys has a second one, its fields
    # the same hidden ones).
    form = d.decode().split("<form", 1)[1].split("</form>", 1)[0]
    action = html.unescape(re.search(r'action="([^"]+)"', form).group(1))
    fields = []
    for inp in form.split("<input")[1:]:
        attr = lambda n: (m := re.search(rf'{n}="([^"]*)"', inp)) and html.unescape(m.group(1))
        if attr("type") == "hidden":
            fields.append((attr("name"), attr("value") or ""))
    fields += [("username", user), ("password", password)]
    url = urllib.parse.urljoin(url, action)
    s, loc, d = b.req("POST", url, body=urllib.parse.urlencode(fields))
    expect("login POST", s, (302, 303), d)
    url = urllib.parse.urljoin(url, loc)
    for _ in range(4):
        if "/.portcullis/callback" in url:
            break
        s, loc, d = b.req("GET", url)
        expect(url, s, (302, 303), d)
        url = urllib.parse.urljoin(url, loc)
    s, loc, d = b.req("GET", url)
    expect("callback", s, (302,), d)
    return b


def password_grant(token_url, client, secret, user, password, conn_cache={}):
    u = urllib.parse.urlsplit(token_url)
    if "c" not in conn_cache:
        conn_cache["c"] = Browser()
    body = urllib.parse.urlencode({"grant_type": "password", "client_id": client,
                                   "client_secret": secret, "username": user,
                                   "password": password, "scope": "openid"})
    s, _, d = conn_cache["c"].req("POST", token_url, body=body, headers={"accept": "application/json"})
    expect("password grant", s, (200,), d)
    return d


def loop(pid, seconds, one):
    one()  # warm: the first of each kind pays for cold caches
    lat = []
    c0, t_end = cpu_us(pid), time.monotonic() + seconds
    while time.monotonic() < t_end:
        t = time.monotonic()
        one()
        lat.append(time.monotonic() - t)
    c1 = cpu_us(pid)
    lat.sort()
    print(f"n={len(lat)} cpu_us_per_op={(c1 - c0) / len(lat):.0f} "
          f"p50_ms={1000 * lat[len(lat) // 2]:.1f} ops_per_s={len(lat) / seconds:.1f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["cookie", "loop", "password"])
    p.add_argument("--base")
    p.add_argument("--start", default="/app/")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--token-url")
    p.add_argument("--client")
    p.add_argument("--secret")
    p.add_argument("--pid", type=int)
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    a.seconds = min(a.seconds, 20)  # bounded
    if a.mode == "cookie":
        b = sign_in(a.base, a.start, a.user, a.password)
        print("; ".join(f"{k}={v}" for k, v in b.jar.items() if k.startswith("__Host-portcullis")))
    elif a.mode == "loop":
        loop(a.pid, a.seconds, lambda: sign_in(a.base, a.start, a.user, a.password).close())
    else:
        loop(a.pid, a.seconds,
             lambda: password_grant(a.token_url, a.client, a.secret, a.user, a.password))


if __name__ == "__main__":
    main()
