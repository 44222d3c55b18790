#!/usr/bin/env python3
"""replicas.py: the embedded issuer on PostgreSQL, on paper and measured (issue 20 item 7).

Run through replicas.sh (it builds the release binary). On a fresh database of the local
PostgreSQL (created here, dropped at the end), with the repo's dev realm:

1. statements per grant: the database is set to `log_statement = all` (ALTER DATABASE, only
   this database's sessions log), one replica serves N sequential grants of each kind, and
   the server log's new `statement:`/`execute` lines for this database are counted per grant
   (sqlx sends one statement per round trip: the count is also the round trips; a
   transaction's BEGIN and COMMIT count as statements). The replica's background (readiness
   ping every 5 s, pool and session sampling) is counted over an idle window and subtracted.
2. PostgreSQL CPU per grant: the server backends of this database (pg_stat_activity), their
   utime+stime over a load of each grant (logging off).
3. one replica against three at the same load: the issuer's CPU per grant (utime+stime of the
   gateways) under the same total concurrency, refresh and client_credentials, loaded with
   ../shared/bench/issuer_bench.py, each replica by its own loader; the ratio of the per-grant
   CPU is the throughput per CPU-second that coordination would cost.

Loopback only; every load is bounded by --duration.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atq"]
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
REALM = os.path.join(REPO, "realms/myrealm-realm.json")
CALLBACK = "http://localhost:8000/oidc/callback/"


def sql(q, db="postgres"):
    return subprocess.run(PSQL + ["-d", db, "-c", q], check=True, capture_output=True, text=True).stdout


def cpu(pids):
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return t / CLK_TCK


def backends(db):
    out = sql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}'")
    return [int(x) for x in out.split()]


class Replica:
    def __init__(self, binary, work, i, db):
        self.port, self.mgmt = 28710 + i, 28790 + i
        self.dir = os.path.join(work, f"r{i}")
        os.makedirs(os.path.join(self.dir, "routes"), exist_ok=True)
        with open(os.path.join(self.dir, "portcullis.toml"), "w") as f:
            f.write(f"""[listen]
public = "127.0.0.1:{self.port}"
internal = "127.0.0.1:{28750 + i}"
management = "127.0.0.1:{self.mgmt}"
[runtime]
worker_threads = 1
audit_log = false
[routing]
watch = false
[issuer]
frontend_url = "http://127.0.0.1:28710/auth"
database = "postgres://postgres@127.0.0.1:5432/{db}"
import = ["{REALM}"]
""")
        with open(os.path.join(self.dir, "routes/auth.toml"), "w") as f:
            f.write('[[route]]\nname = "auth"\nprefix = "/auth"\nupstreams = ["embedded:issuer"]\n')
        self.proc = subprocess.Popen([binary, "run", "--config", "portcullis.toml"], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "gw.log"), "w"))
        self.pid = self.proc.pid

    def wait(self):
        for _ in range(600):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.mgmt}/health/ready").status == 200:
                    return
            except Exception:
                time.sleep(0.1)
        sys.exit(f"replica {self.port} not ready: see {self.dir}/gw.log")

    def token_url(self):
        return f"http://127.0.0.1:{self.port}/auth/realms/myrealm/protocol/openid-connect/token"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def post(url, form):
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def code_login(rep):
    """A browser login on the login page: (code). One new SSO session each time. The issuer's
    cookies are `Secure`, which a cookie jar would not send over this plain-HTTP loopback: they
    are passed by hand."""
    op = urllib.request.build_opener(NoRedirect)
    q = urllib.parse.urlencode({"client_id": "myclient", "redirect_uri": CALLBACK, "response_type": "code",
                                "scope": "openid", "state": "s"})
    r = op.open(f"http://127.0.0.1:{rep.port}/auth/realms/myrealm/protocol/openid-connect/auth?{q}")
    cookies = "; ".join(c.split(";", 1)[0] for c in r.headers.get_all("set-cookie") or [])
    form = r.read().decode().split("<form", 1)[1]
    action = re.search(r'action="([^"]+)"', form).group(1).replace("&amp;", "&")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields.update(username="alice", password="password")
    req = urllib.request.Request(urllib.parse.urljoin(f"http://127.0.0.1:{rep.port}/", action),
                                 data=urllib.parse.urlencode(fields).encode(), headers={"Cookie": cookies})
    try:
        op.open(req)
    except urllib.error.HTTPError as e:
        if e.code == 302:
            loc = e.headers["location"]
            return urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)["code"][0]
        raise
    raise SystemExit("the login did not redirect")


PW = {"client_id": "myclient", "client_secret": "my-client-secret", "username": "alice", "password": "password"}
CC = {"grant_type": "client_credentials", "client_id": "svc-reports", "client_secret": "svc-secret"}


def log_lines(log, db, start):
    """Statements of `db` logged after byte offset `start`: how many, and by text."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    texts = {}
    for line in text.splitlines():
        if f"@{db} " not in line:
            continue
        m = re.search(r"LOG:  (?:statement|execute [^:]*): (.*)", line)
        if m:
            t = m.group(1)[:70]
            texts[t] = texts.get(t, 0) + 1
    return sum(texts.values()), texts


def statements(rep, db, log, n):
    """Statements (= round trips) per grant, background subtracted."""
    rt = post(rep.token_url(), {"grant_type": "password", **PW})[1]["refresh_token"]
    codes = []
    def cc():
        assert post(rep.token_url(), CC)[0] == 200
    def refresh():
        nonlocal rt
        s, b = post(rep.token_url(), {"grant_type": "refresh_token", "refresh_token": rt,
                                      "client_id": "myclient", "client_secret": "my-client-secret"})
        assert s == 200, b
        rt = b["refresh_token"]
    def password():
        assert post(rep.token_url(), {"grant_type": "password", **PW})[0] == 200
    def login_page():
        codes.append(code_login(rep))
    def code():
        s, b = post(rep.token_url(), {"grant_type": "authorization_code", "code": codes.pop(),
                                      "redirect_uri": CALLBACK, "client_id": "myclient",
                                      "client_secret": "my-client-secret"})
        assert s == 200, b
    out = {}
    for name, f in [("idle", None), ("client_credentials", cc), ("refresh_token", refresh),
                    ("password", password), ("login form (browser)", login_page), ("authorization_code", code)]:
        start, t0 = os.path.getsize(log), time.time()
        if f is None:
            time.sleep(30)  # one periodic re-read (every 30 s) falls in it
        else:
            for _ in range(n):
                f()
        time.sleep(0.3)  # the log is written asynchronously
        lines, texts = log_lines(log, db, start)
        out[name] = (lines, time.time() - t0, texts)
    idle_rate = out["idle"][0] / out["idle"][1]
    res = {}
    for k, (lines, secs, texts) in out.items():
        if k != "idle":
            res[k] = max(0.0, (lines - idle_rate * secs) / n)
            # What one grant runs: the statements seen at least once per grant (the
            # background's are rarer than that over a phase of n grants).
            for t, c in sorted(texts.items(), key=lambda kv: -kv[1]):
                if c >= n:
                    print(f"    {k}: {c / n:4.1f} x {t}")
    return res, idle_rate


def bench(urls_pids, grant, conc, duration, bench_py, db):
    """Runs one issuer_bench.py per (token url, pid) at once; returns ops, issuer CPU s, PG CPU s."""
    pg = backends(db)
    pg0 = cpu(pg)
    procs = []
    for url, pid in urls_pids:
        procs.append(subprocess.Popen(
            [sys.executable, bench_py, "--token-url", url, "--pid", str(pid), "--cc-client", "svc-reports",
             "--cc-secret", "svc-secret", "--pw-client", "myclient", "--pw-secret", "my-client-secret",
             "--user", "alice:password", "--grants", grant, "--concurrency", str(conc), "--duration", str(duration),
             "--warmup", "2", "--loader-cpu", "-1"], stdout=subprocess.PIPE, text=True))
    ops = issuer = 0.0
    key = {"cc": "cc", "refresh": "refresh", "login": "login"}[grant]
    for p in procs:
        out = p.communicate()[0]
        if os.environ.get("REPLICAS_DEBUG"):
            print(out)
        last = dict(kv.split("=") for kv in out.strip().splitlines()[-1].split())
        o, us = float(last[f"{key}_ops"]), float(last[f"{key}_us"])
        ops += o * duration
        issuer += o * duration * us / 1e6
    pg_cpu = cpu(pg) - pg0  # includes the warm-up: an upper bound
    return ops, issuer, pg_cpu


def refresh_chains(reps, workers, duration, db):
    """Refresh chains without issuer_bench.py (whose workers log in inside its timeout, too slow
    for a debug build): `workers` threads, spread over `reps`, each logged in before the
    measurement, then refreshing its own chain for `duration` seconds. Returns grants, the
    replicas' CPU seconds and PostgreSQL's over the measured window only."""
    import threading
    tokens = []
    for w in range(workers):
        s, b = post(reps[w % len(reps)].token_url(), {"grant_type": "password", **PW})
        assert s == 200, b
        tokens.append(b["refresh_token"])
    done = [0] * workers
    stop = threading.Event()

    def run(w):
        rt, url = tokens[w], reps[w % len(reps)].token_url()
        while not stop.is_set():
            s, b = post(url, {"grant_type": "refresh_token", "refresh_token": rt,
                              "client_id": "myclient", "client_secret": "my-client-secret"})
            assert s == 200, b
            rt = b["refresh_token"]
            done[w] += 1
    pg, pids = backends(db), [r.pid for r in reps]
    c0, p0 = cpu(pids), cpu(pg)
    ts = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in ts:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in ts:
        t.join()
    return sum(done), cpu(pids) - c0, cpu(pg) - p0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bench-py", required=True)
    ap.add_argument("--log", default="/var/log/postgresql/postgresql-15-main.log")
    ap.add_argument("-n", type=int, default=100, help="grants of each kind for the statement counts")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--only", choices=("statements", "load"), help="one part (default: both)")
    ap.add_argument("--grants", default="refresh,cc,login", help="the loads of part 3")
    a = ap.parse_args()
    db = f"portcullis_bench_replicas_{os.getpid()}"
    sql(f'CREATE DATABASE "{db}"')
    work = tempfile.mkdtemp()
    reps = []
    try:
        if a.only != "load":
            print(f"== statements per grant (log_statement = all on {db}, n = {a.n})")
            sql(f"ALTER DATABASE \"{db}\" SET log_statement = 'all'")
            r = Replica(a.bin, work, 0, db); reps.append(r); r.wait()
            res, idle = statements(r, db, a.log, a.n)
            for k, v in res.items():
                print(f"{k:24s} {v:5.2f} statements (round trips) per grant")
            print(f"background: {idle:.2f} statements/s per replica")
            r.stop(); reps.clear()
            sql(f'ALTER DATABASE "{db}" RESET log_statement')
        if a.only == "statements":
            return

        rows = []
        grants = a.grants.split(",")
        for grant in grants:
            for n in (1, 3):
                rs = [Replica(a.bin, work, i, db) for i in range(n)]
                reps[:] = rs
                for x in rs:
                    x.wait()
                conc = max(1, a.concurrency // n)
                # Each process's own idle CPU (timers, probes, the listener), to set apart from
                # the grants' (reported beside the raw figure).
                i0 = cpu([x.pid for x in rs]); time.sleep(4); idle = (cpu([x.pid for x in rs]) - i0) / 4
                if grant == "refresh-chains":
                    ops, issuer, pg = refresh_chains(rs, a.concurrency, a.duration, db)
                else:
                    ops, issuer, pg = bench([(x.token_url(), x.pid) for x in rs], grant, conc, a.duration, a.bench_py, db)
                rows.append((grant, n, conc, ops, issuer, pg, issuer - idle * a.duration))
                print(f"{grant:8s} replicas={n} conc={conc}x{n}: {ops:8.0f} grants, issuer {1e6 * issuer / ops:7.1f} us/grant "
                      f"({ops / issuer:7.0f} grants per issuer CPU-second; idle {idle * 1000:.0f} ms/s, "
                      f"{1e6 * rows[-1][6] / ops:7.1f} us/grant without it), PostgreSQL {1e6 * pg / ops:6.1f} us/grant", flush=True)
                for x in rs:
                    x.stop()
                reps.clear()
        for grant in grants:
            one = next(r for r in rows if r[0] == grant and r[1] == 1)
            three = next(r for r in rows if r[0] == grant and r[1] == 3)
            ratio = (three[3] / three[4]) / (one[3] / one[4])
            net = (three[3] / three[6]) / (one[3] / one[6])
            print(f"{grant}: grants per issuer CPU-second, three replicas / one = {ratio:.2f} "
                  f"({net:.2f} without the processes' idle CPU)")
    finally:
        for x in reps:
            x.stop()
        sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
